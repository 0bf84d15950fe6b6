-- History fetched from other servers (/backfill) joins the line.
--
-- A room joined through another server starts, here, at the join: the
-- events before it are fetched with /backfill when a client pages back
-- past it. They take positions -1, -2, ... (backfill_stream: the older the
-- lower), below every event received live, so that /messages reads one
-- order for both, and clients see them as any other event of the line.
--
-- Events outside the line (outliers and soft-failed events, schema 026)
-- move out of their way, below -2^62 (OUTSIDE_LINE in
-- ruma_tx/matrix/stream_token.py): client readers ask for positions above
-- it, while the state at a position still counts them (they were the
-- state before the join). An outlier that /backfill returns moves into the
-- line at its place in history.

UPDATE events SET stream_ordering = stream_ordering - 4611686018427387904 WHERE stream_ordering < 0;
UPDATE current_state SET stream_ordering = stream_ordering - 4611686018427387904 WHERE stream_ordering < 0;

DO $$
DECLARE
    lowest BIGINT;
BEGIN
    SELECT LEAST(min(stream_ordering), -4611686018427387904) INTO lowest FROM events;
    EXECUTE 'ALTER SEQUENCE outlier_stream MAXVALUE -4611686018427387905'
        || ' START WITH -4611686018427387905 RESTART WITH ' || (lowest - 1);
END $$;

CREATE SEQUENCE backfill_stream INCREMENT BY -1 START WITH -1 MAXVALUE -1 MINVALUE -4611686018427387903;
