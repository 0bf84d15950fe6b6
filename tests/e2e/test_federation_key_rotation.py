"""
Rotating a server's signing key (`ruma-admin rotate-signing-key`, with the
daemon stopped): after the restart the key server publishes the new key and
the retired one in old_verify_keys; a room shared before the rotation goes
on both ways, and a third server joining it checks the events signed with
the retired key.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from twisted.internet import reactor

from federation_helpers import SyncWatcher, membership_of, message_with_body, shared_room
from room_helpers import ok, send_text
from test_admin import assert_ok, ruma_admin
from test_federation_transport import federation_http, federation_request, signing_key_of  # noqa: F401

from ruma_tx.matrix.federation_auth import verified_server_keys
from ruma_tx.matrix.signing import key_id


@pytest_twisted.ensureDeferred
async def test_rotated_key_is_published_as_old_and_rooms_go_on(start_federating, make_client, federation_http):
    """A's key is rotated: it serves both keys, bob of B and alice of A still talk, and carol of C can join."""
    a_server, b_server = start_federating(), start_federating()
    a, b = make_client(a_server), make_client(b_server)
    alice, bob, room_id = await shared_room((a, b))
    await send_text(a, alice, room_id, "before the rotation", "t1")
    await SyncWatcher(b, bob).wait_for(message_with_body("before the rotation", room_id), "alice's message")
    old_id = key_id(signing_key_of(a_server))

    before_ms = int(reactor.seconds() * 1000)
    a_server.stop()
    output = assert_ok(ruma_admin("rotate-signing-key", "--config", a_server.config_path))
    new_id = key_id(signing_key_of(a_server))
    assert new_id != old_id
    assert old_id in output and new_id in output
    assert (a_server.directory / "var" / "old_signing_keys.json").stat().st_mode & 0o777 == 0o600
    assert (a_server.directory / "var" / "signing.key").stat().st_mode & 0o777 == 0o600
    a_server.start()

    code, body = await federation_request(federation_http, a_server, "GET", "/_matrix/key/v2/server")
    assert code == 200
    keys = verified_server_keys(body, a_server.server_name, before_ms)
    assert list(keys.verify_keys) == [new_id]
    assert list(keys.old_verify_keys) == [old_id]
    assert keys.old_verify_keys[old_id].expired_ts >= before_ms

    # The room shared before goes on, both ways.
    await send_text(a, alice, room_id, "after the rotation", "t2")
    await SyncWatcher(b, bob).wait_for(message_with_body("after the rotation", room_id), "alice's new message")
    await send_text(b, bob, room_id, "bob still here", "t2")
    await SyncWatcher(a, alice).wait_for(message_with_body("bob still here", room_id), "bob's message")

    # A server that never saw the old key checks the room's events signed with it.
    c = make_client(start_federating())
    carol = await c.register()
    await ok(c, "POST", f"join/{quote(room_id)}", {}, user=carol, query={"via": a_server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(carol["user_id"], "join", room_id), "carol's join")
    members = await ok(c, "GET", f"rooms/{quote(room_id)}/joined_members", user=carol)
    assert set(members["joined"]) == {alice["user_id"], bob["user_id"], carol["user_id"]}
