-- What the admin API keeps of rooms (Synapse's "Block Room" and "Delete
-- Room" APIs).

-- Rooms a server admin blocked: this server's users may not join them
-- (here or through another server), be invited to them or knock on them.
-- A room can be blocked before this server knows of it.
CREATE TABLE blocked_rooms (
    room_id     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,      -- the admin who blocked it
    blocked_ts  BIGINT NOT NULL
);

-- Room deletions, so that an admin can follow one after asking for it,
-- also after a restart. A deletion this process is not running that says
-- scheduled or active was cut short by a restart: it is reported failed,
-- and asking again finishes it (every step can be run again).
CREATE TABLE room_delete_jobs (
    delete_id   TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    requester   TEXT NOT NULL,      -- the admin who asked
    status      TEXT NOT NULL CHECK (status IN ('scheduled', 'active', 'complete', 'failed')),
    error       TEXT,               -- why a failed one failed
    shutdown    TEXT NOT NULL,      -- JSON: kicked_users, failed_to_kick_users, local_aliases, new_room_id
    created_ts  BIGINT NOT NULL,
    updated_ts  BIGINT NOT NULL
);
CREATE INDEX room_delete_jobs_by_room ON room_delete_jobs (room_id, created_ts);
