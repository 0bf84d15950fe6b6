"""SQL of the parts of a user id stored in a column."""
from __future__ import annotations


def server_of_column(column: str) -> str:
    """
    The server of the user id in C{column}, written exactly as the index
    of member servers (schema 027) has it, so that PostgreSQL uses it.
    """
    return f"substring({column} from position(':' in {column}) + 1)"
