-- Sending our events and EDUs to other homeservers (Server-Server API,
-- "Transactions"). See ruma_tx/services/federation_sender.py.

-- One row per server we have had something to send to. The PDUs are not
-- copied: they are read from `events` after `last_acked_position`, which
-- moves only once the destination has answered 200 to a transaction
-- (or refused it with a 4xx, which is not retried).
CREATE TABLE federation_destinations (
    destination          TEXT PRIMARY KEY,
    last_acked_position  BIGINT NOT NULL,
    retry_at_ms          BIGINT,            -- ms: no try before then (NULL: none waiting)
    backoff_ms           BIGINT NOT NULL DEFAULT 0,  -- the last wait between tries (0: none)
    failing_since_ms     BIGINT             -- ms: first failure since the last success
);

-- The durable EDUs (receipts, device list and signing key updates,
-- to-device messages) waiting for their destination, deleted once it has
-- answered 200 to the transaction that carried them.
CREATE TABLE federation_edu_outbox (
    destination  TEXT NOT NULL,
    position     BIGSERIAL,
    edu_json     TEXT NOT NULL,
    PRIMARY KEY (destination, position)
);

-- The server of a user id (the part after its first ':'), as the
-- sending queue looks memberships up by server.
CREATE INDEX current_state_member_servers
    ON current_state ((substring(state_key from position(':' in state_key) + 1)), room_id)
    WHERE type = 'm.room.member' AND membership = 'join';
CREATE INDEX events_member_servers
    ON events ((substring(state_key from position(':' in state_key) + 1)), stream_ordering)
    WHERE type = 'm.room.member';
