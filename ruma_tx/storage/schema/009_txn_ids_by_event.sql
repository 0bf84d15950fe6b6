-- /sync shows a device the transaction ids of its own events: look them up by event.
CREATE INDEX event_txn_ids_by_event ON event_txn_ids (event_id);
