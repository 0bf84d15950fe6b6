"""
Other servers' signing keys (spec: server-server-api.md "Retrieving server
keys"): fetched when a signature needs one, verified, stored, cached.

Keys are asked of the trusted notaries first, then of the server itself,
as Synapse orders its fetchers. Every response is verified with the pure
functions of L{ruma_tx.matrix.federation_auth} before anything is kept.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, Sequence

from nacl.signing import VerifyKey
from signedjson.types import SigningKey
from twisted.internet import defer
from unpaddedbase64 import decode_base64, encode_base64

from ruma_tx.logs import logger
from ruma_tx.matrix.federation_auth import (
    InvalidServerKeys,
    OldVerifyKey,
    ServerKeys,
    verified_notary_keys,
    verified_server_keys,
)
from ruma_tx.matrix.signing import key_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.ports.federation import FederationClient, FederationError
from ruma_tx.services.ports.server_keys import ServerKeyStorage, StoredServerKey

log = logger(__name__)

KEY_SERVER_PATH = "/_matrix/key/v2/server"
KEY_QUERY_PATH = "/_matrix/key/v2/query"

#: A key still unknown after a fetch is not asked for again this soon, so
#: that requests naming made-up key ids cannot make us fetch on each one;
#: short enough that a server which rotated its key (its requests retried
#: with backoff) is not refused for long by those who fetched the old one.
MIN_REFETCH_INTERVAL_MS = 10_000


class _Known:
    """
    What is known of one server's keys.

    @ivar keys: key id -> the stored key.
    @ivar fetched_ms: when a fetch was last tried (0: never).
    """

    def __init__(self, keys: Iterable[StoredServerKey], fetched_ms: int) -> None:
        self.keys = {key.key_id: key for key in keys}
        self.fetched_ms = fetched_ms

    def valid(self, key_ids: Iterable[str], at_ms: int) -> dict[str, VerifyKey]:
        return {
            kid: VerifyKey(decode_base64(self.keys[kid].verify_key))
            for kid in key_ids
            if kid in self.keys and at_ms <= self.keys[kid].valid_until_ts
        }

    def current(self, now_ms: int) -> dict[str, VerifyKey]:
        """The keys that may verify a request now."""
        return self.valid([k for k, key in self.keys.items() if not key.retired], now_ms)

    def responses(self, minimum_valid_until_ts: int) -> list[JsonDict]:
        """The distinct stored responses whose current keys are valid until then, newest first."""
        found: dict[str, int] = {}
        for key in self.keys.values():
            if not key.retired and key.valid_until_ts >= minimum_valid_until_ts:
                found[key.key_response] = key.fetched_ts
        return [json.loads(text) for text, _ in sorted(found.items(), key=lambda item: -item[1])]


def _rows(keys: ServerKeys, response: JsonDict, now_ms: int) -> list[StoredServerKey]:
    text = json.dumps(response)
    rows = [StoredServerKey(kid, encode_base64(bytes(old.key)), old.expired_ts, True, now_ms, text)
            for kid, old in keys.old_verify_keys.items()]
    rows += [StoredServerKey(kid, encode_base64(bytes(key)), keys.valid_until_ts, False, now_ms, text)
             for kid, key in keys.verify_keys.items()]
    return rows


class KeyRing:
    """
    Implements the L{ruma_tx.services.ports.federation.KeyRing} port.

    @param store: the L{ruma_tx.storage.server_keys.ServerKeyStore}.
    @param client: the federation client the keys are fetched with.
    @param signing_key: our own key: our server's keys are never fetched.
    @param old_keys: our retired keys, which verify what we signed up to
        their C{expired_ts}.
    @param trusted_key_servers: notaries asked first, in order.
    @param cache_size: servers whose keys are kept in memory (the store
        keeps all of them).
    """

    def __init__(self, *, store: ServerKeyStorage, client: FederationClient, clock: Clock,
                 server_name: str, signing_key: SigningKey, old_keys: Mapping[str, OldVerifyKey] | None = None,
                 trusted_key_servers: Sequence[str] = (), cache_size: int = 10_000) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._server_name = server_name
        # Our current key never needs fetching again: valid for ever.
        self._own = ServerKeys(verify_keys={key_id(signing_key): signing_key.verify_key},
                               old_verify_keys=old_keys or {}, valid_until_ts=2**63 - 1)
        self._notaries = tuple(trusted_key_servers)
        # Invalidated by the fetches themselves (every fetch replaces the entry).
        self._cache: LRUCache[str, _Known] = LRUCache(cache_size)
        self._fetching = SingleFlight()

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def verify_keys(self, server_name: str, key_ids: Iterable[str], at_ms: int
                          ) -> Mapping[str, VerifyKey]:
        wanted = list(key_ids)
        if server_name == self._server_name:
            own = {kid: self._own.key_valid_at(kid, at_ms) for kid in wanted}
            return {kid: key for kid, key in own.items() if key is not None}
        known = await self._known(server_name)
        found = known.valid(wanted, at_ms)
        if len(found) < len(set(wanted)) and self._may_fetch(known):
            known = await self._fetch(server_name)
            found = known.valid(wanted, at_ms)
        return found

    async def key_responses(self, server_name: str, minimum_valid_until_ts: int) -> list[JsonDict]:
        """
        The signed key responses of C{server_name} for a notary to relay:
        those valid until C{minimum_valid_until_ts}, fetched anew when there
        are none; failing that, the last one received (the spec: so that
        old events can still be checked).
        """
        known = await self._known(server_name)
        responses = known.responses(minimum_valid_until_ts)
        if not responses and self._may_fetch(known):
            known = await self._fetch(server_name)
            responses = known.responses(minimum_valid_until_ts)
        return responses or known.responses(0)[:1]

    def _may_fetch(self, known: _Known) -> bool:
        return self._now_ms() - known.fetched_ms >= MIN_REFETCH_INTERVAL_MS

    async def _known(self, server_name: str) -> _Known:
        known = self._cache.get(server_name)
        if known is None:
            rows = await self._store.get_server_keys(server_name)
            known = _Known(rows, max((row.fetched_ts for row in rows), default=0))
            self._cache[server_name] = known
        return known

    def _fetch(self, server_name: str) -> defer.Deferred[_Known]:
        """Fetch the keys of C{server_name}; concurrent callers share one fetch."""
        return self._fetching.run(server_name, lambda: self._fetch_once(server_name))

    async def _fetch_once(self, server_name: str) -> _Known:
        now_ms = self._now_ms()
        for notary in self._notaries:
            if notary == server_name:
                continue
            try:
                rows = await self._from_notary(server_name, notary, now_ms)
            except (FederationError, InvalidServerKeys) as e:
                log.info("notary {notary} gave no keys of {server}: {why}", notary=notary,
                         server=server_name, why=e)
                continue
            return await self._keep(server_name, rows, now_ms)
        try:
            rows = await self._direct(server_name, now_ms)
        except (FederationError, InvalidServerKeys) as e:
            log.info("could not fetch the keys of {server}: {why}", server=server_name, why=e)
            rows = []
        return await self._keep(server_name, rows, now_ms)

    async def _keep(self, server_name: str, rows: list[StoredServerKey], now_ms: int) -> _Known:
        if rows:
            await self._store.store_server_keys(server_name, rows)
        known = await self._known(server_name)
        updated = _Known([*known.keys.values()], now_ms)
        updated.keys.update({row.key_id: row for row in rows})
        self._cache[server_name] = updated
        return updated

    async def _direct(self, server_name: str, now_ms: int) -> list[StoredServerKey]:
        response = await self._client.get_unsigned_json(server_name, KEY_SERVER_PATH)
        return _rows(verified_server_keys(response, server_name, now_ms), response, now_ms)

    async def _from_notary(self, server_name: str, notary: str, now_ms: int) -> list[StoredServerKey]:
        notary_keys = (await self._known(notary)).current(now_ms)
        if not notary_keys:
            # The notary's own keys come from the notary itself, never from another notary.
            own_rows = await self._direct(notary, now_ms)
            notary_keys = (await self._keep(notary, own_rows, now_ms)).current(now_ms)
        answer = await self._client.post_json(notary, KEY_QUERY_PATH,
                                              {"server_keys": {server_name: {}}})
        entries = answer.get("server_keys")
        if not isinstance(entries, list):
            raise InvalidServerKeys(f"{notary}'s answer has no server_keys list")
        rows: list[StoredServerKey] = []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("server_name") == server_name:
                keys = verified_notary_keys(entry, server_name, notary, notary_keys, now_ms)
                rows += _rows(keys, entry, now_ms)
        if not rows:
            raise InvalidServerKeys(f"{notary} relayed no keys of {server_name}")
        return rows
