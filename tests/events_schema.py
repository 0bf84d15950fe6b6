"""
Validating events against the spec's event schemas
(shared/spec/data/event-schemas/schema/*.yaml) with C{jsonschema}.

The schemas are JSON Schema 2020-12 files that C{$ref} each other by
relative path (C{core-event-schema/state_event.yaml}, C{room_event.yaml}
from inside C{core-event-schema/}...): every file is a resource of one
C{referencing.Registry} under its C{file://} URI, retrieved on demand, so
relative references resolve as they do on disk.

Which schema an event gets:
  - C{<type>.yaml} when the spec defines the type, plus
    C{m.room.message$<msgtype>.yaml} for a message whose C{msgtype} has one;
  - otherwise the core C{state_event.yaml} or C{room_event.yaml}.

Events served by C{/sync} carry no C{room_id} (the spec's
C{ClientEventWithoutRoomID}) while the room schemas require one: pass
C{in_sync=True} (or use L{validate_sync_event}) to check them with a
placeholder room id. Stripped state (an invite's C{invite_state}) is checked
against C{stripped_state.yaml}, and its content against the type's schema.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from spec import SPEC_AVAILABLE, SPEC_DIR

EVENT_SCHEMAS = SPEC_DIR / "data" / "event-schemas"
SCHEMA_DIR = EVENT_SCHEMAS / "schema"
EXAMPLES_DIR = EVENT_SCHEMAS / "examples"

_PLACEHOLDER_ROOM_ID = "!placeholder:events-schema.invalid"
_PLACEHOLDER_EVENT_ID = "$placeholder"

__all__ = [
    "EventSchemaError", "schema_path_for", "validate_event", "validate_sync_event",
    "validate_stripped_state", "validate_events", "validate_sync_response", "load_example", "example_names",
]


class EventSchemaError(AssertionError):
    """An event does not match its schema (an AssertionError, so pytest shows it as a failure)."""


def _load_file(path: Path):
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _retrieve(uri: str) -> Resource:
    if not uri.startswith("file://"):
        raise LookupError(f"Event schemas may only refer to local files, not {uri!r}")
    path = Path(unquote(urlsplit(uri).path))
    return Resource.from_contents(_load_file(path), default_specification=DRAFT202012)


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry(retrieve=_retrieve)


@lru_cache(maxsize=None)
def _validator(schema_path: Path) -> Draft202012Validator:
    # A schema that is only a $ref to the file: the file is then retrieved
    # under its own URI, the base its relative $refs resolve against.
    return Draft202012Validator({"$ref": schema_path.as_uri()}, registry=_registry())


def schema_path_for(event: dict) -> list[Path]:
    """The schema files an event is checked against (at least one)."""
    event_type = event.get("type")
    paths = []
    if isinstance(event_type, str) and "/" not in event_type:
        own = SCHEMA_DIR / f"{event_type}.yaml"
        if own.is_file():
            paths.append(own)
        content = event.get("content")
        msgtype = content.get("msgtype") if isinstance(content, dict) else None
        if event_type == "m.room.message" and isinstance(msgtype, str) and "/" not in msgtype:
            variant = SCHEMA_DIR / f"m.room.message${msgtype}.yaml"
            if variant.is_file():
                paths.append(variant)
    if not paths:
        core = "state_event.yaml" if "state_key" in event else "room_event.yaml"
        paths.append(SCHEMA_DIR / "core-event-schema" / core)
    return paths


def _check(validator: Draft202012Validator, instance: dict, what: str, shown: dict) -> None:
    if not SPEC_AVAILABLE:
        return  # no spec here: the session header said so
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        details = "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10]
        )
        raise EventSchemaError(f"{what} does not match its schema:\n{details}\nevent: {json.dumps(shown)[:2000]}")


def validate_event(event: dict, *, in_sync: bool = False) -> dict:
    """
    Check a client-format event (C{ClientEvent}) against its schemas.

    @param in_sync: the event comes from C{/sync}, where C{room_id} is
        left out; it is then checked with a placeholder room id.
    @return: C{event}, for chaining.
    @raise EventSchemaError: on a mismatch.
    """
    if not isinstance(event, dict):
        raise EventSchemaError(f"An event must be a JSON object, not {event!r}")
    instance = event
    if in_sync and "room_id" not in event:
        instance = {**event, "room_id": _PLACEHOLDER_ROOM_ID}
    for path in schema_path_for(event):
        _check(_validator(path), instance, f"{event.get('type')!r} event ({path.name})", event)
    return event


def validate_sync_event(event: dict) -> dict:
    """L{validate_event} for an event in a C{/sync} room section."""
    return validate_event(event, in_sync=True)


def validate_stripped_state(event: dict) -> dict:
    """
    Check a stripped state event (C{invite_state}/C{knock_state}): its
    shape against C{stripped_state.yaml}, its content against its type's
    schema (as a full event made up around it).
    """
    _check(_validator(SCHEMA_DIR / "core-event-schema" / "stripped_state.yaml"), event,
           f"stripped {event.get('type')!r} event", event)
    full = {
        **event,
        "event_id": _PLACEHOLDER_EVENT_ID,
        "room_id": _PLACEHOLDER_ROOM_ID,
        "origin_server_ts": 0,
    }
    for path in schema_path_for(event):
        _check(_validator(path), full, f"stripped {event.get('type')!r} content ({path.name})", event)
    return event


def validate_events(events, *, in_sync: bool = False) -> list:
    """Validate each event of a list; return the list."""
    events = list(events)
    for event in events:
        validate_event(event, in_sync=in_sync)
    return events


def validate_sync_response(body: dict) -> dict:
    """
    Validate every event a C{/sync} response carries: the timeline and
    state of joined and left rooms, stripped state of invites and knocks,
    and ephemeral and account-data events whose type has a schema.

    @return: C{body}, for chaining.
    """
    rooms = body.get("rooms") or {}
    for section in ("join", "leave"):
        for room in (rooms.get(section) or {}).values():
            for part in ("timeline", "state", "state_after"):
                validate_events((room.get(part) or {}).get("events", ()), in_sync=True)
            for part in ("ephemeral", "account_data"):
                for event in (room.get(part) or {}).get("events", ()):
                    _validate_if_known(event)
    for section, key in (("invite", "invite_state"), ("knock", "knock_state")):
        for room in (rooms.get(section) or {}).values():
            for event in (room.get(key) or {}).get("events", ()):
                validate_stripped_state(event)
    for part in ("account_data", "presence"):
        for event in (body.get(part) or {}).get("events", ()):
            _validate_if_known(event)
    return body


def _validate_if_known(event: dict) -> None:
    """Ephemeral and account-data events: only types the spec defines have a schema to meet."""
    event_type = event.get("type") if isinstance(event, dict) else None
    if not isinstance(event_type, str) or "/" in event_type \
            or not (SCHEMA_DIR / f"{event_type}.yaml").is_file():
        return
    _check(_validator(SCHEMA_DIR / f"{event_type}.yaml"), event, f"{event_type!r} event", event)


def _resolve_example(value, directory: Path):
    """Examples merge the object they C{$ref} with their own fields (shallowly), recursively."""
    if isinstance(value, list):
        return [_resolve_example(v, directory) for v in value]
    if not isinstance(value, dict):
        return value
    resolved = {k: _resolve_example(v, directory) for k, v in value.items() if k != "$ref"}
    if "$ref" not in value:
        return resolved
    target = directory / value["$ref"]
    base = _resolve_example(_load_file(target), target.parent)
    if not resolved:
        return base
    return {**base, **resolved}


def example_names() -> list[str]:
    """The names (file stems) of the spec's event examples."""
    return sorted(p.stem for p in EXAMPLES_DIR.iterdir() if p.suffix in (".yaml", ".json"))


def load_example(name: str):
    """A spec example, C{$ref}s resolved: an event (or, for the room-state files, a list)."""
    for suffix in (".yaml", ".json"):
        path = EXAMPLES_DIR / f"{name}{suffix}"
        if path.is_file():
            return copy.deepcopy(_resolve_example(_load_file(path), path.parent))
    raise FileNotFoundError(name)

