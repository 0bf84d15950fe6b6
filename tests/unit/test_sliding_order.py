"""
Users' rooms in list order, kept between requests
(L{ruma_tx.services.sliding_order.RoomLists}) and brought up to date by the
rooms L{ruma_tx.services.sliding_lists.RoomRecency} says changed: a new
message moves its room to the top without the other rooms being read again.
"""
from __future__ import annotations

import pytest_twisted

from ruma_tx.matrix.sliding_sync import ListFilters, RoomFacts, UserRoomData
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.sliding_lists import OutsideJoin, RoomFactsCache, RoomRecency
from ruma_tx.services.sliding_order import RoomLists

NOBODY_OUTSIDE = OutsideJoin(frozenset(), frozenset())


class FakeStore:
    """Rooms' recency and facts as the database has them; counts reads."""

    def __init__(self, recency: dict[str, tuple[int, int]], facts: dict[str, RoomFacts] | None = None) -> None:
        self.recency = recency
        self.facts = facts or {}
        self.recency_reads: list[list[str]] = []

    async def get_room_recency(self, room_ids):
        self.recency_reads.append(list(room_ids))
        return {r: self.recency[r] for r in room_ids if r in self.recency}

    async def get_room_facts(self, room_ids):
        return {r: self.facts.get(r, RoomFacts(None, False)) for r in room_ids}

    async def get_rooms_ever_joined(self, user_id, room_ids):
        return set()


def event(room_id: str, event_type: str = "m.room.message") -> NewEvent:
    return NewEvent(event_id=f"${room_id}{event_type}", room_id=room_id, pdu={"type": event_type}, pdu_json="{}")


def setup(recency: dict[str, tuple[int, int]], facts=None):
    store = FakeStore(recency, facts)
    room_recency = RoomRecency(store)
    lists = RoomLists(recency=room_recency, facts=RoomFactsCache(store))
    return store, room_recency, lists


def setup_with_facts(recency: dict[str, tuple[int, int]], facts: dict[str, RoomFacts]):
    store = FakeStore(recency, facts)
    facts_cache = RoomFactsCache(store)
    return store, facts_cache, RoomLists(recency=RoomRecency(store), facts=facts_cache)


@pytest_twisted.ensureDeferred
async def test_a_new_message_moves_its_room_to_the_top_without_reading_the_others_again():
    store, recency, lists = setup({"!a:hs": (10, 10), "!b:hs": (20, 20), "!c:hs": (30, 30)})
    memberships = {r: ("join", 1) for r in ("!a:hs", "!b:hs", "!c:hs")}
    first = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 30)
    assert first.rooms() == ["!c:hs", "!b:hs", "!a:hs"]
    recency.event_stored(event("!a:hs"), 31)
    again = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 31)
    assert again.rooms() == ["!a:hs", "!c:hs", "!b:hs"]
    assert again.last_positions["!a:hs"] == 31 and again.bump_stamps["!a:hs"] == 31
    assert store.recency_reads == [["!a:hs", "!b:hs", "!c:hs"]]


@pytest_twisted.ensureDeferred
async def test_by_bump_stamp_a_state_event_does_not_move_the_room_but_is_noticed():
    """A rename is activity (the room must be sent) but not a bump (it keeps its place)."""
    _, recency, lists = setup({"!a:hs": (10, 10), "!b:hs": (20, 20)})
    memberships = {"!a:hs": ("join", 1), "!b:hs": ("join", 1)}
    await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, True, 20)
    recency.event_stored(event("!a:hs", "m.room.name"), 21)
    by_bump = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, True, 21)
    assert by_bump.rooms() == ["!b:hs", "!a:hs"]
    assert by_bump.last_positions["!a:hs"] == 21 and by_bump.bump_stamps["!a:hs"] == 10
    by_activity = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 21)
    assert by_activity.rooms() == ["!a:hs", "!b:hs"]


@pytest_twisted.ensureDeferred
async def test_new_memberships_rebuild_the_order():
    _, _, lists = setup({"!a:hs": (10, 10), "!b:hs": (20, 20)})
    before = await lists.ordered("@me:hs", {"!a:hs": ("join", 1)}, NOBODY_OUTSIDE, False, 20)
    assert before.rooms() == ["!a:hs"]
    after = await lists.ordered("@me:hs", {"!a:hs": ("join", 1), "!b:hs": ("invite", 25)}, NOBODY_OUTSIDE,
                                False, 25)
    assert after.rooms() == ["!b:hs", "!a:hs"]
    assert after.membership_of == {"!a:hs": "join", "!b:hs": "invite"}


@pytest_twisted.ensureDeferred
async def test_when_old_changes_are_forgotten_the_order_is_rebuilt():
    store = FakeStore({"!a:hs": (10, 10), "!b:hs": (20, 20)})
    recency = RoomRecency(store, changes_kept=2)
    lists = RoomLists(recency=recency, facts=RoomFactsCache(store))
    memberships = {"!a:hs": ("join", 1), "!b:hs": ("join", 1)}
    await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 20)
    for position, room_id in ((21, "!x:hs"), (22, "!y:hs"), (23, "!a:hs")):
        recency.event_stored(event(room_id), position)
    assert recency.changed_since(20) is None
    rebuilt = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 23)
    assert rebuilt.rooms() == ["!a:hs", "!b:hs"]


def test_changes_stored_out_of_order_are_all_found():
    """Concurrent writers store events out of position order: none is missed."""
    recency = RoomRecency(FakeStore({}))
    recency.event_stored(event("!late:hs"), 12)
    recency.event_stored(event("!early:hs"), 11)
    recency.event_stored(event("!old:hs"), 9)
    assert recency.changed_since(10) == {"!late:hs", "!early:hs"}


@pytest_twisted.ensureDeferred
async def test_a_room_left_that_the_connection_knew_is_placed_by_its_leave():
    _, _, lists = setup({"!a:hs": (10, 10), "!b:hs": (30, 30)})
    memberships = {"!a:hs": ("join", 1), "!b:hs": ("join", 1), "!gone:hs": ("leave", 20)}
    rooms = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 30)
    assert rooms.known_left({}) == []
    known = rooms.known_left({"!gone:hs": object()})
    order, membership_of = rooms.with_known(known)
    assert order == ["!b:hs", "!gone:hs", "!a:hs"]
    assert membership_of["!gone:hs"] == "leave" and "!gone:hs" not in rooms.membership_of


@pytest_twisted.ensureDeferred
async def test_filter_verdicts_are_redone_when_a_room_turns_encrypted():
    store, facts, lists = setup_with_facts({"!a:hs": (10, 10)}, {"!a:hs": RoomFacts(None, False)})
    memberships = {"!a:hs": ("join", 1)}
    rooms = await lists.ordered("@me:hs", memberships, NOBODY_OUTSIDE, False, 10)
    encrypted = ListFilters(is_encrypted=True)
    assert (await lists.verdicts(rooms, encrypted, UserRoomData(), []))["!a:hs"] is False
    store.facts["!a:hs"] = RoomFacts(None, True)
    facts.event_stored(NewEvent(event_id="$e", room_id="!a:hs", pdu={"type": "m.room.encryption", "state_key": ""},
                                pdu_json="{}"), 11)
    assert (await lists.verdicts(rooms, encrypted, UserRoomData(), []))["!a:hs"] is True


@pytest_twisted.ensureDeferred
async def test_dm_verdicts_follow_the_users_m_direct():
    _, _, lists = setup({"!a:hs": (10, 10), "!b:hs": (20, 20)})
    rooms = await lists.ordered("@me:hs", {"!a:hs": ("join", 1), "!b:hs": ("join", 1)}, NOBODY_OUTSIDE, False, 20)
    dms = ListFilters(is_dm=True)
    assert (await lists.verdicts(rooms, dms, UserRoomData(direct=frozenset({"!a:hs"})), [])) == {
        "!a:hs": True, "!b:hs": False}
    assert (await lists.verdicts(rooms, dms, UserRoomData(direct=frozenset({"!b:hs"})), [])) == {
        "!a:hs": False, "!b:hs": True}
