"""
Presence (spec: "Presence"): effective states, and the presence events
clients see.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ruma_tx.matrix.types import JsonDict

ONLINE = "online"

UNAVAILABLE = "unavailable"

OFFLINE = "offline"

PRESENCE_STATES = (ONLINE, UNAVAILABLE, OFFLINE)

#: An online user inactive this long shows as unavailable (Synapse's
#: C{IDLE_TIMER}, 5 minutes; the spec's example).
IDLE_AFTER_MS = 5 * 60 * 1000

#: An online user active this recently is C{currently_active} (Synapse's
#: C{LAST_ACTIVE_GRANULARITY}, 1 minute).
CURRENTLY_ACTIVE_MS = 60 * 1000


@dataclass(frozen=True)
class Presence:
    """
    @ivar last_active_ts: when the user was last active (ms), 0 if never.
    """

    state: str
    status_msg: str | None = None
    last_active_ts: int = 0


def effective_state(presence: Presence, now_ms: int, idle_after_ms: int = IDLE_AFTER_MS) -> str:
    """The state to show: C{online} becomes C{unavailable} once idle."""
    if (presence.state == ONLINE and presence.last_active_ts
            and now_ms - presence.last_active_ts > idle_after_ms):
        return UNAVAILABLE
    return presence.state


def presence_content(presence: Presence, now_ms: int) -> JsonDict:
    """
    The content of an C{m.presence} event, also the body of C{GET
    /presence/{userId}/status}.
    """
    state = effective_state(presence, now_ms)
    content: JsonDict = {"presence": state}
    if presence.last_active_ts:
        content["last_active_ago"] = max(0, now_ms - presence.last_active_ts)
    if presence.status_msg is not None:
        content["status_msg"] = presence.status_msg
    if state == ONLINE:
        content["currently_active"] = now_ms - presence.last_active_ts < CURRENTLY_ACTIVE_MS
    return content


def presence_event(user_id: str, presence: Presence, now_ms: int) -> JsonDict:
    return {"type": "m.presence", "sender": user_id, "content": presence_content(presence, now_ms)}


def after_sync(current: Presence, set_presence: str, now_ms: int) -> Presence | None:
    """
    A user's presence after a /sync with C{set_presence} (spec: omitted or
    C{online} marks them online, C{unavailable} idle, C{offline} leaves
    their presence alone), or C{None} when what others see does not
    change: then the caller only remembers an C{online} sync's activity.
    """
    if set_presence == OFFLINE:
        return None
    if set_presence == ONLINE:
        # As Synapse, a sync marks the user online even after they set
        # "unavailable" themselves; it refreshes their activity either way.
        updated = replace(current, state=ONLINE, last_active_ts=now_ms)
    elif set_presence == UNAVAILABLE:
        updated = replace(current, state=UNAVAILABLE)
    else:
        raise ValueError(f"set_presence must be one of {', '.join(PRESENCE_STATES)}")
    if effective_state(current, now_ms) == updated.state:
        return None
    return updated


