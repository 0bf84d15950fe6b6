-- Rooms shared with other servers: their events form a DAG, not a line.
--
-- A room is "federated" once a remote server takes part in it (a remote
-- member, or this server joined it through another). Rooms that are not
-- keep the line of schema 003 and get no row below per event.
--
-- In a federated room:
--   * room_extremities holds its forward extremities (the events no other
--     accepted event of the room names in prev_events);
--   * every event we accept or soft-fail has a state snapshot: the state
--     AFTER the event (event_state -> state_groups), as a delta on another
--     group (chains at most a few dozen long) or as a full copy;
--   * events known only as the auth or state of others (outliers, from
--     send_join or fetched) and soft-failed events are stored in `events`
--     with a NEGATIVE stream_ordering (outlier_stream below): every client
--     reader asks for positions above a non-negative one, so clients never
--     see them, while current_state can still point at them;
--   * rejected events are kept apart, with why, and used for nothing.

ALTER TABLE rooms ADD COLUMN federated BOOLEAN NOT NULL DEFAULT FALSE;

-- Positions of events outside the line: -1, -2, ...
CREATE SEQUENCE outlier_stream INCREMENT BY -1 START WITH -1 MAXVALUE -1;

CREATE TABLE room_extremities (
    room_id   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

CREATE TABLE state_groups (
    group_id      BIGSERIAL PRIMARY KEY,
    room_id       TEXT NOT NULL,
    prev_group    BIGINT REFERENCES state_groups (group_id),  -- NULL: a full snapshot
    chain_length  INTEGER NOT NULL                             -- deltas up to a full snapshot
);

-- The keys a group sets on its prev_group (all keys for a full snapshot);
-- event_id NULL: the key is absent from this group's state.
CREATE TABLE state_group_entries (
    group_id   BIGINT NOT NULL REFERENCES state_groups (group_id),
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT,
    PRIMARY KEY (group_id, type, state_key)
);

-- The state after each event of a federated room (events sharing a state,
-- e.g. messages after the same event, share its group).
CREATE TABLE event_state (
    event_id  TEXT PRIMARY KEY,
    group_id  BIGINT NOT NULL REFERENCES state_groups (group_id)
);

-- How an event outside the line got there.
CREATE TABLE event_dag_status (
    event_id  TEXT PRIMARY KEY,
    room_id   TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('outlier', 'soft_failed'))
);

CREATE TABLE rejected_events (
    event_id  TEXT PRIMARY KEY,
    room_id   TEXT NOT NULL,
    pdu       TEXT NOT NULL,
    reason    TEXT NOT NULL
);
