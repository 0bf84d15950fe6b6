-- Finding things: the room event search index and the user directory.

-- One row per event a room event search can find (ruma_tx.matrix.search.
-- searchable_text): written in the transaction that stores the event,
-- deleted when the event is redacted. The vector is PostgreSQL's English
-- full-text configuration (stemming, stop words), as Synapse's.
CREATE TABLE event_search (
    stream_ordering  BIGINT PRIMARY KEY,          -- the event's
    room_id          TEXT NOT NULL,
    sender           TEXT NOT NULL,
    type             TEXT NOT NULL,
    key              TEXT NOT NULL,               -- content.body, content.name or content.topic
    vector           TSVECTOR NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);

-- Events stored before this table existed are indexed in the background, in
-- batches going back from the newest: those below `below` are not yet. The
-- row goes once every event is indexed (none: nothing to do).
CREATE TABLE event_search_backfill (below BIGINT NOT NULL);
INSERT INTO event_search_backfill (below) SELECT max(stream_ordering) + 1 FROM events HAVING count(*) > 0;

-- The user directory: each active local user's profile, with the words of
-- their localpart and display name, kept by triggers on profiles and users,
-- so that every way a profile or account is written (registration, profile
-- changes, guest upgrades, deactivation, ruma-admin) updates it in its own
-- transaction.
--
-- Words are folded (NFKC, then lower case by Unicode rules through ICU,
-- where PostgreSQL has it: the C locale lower-cases ASCII only) and split
-- on anything but letters and digits, so "alice.smith", "Alice Smith" and
-- "ALICE_SMITH" all hold the words alice and smith. Search terms go
-- through the same functions.
DO $$
DECLARE
    icu TEXT := CASE WHEN EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')
                     THEN ' COLLATE "und-x-icu"' ELSE '' END;
    nfkc TEXT := CASE WHEN current_setting('server_encoding') = 'UTF8'
                      THEN 'normalize(value, NFKC)' ELSE 'value' END;
BEGIN
    EXECUTE 'CREATE FUNCTION user_directory_words(value TEXT) RETURNS TEXT[]'
        ' LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$'
        ' SELECT array_remove(regexp_split_to_array(lower(' || nfkc || icu || '), ''[^[:alnum:]]+''), '''')'
        ' $f$';
END $$;

-- Words as a vector whose positions carry a weight (A: localpart, B: display name).
CREATE FUNCTION user_directory_vector(words TEXT[], weight TEXT) RETURNS TSVECTOR
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(string_agg(
        '''' || replace(replace(w, '\', '\\'), '''', '''''') || ''':' || i || weight, ' '), '')::tsvector
    FROM unnest(words[1:256]) WITH ORDINALITY AS t(w, i)
$$;

-- A search term's words (at most 10) as a query: each a prefix of some word.
CREATE FUNCTION user_directory_query(words TEXT[]) RETURNS TSQUERY
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg('''' || replace(replace(w, '\', '\\'), '''', '''''') || ''':*', ' & ')::tsquery
    FROM unnest(words[1:10]) AS w
$$;

-- What the directory holds of each active user (deactivated users are not
-- in it), with their words as keys and as a weighted vector.
CREATE VIEW user_directory_source AS
SELECT p.user_id, p.displayname AS display_name, p.avatar_url,
       array_to_string(w.localpart, ' ') AS localpart_key, NULLIF(array_to_string(w.name, ' '), '') AS name_key,
       user_directory_vector(w.localpart, 'A') || user_directory_vector(w.name, 'B') AS vector
FROM profiles p JOIN users u ON u.user_id = p.user_id
CROSS JOIN LATERAL (SELECT
    COALESCE(user_directory_words(split_part(substr(p.user_id, 2), ':', 1)), '{}') AS localpart,
    COALESCE(user_directory_words(p.displayname), '{}') AS name) w
WHERE NOT u.deactivated;

CREATE TABLE user_directory (
    user_id        TEXT PRIMARY KEY REFERENCES profiles (user_id) ON DELETE CASCADE,
    display_name   TEXT,
    avatar_url     TEXT,
    localpart_key  TEXT NOT NULL,     -- the localpart's words, joined by spaces
    name_key       TEXT,              -- the display name's words, joined by spaces
    vector         TSVECTOR NOT NULL
);
CREATE INDEX user_directory_search ON user_directory USING GIN (vector);
INSERT INTO user_directory SELECT * FROM user_directory_source;

CREATE FUNCTION user_directory_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_directory WHERE user_id = NEW.user_id;
    INSERT INTO user_directory SELECT * FROM user_directory_source WHERE user_id = NEW.user_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_directory_profile AFTER INSERT OR UPDATE OF displayname, avatar_url ON profiles
    FOR EACH ROW EXECUTE FUNCTION user_directory_refresh();
CREATE TRIGGER user_directory_deactivation AFTER UPDATE OF deactivated ON users
    FOR EACH ROW EXECUTE FUNCTION user_directory_refresh();

-- Rooms whose joined members everyone may find in the user directory:
-- join rule public or history world_readable (ruma_tx.matrix.search.
-- room_publicity), written with the state event that sets either. NULL: not
-- set, which is not public.
CREATE TABLE user_directory_rooms (
    room_id         TEXT PRIMARY KEY,
    public_join     BOOLEAN,
    world_readable  BOOLEAN
);
INSERT INTO user_directory_rooms (room_id, public_join, world_readable)
SELECT c.room_id,
       bool_or(c.type = 'm.room.join_rules' AND e.pdu::jsonb -> 'content' ->> 'join_rule' = 'public'),
       bool_or(c.type = 'm.room.history_visibility'
               AND e.pdu::jsonb -> 'content' ->> 'history_visibility' = 'world_readable')
FROM current_state c JOIN events e ON e.event_id = c.event_id
WHERE c.type IN ('m.room.join_rules', 'm.room.history_visibility') AND c.state_key = ''
GROUP BY c.room_id;
