-- Media of other servers, fetched over federation when a client first asks
-- for it and kept (spec: "Content repository", server-server "Content
-- Repository"). Rules in ruma_tx/services/media.py. The bytes are a
-- media_content row and its file, shared with any local media (or
-- thumbnail) with the same bytes; thumbnails are made here from them.
CREATE TABLE remote_media (
    origin        TEXT NOT NULL,          -- the server of the mxc:// URI
    media_id      TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES media_content (sha256),
    content_type  TEXT NOT NULL,          -- as served here (checked as an upload's)
    upload_name   TEXT,
    length        BIGINT NOT NULL,
    fetched_ts    BIGINT NOT NULL,
    PRIMARY KEY (origin, media_id)
);
CREATE INDEX remote_media_by_content ON remote_media (sha256);
