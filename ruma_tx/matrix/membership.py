"""
Room membership (spec: "Room membership"): the content of member events.
"""
from __future__ import annotations


def member_content(membership: str, *, reason=None, displayname=None, avatar_url=None, **extra) -> dict:
    content = {"membership": membership, **extra}
    if reason is not None:
        content["reason"] = reason
    if displayname is not None:
        content["displayname"] = displayname
    if avatar_url is not None:
        content["avatar_url"] = avatar_url
    return content
