-- Other servers' signing keys (spec: server-server-api.md "Retrieving
-- server keys"), fetched from the server or a notary and verified before
-- they are stored. One row per key: current keys are trusted for requests
-- and events up to valid_until_ts; retired ones (old_verify_keys) verify
-- events sent up to their expired_ts, kept in the same column.
--
-- key_response is the whole signed response the key came in, as fetched:
-- this server re-serves it, with its own signature added, as a notary.
CREATE TABLE server_keys (
    server_name     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    verify_key      TEXT NOT NULL,     -- unpadded base64 ed25519 public key
    valid_until_ts  BIGINT NOT NULL,   -- ms since the epoch; expired_ts for a retired key
    retired         BOOLEAN NOT NULL,  -- from old_verify_keys: verifies events only
    fetched_ts      BIGINT NOT NULL,
    key_response    TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
