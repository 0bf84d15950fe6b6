"""
Pushers and what they send (spec: "Push Notifications", C{/pushers/set};
the Push Gateway API's C{POST /_matrix/push/v1/notify}). Pure: the
request's validation, a pusher as C{GET /pushers} shows it, the push
actions as stored, and the JSON a push gateway receives.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param
from ruma_tx.matrix.push_evaluation import actions_tweaks
from ruma_tx.matrix.types import JsonDict

#: Spec: C{app_id} "Max length, 64 chars"; C{pushkey} "Max length, 512 bytes".
APP_ID_MAX_CHARS = 64
PUSHKEY_MAX_BYTES = 512

#: Spec: C{data.url} "MUST be an HTTPS URL with a path of C{/_matrix/push/v1/notify}".
NOTIFY_PATH = "/_matrix/push/v1/notify"

#: The one C{data.format} the spec defines; absent means every event field.
EVENT_ID_ONLY = "event_id_only"

HTTP = "http"

#: Fields C{/pushers/set} requires unless C{kind} is null.
_REQUIRED_TO_SET = ("app_display_name", "device_display_name", "lang", "data")


@dataclass(frozen=True)
class PusherSettings:
    """
    A valid C{POST /pushers/set} that creates or updates an C{http} pusher.

    @ivar data: the pusher's C{data}, C{url} included.
    @ivar append: keep other users' pushers with the same app id and pushkey.
    """

    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: JsonDict
    append: bool


@dataclass(frozen=True)
class PusherDeletion:
    """A valid C{POST /pushers/set} with C{kind} null: delete this pusher of the user."""

    app_id: str
    pushkey: str


def parse_pusher_request(body: JsonDict) -> PusherSettings | PusherDeletion:
    """
    Validate a C{POST /pushers/set} body.

    @raise BadRequest: C{M_MISSING_PARAM} naming every missing field,
        C{M_BAD_JSON} for a field of the wrong type, C{M_INVALID_PARAM} for
        a value out of bounds: an app id or pushkey too long, a kind other
        than C{http} (C{email} too: this server sends no email, it has no
        mail server to send it with), a C{data.url} that is not an absolute
        http(s) URL ending in C{/_matrix/push/v1/notify}, an unknown
        C{data.format}.
    """
    missing = [name for name in ("kind", "app_id", "pushkey") if name not in body]
    kind = body.get("kind")
    if kind is not None:
        missing += [name for name in _REQUIRED_TO_SET if body.get(name) is None]
    if missing:
        raise missing_param(f"Missing parameters: {', '.join(missing)}")
    app_id = _string(body, "app_id")
    pushkey = _string(body, "pushkey")
    if not app_id or len(app_id) > APP_ID_MAX_CHARS:
        raise invalid_param(f"'app_id' must be 1 to {APP_ID_MAX_CHARS} characters long")
    if not pushkey or len(pushkey.encode("utf-8")) > PUSHKEY_MAX_BYTES:
        raise invalid_param(f"'pushkey' must be 1 to {PUSHKEY_MAX_BYTES} bytes long")
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise bad_json("'append' must be true or false")
    if kind is None:
        return PusherDeletion(app_id, pushkey)
    if not isinstance(kind, str):
        raise bad_json("'kind' must be a string or null")
    if kind == "email":
        raise invalid_param("Email pushers are not supported: this server does not send email")
    if kind != HTTP:
        raise invalid_param(f"Unknown pusher kind {kind!r}: the only kind supported is 'http'")
    data = body["data"]
    if not isinstance(data, dict):
        raise bad_json("'data' must be an object")
    check_http_data(data)
    profile_tag = body.get("profile_tag")
    if profile_tag is not None and not isinstance(profile_tag, str):
        raise bad_json("'profile_tag' must be a string")
    return PusherSettings(
        app_id=app_id, pushkey=pushkey, kind=kind,
        app_display_name=_string(body, "app_display_name"),
        device_display_name=_string(body, "device_display_name"),
        profile_tag=profile_tag, lang=_string(body, "lang"), data=data, append=append,
    )


def check_http_data(data: JsonDict) -> None:
    """
    Check an C{http} pusher's C{data}: C{url} an absolute C{http} or
    C{https} URL whose path is the notify endpoint, C{format} absent or
    C{event_id_only}. The spec asks for HTTPS; plain HTTP is accepted too,
    as Synapse does ("it isn't up to the homeserver to verify that"): a
    gateway on the operator's own network is reached over HTTP.

    @raise BadRequest: as L{parse_pusher_request} says.
    """
    url = data.get("url")
    if url is None:
        raise missing_param("'data.url' is required for an http pusher")
    if not isinstance(url, str):
        raise bad_json("'data.url' must be a string")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise invalid_param(f"'data.url' is not a valid URL: {url!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise invalid_param("'data.url' must be an absolute https (or http) URL")
    if parts.path != NOTIFY_PATH:
        raise invalid_param(f"'data.url' must have the path {NOTIFY_PATH!r}")
    if "format" in data and data["format"] != EVENT_ID_ONLY:
        raise invalid_param(f"'data.format' must be {EVENT_ID_ONLY!r} or absent")


def _string(body: JsonDict, name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    return value


@dataclass(frozen=True)
class Pusher:
    """
    A stored pusher.

    @ivar pusher_id: its row's id (a pusher removed and set again gets a new one).
    @ivar pushkey_ts_ms: when its pushkey was last set.
    @ivar last_stream_ordering: it has delivered (or given up on) every
        notification up to this stream position.
    @ivar failing_since: when its gateway started failing (ms), or C{None}.
    """

    pusher_id: int
    user_id: str
    device_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: JsonDict
    pushkey_ts_ms: int
    last_stream_ordering: int
    failing_since: int | None = None

    @property
    def url(self) -> str:
        return str(self.data["url"])

    @property
    def event_id_only(self) -> bool:
        return self.data.get("format") == EVENT_ID_ONLY


def pusher_json(pusher: Pusher) -> JsonDict:
    """A pusher as C{GET /pushers} shows it."""
    shown: JsonDict = {
        "pushkey": pusher.pushkey, "kind": pusher.kind, "app_id": pusher.app_id,
        "app_display_name": pusher.app_display_name,
        "device_display_name": pusher.device_display_name,
        "lang": pusher.lang, "data": pusher.data,
    }
    if pusher.profile_tag is not None:
        shown["profile_tag"] = pusher.profile_tag
    return shown


# -- push actions as stored ------------------------------------------------

def plain_actions(notify: bool, highlight: bool) -> list[Any]:
    """The actions that say only C{notify} and C{highlight}."""
    actions: list[Any] = ["notify"] if notify else []
    if highlight:
        actions.append({"set_tweak": "highlight"})
    return actions


def detailed_actions_json(actions: Sequence[Any], notify: bool, highlight: bool) -> str | None:
    """
    What to store beside the C{notify} and C{highlight} flags of a push
    action: the actions as JSON when they say more (a sound, say), else
    C{None} (most of them: storing nothing keeps sends cheap).
    """
    if list(actions) == plain_actions(notify, highlight):
        return None
    return json.dumps(list(actions), separators=(",", ":"))


def stored_actions(notify: bool, highlight: bool, actions_json: str | None) -> list[Any]:
    """The actions of a stored push action (see L{detailed_actions_json})."""
    if actions_json is None:
        return plain_actions(notify, highlight)
    actions = json.loads(actions_json)
    return actions if isinstance(actions, list) else plain_actions(notify, highlight)


# -- what a push gateway receives ------------------------------------------

@dataclass(frozen=True)
class RoomContext:
    """
    What the full format says of the room and the sender, besides the event.

    @ivar room_name: the room's C{m.room.name}, if any.
    @ivar room_alias: its canonical alias, if any.
    @ivar sender_display_name: the sender's display name in the room, if any.
    """

    room_name: str | None = None
    room_alias: str | None = None
    sender_display_name: str | None = None


def device_json(pusher: Pusher, tweaks: Mapping[str, Any] | None) -> JsonDict:
    """
    The pusher as one of a notification's C{devices}: its C{data} without
    C{url} (spec: "minus the C{url} key"), its pushkey's time in seconds,
    and the tweaks, if any.
    """
    device: JsonDict = {
        "app_id": pusher.app_id,
        "pushkey": pusher.pushkey,
        "pushkey_ts": pusher.pushkey_ts_ms // 1000,
        "data": {k: v for k, v in pusher.data.items() if k != "url"},
    }
    if tweaks:
        device["tweaks"] = dict(tweaks)
    return device


def counts_json(unread: int) -> JsonDict:
    """
    The notification's C{counts}. The spec says counts of zero "should be
    omitted"; C{unread} is sent even at 0, as Synapse does, because a
    gateway clears the app's badge only when told it is 0 (an absent count
    leaves the badge as it was).
    """
    return {"unread": unread}


def notification_priority(event_type: str, tweaks: Mapping[str, Any]) -> str:
    """
    C{high} for what makes a sound or highlights, and for encrypted events
    (their effect on the device is unknown); C{low} otherwise, to spare
    batteries. The spec leaves it to the server; this is what Synapse does.
    """
    if event_type == "m.room.encrypted" or tweaks.get("highlight") or tweaks.get("sound"):
        return "high"
    return "low"


def event_notification(*, user_id: str, event: JsonDict, room_id: str, actions: Sequence[Any],
                       unread: int, pusher: Pusher, context: RoomContext,
                       include_content: bool) -> JsonDict:
    """
    The C{/notify} body for an event that notifies C{user_id}.

    With C{data.format} C{event_id_only}, only the ids, the priority, the
    counts and the device go (the spec requires no more; the tweaks stay
    out, as Synapse leaves them). Otherwise every event field the Push
    Gateway API lists, the content unless the server is configured not to
    send it.

    @param event: the event in client format (C{event_id}, C{type},
        C{sender}, C{content}, C{state_key}).
    """
    tweaks = actions_tweaks(actions)
    notification: JsonDict = {
        "event_id": event["event_id"],
        "room_id": room_id,
        "prio": notification_priority(str(event.get("type")), tweaks),
        "counts": counts_json(unread),
    }
    if pusher.event_id_only:
        notification["devices"] = [device_json(pusher, None)]
        return {"notification": notification}
    notification["type"] = event["type"]
    notification["sender"] = event["sender"]
    if context.sender_display_name:
        notification["sender_display_name"] = context.sender_display_name
    if context.room_name:
        notification["room_name"] = context.room_name
    if context.room_alias:
        notification["room_alias"] = context.room_alias
    if event["type"] == "m.room.member" and isinstance(event.get("state_key"), str):
        notification["user_is_target"] = event["state_key"] == user_id
    content = event.get("content")
    if include_content and isinstance(content, dict) and content:
        notification["content"] = content
    notification["devices"] = [device_json(pusher, tweaks)]
    return {"notification": notification}


def badge_notification(unread: int, pusher: Pusher) -> JsonDict:
    """
    The C{/notify} body that only updates the unread count (the user read
    something): no event, low priority (spec: "The counts may be sent
    along with a notification about an event or by themselves").
    """
    return {"notification": {"prio": "low", "counts": counts_json(unread),
                             "devices": [device_json(pusher, None)]}}


def rejected_pushkeys(answer: object) -> list[str]:
    """
    The pushkeys a gateway's C{/notify} answer rejects (its C{rejected}
    list); anything else in the answer is ignored.
    """
    rejected = answer.get("rejected") if isinstance(answer, dict) else None
    if not isinstance(rejected, list):
        return []
    return [pushkey for pushkey in rejected if isinstance(pushkey, str)]
