-- What the admin API records on media (Synapse's media admin API; rules in
-- ruma_tx/services/admin_media.py):
--   quarantined_by:       the admin who quarantined it (quarantined_ts is
--                         the flag: set, the media is served as 404);
--   safe_from_quarantine: "protected": no quarantine applies to it.
ALTER TABLE local_media
    ADD COLUMN quarantined_by        TEXT,
    ADD COLUMN safe_from_quarantine  BOOLEAN NOT NULL DEFAULT FALSE;

-- Cached media of other servers can be quarantined too, and is purged
-- from the cache by its last access (written in batches, as local media's).
ALTER TABLE remote_media
    ADD COLUMN last_access_ts  BIGINT,
    ADD COLUMN quarantined_ts  BIGINT,
    ADD COLUMN quarantined_by  TEXT;
CREATE INDEX remote_media_by_last_access ON remote_media (COALESCE(last_access_ts, fetched_ts));
