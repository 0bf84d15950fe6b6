"""
Sliding-sync connections (MSC4186 "Connections"): per user, device and
C{conn_id}, what was sent as of each C{pos} handed out.

A request names the C{pos} of the last response its client processed.
The server cannot know whether its newest response arrived, so it keeps
two states: the one the request named (acknowledged: older ones are
dropped) and the one of its answer. A retry with the same C{pos} computes
from the same state again, and a newer C{pos} abandons what was handed out
after it. A C{pos} carries its connection's random nonce, so a new
connection (a request without C{pos}) never accepts a C{pos} of an earlier
one, even after a crash lost the newest states.

States live in a bounded LRU; changed ones are written to the database
every few seconds, when they are evicted and at shutdown, so a restart
resumes connections. After a crash, a C{pos} newer than the stored state
is unknown: the client is told C{M_UNKNOWN_POS} and starts over.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.sliding_sync import ConnectionState
from ruma_tx.matrix.stream_token import InvalidToken, SlidingPos, StreamToken
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms

log = logger(__name__)

#: Connections kept in memory (the others are read back from the database).
CACHED_CONNECTIONS = 1000

#: Connections unused for this long are forgotten (Synapse also expires them).
CONNECTION_LIFETIME_MS = 7 * 24 * 3600 * 1000

ConnectionKey = tuple[str, str, str]  # (user_id, device_id, conn_id)


def unknown_pos() -> BadRequest:
    return BadRequest("M_UNKNOWN_POS", "Unknown or expired pos: start a new connection")


class ConnectionStorage(Protocol):
    async def load_connection(self, user_id: str, device_id: str, conn_id: str) -> object | None: ...
    async def save_connections(self, rows: Sequence[tuple[str, str, str, object]], now_ms: int) -> None: ...
    async def delete_connections_before(self, before_ms: int) -> None: ...


@dataclass
class Connection:
    nonce: str
    next_generation: int = 1
    states: dict[int, ConnectionState] = field(default_factory=dict)
    #: The latest request's serial: an older request still running was
    #: abandoned by its client, and its answer is not remembered.
    latest_request: int = 0

    def as_json(self) -> dict:
        return {"nonce": self.nonce, "next_generation": self.next_generation,
                "states": {str(g): s.as_json() for g, s in self.states.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Connection:
        return cls(str(data["nonce"]), int(data["next_generation"]),
                   {int(g): ConnectionState.from_json(s) for g, s in data["states"].items()})


@dataclass(frozen=True)
class Resumed:
    """A request's place on its connection."""

    key: ConnectionKey
    connection: Connection
    #: What the client has; C{None} on a connection's first request.
    previous: ConnectionState | None
    serial: int


class _Evicting(LRUCache[ConnectionKey, Connection]):
    """The LRU of connections: one it drops while unsaved waits in C{unsaved}."""

    def __init__(self, maxsize: int, dirty: set[ConnectionKey], unsaved: dict[ConnectionKey, Connection]) -> None:
        super().__init__(maxsize)
        self._dirty = dirty
        self._unsaved = unsaved

    def popitem(self) -> tuple[ConnectionKey, Connection]:
        key, connection = super().popitem()
        if key in self._dirty:
            self._dirty.discard(key)
            self._unsaved[key] = connection
        return key, connection


class Connections:
    """
    @param store: the L{ruma_tx.storage.sliding_sync.SlidingSyncStore}.
    """

    def __init__(self, *, store: ConnectionStorage, clock: Clock, max_cached: int = CACHED_CONNECTIONS) -> None:
        self._store = store
        self._clock = clock
        self._dirty: set[ConnectionKey] = set()
        self._unsaved: dict[ConnectionKey, Connection] = {}
        self._cached = _Evicting(max_cached, self._dirty, self._unsaved)

    async def resume(self, key: ConnectionKey, pos: str | None) -> Resumed:
        """
        The connection a request continues (a new one when it has no
        C{pos}).

        @raise BadRequest: C{M_UNKNOWN_POS} for a C{pos} this connection
            does not know (never issued to this user and device, expired,
            or lost in a crash).
        """
        if pos is None:
            connection = Connection(nonce=secrets.token_hex(4))
            self._remember(key, connection)
            connection.latest_request += 1
            return Resumed(key, connection, None, connection.latest_request)
        try:
            parsed = SlidingPos.parse(pos)
        except InvalidToken:
            raise unknown_pos() from None
        found = await self._find(key)
        state = None if found is None or found.nonce != parsed.nonce else found.states.get(parsed.generation)
        if found is None or state is None or state.stream != parsed.token.stream:
            raise unknown_pos()
        connection = found
        # Acknowledged: what came before is no longer needed, and what was
        # handed out after it was never processed.
        if set(connection.states) != {parsed.generation}:
            connection.states = {parsed.generation: state}
            self._dirty.add(key)
        connection.latest_request += 1
        return Resumed(key, connection, state, connection.latest_request)

    def commit(self, resumed: Resumed, state: ConnectionState, token: StreamToken) -> str:
        """Remember what a response sent; return its C{pos}."""
        connection = resumed.connection
        generation = connection.next_generation
        connection.next_generation += 1
        current = self._cached.get(resumed.key) or self._unsaved.get(resumed.key)
        # Not when a later request came, or the client started the
        # connection over meanwhile (its hang-up never reached us).
        if resumed.serial == connection.latest_request and current in (None, connection):
            connection.states[generation] = state
            self._remember(resumed.key, connection)
        return str(SlidingPos(token, connection.nonce, generation))

    def _remember(self, key: ConnectionKey, connection: Connection) -> None:
        self._unsaved.pop(key, None)
        self._cached[key] = connection
        self._dirty.add(key)

    async def _find(self, key: ConnectionKey) -> Connection | None:
        connection = self._cached.get(key) or self._unsaved.get(key)
        if connection is not None:
            return connection
        stored = await self._store.load_connection(*key)
        raced = self._cached.get(key)  # another request may have read it meanwhile
        if raced is not None:
            return raced
        if stored is None:
            return None
        try:
            connection = Connection.from_json(stored)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            log.warn("unreadable sliding sync connection {key}", key=key[1:])
            return None
        self._cached[key] = connection
        return connection

    async def save(self) -> None:
        """Write the connections changed since the last save."""
        changed = {key: self._cached[key] for key in self._dirty if key in self._cached}
        changed.update(self._unsaved)
        self._dirty.clear()
        self._unsaved.clear()
        rows = [(*key, connection.as_json()) for key, connection in changed.items()]
        try:
            await self._store.save_connections(rows, now_ms(self._clock))
        except Exception:
            # Kept for the next save, unless replaced meanwhile; a crash
            # before it only costs the clients of these connections a fresh start.
            for key, connection in changed.items():
                current = self._cached.get(key)
                if current is connection:
                    self._dirty.add(key)
                elif current is None:
                    self._unsaved.setdefault(key, connection)
            raise

    async def expire(self) -> None:
        await self._store.delete_connections_before(now_ms(self._clock) - CONNECTION_LIFETIME_MS)
