-- Every revoked access token is announced on a channel, so every daemon
-- process (and the token cache in it) hears of revocations made anywhere,
-- ruma-admin included. NOTIFY is delivered after commit.
CREATE FUNCTION notify_access_token_revoked() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ruma_tokens_revoked', OLD.token_id);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER access_token_revoked AFTER DELETE ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_access_token_revoked();
