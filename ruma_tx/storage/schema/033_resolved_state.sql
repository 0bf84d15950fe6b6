-- The keys of a federated room's current state that state resolution
-- moved when an event was accepted (keys other than the event's own), at
-- that event's stream position, with the event each key then held.
--
-- /sync reads a key's state as its latest state event in stream order,
-- which is the current state in a line but not after a resolution: an
-- event received from another server can win a key back for an older
-- event (a ban made here, undone by the power levels another server
-- changed at the same time). These rows let /sync show what changed.
-- Keys that resolution removed from the state are not recorded.

CREATE TABLE resolved_state (
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    type             TEXT NOT NULL,
    state_key        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    PRIMARY KEY (room_id, stream_ordering, type, state_key)
);
