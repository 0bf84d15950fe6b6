-- A UIA session remembers the request that started it, so it completes
-- only that request; a registration also remembers its password (as a
-- bcrypt hash, never the password) and the account it created, so a
-- repeat of it within the session answers the same user.
ALTER TABLE uia_sessions
    ADD COLUMN method             TEXT,     -- NULL: a caller that binds no request
    ADD COLUMN path               TEXT,
    ADD COLUMN params             TEXT,     -- canonical JSON of the body minus auth and secrets
    ADD COLUMN password_hash      TEXT,     -- registration: bcrypt hash of its password
    ADD COLUMN registered_user_id TEXT,     -- registration: the account it created
    ADD COLUMN claimed            BOOLEAN NOT NULL DEFAULT FALSE;  -- a request is completing it
