"""
Membership across servers (spec: server-server-api.md "Joining Rooms",
"Restricted rooms", "Inviting to a room", "Leaving Rooms (Rejections)",
"Knocking upon a room"): the resident server's side of the handshakes
(vouching for restricted joins), and ours when a local user joins, knocks,
leaves or is invited to a room held elsewhere.
"""
from __future__ import annotations

import secrets
import string
from typing import Awaitable, Callable, Sequence
from urllib.parse import quote

from signedjson.types import SigningKey

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest, MatrixError, bad_json, forbidden, not_found
from ruma_tx.matrix.events import event_id_for, hash_and_sign
from ruma_tx.matrix.federation_membership import (
    check_invite,
    check_make_membership,
    check_sent_membership,
    event_from_template,
    room_version_of,
    server_of,
)
from ruma_tx.matrix.membership import member_content
from ruma_tx.matrix.pdu_checks import InvalidPdu, received_event_id
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion, auth_event_ids, referenced_event_ids
from ruma_tx.matrix.sync import STRIPPED_STATE_TYPES, stripped_event
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_events import EventReceiver, Rejected, received_event
from ruma_tx.services.ports.events import Events, NewEvent, NewRoom, RoomExists
from ruma_tx.services.ports.federation import FederationClient, FederationError, RemoteMatrixError
from ruma_tx.services.ports.room_dag import DagEvents
from ruma_tx.services.restricted_joins import RestrictedJoins
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.server_acls import ServerAcls

log = logger(__name__)

#: C{async (user_id) -> (displayname, avatar_url)}.
ProfileLookup = Callable[[str], Awaitable[tuple[str | None, str | None]]]

#: C{(room_id, pdu, origin)}: pass an event on to the room's servers but its origin.
RelayPdu = Callable[[str, JsonDict, str], Awaitable[None]]

#: How long an invited server has to countersign (under the room's lock).
INVITE_TIMEOUT_S = 10.0


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class FederatedMembership:
    """
    @param creator: templates, stored memberships of rooms we are not in.
    @param receiver: checks and stores the events other servers send.
    @param acls: the rooms' server ACLs: a denied server gets 403 for
        every handshake.
    @param blocked: C{async (room_id) -> bool}: whether a server admin
        blocked the room; invites of our users into it are then refused.
    """

    def __init__(self, *, creator: EventCreator, receiver: EventReceiver, events: Events, dag: RoomDag,
                 dag_events: DagEvents, client: FederationClient, profiles: ProfileLookup, clock: Clock,
                 server_name: str, signing_key: SigningKey, acls: ServerAcls,
                 relay: RelayPdu | None = None, blocked: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self._relay = relay
        self._blocked = blocked
        self._creator = creator
        self._acls = acls
        self._restricted = RestrictedJoins(events=events, server_name=server_name)
        self._receiver = receiver
        self._events = events
        self._dag = dag
        self._dag_events = dag_events
        self._client = client
        self._profiles = profiles
        self._clock = clock
        self._server_name = server_name
        self._signing_key = signing_key

    # -- the resident server's side ---------------------------------------

    async def _resident_version(self, room_id: str, origin: str) -> RoomVersion:
        """The version of a room this server is in, if its ACL lets C{origin} in."""
        head = await self._events.get_room_head(room_id)
        if head is None or head.out_of_band:
            raise not_found("Unknown room")
        await self._acls.check(room_id, origin)
        return ROOM_VERSIONS[head.room_version]

    async def make_membership(self, origin: str, room_id: str, user_id: str, membership: str,
                              versions: list[str] | None) -> JsonDict:
        version = await self._resident_version(room_id, origin)
        # make_leave carries no ver: a server leaving was in the room, so it supports its version.
        check_make_membership(origin, user_id, version.identifier,
                              [version.identifier] if membership == "leave" else versions)
        if membership == "knock" and not version.knocking:
            raise BadRequest("M_INCOMPATIBLE_ROOM_VERSION", "This room version does not support knocking",
                             room_version=version.identifier)
        content: JsonDict = {"membership": membership}
        if membership == "join" and version.restricted_joins:
            # 403 for a user in none of the allowed rooms, 400 M_UNABLE_TO_*
            # when the joining server should ask another resident.
            authoriser = await self._restricted.authoriser(user_id, room_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        room_version, template = await self._creator.template(
            EventSpec(room_id, user_id, "m.room.member", content, user_id))
        # The spec's template names the resident in `origin`, even in the
        # room versions whose events no longer carry it (v11 and later).
        template.setdefault("origin", self._server_name)
        return {"event": template, "room_version": room_version.identifier}

    async def _accept_membership(self, origin: str, room_id: str, event_id: str, pdu: JsonDict,
                                 membership: str) -> tuple[RoomVersion, JsonDict]:
        version = await self._resident_version(room_id, origin)
        try:
            computed = received_event_id(pdu, version)
        except (InvalidPdu, KeyError, TypeError, ValueError):
            raise bad_json("The event is malformed") from None
        check_sent_membership(pdu, origin=origin, room_id=room_id, event_id=event_id,
                              computed_event_id=computed, membership=membership)
        if membership == "join":
            pdu = await self._vouched(room_id, version, event_id, pdu)
        outcome = await self._receiver.receive_pdus(origin, room_id, [pdu])
        if outcome.get(event_id) is not None:
            raise forbidden(f"The event was refused: {outcome[event_id]}")
        stored = await self._events.get_event(event_id)
        if stored is None or stored.stream_ordering < 0:
            # Soft-failed (or an outlier): the room's current state does not allow it.
            raise forbidden("The room's current state does not allow this membership")
        if self._relay is not None:
            # The joining (leaving, knocking) server sent it to us alone: the
            # room's other servers hear of it from us.
            await self._relay(room_id, pdu, origin)
        return version, pdu

    async def _vouched(self, room_id: str, version: RoomVersion, event_id: str, pdu: JsonDict) -> JsonDict:
        """
        A join one of our users vouches for (C{join_authorised_via_users_server},
        restricted rooms), countersigned, as the auth rules need the
        authorising server's signature, once the user is seen to still
        qualify; any other join as sent.
        """
        authoriser = pdu["content"].get("join_authorised_via_users_server")
        if not version.restricted_joins or not isinstance(authoriser, str) \
                or not authoriser.endswith(":" + self._server_name):
            return pdu
        await self._restricted.authoriser(pdu["state_key"], room_id)
        signed = hash_and_sign(pdu, version, server_name=self._server_name, signing_key=self._signing_key)
        if event_id_for(signed, version) != event_id:
            raise bad_json("The event's content does not match its hash")
        return signed

    async def send_join(self, origin: str, room_id: str, event_id: str, pdu: JsonDict,
                        omit_members: bool) -> JsonDict:
        """
        Accept a remote user's join, then answer with the room's state
        before it and the auth chain of that state and the join. The whole
        state is sent whatever C{omit_members} asks (the spec lets a
        resident server do so, and C{members_omitted} says it).
        """
        version, pdu = await self._accept_membership(origin, room_id, event_id, pdu, "join")
        before = await self._dag.state_before(version, list(self._prev_events(pdu)))
        if before is None:
            before = {key: e for key, e in (await self._dag_events.get_current_state_ids(room_id)).items()
                      if key != ("m.room.member", pdu["state_key"])}
        state = await self._dag_events.get_pdus(sorted(before.values()))
        # The auth chain is what authorises the state and the join: their
        # auth events, recursively; a state event nothing cites is in
        # `state` only (10,000 custom state events would otherwise be sent
        # twice).
        cited = {a for p in [*state.values(), pdu] for a in auth_event_ids(p, version)}
        chain = await self._dag_events.get_auth_chain_pdus(sorted(cited))
        servers = sorted({server_of(key) for (kind, key), e in before.items() if kind == "m.room.member"}
                         | {self._server_name})
        return {"origin": self._server_name, "state": list(state.values()),
                "auth_chain": list(chain.values()),
                "event": pdu, "members_omitted": False, "servers_in_room": servers}

    async def send_leave(self, origin: str, room_id: str, event_id: str, pdu: JsonDict) -> None:
        await self._accept_membership(origin, room_id, event_id, pdu, "leave")

    async def send_knock(self, origin: str, room_id: str, event_id: str, pdu: JsonDict) -> JsonDict:
        await self._accept_membership(origin, room_id, event_id, pdu, "knock")
        return {"knock_room_state": await self._stripped_state(room_id)}

    async def _stripped_state(self, room_id: str) -> list[JsonDict]:
        state = await self._events.get_state(room_id, [(kind, "") for kind in STRIPPED_STATE_TYPES])
        return [stripped_event(event) for event in state.values()]

    @staticmethod
    def _prev_events(pdu: JsonDict) -> list[str]:
        return referenced_event_ids(pdu, "prev_events")

    async def receive_invite(self, origin: str, room_id: str, event_id: str, body: JsonDict) -> JsonDict:
        """
        Countersign an invite of one of our users and, when this server is
        not in the room, keep it (with the stripped state it came with) so
        that the user's /sync shows it.
        """
        version = ROOM_VERSIONS.get(body.get("room_version", "1"))
        if version is None:
            raise BadRequest("M_INCOMPATIBLE_ROOM_VERSION", "This server does not support the room version",
                             room_version=body.get("room_version"))
        if self._blocked is not None and await self._blocked(room_id):
            raise forbidden("This room has been blocked on this server")  # Synapse's answer
        head = await self._events.get_room_head(room_id)
        resident = head is not None and not head.out_of_band
        if resident:
            await self._acls.check(room_id, origin)
        pdu = body["event"]
        try:
            computed = received_event_id(pdu, version)
            check_invite(pdu, room_id=room_id, event_id=event_id, computed_event_id=computed, origin=origin,
                         server_name=self._server_name)
            received = await self._receiver.checked(pdu, version)
        except (InvalidPdu, KeyError, TypeError, ValueError) as e:
            raise bad_json(f"The invite is not a valid event: {e}") from None
        if received.redacted:
            raise bad_json("The invite's content does not match its hash")
        signed = hash_and_sign({k: v for k, v in received.pdu.items() if k != "unsigned"}, version,
                               server_name=self._server_name, signing_key=self._signing_key)
        if not resident:
            kept = {**signed, "unsigned": {"invite_room_state": _objects(body.get("invite_room_state"))}}
            try:
                await self._creator.store_out_of_band(NewRoom(room_id, version.identifier, pdu["sender"]),
                                                      received_event(event_id, kept))
            except RoomExists:
                pass  # joined meanwhile: the invite comes as a PDU like any other
        return {"event": signed}

    # -- our side: local users in rooms held elsewhere ------------------------

    async def remote_invite(self, invite: NewEvent, room_version: RoomVersion) -> JsonDict:
        """
        Have the invitee's server countersign our user's invite (the
        L{ruma_tx.services.events.RemoteInvite} hook of the creator).

        @raise Forbidden: that server refused it or could not be reached.
        """
        invitee = invite.pdu["state_key"]
        destination = server_of(invitee)
        body = {"event": invite.pdu, "room_version": room_version.identifier,
                "invite_room_state": await self._stripped_state(invite.room_id)}
        try:
            answer = await self._client.put_json(
                destination, "/_matrix/federation/v2/invite/" + _path(invite.room_id, invite.event_id), body,
                timeout_s=INVITE_TIMEOUT_S)
        except RemoteMatrixError as e:
            raise forbidden(f"{destination} refused the invite: {e.error or e.errcode}") from None
        except FederationError as e:
            raise forbidden(f"{destination} could not be reached to invite {invitee}: {e.reason}") from None
        signed = answer.get("event")
        if not isinstance(signed, dict) or received_event_id(signed, room_version) != invite.event_id:
            raise forbidden(f"{destination} answered the invite with another event")
        checked = await self._receiver.checked(signed, room_version)
        if checked.redacted or destination not in checked.pdu.get("signatures", {}):
            raise forbidden(f"{destination} did not sign the invite")
        return checked.pdu

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: JsonDict) -> str:
        """
        Join a room this server is not in through the first of C{servers}
        that lets us (make_join, then send_join); the room's state comes
        with the answer and the room is ours to sync from then on.

        @raise MatrixError: 404 when no server could be asked, else the
            last refusal (403 for a room that does not let the user in).
        """
        displayname, avatar_url = await self._profiles(user_id)
        content = {**content, **member_content("join", displayname=displayname, avatar_url=avatar_url)}
        return await self._through_servers(user_id, room_id, servers, "join", content, self._send_join)

    async def _send_join(self, server: str, version: RoomVersion, event: JsonDict, event_id: str) -> str:
        room_id = event["room_id"]
        answer = await self._client.put_json(server, "/_matrix/federation/v2/send_join/" + _path(room_id, event_id),
                                             event, unparsed=("state", "auth_chain"))
        join = answer.get("event")
        if not isinstance(join, dict) or received_event_id(join, version) != event_id:
            join = event  # the resident adds a signature only for restricted joins
        state, chain = answer.get("state"), answer.get("auth_chain")
        if not isinstance(state, list) or not isinstance(chain, list):
            raise Rejected(f"{server} sent no room state")
        try:
            return await self._receiver.join_room(server, version, join, state, chain)
        except RoomExists:
            return room_id  # joined meanwhile (another device, a retry)

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: JsonDict) -> None:
        """
        Knock on a room this server is not in through the first of
        C{servers} that lets us (make_knock, then send_knock); the knock is
        kept with the room state the resident answered, for /sync.
        """
        displayname, avatar_url = await self._profiles(user_id)
        content = {**content, **member_content("knock", displayname=displayname, avatar_url=avatar_url)}
        await self._through_servers(user_id, room_id, servers, "knock", content, self._send_knock)

    async def _send_knock(self, server: str, version: RoomVersion, event: JsonDict, event_id: str) -> str:
        room_id = event["room_id"]
        answer = await self._client.put_json(server, "/_matrix/federation/v1/send_knock/" + _path(room_id, event_id),
                                             event)
        kept = {**event, "unsigned": {"knock_room_state": _objects(answer.get("knock_room_state"))}}
        await self._creator.store_out_of_band(NewRoom(room_id, version.identifier, event["sender"]),
                                              received_event(event_id, kept))
        return room_id

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str]) -> None:
        """
        Leave (reject the invite to, rescind the knock on) a room this server
        is not in, through the server that invited us (a resident).
        """
        await self._through_servers(user_id, room_id, servers, "leave", {"membership": "leave"},
                                    self._send_leave)

    async def _send_leave(self, server: str, version: RoomVersion, event: JsonDict, event_id: str) -> str:
        room_id = event["room_id"]
        await self._client.put_json(server, "/_matrix/federation/v2/send_leave/" + _path(room_id, event_id), event)
        await self._creator.store_out_of_band(NewRoom(room_id, version.identifier, event["sender"]),
                                              received_event(event_id, event))
        return room_id

    async def _through_servers(self, user_id: str, room_id: str, servers: Sequence[str], membership: str,
                               content: JsonDict,
                               send: Callable[[str, RoomVersion, JsonDict, str], Awaitable[str]]) -> str:
        failure: MatrixError = not_found("No server in the room could be reached")
        for server in dict.fromkeys(s for s in servers if s != self._server_name):
            try:
                version, event, event_id = await self._make(server, user_id, room_id, membership, content)
                return await send(server, version, event, event_id)
            except RemoteMatrixError as e:
                log.info("{membership} of {room_id} through {server} refused: {error}", membership=membership,
                         room_id=room_id, server=server, error=e.reason)
                # M_UNABLE_TO_*: that resident cannot vouch for a restricted
                # join; another may. Refused by all, the user may not join.
                if e.code == 403 or e.errcode in ("M_UNABLE_TO_AUTHORISE_JOIN", "M_UNABLE_TO_GRANT_JOIN"):
                    failure = forbidden(e.error or f"{server} refused: {e.errcode}")
            except (FederationError, ValueError, InvalidPdu, Rejected) as e:
                log.info("{membership} of {room_id} through {server} failed: {error}", membership=membership,
                         room_id=room_id, server=server, error=e)
        raise failure

    async def _make(self, server: str, user_id: str, room_id: str, membership: str,
                    content: JsonDict) -> tuple[RoomVersion, JsonDict, str]:
        asked = list(ROOM_VERSIONS)
        answer = await self._client.get_json(
            server, f"/_matrix/federation/v1/make_{membership}/" + _path(room_id, user_id),
            query={"ver": asked} if membership != "leave" else None)
        version = room_version_of(answer, asked)
        event = event_from_template(answer.get("event"), room_version=version, user_id=user_id,
                                    membership=membership, room_id=room_id, server_name=self._server_name,
                                    origin_server_ts=now_ms(self._clock), content=content)
        if version.event_id_in_pdu:
            opaque = "".join(secrets.choice(string.ascii_letters) for _ in range(18))
            event["event_id"] = f"${opaque}:{self._server_name}"
        signed = hash_and_sign(event, version, server_name=self._server_name, signing_key=self._signing_key)
        return version, signed, event_id_for(signed, version)


def _objects(value: object) -> list[JsonDict]:
    """The objects of a list another server sent (stripped state), or none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
