"""
Room membership (spec: "Room membership"): the content of member events.
"""
from __future__ import annotations

from typing import Any

from ruma_tx.matrix.types import JsonDict


def member_content(membership: str, *, reason: str | None = None, displayname: str | None = None,
                   avatar_url: str | None = None, **extra: Any) -> JsonDict:
    content: JsonDict = {"membership": membership, **extra}
    if reason is not None:
        content["reason"] = reason
    if displayname is not None:
        content["displayname"] = displayname
    if avatar_url is not None:
        content["avatar_url"] = avatar_url
    return content
