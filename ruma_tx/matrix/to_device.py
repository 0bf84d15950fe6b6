"""
Send-to-device messaging (spec: "Send-to-Device messaging"): validating
a request's messages and expanding them per recipient device.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    """
    One entry of a send request for a local user.

    @ivar device_id: C{None} for every device of the user.
    @ivar content_json: the content, already encoded.
    """

    user_id: str
    device_id: str | None
    content_json: str
