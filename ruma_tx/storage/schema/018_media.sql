-- The media repository (spec: "Content repository"). Rules in
-- ruma_tx/services/media.py; the files live in the byte store (local disk or
-- S3), named by their content hash.

-- One row per distinct content: the file of that hash exists in the byte
-- store while this row does. Media ids and thumbnails with the same bytes
-- share it; it is deleted with the last of them.
CREATE TABLE media_content (
    sha256        TEXT PRIMARY KEY,          -- hex SHA-256 of the bytes
    length        BIGINT NOT NULL,
    created_ts    BIGINT NOT NULL,
    -- An image's displayed size (EXIF orientation applied), learnt when it
    -- is first thumbnailed; NULL until then.
    image_width   INTEGER,
    image_height  INTEGER
);

-- Media ids of this server: uploaded, or created by POST /media/v1/create
-- and pending (sha256 NULL) until uploaded or expired.
CREATE TABLE local_media (
    media_id           TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,      -- the uploader (or creator)
    created_ts         BIGINT NOT NULL,
    unused_expires_ts  BIGINT,             -- a pending id's expiry
    sha256             TEXT REFERENCES media_content (sha256),
    content_type       TEXT,               -- as served (checked at upload)
    upload_name        TEXT,
    length             BIGINT,
    uploaded_ts        BIGINT,
    last_access_ts     BIGINT,             -- last download, written in batches
    quarantined_ts     BIGINT              -- set: served as 404
);
CREATE INDEX local_media_by_user ON local_media (user_id);
CREATE INDEX local_media_by_content ON local_media (sha256);
CREATE INDEX local_media_pending ON local_media (unused_expires_ts) WHERE sha256 IS NULL;
CREATE INDEX local_media_by_last_access ON local_media (COALESCE(last_access_ts, uploaded_ts))
    WHERE sha256 IS NOT NULL;

-- Thumbnails, generated once per content and configured size, and kept.
CREATE TABLE media_thumbnails (
    source_sha256  TEXT NOT NULL REFERENCES media_content (sha256),
    width          INTEGER NOT NULL,       -- the configured size it answers
    height         INTEGER NOT NULL,
    method         TEXT NOT NULL,          -- crop | scale
    animated       BOOLEAN NOT NULL,       -- asked for an animated thumbnail
    sha256         TEXT NOT NULL REFERENCES media_content (sha256),
    content_type   TEXT NOT NULL,
    length         BIGINT NOT NULL,
    PRIMARY KEY (source_sha256, width, height, method, animated)
);
CREATE INDEX media_thumbnails_by_content ON media_thumbnails (sha256);
