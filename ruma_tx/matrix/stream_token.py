"""
Stream tokens handed to clients: /sync's next_batch and since, and the
pagination tokens of /messages (the same format, so a sync prev_batch or
next_batch can start a pagination).

Format: C{s<stream position>_<typing serial>}. Opaque to clients. A
sliding-sync C{pos} is such a token followed by its connection's nonce and
generation (C{_<nonce>_<generation>}); it starts a pagination too (MSC4186).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"s([0-9]{1,18})_([0-9]{1,18})(?:_([0-9a-z]{1,16})_([0-9]{1,18}))?")


class InvalidToken(ValueError):
    """Not a token this server made."""


@dataclass(frozen=True, order=True)
class StreamToken:
    stream: int
    typing: int = 0

    def __str__(self) -> str:
        return f"s{self.stream}_{self.typing}"

    @classmethod
    def parse(cls, text: str) -> "StreamToken":
        match = _TOKEN.fullmatch(text)
        if match is None:
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
        if match is None or match.group(3) is None:
            raise InvalidToken(f"Invalid pos {text!r}")
        return cls(StreamToken(int(match.group(1)), int(match.group(2))), match.group(3), int(match.group(4)))


def pagination_window(*, backwards: bool, from_token: StreamToken | None, to_token: StreamToken | None,
                      current: int) -> tuple[int, int]:
    """
    The stream positions C{(after, upto]} a page may take events from:
    backwards from C{from_token} (default: C{current}) down to C{to_token},
    or forwards from C{from_token} (default: the start) up to C{to_token};
    never past C{current}.
    """
    if backwards:
        upto = min(from_token.stream, current) if from_token is not None else current
        return (to_token.stream if to_token is not None else 0), upto
    after = from_token.stream if from_token is not None else 0
    return after, min(to_token.stream, current) if to_token is not None else current
