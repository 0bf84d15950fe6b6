-- Rooms this server knows only through memberships other servers told it
-- of (an invite of a local user, its rejection): no state, no events but
-- those memberships, which sit in the line so that the user's /sync shows
-- them. Joining such a room brings its state and clears the flag.
ALTER TABLE rooms ADD COLUMN out_of_band BOOLEAN NOT NULL DEFAULT FALSE;
