-- OpenID tokens (spec: "OpenID"): a user asks for one to prove who they are
-- to an integration (a widget, an integration manager), which exchanges it
-- at GET /_matrix/federation/v1/openid/userinfo for the user id.
--
-- Only the SHA-256 of a token is stored: a copy of the database holds no
-- usable token, and looking one up by its hash compares no secret byte by
-- byte. Expired tokens are deleted as new ones are issued.
CREATE TABLE openid_tokens (
    token_hash  TEXT PRIMARY KEY,   -- hex SHA-256 of the token
    user_id     TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    expires_ts  BIGINT NOT NULL     -- ms since the epoch; refused from then on
);
CREATE INDEX openid_tokens_by_expiry ON openid_tokens (expires_ts);
