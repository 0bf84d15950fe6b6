"""Room summaries (ruma_tx.matrix.sync): counts and heroes from a room's state."""
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.sync import MemberCounts, member_counts, room_summary


def member(user_id: str, membership: str) -> StoredEvent:
    return StoredEvent(1, f"$m{user_id}", "!r:x", {
        "type": "m.room.member", "sender": user_id, "state_key": user_id, "content": {"membership": membership}})


def test_heroes_are_joined_then_invited_members_by_user_id_without_the_syncing_user():
    """The syncing user is never their own hero; joined members come before invited ones."""
    state = {("m.room.member", e.state_key or ""): e for e in (
        member("@zed:x", "join"), member("@amy:x", "join"), member("@bea:x", "invite"),
        member("@cal:x", "leave"), member("@me:x", "join"))}
    counts = member_counts(state)
    assert (counts.joined, counts.invited, counts.named) == (3, 1, False)
    assert room_summary(counts, "@me:x") == {
        "m.joined_member_count": 3, "m.invited_member_count": 1, "m.heroes": ["@amy:x", "@zed:x", "@bea:x"]}


def test_a_named_room_has_no_heroes_and_at_most_five_are_named():
    """Heroes only for rooms without a name or alias, and five of them at most."""
    first = tuple(f"@u{i}:x" for i in range(6))
    assert "m.heroes" not in room_summary(MemberCounts(6, 0, True, first), "@me:x")
    assert room_summary(MemberCounts(6, 0, False, first), "@me:x")["m.heroes"] == list(first[:5])
