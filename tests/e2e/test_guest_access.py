"""
Guest accounts may call exactly the spec's guest allow-list: this walks
every route the server declares with a guest token.
"""
import importlib
import inspect
import pkgutil
import re

import pytest_twisted
from spec import SPEC_DIR, needs_spec

import ruma_tx.http
from ruma_tx.http.routing import Endpoint

GUEST_ACCESS_MD = SPEC_DIR / "text" / "client-server-api" / "modules" / "guest_access.md"


def declared_routes() -> list[tuple[Endpoint, str]]:
    """Every (endpoint, qualified name) declared by the API modules."""
    routes = []
    for module_info in pkgutil.iter_modules(ruma_tx.http.__path__):
        module = importlib.import_module(f"ruma_tx.http.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for name, fn in inspect.getmembers(cls, inspect.isfunction):
                for declared in getattr(fn, "endpoints", ()):
                    assert isinstance(declared, Endpoint)
                    routes.append((declared, f"{cls.__name__}.{name}"))
    return routes


def _shape(path: str) -> str:
    """
    A path with its parameters blanked: /rooms/<room_id>/x and /rooms/{roomId}/x
    match. A state key may be empty, so .../state/{}/ and .../state/{} are
    the spec's .../state/{}/{}.
    """
    shape = re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)
    if re.search(r"/state/\{\}/?$", shape):
        shape = shape.rstrip("/") + "/{}"
    return shape


def spec_allow_list() -> set[tuple[str, str]]:
    """(METHOD, path shape) of every endpoint the spec lets guests call."""
    text = GUEST_ACCESS_MD.read_text()
    return {(m, _shape(p)) for m, p in re.findall(r"\[(GET|PUT|POST|DELETE) (/[^\]]+)\]", text)}


#: Endpoints open to guests beyond the spec's list, each by a setting:
#: TURN credentials, as Synapse, unless [voip] turn_allow_guests = false.
BEYOND_THE_LIST = {("GET", "/voip/turnServer")}


@needs_spec
def test_declared_guest_routes_are_on_the_spec_allow_list():
    """Every route declared open to guests is one the spec's allow-list names, and vice versa."""
    allowed = spec_allow_list()
    assert ("GET", "/sync") in allowed  # the parse found the list
    for declared, name in declared_routes():
        if declared.auth == "none":
            continue
        shape = (declared.method, _shape(declared.path))
        if declared.guest:
            assert shape in allowed | BEYOND_THE_LIST, f"{name} is open to guests but not on the spec's allow-list"
        else:
            assert shape not in allowed, f"{name} is on the spec's allow-list but refuses guests"


def _fill(path: str, guest: dict) -> str:
    values = {"user_id": guest["user_id"], "device_id": guest["device_id"]}
    return re.sub(r"<(?:[a-z]+:)?([^>]+)>", lambda m: values.get(m.group(1), "x"), path)


#: Every optional endpoint switched on, so that each declared route answers.
ALL_FEATURES = "[guests]\nenabled = true\n[rate_limits]\nenabled = false\n[media]\nurl_preview_enabled = true\n"


@pytest_twisted.ensureDeferred
async def test_guest_token_walks_every_route(start_homeserver, make_client):
    """A guest token gets 403 M_GUEST_ACCESS_FORBIDDEN on every authenticated route not on the allow-list, and never on those that are."""
    client = make_client(start_homeserver(ALL_FEATURES))
    guest = await client.register_guest()
    routes = declared_routes()
    assert len(routes) > 10
    for declared, name in routes:
        if declared.auth in ("none", "server"):
            continue  # no token read; federation endpoints are not on the client listener
        path = declared.prefixes[0] + _fill(declared.path, guest)
        body = {} if declared.method in ("POST", "PUT") else None
        answer = await client.request(
            declared.method, path, body, token=guest["access_token"], validate=False
        )
        forbidden_for_guests = (
            answer.code == 403 and (answer.json or {}).get("errcode") == "M_GUEST_ACCESS_FORBIDDEN"
        )
        if declared.guest:
            assert not forbidden_for_guests, f"{name} refused a guest: {answer}"
        else:
            assert forbidden_for_guests, f"{name} did not refuse a guest: {answer}"
    # The walk must not have logged the guest out: its token still works.
    whoami = await client.request("GET", "account/whoami", token=guest["access_token"])
    assert whoami.code == 200 and whoami.json["is_guest"] is True
