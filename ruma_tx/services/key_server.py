"""
Publishing our keys and relaying other servers' (spec: server-server-api.md
"Publishing Keys", "Querying Keys Through Another Server").
"""
from __future__ import annotations

from typing import Mapping

from signedjson.types import SigningKey

from ruma_tx.matrix.federation_auth import OldVerifyKey, notary_sign, server_keys_response
from ruma_tx.matrix.signing import key_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock
from ruma_tx.services.key_ring import KeyRing

#: How long others may trust our published keys without asking again
#: (Synapse's key_refresh_interval: a day).
OWN_KEYS_VALIDITY_MS = 24 * 3600 * 1000


class KeyServer:
    """
    Answers C{/_matrix/key/v2/server} and, as a notary, C{/_matrix/key/v2/query}.

    @param old_verify_keys: the keys this server signed with before
        C{ruma-admin rotate-signing-key} retired them, published so that
        others can still check the events signed with them.
    """

    def __init__(self, *, key_ring: KeyRing, clock: Clock, server_name: str,
                 signing_key: SigningKey, old_verify_keys: Mapping[str, OldVerifyKey] | None = None) -> None:
        self._key_ring = key_ring
        self._clock = clock
        self._server_name = server_name
        self._signing_key = signing_key
        # A rotation stopped halfway leaves the current key among the retired: it is current.
        self._old_verify_keys = {kid: old for kid, old in (old_verify_keys or {}).items()
                                 if kid != key_id(signing_key)}

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def own_keys(self) -> JsonDict:
        """Our keys, signed by us."""
        return server_keys_response(self._server_name, self._signing_key,
                                    self._now_ms() + OWN_KEYS_VALIDITY_MS, self._old_verify_keys)

    async def query(self, wanted: Mapping[str, Mapping[str, int | None]]) -> JsonDict:
        """
        The key responses of each server in C{wanted} (server name -> key
        id -> C{minimum_valid_until_ts} or C{None}), each with our
        signature added. A server whose keys cannot be had is left out.
        """
        server_keys: list[JsonDict] = []
        for server_name, key_criteria in wanted.items():
            minimum = max((ts for ts in key_criteria.values() if ts is not None), default=self._now_ms())
            if server_name == self._server_name:
                responses = [self.own_keys()]
            else:
                responses = await self._key_ring.key_responses(server_name, minimum)
            server_keys += [notary_sign(response, self._server_name, self._signing_key)
                            for response in responses]
        return {"server_keys": server_keys}
