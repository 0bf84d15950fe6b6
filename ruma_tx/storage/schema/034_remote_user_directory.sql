-- Users of other servers in the user directory: those joined to a room
-- this server holds, with their words (schema 019's functions) and the
-- display name and avatar of their latest join event. Who may find them is
-- decided at search time, as for local users (ruma_tx.storage.
-- user_directory).
--
-- A join event in a public room (user_directory_rooms) is preferred: a
-- name chosen for a private room is not meant for everyone (Synapse reads
-- remote users' names from public rooms only, and asks their server for the
-- profile of the others; we take their latest private join instead, whose
-- name only people sharing a room with them could be shown anyway). A name
-- longer than a local one may be (256 characters) is left out.
--
-- Kept by triggers on current_state, so that every way a membership
-- becomes current (an event sent here or received, the state of a room
-- joined through another server, state resolution) updates it in its own
-- transaction; a user who is joined to no room any more leaves it.

-- The columns of local entries, with their primary key and GIN index (and
-- no reference to profiles).
CREATE TABLE user_directory_remote (LIKE user_directory INCLUDING INDEXES);

-- Recompute a user's row from their current joins; nothing for local users
-- (in users: their entry comes from their profile).
CREATE FUNCTION user_directory_remote_refresh(member TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    content JSONB;
    name TEXT;
    avatar TEXT;
    localpart TEXT[];
    words TEXT[];
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE user_id = member) THEN
        RETURN;
    END IF;
    -- A PDU holding \u0000 cannot be read as jsonb: its name is left out.
    -- The user's memberships are read by user (OFFSET 0 keeps the join
    -- test outside): without statistics, as when a new server's first
    -- join brings thousands of members, the planner would rather scan
    -- every join of the index by server for each of them.
    SELECT CASE WHEN strpos(e.pdu, '\u0000') = 0 THEN e.pdu::jsonb -> 'content' END INTO content
    FROM (SELECT room_id, event_id, membership FROM current_state
          WHERE type = 'm.room.member' AND state_key = member OFFSET 0) s
    JOIN events e ON e.event_id = s.event_id
    LEFT JOIN user_directory_rooms r ON r.room_id = s.room_id
    WHERE s.membership = 'join'
    ORDER BY COALESCE(r.public_join OR r.world_readable, FALSE) DESC, e.origin_server_ts DESC,
             e.stream_ordering DESC
    LIMIT 1;
    IF NOT FOUND THEN
        DELETE FROM user_directory_remote WHERE user_id = member;
        RETURN;
    END IF;
    IF jsonb_typeof(content -> 'displayname') = 'string' AND length(content ->> 'displayname') <= 256 THEN
        name := content ->> 'displayname';
    END IF;
    IF jsonb_typeof(content -> 'avatar_url') = 'string' THEN
        avatar := content ->> 'avatar_url';
    END IF;
    localpart := COALESCE(user_directory_words(split_part(substr(member, 2), ':', 1)), '{}');
    words := COALESCE(user_directory_words(name), '{}');
    INSERT INTO user_directory_remote (user_id, display_name, avatar_url, localpart_key, name_key, vector)
    VALUES (member, name, avatar, array_to_string(localpart, ' '), NULLIF(array_to_string(words, ' '), ''),
            user_directory_vector(localpart, 'A') || user_directory_vector(words, 'B'))
    ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name,
        avatar_url = EXCLUDED.avatar_url, name_key = EXCLUDED.name_key, vector = EXCLUDED.vector
    WHERE (user_directory_remote.display_name, user_directory_remote.avatar_url)
          IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.avatar_url);
END;
$$;

CREATE FUNCTION user_directory_remote_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM user_directory_remote_refresh(OLD.state_key);
    ELSE
        PERFORM user_directory_remote_refresh(NEW.state_key);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_directory_remote_membership AFTER INSERT ON current_state
    FOR EACH ROW WHEN (NEW.type = 'm.room.member') EXECUTE FUNCTION user_directory_remote_member();
CREATE TRIGGER user_directory_remote_membership_change AFTER UPDATE OF event_id ON current_state
    FOR EACH ROW WHEN (NEW.type = 'm.room.member' AND OLD.event_id <> NEW.event_id)
    EXECUTE FUNCTION user_directory_remote_member();
CREATE TRIGGER user_directory_remote_membership_gone AFTER DELETE ON current_state
    FOR EACH ROW WHEN (OLD.type = 'm.room.member') EXECUTE FUNCTION user_directory_remote_member();
-- A redacted join keeps its membership but loses its name and avatar.
CREATE TRIGGER user_directory_remote_redaction AFTER UPDATE OF redacted_by ON events
    FOR EACH ROW WHEN (NEW.type = 'm.room.member' AND NEW.redacted_by IS NOT NULL)
    EXECUTE FUNCTION user_directory_remote_member();

SELECT user_directory_remote_refresh(state_key)
FROM (SELECT DISTINCT state_key FROM current_state WHERE type = 'm.room.member' AND membership = 'join') joined;
