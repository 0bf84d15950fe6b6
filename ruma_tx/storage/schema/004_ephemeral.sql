-- Receipts, account data (tags and read markers included) and presence:
-- the per-user data /sync shows besides events. Each change is stored at a
-- position of the one stream (stream_position, like events.stream_ordering),
-- so an incremental sync reads what changed in (since, now] by position.
-- Typing notifications are kept in memory only.

-- The latest receipt of each (room, user, type, thread): receipts are "read
-- up to" markers, so one row each, moved forward in place.
CREATE TABLE receipts (
    room_id                TEXT NOT NULL,
    user_id                TEXT NOT NULL,
    receipt_type           TEXT NOT NULL,      -- m.read or m.read.private
    thread_id              TEXT NOT NULL,      -- '' for an unthreaded receipt
    event_id               TEXT NOT NULL,
    event_stream_ordering  BIGINT NOT NULL,    -- the event's, so receipts only move forward
    ts                     BIGINT NOT NULL,
    stream_position        BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_changes_of_room ON receipts (room_id, stream_position);

-- Account data: global (room_id '') or per room; content is the JSON object
-- as the client sent it (m.tag and m.fully_read are written by the server).
CREATE TABLE account_data (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    type             TEXT NOT NULL,
    content          TEXT NOT NULL,
    stream_position  BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_changes_of_user ON account_data (user_id, stream_position);

-- The last presence of each user who ever had one.
CREATE TABLE presence (
    user_id          TEXT PRIMARY KEY,
    state            TEXT NOT NULL,            -- online, unavailable or offline
    status_msg       TEXT,
    last_active_ts   BIGINT NOT NULL,          -- 0: never active
    stream_position  BIGINT NOT NULL
);
CREATE INDEX presence_changes ON presence (stream_position);
