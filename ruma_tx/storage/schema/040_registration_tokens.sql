-- Registration tokens (spec: "Token-authenticated registration"; the
-- shapes of Synapse's admin API). A token is valid while it has uses left
-- (pending + completed < uses_allowed, or uses_allowed is NULL) and has
-- not expired (expiry_time, in ms, is NULL or not yet past).
CREATE TABLE registration_tokens (
    token         TEXT PRIMARY KEY,
    uses_allowed  INTEGER,                    -- NULL: unlimited
    pending       INTEGER NOT NULL DEFAULT 0, -- UIA sessions past the token stage, not yet registered
    completed     INTEGER NOT NULL DEFAULT 0, -- registrations made with it
    expiry_time   BIGINT                      -- ms since the epoch; NULL: never expires
);

-- The token a registration's UIA session passed its stage with: that
-- session holds one of the token's uses (counted in pending).
ALTER TABLE uia_sessions
    ADD COLUMN registration_token TEXT REFERENCES registration_tokens (token) ON DELETE SET NULL;

-- Once the session's registration created its account, the use it held
-- is completed; a session that ends (expires) without one gives it back.
-- Done here so that no path forgets it: the registration records its
-- account (registered_user_id) and the pruning of expired sessions both
-- go through these rows.
CREATE FUNCTION registration_token_use_ended() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1
            WHERE token = OLD.registration_token;
        NEW.registration_token := NULL;
        RETURN NEW;
    END IF;
    UPDATE registration_tokens SET pending = pending - 1 WHERE token = OLD.registration_token;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER registration_token_completed BEFORE UPDATE OF registered_user_id ON uia_sessions
    FOR EACH ROW
    WHEN (OLD.registration_token IS NOT NULL AND OLD.registered_user_id IS NULL
          AND NEW.registered_user_id IS NOT NULL)
    EXECUTE FUNCTION registration_token_use_ended();

CREATE TRIGGER registration_token_released AFTER DELETE ON uia_sessions
    FOR EACH ROW WHEN (OLD.registration_token IS NOT NULL)
    EXECUTE FUNCTION registration_token_use_ended();
