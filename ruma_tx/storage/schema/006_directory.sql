-- The published room directory: /publicRooms reads only the published
-- rooms, so index just those (a handful among many rooms).
CREATE INDEX rooms_published ON rooms (room_id) WHERE published;
