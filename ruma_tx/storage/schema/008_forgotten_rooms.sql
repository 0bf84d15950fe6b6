-- Rooms a user has forgotten (POST /rooms/{roomId}/forget): the membership
-- event they forgot, so rejoining later makes the room visible again.
CREATE TABLE forgotten_rooms (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
