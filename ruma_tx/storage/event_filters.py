"""
Room event filters (types, senders, contains_url) as SQL, so that a limit
counts only the events a filter keeps.
"""
from __future__ import annotations

from ruma_tx.matrix.filters import RoomEventFilter


def _like_pattern(pattern: str) -> str:
    """A type pattern (C{*} any characters) as a LIKE pattern escaped with C{\\}."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _type_matches(pattern: str, column: str) -> tuple[str, list[object]]:
    if "*" in pattern:
        return f"{column} LIKE %s ESCAPE '\\'", [_like_pattern(pattern)]
    return f"{column} = %s", [pattern]


def filter_clause(event_filter: RoomEventFilter | None, column_prefix: str = "") -> tuple[str, list[object]]:
    """
    SQL for the event part of a C{RoomEventFilter} (types, not_types,
    senders, not_senders, contains_url), as Synapse's C{filter_to_clause};
    the same semantics as L{ruma_tx.matrix.filters.RoomEventFilter.matches}.

    @param column_prefix: the events table's alias and a dot, if any.
    """
    clauses: list[str] = []
    args: list[object] = []
    if event_filter is None:
        return "TRUE", []
    if event_filter.types is not None:
        if not event_filter.types:
            return "FALSE", []
        parts = [_type_matches(p, column_prefix + "type") for p in event_filter.types]
        clauses.append("(" + " OR ".join(sql for sql, _ in parts) + ")")
        args += [a for _, part_args in parts for a in part_args]
    for pattern in event_filter.not_types:
        sql, part_args = _type_matches(pattern, column_prefix + "type")
        clauses.append(f"NOT ({sql})")
        args += part_args
    if event_filter.senders is not None:
        clauses.append(f"{column_prefix}sender = ANY(%s)")
        args.append(list(event_filter.senders))
    if event_filter.not_senders:
        clauses.append(f"NOT ({column_prefix}sender = ANY(%s))")
        args.append(list(event_filter.not_senders))
    if event_filter.contains_url is not None:
        content = f"({column_prefix}pdu::jsonb -> 'content')"
        has_url = f"(jsonb_typeof{content} = 'object' AND {content} ? 'url')"
        clauses.append(has_url if event_filter.contains_url else f"NOT {has_url}")
    return (" AND ".join(clauses) or "TRUE"), args
