-- A room's head (its last event and depth) is read from its events, so
-- storing an event no longer also rewrites the room's row.
ALTER TABLE rooms DROP COLUMN last_event_id, DROP COLUMN depth;
