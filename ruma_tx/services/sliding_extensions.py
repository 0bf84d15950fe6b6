"""
Sliding-sync extensions (to-device, end-to-end encryption, account data,
receipts, typing), built by /sync's own sources over the rooms each
extension covers, then reshaped: the rules (what is new since a position,
what a device acknowledged, what others may see) are /sync's, not copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Sequence

from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.sliding_sync import ExtensionScope, Extensions
from ruma_tx.matrix.stream_token import InvalidToken, StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import concurrently
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.sync import SyncContext, SyncRequest, SyncSource


@dataclass(frozen=True)
class ExtensionSources:
    """The /sync sources each extension is made of."""

    account_data: Sequence[SyncSource]
    receipts: SyncSource
    typing: SyncSource
    to_device: SyncSource
    #: Device lists first, key counts last (see L{ruma_tx.services.keys.DeviceKeys.add_to_sync}).
    e2ee: Sequence[SyncSource]


@dataclass(frozen=True)
class ExtensionsAsked:
    user_id: str
    device_id: str
    previous: StreamToken | None
    now: StreamToken
    #: The rooms in each list's range, and the subscribed rooms.
    lists: Mapping[str, Sequence[str]]
    subscriptions: Sequence[str]
    joined: frozenset[str]
    #: Rooms this response sends in full: their room-level data is sent in full too.
    initial_rooms: frozenset[str]


def has_news(extensions: JsonDict) -> bool:
    """
    Whether extensions carry something new: a C{to_device} section with no
    message only moves C{next_batch} (as Synapse, it is always sent).
    """
    return any(name != "to_device" or section["events"] for name, section in extensions.items())


class SlidingExtensions:
    def __init__(self, *, sources: ExtensionSources, notifier: Notifier) -> None:
        self._sources = sources
        self._notifier = notifier

    async def build(self, asked: ExtensionsAsked, extensions: Extensions) -> JsonDict:
        """The C{extensions} of a response (each built at once): only those with something to say."""
        parts: dict[str, Awaitable[JsonDict | None]] = {}
        if extensions.to_device is not None:
            parts["to_device"] = self._to_device(asked, extensions.to_device.since, extensions.to_device.limit)
        if extensions.e2ee:
            parts["e2ee"] = self._e2ee(asked)
        if extensions.account_data is not None:
            parts["account_data"] = self._account_data(asked, extensions.account_data)
        for name, event_type in (("receipts", "m.receipt"), ("typing", "m.typing")):
            scope = getattr(extensions, name)
            if scope is not None:
                parts[name] = self._ephemeral(asked, scope, name, event_type)
        built = await concurrently(*parts.values())
        return {name: section for name, section in zip(parts, built) if section}

    async def _e2ee(self, asked: ExtensionsAsked) -> JsonDict:
        response = await self._run(asked, asked.previous, self._sources.e2ee, [])
        return {key: response[key] for key in (
            "device_lists", "device_one_time_keys_count", "device_unused_fallback_key_types") if key in response}

    async def _account_data(self, asked: ExtensionsAsked, scope: ExtensionScope) -> JsonDict:
        account_data = await self._room_level(asked, scope, self._sources.account_data,
                                              lambda room: room["account_data"]["events"])
        global_events = account_data.pop("global", [])
        shown: JsonDict = {}
        if global_events:
            shown["global"] = global_events
        if account_data:
            shown["rooms"] = account_data
        return shown

    async def _ephemeral(self, asked: ExtensionsAsked, scope: ExtensionScope, name: str,
                         event_type: str) -> JsonDict | None:
        """Receipts or typing: the room's one event of C{event_type}."""
        source = self._sources.receipts if name == "receipts" else self._sources.typing
        rooms = await self._room_level(asked, scope, [source], lambda room: [
            e for e in room["ephemeral"]["events"] if e["type"] == event_type][-1:])
        rooms.pop("global", None)
        return {"rooms": {room_id: events[0] for room_id, events in rooms.items()}} if rooms else None

    async def _to_device(self, asked: ExtensionsAsked, since: str | None, limit: int) -> JsonDict:
        """The device's next messages (maybe none) and the C{next_batch} that acknowledges them."""
        try:
            since_token = StreamToken.parse(since) if since else None
        except InvalidToken:
            raise invalid_param("Invalid to_device 'since' token") from None
        response = await self._run(asked, since_token, [self._sources.to_device], [], to_device_limit=limit)
        return {"next_batch": str(asked.now), "events": response.get("to_device", {}).get("events", [])}

    async def _room_level(self, asked: ExtensionsAsked, scope: ExtensionScope, sources: Sequence[SyncSource],
                          events_of: Callable[[JsonDict], list[JsonDict]]) -> dict[str, list[JsonDict]]:
        """
        An extension's room-level events, for the joined rooms of its scope
        (changes since the client's C{pos}; everything for rooms sent in
        full), and its global events under C{"global"}.
        """
        rooms = [r for r in scope.rooms_in(asked.lists, asked.subscriptions) if r in asked.joined]
        fresh = [r for r in rooms if r in asked.initial_rooms or asked.previous is None]
        known = [r for r in rooms if r not in fresh]
        found: dict[str, list[JsonDict]] = {}
        passes: list[tuple[StreamToken | None, list[str], bool]] = [(None, fresh, asked.previous is None)]
        if asked.previous is not None:
            passes.insert(0, (asked.previous, known, True))
        for since, room_ids, with_global in passes:
            if not room_ids and not with_global:
                continue
            response = await self._run(asked, since, sources, room_ids)
            if with_global and response.get("account_data", {}).get("events"):
                found["global"] = response["account_data"]["events"]
            for room_id, room in response.get("rooms", {}).get("join", {}).items():
                events = events_of(room)
                if events:
                    found[room_id] = events
        return found

    async def _run(self, asked: ExtensionsAsked, since: StreamToken | None, sources: Sequence[SyncSource],
                   joined: list[str], to_device_limit: int | None = None) -> JsonDict:
        request = SyncRequest(user_id=asked.user_id, device_id=asked.device_id, since=since, timeout_ms=0,
                              filter=Filter(), full_state=False, to_device_limit=to_device_limit)
        context = SyncContext(request, since, asked.now, joined, {}, self._notifier)
        for source in sources:
            await source.add_to_sync(context)
        return context.response
