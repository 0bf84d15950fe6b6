"""Ports of other servers' keys (implemented by C{ruma_tx.storage.server_keys.ServerKeyStore})."""
from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence


class StoredServerKey(NamedTuple):
    """
    One verified key of another server.

    @ivar verify_key: unpadded base64.
    @ivar valid_until_ts: until when it verifies signatures (its
        C{expired_ts} for a retired key).
    @ivar retired: from C{old_verify_keys}: it verifies events, not requests.
    @ivar key_response: the signed response it came in, as JSON text.
    """

    key_id: str
    verify_key: str
    valid_until_ts: int
    retired: bool
    fetched_ts: int
    key_response: str


class ServerKeyStorage(Protocol):
    async def get_server_keys(self, server_name: str) -> list[StoredServerKey]: ...

    async def store_server_keys(self, server_name: str, keys: Sequence[StoredServerKey]) -> None:
        """Add or replace these keys of C{server_name}."""
        ...
