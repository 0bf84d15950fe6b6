"""
Asking other homeservers on a client's behalf (server-server spec:
"End-to-End Encryption" C{/user/keys/query} and C{/user/keys/claim},
"Device Management" C{/user/devices/{userId}}, and "Public Room
Directory" C{/publicRooms}).

Key requests go to each server once, all at once, each bounded by the
client's C{timeout}; a server that cannot answer is reported in
C{failures} under its name, as the client-server spec asks, and never
fails the whole request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, Mapping, Sequence, cast
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from ruma_tx.logs import logger
from ruma_tx.matrix.directory import checked_public_rooms
from ruma_tx.matrix.errors import RemoteUnavailable, forbidden
from ruma_tx.matrix.cross_signing import server_of
from ruma_tx.matrix.device_lists import RemoteDeviceList
from ruma_tx.matrix.federated_keys import (
    checked_cross_signing_keys,
    checked_device_keys,
    checked_one_time_keys,
    checked_user_devices,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import concurrently
from ruma_tx.services.ports.federation import FederationClient, FederationDenied, FederationError, RemoteMatrixError

log = logger(__name__)

_V1 = "/_matrix/federation/v1"

#: How long to wait for other servers when the client names no C{timeout}
#: (the spec's default for C{/keys/query} and C{/keys/claim}).
DEFAULT_TIMEOUT_MS = 10_000


#: What C{failures} says of a server whose answer was of no use.
UNUSABLE = {"status": 503, "message": "Unusable answer"}


def failure_of(error: Exception) -> JsonDict:
    """
    What C{failures} says of a server that gave no usable answer. The spec
    leaves the object's content open; these fields are Synapse's.
    """
    if isinstance(error, RemoteMatrixError):
        return {"status": error.code, "errcode": error.errcode, "message": error.error}
    if isinstance(error, FederationDenied):
        return {"status": 403, "message": "Federation denied"}
    if isinstance(error, defer.TimeoutError):
        return {"status": 503, "message": "Timed out"}
    if isinstance(error, FederationError):
        return {"status": 503, "message": error.reason}
    return dict(UNUSABLE)


@dataclass
class QueriedKeys:
    """Other servers' answers to a key query, merged."""

    device_keys: dict[str, dict[str, JsonDict]] = field(default_factory=dict)
    master_keys: dict[str, JsonDict] = field(default_factory=dict)
    self_signing_keys: dict[str, JsonDict] = field(default_factory=dict)
    failures: dict[str, JsonDict] = field(default_factory=dict)


@dataclass
class ClaimedKeys:
    """Other servers' answers to a one-time key claim, merged."""

    one_time_keys: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    failures: dict[str, JsonDict] = field(default_factory=dict)


class RemoteKeys:
    """
    Other servers' users' device keys and one-time keys.

    @param federation: the L{FederationClient} (a denying one when
        federation is disabled: every server then lands in C{failures}).
    @param clock: bounds each request by the client's timeout, whatever
        the client's own timeouts are.
    """

    def __init__(self, *, federation: FederationClient, clock: Clock) -> None:
        self._federation = federation
        self._clock = clock

    async def query(self, wanted: Mapping[str, Mapping[str, Sequence[str]]], timeout_ms: int | None
                    ) -> QueriedKeys:
        """
        Ask each server of C{wanted} (C{server -> user_id -> device ids})
        for its users' device and cross-signing keys.
        """
        merged = QueriedKeys()

        async def ask(server: str, users: Mapping[str, Sequence[str]]) -> None:
            answer = await self._post(server, "/user/keys/query",
                                      {"device_keys": {user: list(ids) for user, ids in users.items()}},
                                      timeout_ms, merged.failures)
            if answer is None:
                return
            merged.device_keys.update(checked_device_keys(answer, users))
            master_keys, self_signing_keys = checked_cross_signing_keys(answer, list(users))
            merged.master_keys.update(master_keys)
            merged.self_signing_keys.update(self_signing_keys)

        await concurrently(*(ask(server, users) for server, users in wanted.items()))
        return merged

    async def claim(self, wanted: Mapping[str, Mapping[str, Mapping[str, str]]], timeout_ms: int | None
                    ) -> ClaimedKeys:
        """
        Claim from each server of C{wanted} (C{server -> user_id ->
        device_id -> algorithm}) one key per device.
        """
        merged = ClaimedKeys()

        async def ask(server: str, devices: Mapping[str, Mapping[str, str]]) -> None:
            answer = await self._post(server, "/user/keys/claim",
                                      {"one_time_keys": {user: dict(d) for user, d in devices.items()}},
                                      timeout_ms, merged.failures)
            if answer is not None:
                merged.one_time_keys.update(checked_one_time_keys(answer, devices))

        await concurrently(*(ask(server, devices) for server, devices in wanted.items()))
        return merged

    async def user_devices(self, user_id: str, timeout_ms: int | None, failures: dict[str, JsonDict]
                           ) -> RemoteDeviceList | None:
        """
        C{user_id}'s devices and cross-signing keys as their server lists
        them (C{/user/devices/{userId}}); C{None} once the server's failure
        is in C{failures}.
        """
        server = server_of(user_id) or ""
        path = f"{_V1}/user/devices/{quote(user_id, safe='')}"
        answer = await self._bounded(
            server, lambda timeout_s: self._federation.get_json(server, path, timeout_s=timeout_s),
            timeout_ms, failures)
        found = None if answer is None else checked_user_devices(answer, user_id)
        if answer is not None and found is None:
            failures[server] = dict(UNUSABLE)
        return found

    async def _post(self, server: str, path: str, body: JsonDict, timeout_ms: int | None,
                    failures: dict[str, JsonDict]) -> JsonDict | None:
        return await self._bounded(
            server, lambda timeout_s: self._federation.post_json(server, _V1 + path, body, timeout_s=timeout_s),
            timeout_ms, failures)

    async def _bounded(self, server: str, request: Callable[[float], Coroutine[Any, Any, JsonDict]],
                       timeout_ms: int | None, failures: dict[str, JsonDict]) -> JsonDict | None:
        """The server's answer to C{request(timeout_s)}; C{None} once its failure is in C{failures}."""
        timeout_s = (DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms) / 1000
        asking = defer.ensureDeferred(request(timeout_s))
        asking.addTimeout(timeout_s, cast(IReactorTime, self._clock))
        try:
            return await asking
        except (FederationError, defer.TimeoutError) as e:
            log.info("{server} gave no keys: {error}", server=server, error=e)
            failures[server] = failure_of(e)
            return None


class RemotePublicRooms:
    """
    Another server's published room directory (client C{GET/POST
    /publicRooms?server=...}).

    @param federation: the L{FederationClient}.
    """

    def __init__(self, *, federation: FederationClient) -> None:
        self._federation = federation

    async def public_rooms(self, server: str, *, limit: int | None, since: str | None,
                           search: JsonDict | None) -> JsonDict:
        """
        A page of C{server}'s directory. As Synapse: a C{GET} when the client
        filters nothing, else a C{POST} with the filter.

        @param search: C{filter}, C{include_all_networks} and
            C{third_party_instance_id} as the client gave them, or C{None}.
        @raise Forbidden: federation with C{server} is not allowed.
        @raise RemoteUnavailable: no usable answer (502, as Synapse).
        """
        path = _V1 + "/publicRooms"
        try:
            if search is None:
                query: dict[str, str] = {}
                if limit is not None:
                    query["limit"] = str(limit)
                if since is not None:
                    query["since"] = since
                answer = await self._federation.get_json(server, path, query=query)
            else:
                body = dict(search)
                body.update({name: value for name, value in (("limit", limit), ("since", since))
                             if value is not None})
                answer = await self._federation.post_json(server, path, body)
        except FederationDenied:
            raise forbidden(f"Federation with {server} is not allowed") from None
        except FederationError as e:
            log.info("{server} gave no room directory: {error}", server=server, error=e)
            raise RemoteUnavailable("M_UNKNOWN", f"Failed to fetch the room directory of {server}") from None
        return checked_public_rooms(answer)
