"""
A hostile (or just hand-driven) federation peer for tests: requests and
PDUs signed with a real test daemon's key, sent to another daemon, so a
test can say exactly what a misbehaving server sends.
"""
from __future__ import annotations

import itertools
import time
from urllib.parse import quote, urlencode

from test_federation_transport import federation_request, signed_as, signing_key_of

from ruma_tx.matrix.events import build_pdu
from ruma_tx.matrix.room_versions import ROOM_VERSIONS

_counter = itertools.count(1)

#: The extra config of daemons whose tests register many users from one
#: address (client rate limits off; federation's too, unless set again).
NO_LIMITS = "[rate_limits]\nenabled = false\n"


def path_of(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class Forger:
    """
    Speaks as C{server} (whose signing key the test reads from its data
    directory) to C{target}'s federation listener.
    """

    def __init__(self, http, server, target) -> None:
        self.http = http
        self.server = server
        self.target = target
        self.name = server.server_name

    async def request(self, method: str, path: str, body=None, query: dict | None = None):
        """C{(code, json)} of a request signed as C{server}; C{query} values may be lists."""
        uri = path + ("?" + urlencode(query, doseq=True) if query else "")
        authorization = signed_as(self.server, self.target.server_name, method, uri, body)
        return await federation_request(self.http, self.target, method, uri, body=body,
                                        authorization=authorization)

    async def send(self, pdus=(), edus=(), txn_id: str | None = None):
        """C{PUT /send/{txnId}}: C{(code, json)}."""
        body = {"origin": self.name, "origin_server_ts": int(time.time() * 1000),
                "pdus": list(pdus), "edus": list(edus)}
        txn_id = txn_id or f"forged{next(_counter)}"
        return await self.request("PUT", f"/_matrix/federation/v1/send/{quote(txn_id, safe='')}", body)

    async def make_join(self, room_id: str, user_id: str):
        return await self.request("GET", "/_matrix/federation/v1/make_join/" + path_of(room_id, user_id),
                                  query={"ver": list(ROOM_VERSIONS)})

    async def head(self, room_id: str) -> tuple[str, list[str], int]:
        """The room's version, forward extremities and depth, from a make_join template of a fresh user."""
        code, answer = await self.make_join(room_id, f"@head{next(_counter)}:{self.name}")
        assert code == 200, answer
        template = answer["event"]
        return answer["room_version"], template["prev_events"], template["depth"]

    def pdu(self, room_version: str, *, room_id: str, sender: str, event_type: str, content: dict,
            auth_events: list[str], prev_events: list[str], depth: int, state_key: str | None = None
            ) -> tuple[str, dict]:
        """C{(event_id, pdu)} signed by C{server}, whoever its sender claims to be."""
        return build_pdu(room_version=room_version, room_id=room_id, sender=sender, event_type=event_type,
                         content=content, state_key=state_key, prev_events=prev_events,
                         auth_events=auth_events, depth=depth, origin_server_ts=int(time.time() * 1000),
                         server_name=self.name, signing_key=signing_key_of(self.server))

    async def event(self, room_id: str, state: dict, *, sender: str, event_type: str = "m.room.message",
                    content: dict | None = None, state_key: str | None = None,
                    auth_keys: list[tuple[str, str]] | None = None,
                    head: tuple[str, list[str], int] | None = None) -> tuple[str, dict]:
        """
        An event on the room's current head (or C{head}, as L{head} gives
        it), citing as auth events the C{state} events (C{(type,
        state_key) -> event} as a resident's client reads them) under
        C{auth_keys} (by default: the power levels and the sender's
        membership, with the create event before room version 12).
        """
        version, prev_events, depth = head or await self.head(room_id)
        if auth_keys is None:
            auth_keys = [("m.room.power_levels", ""), ("m.room.member", sender)]
            if not ROOM_VERSIONS[version].room_id_from_create_event:
                auth_keys.append(("m.room.create", ""))
        return self.pdu(version, room_id=room_id, sender=sender, event_type=event_type,
                        content=content if content is not None else {"msgtype": "m.text", "body": "forged"},
                        state_key=state_key, auth_events=[state[key]["event_id"] for key in auth_keys],
                        prev_events=prev_events, depth=depth)


async def room_state(client, user: dict, room_id: str) -> dict:
    """The room's current state as C{user} reads it: C{(type, state_key) -> event}."""
    answer = await client.request("GET", f"rooms/{quote(room_id)}/state", token=user["access_token"])
    assert answer.code == 200, answer
    return {(event["type"], event["state_key"]): event for event in answer.json}


async def recent_events(client, user: dict, room_id: str) -> list[dict]:
    """The room's latest events (newest first) as C{user} reads them with /messages."""
    answer = await client.request("GET", f"rooms/{quote(room_id)}/messages", token=user["access_token"],
                                  query={"dir": "b", "limit": "100"})
    assert answer.code == 200, answer
    return answer.json["chunk"]
