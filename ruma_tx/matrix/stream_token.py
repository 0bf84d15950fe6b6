"""
Stream tokens handed to clients: /sync's next_batch and since, and the
pagination tokens of /messages (the same format, so a sync prev_batch or
next_batch can start a pagination).

Format: C{s<stream position>_<typing serial>}. Opaque to clients. A
sliding-sync C{pos} is such a token followed by its connection's nonce and
generation (C{_<nonce>_<generation>}); it starts a pagination too (MSC4186).

Stream positions: events sent or received live take 1, 2, ...; events of
other servers' history fetched with /backfill take -1, -2, ... (the older
the lower), so that a pagination token may be negative; events outside the
line (outliers, soft-failed: never shown to clients) lie at or below
L{OUTSIDE_LINE} (storage schema 026 and 030).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: Positions at or below this one are outside the line (see above); it is
#: also the position before the line's first event, where a pagination of
#: the whole room starts.
OUTSIDE_LINE = -(1 << 62)

_TOKEN = re.compile(r"s(-[0-9]{1,19}|[0-9]{1,18})_([0-9]{1,18})(?:_([0-9a-z]{1,16})_([0-9]{1,18}))?")


class InvalidToken(ValueError):
    """Not a token this server made."""


@dataclass(frozen=True, order=True)
class StreamToken:
    stream: int
    typing: int = 0

    def __str__(self) -> str:
        return f"s{self.stream}_{self.typing}"

    @classmethod
    def parse(cls, text: str, *, backfilled: bool = False) -> "StreamToken":
        """
        @param backfilled: also accept a position in backfilled history
            (negative): pagination tokens may point there, sync tokens never.
        """
        match = _TOKEN.fullmatch(text)
        if match is None or int(match.group(1)) < (OUTSIDE_LINE if backfilled else 0):
            raise InvalidToken(f"Invalid token {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class SlidingPos:
    """A sliding-sync C{pos}: where the response ended, on which connection state."""

    token: StreamToken
    nonce: str
    generation: int

    def __str__(self) -> str:
        return f"{self.token}_{self.nonce}_{self.generation}"

    @classmethod
    def parse(cls, text: str) -> "SlidingPos":
        match = _TOKEN.fullmatch(text)
        if match is None or match.group(3) is None or match.group(1).startswith("-"):
            raise InvalidToken(f"Invalid pos {text!r}")
        return cls(StreamToken(int(match.group(1)), int(match.group(2))), match.group(3), int(match.group(4)))


def pagination_window(*, backwards: bool, from_token: StreamToken | None, to_token: StreamToken | None,
                      current: int) -> tuple[int, int]:
    """
    The stream positions C{(after, upto]} a page may take events from:
    backwards from C{from_token} (default: C{current}) down to C{to_token},
    or forwards from C{from_token} (default: the start, backfilled history
    included) up to C{to_token}; never past C{current}.
    """
    if backwards:
        upto = min(from_token.stream, current) if from_token is not None else current
        return (to_token.stream if to_token is not None else OUTSIDE_LINE), upto
    after = from_token.stream if from_token is not None else OUTSIDE_LINE
    return after, min(to_token.stream, current) if to_token is not None else current
