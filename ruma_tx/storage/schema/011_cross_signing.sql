-- Cross-signing keys and signatures, and the device-list change stream
-- (spec: "Cross-signing", "Tracking the device list for a user").
--
-- Device identity keys themselves live in 010_device_keys.sql; this file
-- only adds what cross-signing and /sync's device_lists need.

-- Each user's current master, self-signing and user-signing key, as
-- uploaded to /keys/device_signing/upload (the master's signature on the
-- self-signing and user-signing keys included). Replaced in place.
CREATE TABLE cross_signing_keys (
    user_id     TEXT NOT NULL,
    usage       TEXT NOT NULL,        -- master, self_signing or user_signing
    key_id      TEXT NOT NULL,        -- ed25519:<public key>
    public_key  TEXT NOT NULL,        -- unpadded base64
    key_json    TEXT NOT NULL,
    PRIMARY KEY (user_id, usage)
);

-- Signatures of a user's self-signing key on that user's own device keys
-- (from /keys/signatures/upload), merged into the device keys /keys/query
-- returns. They go with the device.
CREATE TABLE device_signatures (
    user_id         TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    signing_key_id  TEXT NOT NULL,    -- ed25519:<self-signing public key>
    signature       TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, signing_key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- Signatures on a user's master key: by one of that user's devices, or by
-- another user's user-signing key (visible only to that signer). Kept with
-- the master key they sign (master_key_id), so replacing the master key
-- hides them.
CREATE TABLE master_key_signatures (
    user_id         TEXT NOT NULL,    -- whose master key
    master_key_id   TEXT NOT NULL,    -- ed25519:<master public key>
    signer_id       TEXT NOT NULL,    -- the signing user
    signing_key_id  TEXT NOT NULL,    -- ed25519:<device id> or ed25519:<user-signing public key>
    signature       TEXT NOT NULL,
    PRIMARY KEY (user_id, master_key_id, signer_id, signing_key_id)
);

-- Device-list changes, at positions of the one stream: a user's device
-- keys or cross-signing keys changed, or a device was deleted. viewer NULL:
-- every user sharing a room with user_id hears of it; otherwise only the
-- viewer does (their user-signing key signed user_id's master key).
CREATE TABLE device_list_changes (
    stream_position  BIGINT NOT NULL,
    user_id          TEXT NOT NULL,
    viewer           TEXT
);
CREATE INDEX device_list_changes_by_position ON device_list_changes (stream_position);
