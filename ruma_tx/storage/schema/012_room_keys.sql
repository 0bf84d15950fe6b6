-- Server-side key backups (spec: "Server-side key backups"): each user's
-- backup versions and the encrypted room keys stored in them. The server
-- never reads auth_data or session_data: both are the JSON objects the
-- client sent, kept as text.

-- Versions are numbered per user from 1 and never reused: a deleted version
-- keeps its row (deleted = TRUE, keys gone) so that the next one gets a
-- higher number and deleting it again still succeeds. The current version is
-- the highest one not deleted. etag is bumped whenever the version's keys
-- change; key_count is the number of its keys, kept up to date by every write.
CREATE TABLE room_key_versions (
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    algorithm  TEXT NOT NULL,
    auth_data  TEXT NOT NULL,
    etag       BIGINT NOT NULL DEFAULT 0,
    key_count  BIGINT NOT NULL DEFAULT 0,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, version)
);

-- One backed-up key per (version, room, session): a newer upload replaces it
-- only when it is better by the spec's rule (decided by the key backup handler).
CREATE TABLE room_keys (
    user_id              TEXT NOT NULL,
    version              BIGINT NOT NULL,
    room_id              TEXT NOT NULL,
    session_id           TEXT NOT NULL,
    first_message_index  BIGINT NOT NULL,
    forwarded_count      BIGINT NOT NULL,
    is_verified          BOOLEAN NOT NULL,
    session_data         TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES room_key_versions (user_id, version) ON DELETE CASCADE
);
