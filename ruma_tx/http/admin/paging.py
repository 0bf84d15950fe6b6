"""
Paging of the admin API's lists as Synapse does it: C{from} is an offset
into the list, C{limit} a page's size, C{dir} C{f} (forwards) or C{b};
a page that is not the last answers a C{next_token}, the next C{from}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ruma_tx.http.parsing import query_arg, query_int
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict

#: A page's size when C{limit} is not given (Synapse's).
DEFAULT_LIMIT = 100
#: The largest number taken: JSON's safe integers, well inside PostgreSQL's BIGINT.
_MAX = 2 ** 53 - 1


@dataclass(frozen=True)
class Page:
    start: int
    limit: int
    backwards: bool

    def next_token(self, returned: int, total: int) -> int | None:
        """The C{from} of the next page, or C{None} after the last one."""
        return self.start + returned if self.start + self.limit < total else None

    def listing(self, key: str, items: list[JsonDict], total: int,
                token: Callable[[int], object] = str) -> JsonDict:
        """
        A page's body, C{{key: items, "total": total}} and its C{next_token}
        if any, as C{token} makes it: a string (most lists) or an C{int}
        (as Synapse answers some).
        """
        body: JsonDict = {key: items, "total": total}
        next_token = self.next_token(len(items), total)
        if next_token is not None:
            body["next_token"] = token(next_token)
        return body


def read_page(request: MatrixRequest, *, default_dir: str) -> Page:
    """
    @param default_dir: C{"f"} or C{"b"}, when C{dir} is not given.
    @raise BadRequest: M_INVALID_PARAM for a C{from} or C{limit} that is
        not a whole number from 0 to 2**53 - 1, or a C{dir} other than
        C{f} and C{b}.
    """
    start, limit = (query_int(request, name) for name in ("from", "limit"))
    for name, value in (("from", start), ("limit", limit)):
        if value is not None and not 0 <= value <= _MAX:
            raise invalid_param(f"'{name}' must be a whole number from 0 to {_MAX}")
    direction = query_arg(request, "dir", default_dir)
    if direction not in ("f", "b"):
        raise invalid_param("'dir' must be 'f' (forwards) or 'b' (backwards)")
    return Page(start or 0, DEFAULT_LIMIT if limit is None else limit, direction == "b")


def numeric_id(value: str, what: str) -> int:
    """
    A path's numeric id (Synapse's report ids), C{what} naming it in the error.

    @raise BadRequest: M_INVALID_PARAM when it is not a whole number from
        0 to 2**53 - 1.
    """
    if not (value.isascii() and value.isdigit() and len(value) <= 16 and int(value) <= _MAX):
        raise invalid_param(f"{what} must be a whole number from 0 to {_MAX}, not {value!r}")
    return int(value)
