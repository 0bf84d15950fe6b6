-- Rooms, their events (full PDUs) and current state.
--
-- One stream position (stream_ordering) orders everything a client syncs:
-- events here, and receipts and account data in later tables. This server
-- is each room's only writer, so a room's events form a line: the state
-- at any event is the latest state event per (type, state_key) at or
-- before it, read with one indexed query, and no state is ever copied.

CREATE TABLE rooms (
    room_id        TEXT PRIMARY KEY,
    room_version   TEXT NOT NULL,
    creator        TEXT NOT NULL,
    created_ts     BIGINT NOT NULL,
    published      BOOLEAN NOT NULL DEFAULT FALSE,   -- listed in the public directory
    last_event_id  TEXT,                             -- the room's one forward extremity
    depth          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE events (
    stream_ordering   BIGINT PRIMARY KEY,
    event_id          TEXT NOT NULL UNIQUE,
    room_id           TEXT NOT NULL,
    type              TEXT NOT NULL,
    state_key         TEXT,                          -- NULL for message events
    sender            TEXT NOT NULL,
    origin_server_ts  BIGINT NOT NULL,
    depth             BIGINT NOT NULL,
    membership        TEXT,                          -- content.membership of m.room.member
    pdu               TEXT NOT NULL,                 -- the PDU as canonical JSON
    redacted_by       TEXT                           -- the redaction that applies, if any
);
CREATE INDEX events_by_room ON events (room_id, stream_ordering);
CREATE INDEX events_state_history ON events (room_id, type, state_key, stream_ordering)
    WHERE state_key IS NOT NULL;
CREATE INDEX events_membership_of_user ON events (state_key, stream_ordering)
    WHERE type = 'm.room.member';
CREATE INDEX events_by_time ON events (room_id, origin_server_ts);

CREATE TABLE current_state (
    room_id          TEXT NOT NULL,
    type             TEXT NOT NULL,
    state_key        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    membership       TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_rooms_of_user ON current_state (state_key, room_id)
    WHERE type = 'm.room.member';

-- Transaction ids of sent events, scoped as the spec says: per user,
-- device and endpoint (including the event type), kept across restarts.
CREATE TABLE event_txn_ids (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id)
);

-- Room aliases (#name:server -> room id).
CREATE TABLE room_aliases (
    room_alias  TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    creator     TEXT NOT NULL
);
CREATE INDEX room_aliases_by_room ON room_aliases (room_id);

-- Filters uploaded by clients, kept as posted (GET returns them unchanged).
CREATE TABLE user_filters (
    user_id      TEXT NOT NULL,
    filter_id    BIGSERIAL,
    filter_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);
