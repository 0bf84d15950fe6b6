"""
The C{[server_notices]} configuration section: the account server notices
come from and the room they arrive in. Part of the schema in
L{ruma_tx.runtime.config}; kept here with its checks so that module stays
small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NoReturn

from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.services.server_notices import NoticeSettings


@dataclass(frozen=True)
class ServerNoticesConfig:
    """
    Server notices (Synapse's C{server_notices}): off until a localpart is
    set, as Synapse; the account is created on the first notice and cannot
    log in. Pick a localpart no user has.
    """

    system_mxid_localpart: str | None = None
    system_mxid_display_name: str | None = None
    system_mxid_avatar_url: str | None = None
    room_name: str = "Server Notices"
    room_topic: str | None = None
    room_avatar_url: str | None = None
    # Join the user to the notices room instead of inviting them.
    auto_join: bool = False

    def settings(self, server_name: str) -> NoticeSettings | None:
        """The settings of the notices service, or C{None} when notices are off."""
        if self.system_mxid_localpart is None:
            return None
        return NoticeSettings(
            user_id=f"@{self.system_mxid_localpart}:{server_name}", display_name=self.system_mxid_display_name,
            avatar_url=self.system_mxid_avatar_url, room_name=self.room_name, room_topic=self.room_topic,
            room_avatar_url=self.room_avatar_url, auto_join=self.auto_join)


def check_server_notices(notices: ServerNoticesConfig, server_name: str,
                         bad: Callable[[str, str], NoReturn]) -> None:
    localpart = notices.system_mxid_localpart
    if localpart is not None and not is_valid_user_id(f"@{localpart}:{server_name}"):
        bad("server_notices.system_mxid_localpart", f"{localpart!r} is not a valid localpart")
    for key in ("system_mxid_avatar_url", "room_avatar_url"):
        url = getattr(notices, key)
        if url is not None and not url.startswith("mxc://"):
            bad(f"server_notices.{key}", "must be an mxc:// URI")
