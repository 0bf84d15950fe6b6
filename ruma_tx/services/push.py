"""
Push rules and unread notification counts (spec: "Push Notifications").

  - L{PushRules}: the C{/pushrules} use cases, a cache of every user's
    merged ruleset, and the /sync source sending it as the C{m.push_rules}
    account data event.
  - L{PushEvaluator}: run by the event creator before each event is
    stored: the room's local members' rules, and what notifies or
    highlights them (stored with the event, in its transaction).
  - L{UnreadCounts}: the /sync source of C{unread_notifications} (read
    receipts move the read position they count from, as they are stored).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Mapping

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import MatrixError, not_found
from ruma_tx.matrix.events import client_event
from ruma_tx.matrix.power_levels import CREATE, POWER_LEVELS, user_power_level
from ruma_tx.matrix.push_evaluation import (
    PushContext,
    actions_highlight,
    actions_notify,
    evaluate,
)
from ruma_tx.matrix.push_rules import (
    check_kind,
    check_rule_id,
    find_rule,
    merge_rules,
    place_rule,
    server_default_rules,
    validate_actions,
    validate_rule,
)
from ruma_tx.matrix.pushers import detailed_actions_json
from ruma_tx.matrix.relations import MAIN_THREAD
from ruma_tx.matrix.room_versions import referenced_event_ids
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import Batcher, KeyedLocks
from ruma_tx.services.ports.ephemeral import PushStorage, UnreadCountsAsked
from ruma_tx.services.ports.events import NewEvent, PushOutcome
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

log = logger(__name__)

PUSH_RULES_EVENT = "m.push_rules"


def _rule_not_found() -> MatrixError:
    return not_found("The push rule was not found.")


@dataclass(frozen=True)
class _CachedRules:
    """
    A user's merged ruleset and the stream position of their last change.

    @ivar customised: the merged ruleset of a user who changed some rule,
        C{None} for one who has the server's defaults (most users: not
        kept in memory, and evaluated once for all of them).
    """

    user_id: str
    customised: JsonDict | None
    changed_at: int

    @property
    def merged(self) -> JsonDict:
        if self.customised is not None:
            return self.customised
        return server_default_rules(self.user_id)


class PushRules:
    """
    Reading and changing a user's push rules. Each change gets a stream
    position and wakes the user's /sync, which then sends the new ruleset as
    the C{m.push_rules} account data event (this object is that sync
    source).

    @param store: the L{ruma_tx.storage.push.PushStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param cache_size: how many users' merged rulesets to keep.
    """

    def __init__(self, *, store: PushStorage, streams: StreamWriter, cache_size: int = 10_000) -> None:
        self._store = store
        self._streams = streams
        self._cache: LRUCache[str, _CachedRules] = LRUCache(cache_size)
        # Users whose rules are being read, and those changed meanwhile
        # (what such a read returns may predate the change: not cached).
        self._loading: dict[str, int] = {}
        self._stale: set[str] = set()
        # One change at a time per user (a PUT renumbers the kind's rules).
        self._locks = KeyedLocks()

    # -- reading ----------------------------------------------------------

    async def customised_rules(self, user_ids: list[str]) -> dict[str, JsonDict | None]:
        """
        The merged rulesets of many users (one query for those not cached).

        @return: C{user_id -> {"global": {kind: [rule, ...]}}} for users who
            changed a rule, C{None} for those with the server's defaults;
            callers must not modify them.
        """
        return {user_id: cached.customised
                for user_id, cached in (await self._cached(user_ids)).items()}

    async def get_all(self, user_id: str) -> dict:
        """C{GET /pushrules/}: every ruleset of the user (only C{global})."""
        return (await self._one(user_id)).merged

    async def get_global(self, user_id: str) -> dict:
        """C{GET /pushrules/global/}: the global ruleset."""
        return (await self._one(user_id)).merged["global"]

    async def get_kind(self, user_id: str, kind: str) -> list:
        """
        C{GET /pushrules/global/{kind}/}: the rules of one kind, in order
        (not in the spec; served as Synapse does).

        @raise MatrixError: 400 C{M_INVALID_PARAM} for an unknown kind.
        """
        check_kind(kind)
        return (await self.get_global(user_id))[kind]

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> dict:
        """
        @raise MatrixError: 400 C{M_INVALID_PARAM} for an unknown kind or a
            rule id that cannot be one of the kind's (L{check_rule_id}), 404
            C{M_NOT_FOUND} for an unknown rule.
        """
        check_rule_id(kind, rule_id, server_default=True)
        rule = find_rule(await self.get_all(user_id), kind, rule_id)
        if rule is None:
            raise _rule_not_found()
        return rule

    async def get_enabled(self, user_id: str, kind: str, rule_id: str) -> bool:
        return bool((await self.get_rule(user_id, kind, rule_id)).get("enabled", True))

    async def get_actions(self, user_id: str, kind: str, rule_id: str) -> list:
        return (await self.get_rule(user_id, kind, rule_id)).get("actions", [])

    # -- changing ---------------------------------------------------------

    async def put_rule(self, user_id: str, kind: str, rule_id: str, body: dict,
                       before: str | None = None, after: str | None = None) -> None:
        """
        Create or replace a user-defined rule (a replaced rule keeps its
        place and its C{enabled} flag unless C{before}/C{after} move it).

        @raise MatrixError: 400 as L{validate_rule} and L{place_rule} say.
        """
        rule = validate_rule(kind, rule_id, body)

        def order(current: list[str]) -> list[str]:
            return place_rule(current, rule_id, before=before, after=after)

        async def change(position: int) -> bool:
            await self._store.put_user_rule(user_id, kind, rule_id, rule, order, position)
            return True

        await self._change(user_id, change)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        """
        Delete a user-defined rule.

        @raise MatrixError: 404 C{M_NOT_FOUND} for an unknown rule, and for a
            server-default one, which cannot be deleted (the spec is silent;
            Synapse answers 404 too); 400 as L{check_rule_id} says.
        """
        check_rule_id(kind, rule_id, server_default=True)
        if rule_id.startswith("."):
            raise not_found("Server-default push rules cannot be deleted")

        async def change(position: int) -> bool:
            return await self._store.delete_user_rule(user_id, kind, rule_id, position)

        await self._change(user_id, change)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        """
        Enable or disable a rule, server-default or not.

        @raise MatrixError: 404 C{M_NOT_FOUND} for an unknown rule.
        """
        server_default = await self._check_exists(user_id, kind, rule_id)

        async def change(position: int) -> bool:
            return await self._store.set_rule_enabled(
                user_id, kind, rule_id, enabled, position, server_default=server_default)

        await self._change(user_id, change)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: object) -> None:
        """
        Replace a rule's actions, server-default or not.

        @raise MatrixError: 400 C{M_BAD_JSON} for invalid actions, 404
            C{M_NOT_FOUND} for an unknown rule.
        """
        server_default = await self._check_exists(user_id, kind, rule_id)
        checked = validate_actions(actions)

        async def change(position: int) -> bool:
            return await self._store.set_rule_actions(
                user_id, kind, rule_id, checked, position, server_default=server_default)

        await self._change(user_id, change)

    async def _check_exists(self, user_id: str, kind: str, rule_id: str) -> bool:
        """
        @return: whether the rule is a server-default one.
        @raise MatrixError: 404 if the user has no such rule, 400 as
            L{check_rule_id} says.
        """
        check_rule_id(kind, rule_id, server_default=True)
        if rule_id.startswith("."):
            if find_rule(server_default_rules(user_id), kind, rule_id) is None:
                raise _rule_not_found()
            return True
        if find_rule(await self.get_all(user_id), kind, rule_id) is None:
            raise _rule_not_found()
        return False

    async def _change(self, user_id: str, change: Callable[[int], Awaitable[bool]]) -> None:
        """
        Run C{await change(position) -> bool} at a fresh stream position,
        one change of the user at a time; wake the user if it changed
        something, else answer 404.
        """
        changed = False

        async def persist(position: int) -> list[str]:
            nonlocal changed
            try:
                changed = await change(position)
            finally:
                self._invalidate(user_id)
            return [user_id] if changed else []

        await self._locks.run(user_id, self._streams.write, persist, "push_rules")
        if not changed:
            raise _rule_not_found()

    # -- /sync ------------------------------------------------------------

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add C{m.push_rules} to the global account data: on an initial sync,
        and when the user's rules changed in C{(since, now]}.
        """
        if not ctx.request.filter.account_data.matches({"type": PUSH_RULES_EVENT}):
            return
        cached = await self._one(ctx.request.user_id)
        if ctx.since is not None and not ctx.since.stream < cached.changed_at <= ctx.now.stream:
            return
        events = ctx.response.setdefault("account_data", {}).setdefault("events", [])
        events.append({"type": PUSH_RULES_EVENT, "content": copy.deepcopy(cached.merged)})

    # -- the cache --------------------------------------------------------

    async def _one(self, user_id: str) -> _CachedRules:
        return (await self._cached([user_id]))[user_id]

    async def _cached(self, user_ids: list[str]) -> dict[str, _CachedRules]:
        found: dict[str, _CachedRules] = {}
        missing = []
        for user_id in user_ids:
            cached = self._cache.get(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                found[user_id] = cached
        if missing:
            found.update(await self._load(missing))
        return found

    async def _load(self, user_ids: list[str]) -> dict[str, _CachedRules]:
        for user_id in user_ids:
            self._loading[user_id] = self._loading.get(user_id, 0) + 1
        try:
            rows = await self._store.get_user_rules(user_ids)
        finally:
            done = []
            for user_id in user_ids:
                self._loading[user_id] -= 1
                if not self._loading[user_id]:
                    del self._loading[user_id]
                    done.append(user_id)
        loaded = {}
        for user_id in user_ids:
            user_rows, changed_at = rows.get(user_id, ([], 0))
            customised = merge_rules(server_default_rules(user_id), user_rows) if user_rows else None
            loaded[user_id] = _CachedRules(user_id, customised, changed_at)
            if user_id not in self._stale:
                self._cache[user_id] = loaded[user_id]
        for user_id in done:
            self._stale.discard(user_id)
        return loaded

    def _invalidate(self, user_id: str) -> None:
        self._cache.pop(user_id, None)
        if user_id in self._loading:
            self._stale.add(user_id)


@dataclass(frozen=True)
class RoomPushState:
    """
    What push evaluation needs of a room: its version, C{m.room.create} and
    C{m.room.power_levels}, and its joined members with their display
    names. Never changed in place: L{after} gives the state after an event,
    sharing what the event leaves as it is.

    @ivar last_event_id: the event this state is current after.
    """

    room_version: str
    last_event_id: str
    state: Mapping[tuple[str, str], JsonDict] = field(default_factory=dict)
    members: Mapping[str, str | None] = field(default_factory=dict)

    def after(self, event_id: str, pdu: JsonDict) -> RoomPushState:
        """The state once the event that follows C{last_event_id} is applied."""
        key = (pdu["type"], pdu.get("state_key"))
        if key[0] == "m.room.member" and isinstance(key[1], str):
            members = dict(self.members)
            content = pdu.get("content", {})
            if content.get("membership") == "join":
                members[key[1]] = _display_name(content)
            else:
                members.pop(key[1], None)
            return replace(self, last_event_id=event_id, members=members)
        if key in (CREATE, POWER_LEVELS):
            return replace(self, last_event_id=event_id, state={**self.state, key: pdu})
        return replace(self, last_event_id=event_id)

    def sender_power_level(self, sender: str) -> int | float:
        return user_power_level(sender, self.state, self.room_version)

    def notification_levels(self) -> JsonDict:
        content = self.state.get(POWER_LEVELS, {}).get("content", {})
        notifications = content.get("notifications") if isinstance(content, dict) else None
        return notifications if isinstance(notifications, dict) else {}


def _display_name(content: JsonDict) -> str | None:
    name = content.get("displayname")
    return name if isinstance(name, str) else None


class PushEvaluator:
    """
    Runs push rules on each new event, before it is stored, for the room's
    local joined members (and the invitee of an invite) other than the
    sender. What they say is stored with the event, in its transaction:
    evaluating a big room never holds a stream position others wait on,
    and an event is never stored without its push actions.

    Rooms' members and power levels are cached (bounded LRU): the event
    creator reads a room's state with L{state_before}, gets the state after
    each event from L{evaluate}, and gives it back with L{stored} once the
    event is stored (a room's events are created one at a time, under its
    lock). A state that does not follow is reloaded; a redaction, which may
    prune current state, drops the room from the cache.

    @param rules: the L{PushRules}.
    @param store: the room state push evaluation reads.
    @param server_name: only this server's users are evaluated.
    """

    def __init__(self, *, rules: PushRules, store: PushStorage, server_name: str,
                 room_cache_size: int = 1_000) -> None:
        self._rules = rules
        self._store = store
        self._suffix = ":" + server_name
        self._rooms: LRUCache[str, RoomPushState] = LRUCache(room_cache_size)

    async def state_before(self, event: NewEvent) -> RoomPushState:
        """The room's push state before C{event}, which follows the room's last event."""
        cached = self._rooms.get(event.room_id)
        prev_events = referenced_event_ids(event.pdu, "prev_events") or [""]
        if cached is not None and prev_events == [cached.last_event_id]:
            return cached
        room_version, state = await self._store.get_room_push_state(event.room_id)
        loaded = RoomPushState(room_version=room_version or "", last_event_id=prev_events[0])
        members = {}
        other = {}
        for (event_type, state_key), pdu in state.items():
            if event_type == "m.room.member":
                members[state_key] = _display_name(pdu.get("content", {}))
            else:
                other[(event_type, state_key)] = pdu
        return replace(loaded, state=other, members=members)

    async def evaluate(self, event: NewEvent,
                       before: RoomPushState) -> tuple[PushOutcome, RoomPushState]:
        """
        What the event notifies, and the room's push state after it.

        @param before: the state before the event (L{state_before}, or the
            state after the previous event of a batch).
        """
        pdu = event.pdu
        sender = pdu["sender"]
        room = before.after(event.event_id, pdu)
        users = [u for u in room.members if u != sender and u.endswith(self._suffix)]
        if pdu["type"] == "m.room.member" and pdu.get("content", {}).get("membership") == "invite":
            # Synapse also runs the invitee's rules (.m.rule.invite_for_me).
            invitee = pdu.get("state_key")
            if isinstance(invitee, str) and invitee != sender \
                    and invitee.endswith(self._suffix) and invitee not in room.members:
                users.append(invitee)
        actions = []
        detailed: dict[str, str] = {}
        if users:
            rulesets = await self._rules.customised_rules(users)
            flat = client_event(pdu, event.event_id, event.room_id)
            sender_level = room.sender_power_level(sender)
            notification_levels = room.notification_levels()

            def context(user_id: str) -> PushContext:
                return PushContext(
                    user_id=user_id,
                    user_display_name=room.members.get(user_id),
                    room_member_count=len(room.members),
                    sender_power_level=sender_level,
                    notification_power_levels=notification_levels,
                )

            # The default rules read the user only to match invites to them
            # and mentions of them: for everyone else they say the same, so
            # they are evaluated once (a join into a room of 10,000 would
            # otherwise evaluate them 10,000 times).
            named = _users_named_by(flat)
            anonymous: tuple[bool, bool, str | None] | None = None
            for user_id in users:
                ruleset = rulesets[user_id]
                if ruleset is None and user_id not in named:
                    if anonymous is None:
                        anonymous = _outcome(evaluate(_ANONYMOUS_RULES, flat, context(_ANONYMOUS)))
                    notify, highlight, detail = anonymous
                else:
                    notify, highlight, detail = _outcome(
                        evaluate(ruleset or server_default_rules(user_id), flat, context(user_id)))
                if notify or highlight:
                    actions.append((user_id, notify, highlight))
                    if detail is not None:
                        detailed[user_id] = detail
        read_by = sender if sender.endswith(self._suffix) else None
        return PushOutcome(tuple(actions), read_by, detailed), room

    def stored(self, event: NewEvent, after: RoomPushState) -> None:
        """C{event} is stored: C{after} is the room's current push state."""
        if event.pdu["type"] == "m.room.redaction":
            self._rooms.pop(event.room_id, None)
        else:
            self._rooms[event.room_id] = after

    def forget(self, room_id: str) -> None:
        """What was stored for the room is uncertain: read it again next time."""
        self._rooms.pop(room_id, None)


#: A user the server-default rules cannot name: nobody is invited or
#: mentioned as it. Its rules stand for those of every user with the
#: defaults whom an event does not name.
_ANONYMOUS = "@\x00:anonymous.invalid"
_ANONYMOUS_RULES = server_default_rules(_ANONYMOUS)


def _outcome(actions: list[Any]) -> tuple[bool, bool, str | None]:
    """What is stored of actions: notify, highlight, and the actions themselves when they say more."""
    notify, highlight = actions_notify(actions), actions_highlight(actions)
    return notify, highlight, detailed_actions_json(actions, notify, highlight)


def _users_named_by(event: JsonDict) -> set[str]:
    """
    The users an event names the way the default rules look for: the
    target of a member event (C{.m.rule.invite_for_me}) and the users it
    mentions (C{.m.rule.is_user_mention}).
    """
    named = set()
    if event.get("type") == "m.room.member" and isinstance(event.get("state_key"), str):
        named.add(event["state_key"])
    content = event.get("content")
    mentions = content.get("m.mentions") if isinstance(content, dict) else None
    user_ids = mentions.get("user_ids") if isinstance(mentions, dict) else None
    if isinstance(user_ids, list):
        named.update(u for u in user_ids if isinstance(u, str))
    return named


class UnreadCounts:
    """
    The /sync source of each joined room's C{unread_notifications}: the
    stored push actions after the user's read position, counted with one
    query per sync. Put it after every source that adds rooms to the
    response (receipts), so the rooms they add get counts too.

    @param store: the L{ruma_tx.storage.push.PushStore}.
    """

    def __init__(self, *, store: PushStorage, clock: Clock) -> None:
        # The syncs a message wakes ask at once: one query for all of them.
        self._counts: Batcher[UnreadCountsAsked, dict[str, dict[str, tuple[int, int]]]] = Batcher(
            clock, store.get_thread_unread_counts)

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        With the timeline filter's C{unread_thread_notifications} (as
        Synapse reads it), C{unread_notifications} counts the main timeline
        only and C{unread_thread_notifications} each thread with unread
        notifications (spec: threads without any may be left out).
        """
        join = ctx.response.get("rooms", {}).get("join", {})
        if not join:
            return
        room_ids = tuple(join)
        if not ctx.request.filter.room.timeline.unread_thread_notifications:
            totals = await self.room_totals(ctx.request.user_id, list(room_ids), ctx.now.stream)
            for room_id in room_ids:
                join[room_id]["unread_notifications"] = _counts(*totals[room_id])
            return
        by_thread = await self._counts.load((ctx.request.user_id, room_ids, ctx.now.stream))
        for room_id in room_ids:
            threads = dict(by_thread.get(room_id, {}))
            join[room_id]["unread_notifications"] = _counts(*threads.pop(MAIN_THREAD, (0, 0)))
            if threads:
                join[room_id]["unread_thread_notifications"] = {
                    root: _counts(*counts) for root, counts in threads.items()}


    async def room_totals(self, user_id: str, room_ids: list[str], upto: int) -> dict[str, tuple[int, int]]:
        """Per room, its notification and highlight counts, its threads' included."""
        by_thread = await self._counts.load((user_id, tuple(room_ids), upto))
        totals = {}
        for room_id in room_ids:
            counts = by_thread.get(room_id, {}).values()
            totals[room_id] = (sum(n for n, _ in counts), sum(h for _, h in counts))
        return totals


def _counts(notify: int, highlight: int) -> JsonDict:
    return {"notification_count": notify, "highlight_count": highlight}
