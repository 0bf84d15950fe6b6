"""
A real push gateway for the push tests: a Twisted web server on 127.0.0.1
inside the test process, serving C{POST /_matrix/push/v1/notify}. It
records every notification it is sent (each checked against the Push
Gateway API's schema when the spec is here), and answers as the test
says: accept, fail with a status, hang, or reject pushkeys.
"""
from __future__ import annotations

import itertools
import json
from urllib.parse import quote

import yaml
from twisted.internet import defer, reactor
from twisted.protocols import policies
from twisted.web import resource, server

from polling import within_deadline
from spec import SPEC_AVAILABLE, SPEC_DIR

NOTIFY_PATH = "/_matrix/push/v1/notify"


def _notify_schema() -> dict | None:
    """The request body schema of C{/notify} in the spec's push gateway API."""
    path = SPEC_DIR / "data" / "api" / "push-gateway" / "push_notifier.yaml"
    if not SPEC_AVAILABLE or not path.is_file():
        return None
    document = yaml.safe_load(path.read_text())
    return document["paths"]["/notify"]["post"]["requestBody"]["content"]["application/json"]["schema"]


_SCHEMA = _notify_schema()


def validate_notification(body: dict) -> None:
    """Raise unless C{body} is a valid C{/notify} request body (when the spec is here)."""
    if _SCHEMA is None:
        return
    import jsonschema

    jsonschema.validate(body, _SCHEMA)


class _Notify(resource.Resource):
    isLeaf = True

    def __init__(self, gateway: PushGateway) -> None:
        super().__init__()
        self._gateway = gateway

    def render_POST(self, request):  # noqa: N802
        if request.path != NOTIFY_PATH.encode():
            request.setResponseCode(404)
            return b'{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}'
        body = json.loads(request.content.read())
        return self._gateway.received_one(body, request)


class PushGateway:
    """
    @ivar received: the notifications received, in order (their C{notification} objects).
    @ivar status: the status answered (200, or an error to make the server retry).
    @ivar hang: never answer (requests stay open, in C{hanging}).
    @ivar rejected: pushkeys answered as rejected.
    @ivar invalid: the bodies that did not match the spec's schema.
    """

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        self.hang = False
        self.rejected: list[str] = []
        self.hanging: list[server.Request] = []
        self.invalid: list[tuple[dict, str]] = []
        self._port = None
        # Keeps its live connections, so that closing the gateway cuts them.
        self._factory = policies.WrappingFactory(server.Site(_Notify(self)))
        self._port_number = 0
        self._waiters: list[tuple[object, defer.Deferred]] = []

    def listen(self) -> PushGateway:
        """Listen (again, on the same port after L{close})."""
        self._port = reactor.listenTCP(self._port_number, self._factory, interface="127.0.0.1")
        self._port_number = self._port.getHost().port
        return self

    async def close(self) -> None:
        """Stop listening and cut every connection: the gateway is down until L{listen}."""
        for connection in list(self._factory.protocols):
            connection.transport.abortConnection()
        self.hanging = []
        if self._port is not None:
            await self._port.stopListening()
            self._port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port_number}{NOTIFY_PATH}"

    def received_one(self, body: dict, request: server.Request) -> bytes | int:
        try:
            validate_notification(body)
        except Exception as e:  # recorded: the test asserts there is none
            self.invalid.append((body, str(e)))
        self.received.append(body["notification"])
        # The answer is decided now, by the settings under which it came;
        # tests waiting for it resume after (and may change them for the next).
        reactor.callLater(0, self._fire_waiters)
        if self.hang:
            self.hanging.append(request)
            return server.NOT_DONE_YET
        request.setResponseCode(self.status)
        request.setHeader(b"Content-Type", b"application/json")
        if self.status != 200:
            return b'{"error": "try again later"}'
        return json.dumps({"rejected": self.rejected}).encode()

    def _fire_waiters(self) -> None:
        for entry in list(self._waiters):
            ready, waiter = entry
            result = ready()
            if result is not None:
                self._waiters.remove(entry)
                waiter.callback(result)

    def wait_for(self, count: int, *, events_only: bool = False) -> defer.Deferred:
        """
        Fires with the notifications received (only those about events,
        not badge updates, if C{events_only}) once there are C{count};
        fails at the deadline.
        """
        def ready():
            seen = self._seen(events_only)
            return seen if len(seen) >= count else None
        return self._wait(ready)

    def wait_for_events(self, *event_ids: str) -> defer.Deferred:
        """Fires with the notifications received once every one of C{event_ids} is among them."""
        def ready():
            return self.received[:] if set(event_ids) <= {n.get("event_id") for n in self.received} else None
        return self._wait(ready)

    def _wait(self, ready) -> defer.Deferred:
        result = ready()
        if result is not None:
            return defer.succeed(result)
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append((ready, waiter))
        return within_deadline(waiter)

    def _seen(self, events_only: bool) -> list[dict]:
        return [n for n in self.received if "event_id" in n or not events_only]


# -- what the push tests do through the client API ---------------------------

_txn = itertools.count(1)

#: A daemon that may reach the gateway on loopback, retrying fast.
PUSH_CONFIG = (
    '[outbound]\nip_range_allowlist = ["127.0.0.1/32"]\n'
    "[push]\nbackoff_initial_s = 0.2\nbackoff_max_s = 1.0\n"
    "[rate_limits]\nenabled = false\n"
)


def pusher_body(user: dict, url: str, *, pushkey: str | None = None, data: dict | None = None,
                **fields) -> dict:
    """A C{/pushers/set} body for an http pusher of C{user} (its pushkey named after the user)."""
    return {
        "kind": "http", "app_id": "org.example.app", "pushkey": pushkey or f"key-{user['user_id']}",
        "app_display_name": "Example App", "device_display_name": "Phone", "lang": "en",
        "data": {"url": url, **(data or {})}, **fields,
    }


async def set_pusher(client, user: dict, url: str, **options) -> dict:
    """Set an http pusher for C{user}; return the body sent."""
    body = pusher_body(user, url, **options)
    response = await client.request("POST", "pushers/set", body, token=user["access_token"])
    assert response.code == 200, response
    assert response.json == {}
    return body


async def get_pushers(client, user: dict) -> list[dict]:
    response = await client.request("GET", "pushers", token=user["access_token"])
    assert response.code == 200, response
    return response.json["pushers"]


async def create_room(client, creator: dict, **body) -> str:
    response = await client.request("POST", "createRoom", {"preset": "public_chat", **body},
                                    token=creator["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{quote(room_id)}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def send_message(client, user: dict, room_id: str, body: str = "hello", **content) -> str:
    response = await client.request(
        "PUT", f"rooms/{quote(room_id)}/send/m.room.message/p{next(_txn)}",
        {"msgtype": "m.text", "body": body, **content}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def group_room(client, *members: dict) -> str:
    """A public room of the first member, joined by the others (three or more: plain messages notify)."""
    room_id = await create_room(client, members[0])
    for member in members[1:]:
        await join(client, member, room_id)
    return room_id
