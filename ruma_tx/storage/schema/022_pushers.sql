-- Pushers and the delivery of notifications to push gateways (spec: "Push
-- Notifications", Push Gateway API). See ruma_tx/storage/pushers.py.

-- One pusher per (user, app_id, pushkey), owned by the device whose access
-- token set it: deleting the device (logout, device deletion, password
-- change, deactivation) deletes its pushers in the same transaction.
CREATE TABLE pushers (
    pusher_id            BIGSERIAL PRIMARY KEY,
    user_id              TEXT NOT NULL,
    device_id            TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    pushkey              TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    app_display_name     TEXT NOT NULL,
    device_display_name  TEXT NOT NULL,
    profile_tag          TEXT,
    lang                 TEXT NOT NULL,
    data                 TEXT NOT NULL,     -- JSON object, url included
    pushkey_ts           BIGINT NOT NULL,   -- ms: when the pushkey was last set
    -- Delivered (or given up on) up to this stream position: delivery
    -- resumes after it, at start and after every failure.
    last_stream_ordering BIGINT NOT NULL,
    -- When the gateway started failing (NULL: it answers).
    failing_since        BIGINT,
    UNIQUE (user_id, app_id, pushkey),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX pushers_by_key ON pushers (app_id, pushkey);
CREATE INDEX pushers_by_device ON pushers (user_id, device_id);

-- The full actions of a push action whose actions say more than its notify
-- and highlight flags (a sound, say); NULL for the usual ["notify"] and
-- ["notify", {"set_tweak": "highlight"}]. The gateway gets them as tweaks,
-- /notifications as actions.
ALTER TABLE event_push_actions ADD COLUMN actions TEXT;

-- A user's notifications in stream order, for delivery and /notifications.
CREATE INDEX event_push_actions_by_user ON event_push_actions (user_id, stream_ordering);
