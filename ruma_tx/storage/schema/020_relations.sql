-- Relations between events, threads, and notifications per thread (spec:
-- "Forming relationships between events", "Threading", "Threaded read
-- receipts").

-- One row per event whose content carries a well-formed m.relates_to
-- (rel_type and event_id strings), written in the event's transaction;
-- deleted when the event is redacted (redaction strips m.relates_to in
-- every room version).
CREATE TABLE event_relations (
    event_id         TEXT PRIMARY KEY,      -- the child
    parent_id        TEXT NOT NULL,         -- the event it relates to
    parent_stream_ordering BIGINT NOT NULL, -- its position
    rel_type         TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,       -- the child's
    type             TEXT NOT NULL,         -- the child's event type
    sender           TEXT NOT NULL,
    aggregation_key  TEXT,                  -- an m.annotation's key
    thread_id        TEXT,                  -- the thread root the child is in; NULL: main timeline
    valid            BOOLEAN NOT NULL       -- FALSE: an m.replace breaking the rules (never aggregated)
);
-- Children of a parent, by relation type and position: /relations,
-- aggregations, and a thread's latest reply.
CREATE INDEX event_relations_children ON event_relations (parent_id, rel_type, stream_ordering);
-- The aggregated children of a room's events in a span of positions: how a
-- /sync of many rooms reads the aggregations of thousands of events (one
-- range per room, not one probe per event).
CREATE INDEX event_relations_aggregated ON event_relations (room_id, parent_stream_ordering)
    WHERE rel_type IN ('m.thread', 'm.replace', 'm.reference');
-- "Has this user sent this annotation already?" (M_DUPLICATE_ANNOTATION).
CREATE INDEX event_relations_annotations ON event_relations (parent_id, sender, type, aggregation_key)
    WHERE rel_type = 'm.annotation';

-- The threads of each room with their latest reply, for GET /threads
-- (most recently active first).
CREATE TABLE threads (
    room_id                 TEXT NOT NULL,
    thread_id               TEXT NOT NULL,  -- the thread root's event id
    latest_event_id         TEXT NOT NULL,
    latest_stream_ordering  BIGINT NOT NULL,
    PRIMARY KEY (room_id, thread_id)
);
CREATE INDEX threads_by_activity ON threads (room_id, latest_stream_ordering);

-- The thread each push action's event is in ('main' for the main
-- timeline), so counts can be split per thread; rows written before this
-- migration are of the main timeline.
ALTER TABLE event_push_actions ADD COLUMN thread_id TEXT NOT NULL DEFAULT 'main';

-- How far each user has read each thread of each room ('main' or a thread
-- root): threaded read receipts and the user's own events move it. An
-- action is read when it is at or before the room's position
-- (push_read_position: unthreaded receipts) or its thread's, whichever
-- is further.
CREATE TABLE push_thread_read_position (
    user_id          TEXT NOT NULL,
    room_id          TEXT NOT NULL,
    thread_id        TEXT NOT NULL,
    stream_ordering  BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, thread_id)
);
