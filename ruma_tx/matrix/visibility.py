"""
Room history visibility as pure functions (spec: client-server API, module
"Room History Visibility", "Server behaviour").

Whether a user may see an event depends on the room's state *at that
event*: the C{m.room.history_visibility} in force and the user's own
membership. This server writes each room as a line of events ordered by
stream position, so that state is described by two short timelines of one
user in one room:

  - C{memberships}: C{(position, membership)} of each of the user's own
    C{m.room.member} events, in position order;
  - C{visibilities}: C{(position, history_visibility)} of each
    C{m.room.history_visibility} event, in position order.

The value at a position is that of the latest entry at or before it (the
state *after* the event at that position, as Synapse reads it); before the
first entry the user has no membership and the visibility is C{shared}.

The rules, for an event at position C{p}:

  1. C{world_readable} at C{p}: allow.
  2. The user's membership at C{p} is C{join}: allow.
  3. C{shared} at C{p} and the user joined at some position after C{p}: allow.
  4. C{invited} at C{p} and the user's membership at C{p} is C{invite}: allow.
  5. Otherwise deny.

A C{m.room.history_visibility} event is visible if the visibility before
*or* after it allows it; the user's own C{m.room.member} event if their
membership before *or* after it does. As Synapse does, a user also always
sees their own C{leave} that ends an invite (an invite rejection), so that
the room can disappear from their client; the spec's rules are a lower
bound here ("should be allowed if").

Since the answer only changes where one of the timelines has an entry,
L{visible_ranges} turns the timelines into the ranges of positions the
user may see, so that storage can page through exactly the visible
events.

Another server sees an event if one of its users could (spec: "an event
is visible to a server if any of its users could see it", as Synapse
decides it): L{server_view} merges its users' memberships into one
timeline, read with the same rules.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Sequence

from ruma_tx.matrix.stream_token import OUTSIDE_LINE

WORLD_READABLE = "world_readable"
SHARED = "shared"
INVITED = "invited"
JOINED = "joined"

#: The values the spec defines; any other value (or none) means C{shared}.
HISTORY_VISIBILITIES = (WORLD_READABLE, SHARED, INVITED, JOINED)

#: The visibility of a room with no (or no understood) history_visibility.
DEFAULT_VISIBILITY = SHARED

Timeline = Sequence[tuple[int, str | None]]


def effective_visibility(value: object) -> str:
    """
    @param value: The C{history_visibility} of an event's content (anything).
    @return: It, if the spec defines it; otherwise C{shared} (spec: "if the
        value is not understood, the visibility is assumed to be shared").
    """
    return value if value in HISTORY_VISIBILITIES else DEFAULT_VISIBILITY


def _rules_allow(membership: str | None, visibility: str, joined_later: bool) -> bool:
    """The spec's five rules for one (membership, visibility) pair."""
    if visibility == WORLD_READABLE:
        return True
    if membership == "join":
        return True
    if visibility == SHARED and joined_later:
        return True
    if visibility == INVITED and membership == "invite":
        return True
    return False


@dataclass(frozen=True)
class HistoryView:
    """
    What one user may see of one room's history.

    @ivar memberships: C{(position, membership)} of the user's own member
        events, in increasing position order.
    @ivar visibilities: C{(position, history_visibility)} of the room's
        history visibility events, in increasing position order (values
        as found in content: L{effective_visibility} is applied here).
    """

    memberships: tuple[tuple[int, str | None], ...] = ()
    visibilities: tuple[tuple[int, str | None], ...] = ()
    # Derived in __post_init__; not part of the value (init, repr, eq, hash).
    _member_positions: list[int] = field(init=False, repr=False, compare=False)
    _visibility_positions: list[int] = field(init=False, repr=False, compare=False)
    _member_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _last_join: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "memberships", tuple(self.memberships))
        object.__setattr__(self, "visibilities", tuple(self.visibilities))
        object.__setattr__(self, "_member_positions", [p for p, _ in self.memberships])
        object.__setattr__(self, "_visibility_positions", [p for p, _ in self.visibilities])
        object.__setattr__(self, "_member_set", frozenset(self._member_positions))
        joins = [p for p, m in self.memberships if m == "join"]
        object.__setattr__(self, "_last_join", joins[-1] if joins else None)

    # -- the state at a position

    def membership_at(self, position: int, *, inclusive: bool = True) -> str | None:
        """
        @param inclusive: whether an entry at C{position} itself counts
            (the state after the event there) or not (the state before it).
        @return: The user's membership, or L{None} if they had none yet.
        """
        find = bisect_right if inclusive else bisect_left
        index = find(self._member_positions, position)
        return self.memberships[index - 1][1] if index else None

    def visibility_at(self, position: int, *, inclusive: bool = True) -> str:
        """
        @param inclusive: as for L{membership_at}.
        @return: The effective history visibility.
        """
        find = bisect_right if inclusive else bisect_left
        index = find(self._visibility_positions, position)
        return effective_visibility(self.visibilities[index - 1][1]) if index else DEFAULT_VISIBILITY

    @property
    def current_membership(self) -> str | None:
        """The user's membership after the latest of their member events."""
        return self.memberships[-1][1] if self.memberships else None

    @property
    def current_membership_position(self) -> int | None:
        """The position of the user's latest member event, if any."""
        return self.memberships[-1][0] if self.memberships else None

    @property
    def current_visibility(self) -> str:
        """The room's history visibility now."""
        return effective_visibility(self.visibilities[-1][1]) if self.visibilities else DEFAULT_VISIBILITY

    # -- the rules

    def can_see(self, position: int) -> bool:
        """
        Whether the user may see the room's event at C{position} (or, for
        a position between events, the room as it was there).
        """
        joined_later = self._last_join is not None and self._last_join > position
        memberships = {self.membership_at(position), self.membership_at(position, inclusive=False)}
        visibilities = {self.visibility_at(position), self.visibility_at(position, inclusive=False)}
        if any(_rules_allow(m, v, joined_later) for m in memberships for v in visibilities):
            return True
        # As Synapse: one's own leave rejecting an invite (leaving a join
        # is covered by the rules: the membership before it was join).
        return (position in self._member_set
                and self.membership_at(position) == "leave"
                and self.membership_at(position, inclusive=False) == "invite")

    def visible_ranges(self) -> list[tuple[int, int | None]]:
        """
        The positions the user may see, as sorted, disjoint, non-adjacent
        inclusive ranges C{(low, high)}; C{high} is L{None} for "and every
        later position". Positions start just above L{OUTSIDE_LINE} (events
        at or below it are never shown, though they count as state).
        """
        changes = sorted(set(self._member_positions) | set(self._visibility_positions))
        pieces: list[tuple[int, int | None, bool]] = []
        previous = OUTSIDE_LINE
        for change in changes:
            if change <= previous:
                continue
            if change - 1 >= previous + 1:
                # Between two changes the answer is the one just after the
                # earlier change (or before any change, for the first gap).
                pieces.append((previous + 1, change - 1, self._gap_visible(previous)))
            pieces.append((change, change, self.can_see(change)))
            previous = change
        pieces.append((previous + 1, None, self._gap_visible(previous)))
        ranges: list[tuple[int, int | None]] = []
        for low, high, visible in pieces:
            if not visible:
                continue
            if ranges and ranges[-1][1] is not None and ranges[-1][1] + 1 == low:
                ranges[-1] = (ranges[-1][0], high)
            else:
                ranges.append((low, high))
        return ranges

    def _gap_visible(self, after_change: int) -> bool:
        """Visibility of a position just after C{after_change}, not itself a change."""
        joined_later = self._last_join is not None and self._last_join > after_change
        return _rules_allow(self.membership_at(after_change), self.visibility_at(after_change), joined_later)


def server_view(member_events: Sequence[tuple[int, str, str | None]], visibilities: Timeline) -> HistoryView:
    """
    What a server may see of a room, as one user's view.

    @param member_events: C{(position, user_id, membership)} of the member
        events of the server's users, in position order.
    @param visibilities: as for L{HistoryView}.
    @return: a view whose membership at each position is the best of the
        server's users' there: C{join} if one is joined, else C{invite} if
        one is invited, else that of the user whose event it is.
    """
    current: dict[str, str | None] = {}
    joined = invited = 0
    merged: list[tuple[int, str | None]] = []
    for position, user_id, membership in member_events:
        before = current.get(user_id)
        joined += (membership == "join") - (before == "join")
        invited += (membership == "invite") - (before == "invite")
        current[user_id] = membership
        merged.append((position, "join" if joined else "invite" if invited else membership))
    return HistoryView(tuple(merged), tuple(visibilities))


def is_event_visible(event_position: int, memberships: Timeline, visibilities: Timeline) -> bool:
    """
    Whether a user may see the event at C{event_position}.

    @param memberships: C{(position, membership)} of the user's own
        C{m.room.member} events in the room, in position order; an entry
        at C{event_position} means the event is one of them.
    @param visibilities: C{(position, history_visibility)} of the room's
        C{m.room.history_visibility} events, in position order; an entry at
        C{event_position} means the event is one of them.
    """
    return HistoryView(tuple(memberships), tuple(visibilities)).can_see(event_position)


def in_ranges(position: int, ranges: Sequence[tuple[int, int | None]]) -> bool:
    """Whether C{position} lies in one of L{HistoryView.visible_ranges}."""
    return any(low <= position and (high is None or position <= high) for low, high in ranges)
