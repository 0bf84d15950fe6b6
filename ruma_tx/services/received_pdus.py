"""
Steps 1-3 of the checks on receipt of a PDU (format, signatures, content
hash: L{ruma_tx.matrix.pdu_checks}) with the signing keys of the
L{KeyRing}: one PDU at a time, or the thousands of a C{send_join} answer.

Those are checked in threads, L{CHECK_CHUNK} at a time and L{CHECK_JOBS}
chunks at once: libsodium verifies signatures without holding the GIL, so
two chunks use two cores, and the reactor stays free meanwhile. The keys a
chunk needs are looked up on the reactor between its two thread jobs,
once per server and key ids rather than once per PDU.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterator, NamedTuple, Sequence, TypeVar, overload

import msgspec
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

from ruma_tx.matrix.federation_auth import ServerKeys
from ruma_tx.matrix.pdu_checks import (
    JSON_TEXT,
    InvalidPdu,
    PreparedPdu,
    ReceivedPdu,
    parse_pdu,
    prepare_received_pdu,
    verify_prepared_pdu,
)
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import concurrently
from ruma_tx.services.ports.federation import KeyRing
from ruma_tx.services.ports.room_dag import Outlier

#: PDUs per thread job: enough that a job's overhead is small (two thread
#: hops and a key lookup), few enough that only a few chunks of them are
#: ever held as objects (~2 KB each once parsed); 500 made the joining
#: server's peak memory in the remote-join benchmark 8 MB higher.
CHECK_CHUNK = 100

#: Chunks checked at once (the signature checks of each run on a core).
CHECK_JOBS = 2

T = TypeVar("T")

#: A PDU as received: its JSON object, or its JSON text still to parse.
Received = object

#: The keys of each server a PDU needs, for L{verify_prepared_pdu}.
Keys = dict[str, ServerKeys]


class PduChecker:
    """
    @param key_ring: other servers' signing keys.
    @param reactor: runs the checks of many PDUs in its thread pool.
    """

    def __init__(self, *, key_ring: KeyRing, reactor: IReactorThreads) -> None:
        self._key_ring = key_ring
        self._reactor = reactor

    async def checked(self, pdu: object, version: RoomVersion) -> ReceivedPdu:
        """Steps 1-3 of one PDU, on the reactor. @raise InvalidPdu: it is to be dropped."""
        prepared = prepare_received_pdu(pdu, version)
        (keys,) = await self._keys_for([prepared])
        return verify_prepared_pdu(prepared, version, keys)

    async def check_many(self, pdus: Sequence[Received], version: RoomVersion,
                         take: Callable[[int, ReceivedPdu | InvalidPdu], None]) -> None:
        """
        Steps 1-3 of many PDUs (objects or JSON text), in threads; C{take}
        is called on the reactor with each one's index and outcome, a chunk
        at a time and not in order, so that only a chunk of them is ever
        held as objects.
        """
        starts = iter(range(0, len(pdus), CHECK_CHUNK))

        async def work() -> None:
            for start in starts:  # shared by the jobs: each takes the next chunk
                chunk = pdus[start:start + CHECK_CHUNK]
                prepared = await self.in_thread(_prepare_all, chunk, version)
                keys = await self._keys_for([p for p in prepared if isinstance(p, PreparedPdu)])
                outcomes = await self.in_thread(_verify_all, prepared, keys, version)
                for offset, outcome in enumerate(outcomes):
                    take(start + offset, outcome)

        await concurrently(*(work() for _ in range(CHECK_JOBS)))

    async def distinct(self, pdus: Sequence[Received]) -> list[int]:
        """
        The indexes of C{pdus} but for repeats of the same JSON text (a
        C{send_join} answer's auth chain repeats much of its state), in a
        thread; parsed PDUs are all kept.
        """
        return await self.in_thread(_distinct, pdus)

    async def in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """C{fn(*args)}, pure work on objects no one changes meanwhile, in the reactor's thread pool."""
        return await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), fn, *args)

    async def _keys_for(self, prepared: Sequence[PreparedPdu]) -> list[Keys]:
        """
        The keys each PDU needs, asked of the key ring once per server and
        set of key ids, at the latest C{origin_server_ts} among the PDUs
        that name them: a key valid then is valid for the earlier ones too.
        Where not every key is found so (an expired key that signed older
        events), each of those PDUs asks at its own time, as one alone does.
        """
        groups: dict[tuple[str, tuple[str, ...]], list[tuple[int, int]]] = {}
        for index, pdu in enumerate(prepared):
            signatures, signed_at = pdu.signed.get("signatures"), pdu.signed.get("origin_server_ts")
            if not isinstance(signatures, dict) or not isinstance(signed_at, int):
                continue
            for server in pdu.servers:
                key_ids = signatures.get(server)
                if isinstance(key_ids, dict):
                    groups.setdefault((server, tuple(key_ids)), []).append((index, signed_at))
        keys: list[Keys] = [{} for _ in prepared]
        for (server, key_ids), members in groups.items():
            latest = max(signed_at for _, signed_at in members)
            found = await self._key_ring.verify_keys(server, list(key_ids), latest)
            complete = len(found) == len(set(key_ids))
            for index, signed_at in members:
                own = found if complete or signed_at == latest else \
                    await self._key_ring.verify_keys(server, list(key_ids), signed_at)
                keys[index][server] = ServerKeys(verify_keys=own, old_verify_keys={}, valid_until_ts=signed_at)
        return keys


def _prepare_all(pdus: Sequence[Received], version: RoomVersion) -> list[PreparedPdu | InvalidPdu]:
    prepared: list[PreparedPdu | InvalidPdu] = []
    for pdu in pdus:
        try:
            prepared.append(prepare_received_pdu(parse_pdu(pdu), version))
        except InvalidPdu as e:
            prepared.append(e)
    return prepared


def _verify_all(prepared: Sequence[PreparedPdu | InvalidPdu], keys: Sequence[Keys], version: RoomVersion
                ) -> list[ReceivedPdu | InvalidPdu]:
    outcomes: list[ReceivedPdu | InvalidPdu] = []
    found = iter(keys)
    for pdu in prepared:
        if isinstance(pdu, InvalidPdu):
            outcomes.append(pdu)
            continue
        try:
            outcomes.append(verify_prepared_pdu(pdu, version, next(found)))
        except InvalidPdu as e:
            outcomes.append(e)
    return outcomes


def _distinct(pdus: Sequence[Received]) -> list[int]:
    seen: set[bytes] = set()
    kept = []
    for index, pdu in enumerate(pdus):
        if isinstance(pdu, JSON_TEXT):
            digest = hashlib.sha256(pdu).digest()
            if digest in seen:
                continue
            seen.add(digest)
        kept.append(index)
    return kept


class Stored(NamedTuple):
    """A checked PDU kept as its JSON text (a few hundred bytes, not a few kilobytes of objects)."""

    pdu_json: str
    depth: int
    #: Its place in the answer: ties of depth are checked in that order.
    order: int

    def pdu(self) -> JsonDict:
        parsed: JsonDict = msgspec.json.decode(self.pdu_json)  # integers past 64 bits too (before v6)
        return parsed


class OutliersAsText(Sequence[Outlier]):
    """
    Outliers whose PDUs are parsed from their JSON text each time they are
    read, so that storing a joined room's thousands of state events holds
    only those of one statement as objects at a time.
    """

    def __init__(self, events: Sequence[tuple[str, Stored]]) -> None:
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> Outlier: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Outlier]: ...

    def __getitem__(self, index: int | slice) -> Outlier | Sequence[Outlier]:
        if isinstance(index, slice):
            return [_outlier(event_id, stored) for event_id, stored in self._events[index]]
        return _outlier(*self._events[index])

    def __iter__(self) -> Iterator[Outlier]:
        for event_id, stored in self._events:
            yield _outlier(event_id, stored)


def _outlier(event_id: str, stored: Stored) -> Outlier:
    return Outlier(event_id, stored.pdu(), stored.pdu_json)
