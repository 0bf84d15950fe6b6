-- When sending to a destination last failed (ms; NULL once a transaction
-- succeeds), as the admin API's federation destinations show it
-- (Synapse's retry_last_ts): with retry_at_ms, the wait it was given.
ALTER TABLE federation_destinations ADD COLUMN retry_last_ms BIGINT;
