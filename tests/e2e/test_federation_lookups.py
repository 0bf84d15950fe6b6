"""
Two ruma_tx daemons federating on loopback (TLS, the test's CA): a client of
one reads the other's users' device keys, cross-signing keys and one-time
keys, and the other's published room directory, through its own server's
signed federation queries; a server that cannot be reached is in
C{failures}.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key

from test_federation_transport import federation_http, federation_request, signed_as  # noqa: F401
from test_keys_upload_claim import ALG, Device


@pytest.fixture(scope="module")
def pair(start_federating):
    """Two federating daemons, A and B."""
    return start_federating(), start_federating()


async def device_with_keys(client) -> Device:
    """A new user of C{client}'s server whose device uploaded device keys and one one-time key."""
    device = Device(await client.register())
    answer = await client.request("POST", "keys/upload", {
        "device_keys": device.device_keys(),
        "one_time_keys": {f"{ALG}:AAAA": device.signed_key()},
    }, token=device.token)
    assert answer.code == 200, answer
    return device


@pytest_twisted.ensureDeferred
async def test_keys_of_another_servers_users_are_queried_and_claimed(pair, make_client):
    """A's client gets B's user's device keys (as uploaded) and master key, claims its one-time key
    once, and sees an unreachable server in failures."""
    a, b = pair
    client_a, client_b = make_client(a), make_client(b)
    alice = Device(await client_a.register())
    bob = await device_with_keys(client_b)
    master_key = generate_signing_key("master")
    public = encode_verify_key_base64(get_verify_key(master_key))
    master = {"user_id": bob.user_id, "usage": ["master"], "keys": {f"ed25519:{public}": public}}
    uploaded = await client_b.request("POST", "keys/device_signing/upload", {"master_key": master},
                                      token=bob.token)
    assert uploaded.code == 200, uploaded

    unreachable = "localhost:1"
    query = await client_a.request("POST", "keys/query", {
        "device_keys": {bob.user_id: [], f"@nobody:{unreachable}": []}, "timeout": 5000}, token=alice.token)
    assert query.code == 200, query
    shown = query.json["device_keys"][bob.user_id][bob.device_id]
    assert shown["keys"] == bob.device_keys()["keys"]
    assert shown["signatures"] == bob.device_keys()["signatures"]
    assert query.json["master_keys"][bob.user_id]["keys"] == master["keys"]
    assert query.json["failures"][unreachable]["status"] == 503

    wanted = {"one_time_keys": {bob.user_id: {bob.device_id: ALG}}}
    first = await client_a.request("POST", "keys/claim", wanted, token=alice.token)
    assert first.code == 200, first
    [(name, key)] = first.json["one_time_keys"][bob.user_id][bob.device_id].items()
    assert name == f"{ALG}:AAAA" and key["key"] and first.json["failures"] == {}
    second = await client_a.request("POST", "keys/claim", wanted, token=alice.token)
    assert second.code == 200 and second.json["one_time_keys"] == {}, second


@pytest_twisted.ensureDeferred
async def test_another_servers_room_directory_is_listed(pair, make_client):
    """A's client lists and searches B's published rooms with ?server=B; an unreachable server is 502."""
    a, b = pair
    client_a, client_b = make_client(a), make_client(b)
    owner = await client_b.register()
    name = "Federated lobby " + owner["user_id"][1:8]
    room = await client_b.request("POST", "createRoom", {"visibility": "public", "name": name},
                                  token=owner["access_token"])
    assert room.code == 200, room
    listed = await client_a.request("GET", "publicRooms", query={"server": b.server_name, "limit": "100"})
    assert listed.code == 200, listed
    assert room.json["room_id"] in [entry["room_id"] for entry in listed.json["chunk"]]
    reader = await client_a.register()
    searched = await client_a.request("POST", "publicRooms", {"filter": {"generic_search_term": name}},
                                      query={"server": b.server_name}, token=reader["access_token"])
    assert searched.code == 200, searched
    assert [(entry["room_id"], entry["name"]) for entry in searched.json["chunk"]] == [(room.json["room_id"], name)]
    missing = await client_a.request("GET", "publicRooms", query={"server": "localhost:1"})
    assert missing.code == 502, missing


@pytest_twisted.ensureDeferred
async def test_a_server_reads_our_devices_and_the_spaces_it_could_join(pair, make_client, federation_http):
    """A's signed requests to B: /user/devices gives B's user's devices with their keys and a
    stream id; /hierarchy gives a public space with its public child, and names the invite-only
    child as inaccessible."""
    a, b = pair
    client_b = make_client(b)
    bob = await device_with_keys(client_b)
    path = f"/_matrix/federation/v1/user/devices/{quote(bob.user_id)}"
    code, body = await federation_request(federation_http, b, "GET", path,
                                          authorization=signed_as(a, b.server_name, "GET", path))
    assert code == 200, body
    assert isinstance(body["stream_id"], int) and body["user_id"] == bob.user_id
    assert [(d["device_id"], d["keys"]["keys"]) for d in body["devices"]] == [
        (bob.device_id, bob.device_keys()["keys"])]

    rooms = {}
    for name, body in (("space", {"visibility": "public", "creation_content": {"type": "m.space"}}),
                       ("open", {"preset": "public_chat"}), ("closed", {"preset": "private_chat"})):
        created = await client_b.request("POST", "createRoom", body, token=bob.token)
        assert created.code == 200, created
        rooms[name] = created.json["room_id"]
    for child in ("open", "closed"):
        linked = await client_b.request(
            "PUT", f"rooms/{quote(rooms['space'])}/state/m.space.child/{quote(rooms[child])}",
            {"via": [b.server_name]}, token=bob.token)
        assert linked.code == 200, linked
    path = f"/_matrix/federation/v1/hierarchy/{quote(rooms['space'])}"
    code, body = await federation_request(federation_http, b, "GET", path,
                                          authorization=signed_as(a, b.server_name, "GET", path))
    assert code == 200, body
    assert body["room"]["room_id"] == rooms["space"]
    assert [room["room_id"] for room in body["children"]] == [rooms["open"]]
    assert body["inaccessible_children"] == [rooms["closed"]]
    path = f"/_matrix/federation/v1/hierarchy/{quote(rooms['closed'])}"
    code, body = await federation_request(federation_http, b, "GET", path,
                                          authorization=signed_as(a, b.server_name, "GET", path))
    assert (code, body["errcode"]) == (404, "M_NOT_FOUND")
