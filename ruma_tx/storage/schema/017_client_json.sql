-- Each event as clients see it in /sync (client format, no room_id),
-- written with the event, so /sync shows it without parsing its PDU.
-- NULL for events stored before this column: they are shown from the PDU.
ALTER TABLE events ADD COLUMN client_json TEXT;
