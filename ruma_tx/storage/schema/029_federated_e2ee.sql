-- End-to-end encryption over federation. Device lists (server-server spec:
-- "Device Management", "End-to-End Encryption"): rules in
-- ruma_tx/services/device_list_updates.py (ours, sent) and
-- ruma_tx/services/remote_device_lists.py (theirs, kept); and the to-device
-- messages received ("Send-to-device messaging").

-- Each local user's device-list stream id: the stream_id of the last
-- m.device_list_update sent for them (one per changed device, increasing
-- by one), which /user/devices answers as its stream_id. signing_keys_digest
-- is a digest of the master and self-signing keys last announced (NULL:
-- none yet), so an unchanged upload sends no m.signing_key_update.
CREATE TABLE device_list_versions (
    user_id              TEXT PRIMARY KEY,
    stream_id            BIGINT NOT NULL,
    signing_keys_digest  TEXT
);

-- What other servers were last told of each local device: a digest of its
-- keys as they see them. A device whose keys now differ (new, changed,
-- signed) or that is gone gets an update; a device without keys is not
-- announced until it has some.
CREATE TABLE device_list_announced (
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    keys_digest  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Other servers' users' device lists, kept while they share a room with
-- one of our users (their servers then send every change), from
-- /user/devices and then m.device_list_update EDUs. stream_id is the last
-- update applied: the next one must follow it, or the list is fetched
-- again. A row that cannot be trusted any more is deleted.
CREATE TABLE remote_device_lists (
    user_id           TEXT PRIMARY KEY,
    stream_id         BIGINT NOT NULL,
    master_key        TEXT,             -- JSON, as /user/devices or m.signing_key_update gave it
    self_signing_key  TEXT
);

CREATE TABLE remote_devices (
    user_id       TEXT NOT NULL REFERENCES remote_device_lists (user_id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    keys          TEXT,                 -- the DeviceKeys JSON, NULL for a device without keys
    display_name  TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- m.direct_to_device messages received from other servers, by sender and
-- message_id, so that a repeat (a retried transaction) delivers nothing
-- again. Rows older than a week are dropped (ruma_tx/storage/to_device.py).
CREATE TABLE to_device_received (
    sender       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    received_ts  BIGINT NOT NULL,
    PRIMARY KEY (sender, message_id)
);
CREATE INDEX to_device_received_by_time ON to_device_received (received_ts);
