-- What an admin sets on an account (Synapse's admin API; locking and
-- suspension are also the spec's client admin endpoints):
--   locked:        every request but logout gets 401 M_USER_LOCKED;
--   suspended:     the user reads but may not send, join, invite or edit
--                  the profile (403 M_USER_SUSPENDED);
--   shadow_banned: the user's sends seem to succeed but reach nobody;
--   user_type:     Synapse's free-form type ("bot", "support"), or NULL;
--   erased:        deactivated with erasure: the user's events are shown
--                  redacted to users who join later.
ALTER TABLE users
    ADD COLUMN locked        BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN suspended     BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN shadow_banned BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN user_type     TEXT,
    ADD COLUMN erased        BOOLEAN NOT NULL DEFAULT FALSE;

-- Per-user message rate limit overrides (0 and 0: not limited at all).
CREATE TABLE ratelimit_overrides (
    user_id              TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    messages_per_second  INTEGER NOT NULL,
    burst_count          INTEGER NOT NULL
);
