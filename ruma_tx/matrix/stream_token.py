"""
Stream tokens handed to clients: /sync's next_batch and since, and the
pagination tokens of /messages (the same format, so a sync prev_batch or
next_batch can start a pagination).

Format: C{s<stream position>_<typing serial>}. Opaque to clients.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"s([0-9]{1,18})_([0-9]{1,18})")


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
