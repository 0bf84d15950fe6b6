"""
Sliding sync under faults, through the real daemon: a client hanging up in
the middle of a long poll, and the daemon killed with SIGKILL between two
requests. The client always recovers (the same pos again, or M_UNKNOWN_POS
and a fresh start) and sees every acknowledged message.
"""
from __future__ import annotations

import pytest_twisted
from sliding_helpers import UNSTABLE, V4, Connection, bodies, create_room, rooms, send
from test_faults import hang_up_after, in_thread, quiet


@pytest_twisted.ensureDeferred
async def test_a_hang_up_in_a_long_poll_leaves_the_connection_usable(client, homeserver):
    """
    The client gives up on a long poll (its socket is reset while the server
    waits); its next request with the same pos gets the message sent since.
    """
    alice = await client.register()
    room_id = await create_room(client, alice, name="hang-up")
    loop = Connection(client, UNSTABLE, alice, lists={"all": UNSTABLE.list_config(0, 9, timeline_limit=5)})
    await loop.sync()
    body = loop.body()
    path = f"{UNSTABLE.url}?pos={loop.pos}&timeout=20000"
    await quiet(in_thread(hang_up_after, homeserver.port, "POST", path, body, alice["access_token"], 0.5))
    await send(client, alice, room_id, "after the hang-up")
    answer = await loop.sync(timeout=0)
    assert bodies(rooms(answer)[room_id]) == ["after the hang-up"]


@pytest_twisted.ensureDeferred
async def test_sigkill_between_requests_loses_no_message(start_homeserver, make_client):
    """
    The daemon is killed with SIGKILL mid-session and started again. The
    client's last pos either still works (its connection was saved) or is
    M_UNKNOWN_POS, and then a fresh connection has every room with the
    message acknowledged just before the kill; nothing is lost either way.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    alice = await client.register()
    room_ids = [await create_room(client, alice, name=f"room {i}") for i in range(3)]
    loop = Connection(client, V4, alice, lists={"all": V4.list_config(0, 9, timeline_limit=3)})
    first = await loop.sync()
    assert set(rooms(first)) == set(room_ids)
    await send(client, alice, room_ids[0], "acknowledged before the kill")
    server.kill()
    server.start()

    response = await V4.post(client, alice, loop.body(), pos=loop.pos, timeout=0)
    if response.code == 200:
        assert bodies(rooms(response.json)[room_ids[0]]) == ["acknowledged before the kill"]
        loop.pos = response.json["pos"]
    else:
        assert (response.code, response.json["errcode"]) == (400, "M_UNKNOWN_POS"), response
        loop.pos = None
        fresh = await loop.sync()
        assert set(rooms(fresh)) == set(room_ids)
        assert all(room.get("initial") for room in rooms(fresh).values())
        assert bodies(rooms(fresh)[room_ids[0]])[-1] == "acknowledged before the kill"
    await send(client, alice, room_ids[1], "after the restart")
    after = await loop.sync(timeout=0)
    assert bodies(rooms(after)[room_ids[1]]) == ["after the restart"]
