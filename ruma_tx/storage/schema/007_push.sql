-- Push rules and unread notification counts (spec: "Push Notifications").
--
-- A user's rules are the server defaults (built in code, never stored)
-- plus one row per rule the user touched: see ruma_tx/push/rules.py for
-- what rule_json, enabled and priority hold for user-defined and
-- server-default rules.

CREATE TABLE push_rules (
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,           -- override, content, room, sender, underride
    rule_id    TEXT NOT NULL,
    rule_json  TEXT,                    -- NULL: a server-default rule's actions unchanged
    enabled    BOOLEAN,                 -- NULL: a server-default rule's enabled unchanged
    priority   INTEGER NOT NULL DEFAULT 0,   -- higher first, within a kind
    PRIMARY KEY (user_id, kind, rule_id)
);

-- The stream position of each user's latest push rule change, so /sync
-- sends m.push_rules when it changed in (since, now].
CREATE TABLE push_rules_changes (
    user_id          TEXT PRIMARY KEY,
    stream_ordering  BIGINT NOT NULL
);

-- What the user's push rules said about an event, for the users it
-- notifies or highlights (rows with neither are not stored).
CREATE TABLE event_push_actions (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    notify           BOOLEAN NOT NULL,
    highlight        BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, room_id, stream_ordering)
);
CREATE INDEX event_push_actions_by_event ON event_push_actions (room_id, stream_ordering);

-- How far each user has read each room (their latest read receipt, private
-- or not, or their own latest event): notifications at or before it are read.
CREATE TABLE push_read_position (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
