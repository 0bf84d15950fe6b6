-- Reports of events, rooms and users (spec: "Reporting Content"), kept
-- for the server's admins, newest first by report_id.
CREATE TABLE content_reports (
    report_id       BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('event', 'room', 'user')),
    reporter        TEXT NOT NULL,
    received_ts     BIGINT NOT NULL,
    reason          TEXT,
    room_id         TEXT,       -- the reported room, or the reported event's room
    event_id        TEXT,       -- an event report's event
    target_user_id  TEXT,       -- a user report's user
    score           BIGINT      -- an event report's score (spec up to v1.17)
);
CREATE INDEX content_reports_by_kind ON content_reports (kind, report_id);

-- Room upgrades: the rooms whose m.room.create names a predecessor, so a
-- retried upgrade finds the replacement room a first attempt made.
CREATE INDEX events_room_predecessor ON events ((pdu::jsonb #>> '{content,predecessor,room_id}'))
    WHERE type = 'm.room.create';
