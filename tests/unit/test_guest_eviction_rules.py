"""
Tests for L{ruma_tx.matrix.guest_access} (which events close a room to
guests) and L{ruma_tx.services.guest_access.GuestEviction} on a L{Clock}
with fakes: it schedules the leaves without waiting, and a failing leave
is logged, not raised.
"""
from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from ruma_tx.matrix.guest_access import admits_guests, closes_room_to_guests
from ruma_tx.services.guest_access import GuestEviction
from ruma_tx.services.ports.events import NewEvent

ROOM = "!room:hs"


def guest_access(value: object, state_key: str = "", event_type: str = "m.room.guest_access") -> NewEvent:
    pdu = {"type": event_type, "state_key": state_key, "content": {"guest_access": value},
           "room_id": ROOM, "sender": "@admin:hs"}
    return NewEvent("$e", ROOM, pdu, "{}")


@pytest.mark.parametrize("content, admits", [
    ({"guest_access": "can_join"}, True),
    ({"guest_access": "forbidden"}, False),
    ({"guest_access": "org.example.maybe"}, False),
    ({}, False),
    (None, False),
    ("can_join", False),
])
def test_only_can_join_admits_guests(content, admits):
    """A room admits guests only when its guest_access content says can_join."""
    assert admits_guests(content) is admits


def test_only_the_rooms_guest_access_state_can_close_it():
    """Only m.room.guest_access with the empty state key and not can_join closes the room."""
    assert closes_room_to_guests(guest_access("forbidden").pdu)
    assert closes_room_to_guests(guest_access(None).pdu)
    assert not closes_room_to_guests(guest_access("can_join").pdu)
    assert not closes_room_to_guests(guest_access("forbidden", state_key="x").pdu)
    assert not closes_room_to_guests(guest_access("forbidden", event_type="m.room.name").pdu)


class FakeGuests:
    def __init__(self, guests: list[str]):
        self.guests = guests
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def get_guest_members(self, room_id, memberships):
        self.asked.append((room_id, tuple(memberships)))
        return list(self.guests)


def eviction(guests: list[str], failing: frozenset[str] = frozenset()):
    clock, store, left = Clock(), FakeGuests(guests), []

    async def leave(user_id: str, room_id: str) -> None:
        if user_id in failing:
            raise RuntimeError("the database went away")
        left.append((user_id, room_id))

    return GuestEviction(guests=store, leave=leave, clock=clock), clock, store, left


def test_closing_the_room_schedules_every_guest_to_leave():
    """The hook returns at once; once the clock turns, each joined or invited guest leaves."""
    hook, clock, store, left = eviction(["@1:hs", "@2:hs"])
    hook.event_stored(guest_access("forbidden"), 7)
    assert store.asked == [] and left == []  # nothing done inside the hook
    clock.advance(0)
    assert store.asked == [(ROOM, ("join", "invite"))]
    assert left == [("@1:hs", ROOM), ("@2:hs", ROOM)]


def test_other_events_schedule_nothing():
    """Opening the room, or any other event, leaves guests alone."""
    hook, clock, store, left = eviction(["@1:hs"])
    hook.event_stored(guest_access("can_join"), 7)
    hook.event_stored(guest_access("forbidden", event_type="m.room.topic"), 8)
    clock.advance(0)
    assert store.asked == [] and left == []


def test_a_failed_leave_is_logged_and_the_others_still_leave():
    """One guest whose leave fails is logged; the hook raised nothing and the next guest leaves."""
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        hook, clock, _, left = eviction(["@1:hs", "@2:hs"], failing=frozenset({"@1:hs"}))
        hook.event_stored(guest_access("forbidden"), 7)
        clock.advance(0)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert left == [("@2:hs", ROOM)]
    failures = [e for e in logged if "log_failure" in e]
    assert len(failures) == 1 and failures[0]["user_id"] == "@1:hs"


def slow_eviction(guests: list[str]):
    """A GuestEviction whose leaves each wait for their own Deferred, fired by the test."""
    clock, store, pending = Clock(), FakeGuests(guests), {}

    async def leave(user_id: str, room_id: str) -> None:
        pending[user_id] = Deferred()
        await pending[user_id]

    return GuestEviction(guests=store, leave=leave, clock=clock), clock, pending


def test_stop_waits_for_the_evictions_under_way():
    """stop() returns only once every guest's leave under way has finished."""
    hook, clock, pending = slow_eviction(["@1:hs"])
    hook.event_stored(guest_access("forbidden"), 7)
    clock.advance(0)
    stopping = ensureDeferred(hook.stop(30))
    assert not stopping.called  # the leave is still running
    pending["@1:hs"].callback(None)
    assert stopping.called and stopping.result is None


def test_stop_starts_the_evictions_still_scheduled():
    """An eviction scheduled but not started when stop() is called runs, and stop() waits for it."""
    hook, clock, pending = slow_eviction(["@1:hs"])
    hook.event_stored(guest_access("forbidden"), 7)
    stopping = ensureDeferred(hook.stop(30))
    assert list(pending) == ["@1:hs"] and not stopping.called
    pending["@1:hs"].callback(None)
    assert stopping.called
    clock.advance(0)  # the cancelled schedule does not run it a second time
    assert list(pending) == ["@1:hs"]


def test_stop_gives_up_waiting_after_its_timeout_without_cancelling_the_leave():
    """A leave still running after the timeout no longer holds stop() up, and is not cancelled."""
    hook, clock, pending = slow_eviction(["@1:hs"])
    hook.event_stored(guest_access("forbidden"), 7)
    clock.advance(0)
    stopping = ensureDeferred(hook.stop(5))
    clock.advance(4)
    assert not stopping.called
    clock.advance(1)
    assert stopping.called and stopping.result is None
    assert not pending["@1:hs"].called  # still running: nothing cancelled it


def test_stop_with_nothing_under_way_returns_at_once():
    """With no eviction scheduled or running, stop() is done at once."""
    hook, _, _ = slow_eviction([])
    assert ensureDeferred(hook.stop(5)).called
