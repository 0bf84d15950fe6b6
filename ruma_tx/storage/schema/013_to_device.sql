-- Send-to-device messages (spec: "Send-to-Device messaging"), queued per
-- recipient device until the device acknowledges them by syncing with a
-- later since token. The delivery rules are in ruma_tx/handlers/to_device.py.
--
-- One send request takes one stream position and gives each device at most
-- one message, so (user_id, device_id, stream_position) identifies a message
-- and orders a device's queue by arrival.
CREATE TABLE to_device_messages (
    user_id          TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    stream_position  BIGINT NOT NULL,   -- the position of the send that queued it
    sender           TEXT NOT NULL,
    type             TEXT NOT NULL,
    content          TEXT NOT NULL,     -- the JSON object as the sender sent it
    -- The next_batch position of the last /sync response that carried it;
    -- NULL: not yet sent. A sync whose since is at or past it acknowledges it.
    delivered_at     BIGINT,
    PRIMARY KEY (user_id, device_id, stream_position),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- Transaction ids of PUT /sendToDevice, scoped per user, device and endpoint
-- (the event type included), so a retry delivers nothing a second time.
CREATE TABLE to_device_txn_ids (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
