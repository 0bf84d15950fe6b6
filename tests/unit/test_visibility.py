"""History visibility rules (ruma_tx.matrix.visibility), on hand-written timelines."""
from __future__ import annotations

import pytest

from ruma_tx.matrix.stream_token import OUTSIDE_LINE
from ruma_tx.matrix.visibility import (
    HistoryView,
    effective_visibility,
    in_ranges,
    is_event_visible,
    server_view,
)


def visible_positions(view: HistoryView, upto: int = 30) -> list[int]:
    """
    The visible positions from 2 to C{upto}: the tests set the visibility
    at 1, and what precedes it (and the change itself) follows the shared
    default, see L{test_default_before_any_visibility_event_is_shared}.
    """
    return [p for p in range(2, upto + 1) if view.can_see(p)]


def test_unknown_or_missing_visibility_is_shared():
    """A missing or not understood history_visibility counts as shared."""
    assert effective_visibility(None) == "shared"
    assert effective_visibility("nonsense") == "shared"
    assert effective_visibility(["joined"]) == "shared"
    assert effective_visibility("joined") == "joined"
    assert HistoryView().current_visibility == "shared"


def test_world_readable_allows_anyone():
    """Rule 1: events sent while world_readable are visible to users who never joined."""
    visibilities = [(2, "world_readable"), (6, "joined")]
    assert is_event_visible(4, [], visibilities)
    assert not is_event_visible(8, [], visibilities)


def test_joined_member_sees_events_while_joined():
    """Rule 2: with joined visibility, a member sees events from their join to their leave."""
    view = HistoryView(memberships=[(5, "join"), (10, "leave")], visibilities=[(1, "joined")])
    assert visible_positions(view) == [5, 6, 7, 8, 9, 10]


def test_shared_shows_earlier_history_to_later_joiners():
    """Rule 3: with shared visibility, joining later reveals the events sent before."""
    view = HistoryView(memberships=[(5, "join")], visibilities=[(1, "shared")])
    assert visible_positions(view, 10) == list(range(2, 11))


def test_shared_does_not_show_history_to_someone_who_never_joined():
    """Rule 3 needs a join after the event: being invited is not enough."""
    view = HistoryView(memberships=[(5, "invite")], visibilities=[(1, "shared")])
    assert visible_positions(view, 10) == []


def test_shared_stops_at_leave():
    """A user who left sees shared history up to their leave, nothing after it."""
    view = HistoryView(memberships=[(5, "join"), (8, "leave")], visibilities=[(1, "shared")])
    assert visible_positions(view, 12) == list(range(2, 9))


def test_shared_after_rejoin_reveals_the_gap():
    """Rejoining under shared visibility reveals what happened while away."""
    view = HistoryView(memberships=[(5, "join"), (8, "leave"), (12, "join")],
                       visibilities=[(1, "shared")])
    assert visible_positions(view, 14) == list(range(2, 15))


def test_joined_after_rejoin_hides_the_gap():
    """Under joined visibility, events sent while the user was away stay hidden."""
    view = HistoryView(memberships=[(5, "join"), (8, "leave"), (12, "join")],
                       visibilities=[(1, "joined")])
    assert visible_positions(view, 14) == [5, 6, 7, 8, 12, 13, 14]


def test_invited_visibility_starts_at_invite():
    """Rule 4: with invited visibility, events are visible from the invite on."""
    view = HistoryView(memberships=[(4, "invite"), (7, "join")], visibilities=[(1, "invited")])
    assert visible_positions(view, 9) == [4, 5, 6, 7, 8, 9]


def test_invite_alone_is_not_enough_under_joined():
    """Under joined visibility, an invited user sees nothing sent while invited but their own events."""
    view = HistoryView(memberships=[(4, "invite"), (7, "join")], visibilities=[(1, "joined")])
    assert visible_positions(view, 9) == [7, 8, 9]


def test_invited_visibility_ends_when_membership_is_not_invite_or_join():
    """Under invited visibility, events after a rejected invite are hidden."""
    view = HistoryView(memberships=[(4, "invite"), (6, "leave")], visibilities=[(1, "invited")])
    assert visible_positions(view, 9) == [4, 5, 6]


def test_own_membership_event_visible_if_before_or_after_allows():
    """The user's own join (after allows) and leave (before allows) are visible under joined."""
    memberships = [(5, "join"), (8, "leave")]
    visibilities = [(1, "joined")]
    assert is_event_visible(5, memberships, visibilities)
    assert is_event_visible(8, memberships, visibilities)
    assert not is_event_visible(9, memberships, visibilities)


def test_own_ban_after_join_is_visible():
    """Being banned while joined is visible to the banned user."""
    assert is_event_visible(8, [(5, "join"), (8, "ban")], [(1, "joined")])


def test_invite_rejection_visible_to_the_invitee():
    """As Synapse, a user sees their own leave that rejects an invite, even under joined."""
    memberships = [(4, "invite"), (6, "leave")]
    assert is_event_visible(6, memberships, [(1, "joined")])
    assert not is_event_visible(4, memberships, [(1, "joined")])


def test_visibility_event_visible_if_before_or_after_allows():
    """A history_visibility change is visible if the old or new setting allows it."""
    # world_readable -> joined, for a user who never joined: before allows.
    assert is_event_visible(5, [], [(2, "world_readable"), (5, "joined")])
    # joined -> world_readable: after allows.
    assert is_event_visible(5, [], [(2, "joined"), (5, "world_readable")])
    # joined -> shared for a non-member: neither allows.
    assert not is_event_visible(5, [], [(2, "joined"), (5, "shared")])


def test_default_before_any_visibility_event_is_shared():
    """Events before the first history_visibility event use the shared default."""
    view = HistoryView(memberships=[(3, "join")], visibilities=[(2, "joined")])
    assert view.can_see(1)  # shared at 1, joined later
    assert view.can_see(2)  # the change itself: shared before it
    assert not HistoryView(memberships=[], visibilities=[(2, "joined")]).can_see(1)
    assert not HistoryView(memberships=[(3, "join")], visibilities=[(0, "joined")]).can_see(1)


def test_visibility_applies_at_the_time_of_the_event():
    """Changing visibility does not retroactively change what older events show."""
    view = HistoryView(memberships=[(10, "join")], visibilities=[(1, "joined"), (5, "shared")])
    assert visible_positions(view, 12) == [5, 6, 7, 8, 9, 10, 11, 12]


def test_current_membership_and_visibility():
    """The view reports the latest membership (and where) and the latest visibility."""
    view = HistoryView(memberships=[(3, "join"), (9, "leave")], visibilities=[(2, "invited")])
    assert view.current_membership == "leave"
    assert view.current_membership_position == 9
    assert view.current_visibility == "invited"
    assert HistoryView().current_membership is None


@pytest.mark.parametrize("memberships,visibilities", [
    ([], []),
    ([(5, "join")], []),
    ([(5, "join"), (10, "leave")], [(1, "joined")]),
    ([(5, "join"), (8, "leave"), (12, "join")], [(1, "joined"), (10, "world_readable")]),
    ([(4, "invite"), (6, "leave"), (9, "invite"), (11, "join"), (15, "ban")],
     [(1, "invited"), (7, "joined"), (13, "shared")]),
    ([(3, "knock"), (5, "invite")], [(2, "world_readable"), (4, "invited"), (6, "bogus")]),
])
def test_visible_ranges_match_the_rules(memberships, visibilities):
    """visible_ranges covers exactly the positions can_see allows, as merged disjoint ranges."""
    view = HistoryView(memberships=memberships, visibilities=visibilities)
    ranges = view.visible_ranges()
    for position in range(0, 25):
        assert in_ranges(position, ranges) == view.can_see(position), position
    for (_, high), (low, _) in zip(ranges, ranges[1:]):
        assert high is not None and high + 1 < low


def test_visible_ranges_of_a_joined_creator_is_everything():
    """A member from the start of a shared room sees one unbounded range, backfilled history included."""
    view = HistoryView(memberships=[(2, "join")], visibilities=[(5, "shared")])
    assert view.visible_ranges() == [(OUTSIDE_LINE + 1, None)]


def test_visible_ranges_of_a_stranger_is_empty():
    """Someone who never joined a non-world-readable room sees nothing."""
    assert HistoryView(visibilities=[(3, "shared")]).visible_ranges() == []


def test_outliers_count_as_state_but_are_never_in_ranges():
    """A visibility known only as an outlier (below the line) applies to backfilled history, never shown itself."""
    outlier = OUTSIDE_LINE - 7
    view = HistoryView(memberships=[(1, "join")], visibilities=[(outlier, "joined")])
    assert not view.can_see(-5)          # backfilled, before the user joined: hidden by "joined"
    assert view.visible_ranges() == [(1, None)]


def test_a_server_sees_what_any_of_its_users_may_see():
    """One user joined is enough; the server stops seeing a "joined" room once its last user leaves."""
    members = [(3, "@a:hs", "join"), (5, "@b:hs", "join"), (7, "@a:hs", "leave"), (9, "@b:hs", "leave")]
    view = server_view(members, [(1, "joined")])
    assert [p for p in range(2, 12) if view.can_see(p)] == [3, 4, 5, 6, 7, 8, 9]


def test_a_server_with_an_invited_user_sees_an_invited_room():
    """In an "invited" room, an invite of one of its users lets the server see from then on."""
    view = server_view([(4, "@a:hs", "invite")], [(1, "invited")])
    assert not view.can_see(3) and view.can_see(4) and view.can_see(6)
    assert not server_view([(4, "@a:hs", "invite")], [(1, "joined")]).can_see(6)


def test_a_server_sees_shared_history_before_its_users_joined():
    """In a "shared" room, history before the server's first join is visible to it (it joined later)."""
    view = server_view([(8, "@a:hs", "join")], [(1, "shared")])
    assert view.can_see(-20) and view.can_see(2) and view.can_see(9)
