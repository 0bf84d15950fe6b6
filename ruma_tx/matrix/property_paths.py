"""Dot-separated property paths (spec appendix), used by filters and push rules."""
from __future__ import annotations


def split_property_path(path: str) -> list[str]:
    """
    Split a dot-separated property path: C{.} separates names, C{\\.} is a
    literal dot and C{\\\\} a literal backslash; any other backslash is
    kept as is.

    @param path: E.g. C{"content.m\\.relates_to"}.
    @return: E.g. C{["content", "m.relates_to"]}.
    """
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts
