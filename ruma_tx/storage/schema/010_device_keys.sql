-- End-to-end encryption keys of devices (spec: "Key Distribution"): device
-- identity keys, one-time keys and fallback keys. Every table references its
-- device, so deleting a device (DELETE /devices, logout) removes its keys.
-- Key objects are stored as canonical JSON text, exactly as the client
-- signed them.

-- The signed DeviceKeys object each device uploaded (one per device).
CREATE TABLE e2e_device_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    key_json    TEXT NOT NULL,
    updated_ts  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- One value per upload call: keys are claimed in upload order (spec: "One-time
-- keys are given out in the order that they were uploaded"); keys of one
-- upload share a value and go out by key id.
CREATE SEQUENCE e2e_one_time_key_uploads;

-- Unclaimed one-time keys; a claim deletes the key it hands out.
CREATE TABLE e2e_one_time_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    key_json    TEXT NOT NULL,               -- a JSON string or a signed key object
    upload      BIGINT NOT NULL,             -- from e2e_one_time_key_uploads
    PRIMARY KEY (user_id, device_id, algorithm, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX e2e_one_time_keys_claim_order
    ON e2e_one_time_keys (user_id, device_id, algorithm, upload, key_id);

-- At most one fallback key per device and algorithm; handed out (and marked
-- used, never deleted) once the device has no one-time key of the algorithm.
CREATE TABLE e2e_fallback_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    key_json    TEXT NOT NULL,
    used        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- The stream position of the last change of each device's one-time key
-- counts or unused fallback key types (an upload or a claim), so an
-- incremental /sync that would otherwise be empty tells the device its new
-- counts once, and no more.
CREATE TABLE e2e_key_count_changes (
    user_id          TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    stream_position  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
