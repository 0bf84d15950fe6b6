-- Accounts, devices, access and refresh tokens, profiles, UIA sessions.

CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    password_hash  TEXT,                       -- NULL: no password (guests)
    is_guest       BOOLEAN NOT NULL DEFAULT FALSE,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated    BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts     BIGINT NOT NULL
);

-- Guest accounts get numeric localparts from this sequence (as Synapse does).
CREATE SEQUENCE guest_localparts START 1;

CREATE TABLE profiles (
    user_id      TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    displayname  TEXT,
    avatar_url   TEXT
);

CREATE TABLE devices (
    user_id       TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    display_name  TEXT,
    last_seen_ts  BIGINT,
    last_seen_ip  TEXT,
    created_ts    BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- A refresh token belongs to one device; using it replaces it.
CREATE TABLE refresh_tokens (
    token_id    TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- The macaroon's identifier is token_id: deleting the row revokes the token.
CREATE TABLE access_tokens (
    token_id          TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    refresh_token_id  TEXT REFERENCES refresh_tokens (token_id) ON DELETE CASCADE,
    expires_at_ms     BIGINT,
    created_ts        BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id);
CREATE INDEX access_tokens_by_refresh ON access_tokens (refresh_token_id);

-- User-interactive auth sessions. Never holds a password.
CREATE TABLE uia_sessions (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT,                          -- NULL for registration
    action      TEXT NOT NULL,                 -- which request this session authorises
    completed   TEXT[] NOT NULL DEFAULT '{}',
    created_ts  BIGINT NOT NULL,
    expires_ts  BIGINT NOT NULL
);
CREATE INDEX uia_sessions_expiry ON uia_sessions (expires_ts);
