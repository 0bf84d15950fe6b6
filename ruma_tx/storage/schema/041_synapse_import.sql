-- The resume record of `ruma-admin import-synapse` (moving a Synapse
-- server's data in). Written by ruma_tx/storage/synapse_import/progress.py.

-- At most one row: the server whose data this database received, and
-- whether the import finished (verified). An unfinished import may be
-- resumed into a database that already holds users and rooms: its own.
CREATE TABLE synapse_import (
    only_one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_one),
    server_name  TEXT NOT NULL,
    started_ts   BIGINT NOT NULL,
    finished_ts  BIGINT
);

-- One row per import step (users, devices, rooms...): the checkpoint after
-- its last committed batch (a step's own keyset position), how many items
-- it imported, and whether it is done.
CREATE TABLE synapse_import_progress (
    step        TEXT PRIMARY KEY,
    checkpoint  TEXT,
    done_count  BIGINT NOT NULL DEFAULT 0,
    finished    BOOLEAN NOT NULL DEFAULT FALSE,
    updated_ts  BIGINT NOT NULL
);
