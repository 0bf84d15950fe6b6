-- Simplified sliding sync (MSC4186).
--
-- A connection (per user, device and conn_id) remembers what it has sent,
-- so each response carries only what changed. Its state lives in memory and
-- is written here now and then and at shutdown, so a restart resumes the
-- connections instead of making every client start over; a pos the table
-- no longer knows is answered with M_UNKNOWN_POS. Deleted with the device.
CREATE TABLE sliding_sync_connections (
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    conn_id      TEXT NOT NULL,
    state        TEXT NOT NULL,      -- JSON: the generations a pos may name
    updated_ts   BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, conn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX sliding_sync_connections_by_age ON sliding_sync_connections (updated_ts);

-- A room's bump_stamp is its last event of the "proper activity" types:
-- found per room by a backward index scan that stops at the first one.
CREATE INDEX events_bumps ON events (room_id, stream_ordering)
    WHERE type IN ('m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker',
                   'm.call.invite', 'm.poll.start', 'm.beacon_info');
