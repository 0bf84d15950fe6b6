"""
A recording HTTP proxy in front of a daemon, for client libraries that
make their own requests (matrix-js-sdk, Hydrogen in a browser): every
response they get is validated against the spec's OpenAPI, as the test
client's are, and every exchange is kept for the test to inspect. Its
/.well-known/matrix/client names the proxy, so that clients which follow
it stay behind the proxy.
"""
from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

#: Where clients discover the homeserver's address (spec: "Server Discovery").
WELL_KNOWN = "/.well-known/matrix/client"
#: Headers that belong to one connection, not to the message.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
              "te", "trailer", "upgrade"}


def as_v3(path: str) -> str:
    """
    The spec's path for a request: r0 is the same API as v3 (which only
    renamed it), and the spec documents v3, so r0 requests (Hydrogen's)
    are validated as their v3 twins.
    """
    for api in ("/_matrix/client/", "/_matrix/media/"):
        if path.startswith(api + "r0/"):
            return api + "v3/" + path[len(api) + 3:]
    return path


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy: C{problem} is why its response broke the spec, or C{None}."""

    method: str
    path: str
    status: int
    problem: str | None


class SpecCheckingProxy:
    """
    Forwards C{127.0.0.1:port} to C{upstream} (a daemon's base URL),
    validating each response with C{spec} (a L{spec.SpecValidator}).
    """

    def __init__(self, upstream: str, spec) -> None:
        self.exchanges: list[Exchange] = []
        self.closed = False
        target = urlsplit(upstream)
        lock = threading.Lock()
        self._lock = lock
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                split = urlsplit(self.path)
                try:
                    status, reason, response_headers, data = self._ask_upstream(body)
                except (OSError, http.client.HTTPException) as e:
                    if not proxy.closed:  # at the end, open long-polls may see the daemon stop
                        proxy._record(Exchange(self.command, split.path, 502, f"upstream failed: {e!r}"))
                    self.close_connection = True
                    return
                if split.path == WELL_KNOWN and status == 200:
                    data = proxy._as_homeserver(data)
                problem = None
                try:
                    with lock:
                        spec.validate(self.command, as_v3(split.path), dict(parse_qsl(split.query)), body,
                                      status, data, {k.lower(): v for k, v in response_headers})
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    problem = f"{type(e).__name__}: {e}"[:2000]
                # Kept before answering: once the client has its answer, the test may look.
                proxy._record(Exchange(self.command, split.path, status, problem))
                try:
                    self.send_response(status, reason)
                    for name, value in response_headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True  # the client went away (an aborted /sync)

            def _ask_upstream(self, body: bytes | None):
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                    return response.status, response.reason, kept, data
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _forward

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "SpecCheckingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True
        self._server.shutdown()
        self._server.server_close()

    def _as_homeserver(self, data: bytes) -> bytes:
        """
        The daemon's discovery answer naming this proxy as the homeserver:
        clients that follow it (Hydrogen does) stay behind the proxy.
        """
        document = json.loads(data)
        document.setdefault("m.homeserver", {})["base_url"] = self.base_url
        return json.dumps(document).encode()

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def problems(self) -> list[Exchange]:
        """The exchanges whose response did not match the spec."""
        return [e for e in self.exchanges if e.problem is not None]
