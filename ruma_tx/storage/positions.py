"""Where the one stream stands: the highest position anything was stored at."""
from __future__ import annotations

from ruma_tx.storage.database import Database

#: Every table whose rows carry a stream position, and that column.
STREAM_TABLES = (
    ("events", "stream_ordering"),
    ("receipts", "stream_position"),
    ("account_data", "stream_position"),
    ("presence", "stream_position"),
    ("push_rules_changes", "stream_ordering"),
    ("e2e_key_count_changes", "stream_position"),
    ("device_list_changes", "stream_position"),
    ("to_device_messages", "stream_position"),
)


async def max_stream_position(database: Database) -> int:
    """
    The highest stream position stored anywhere (0 if none): after a
    restart the stream continues above it, so no position is reused.
    """
    parts = ", ".join(f"(SELECT COALESCE(max({column}), 0) FROM {table})"
                      for table, column in STREAM_TABLES)
    row = await database.fetch_one(f"SELECT GREATEST({parts})")
    assert row is not None  # a SELECT without FROM: always one row
    return row[0]
