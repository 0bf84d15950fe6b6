"""
Fixtures: a private PostgreSQL cluster for the whole run, real ruma_tx
daemons (C{twistd -n ruma} subprocesses, each on a fresh database and a
free port), and an HTTP client that checks every response against the spec.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import treq
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

sys.path.insert(0, str(Path(__file__).parent))

from fedcerts import FederationCa  # noqa: E402
from federation_spec import FEDERATION_SPEC_AVAILABLE, SERVER_SERVER_DIR, FederationSpecValidator  # noqa: E402
from pgcluster import TestCluster  # noqa: E402
from spec import SPEC_AVAILABLE, SPEC_DIR, SpecValidator  # noqa: E402

TWISTD = str(Path(sys.executable).parent / "twistd")
_databases = itertools.count(1)
_users = itertools.count(1)
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_localpart(prefix: str = "user") -> str:
    return f"{prefix}{os.getpid()}x{next(_users)}"


def password_auth(user_id: str, session: str, password: str = PASSWORD) -> dict:
    """The C{auth} dict answering the UIA C{m.login.password} stage of C{session} as C{user_id}."""
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "session": session,
    }


def pytest_report_header(config):
    if SPEC_AVAILABLE:
        federation = "" if FEDERATION_SPEC_AVAILABLE else f"; NO Server-Server API at {SERVER_SERVER_DIR}"
        return f"Matrix spec: {SPEC_DIR} (responses and events are validated against it{federation})"
    return (f"Matrix spec: NOT FOUND at {SPEC_DIR} (set RUMA_SPEC_DIR): responses and events are "
            f"NOT validated against the spec in this run")


def pytest_sessionstart(session):
    if os.environ.get("RUMA_REQUIRE_SPEC") == "1" and not SPEC_AVAILABLE:
        raise pytest.UsageError(f"RUMA_REQUIRE_SPEC=1 but there is no Matrix spec at {SPEC_DIR}")
    if os.environ.get("RUMA_REQUIRE_SPEC") == "1" and not FEDERATION_SPEC_AVAILABLE:
        raise pytest.UsageError(f"RUMA_REQUIRE_SPEC=1 but there is no Server-Server API at {SERVER_SERVER_DIR}")


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = TestCluster()
    cluster.start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="session")
def spec():
    return SpecValidator()


@pytest.fixture(scope="session")
def federation_spec():
    """The Server-Server API's validator (federation responses)."""
    return FederationSpecValidator()


class Homeserver:
    """A running daemon: C{twistd -n ruma} with a generated config."""

    def __init__(self, directory: Path, dsn: str | None, server_name: str | None = None,
                 extra_config: str = "", federation: dict | None = None, ca: FederationCa | None = None,
                 federation_host: str = "localhost", twistd_options: tuple[str, ...] = ()):
        self.directory = directory
        self.twistd_options = twistd_options
        self.dsn = dsn
        self.port = free_port()
        # With federation: a TLS "federation" listener on 127.0.0.1 with a
        # certificate of `ca`, and the server name <federation_host>:<its port>
        # (localhost, or 127.0.0.1 for a server whose name is an IP literal).
        self.federation_port = free_port() if federation is not None else None
        self.server_name = server_name or (
            "test.local" if federation is None else f"{federation_host}:{self.federation_port}")
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "ruma.toml"
        self.log_path = directory / "ruma.log"
        database = f'[database]\ndsn = "{dsn}"\npool_size = 4\n' if dsn else ""
        self.config_path.write_text(
            f'server_name = "{self.server_name}"\n'
            f'data_dir = "var"\n'
            f'public_baseurl = "http://localhost:{self.port}/"\n'
            f"{self._federation_config(federation, ca)}"
            f"[[listeners]]\n"
            f'endpoint = "tcp:{self.port}:interface=127.0.0.1"\n'
            f'resources = ["client"]\n'
            f"{database}"
            f"[passwords]\nbcrypt_rounds = 4\n"
            f"{extra_config}\n"
        )
        self.process = None

    def _federation_config(self, federation: dict | None, ca: FederationCa | None) -> str:
        """The federation listener (listed first, so it listens before the client one answers)."""
        if federation is None:
            return ""
        assert ca is not None, "a federating daemon needs a test CA"
        cert, key = ca.issue(self.directory / "tls")
        settings = {"enabled": True, "ca_file": str(ca.cert_path),
                    "ip_range_allowlist": ["127.0.0.0/8", "::1/128"], **federation}
        table = "".join(f"{name} = {json.dumps(value)}\n" for name, value in settings.items())
        return (f"[[listeners]]\n"
                f'endpoint = "ssl:{self.federation_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"\n'
                f'resources = ["federation"]\n'
                f"[federation]\n{table}")

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.federation_port}"

    def start(self, timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [TWISTD, "-n", *self.twistd_options, "ruma", "--config", str(self.config_path)],
            cwd=self.directory, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ruma_tx exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + "/_matrix/client/versions", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"ruma_tx did not start:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self._log.close()

    def kill(self) -> None:
        """Kill the daemon with SIGKILL (no shutdown at all), as a crash would."""
        self.process.kill()
        self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def start_homeserver(pg_cluster, tmp_path_factory):
    """Factory: start a daemon with extra TOML config on a fresh database."""
    started = []

    def start(extra_config: str = "", *, embedded: bool = False, **kwargs) -> Homeserver:
        number = next(_databases)
        dsn = None if embedded else pg_cluster.create_database(f"ruma_test_{number}")
        server = Homeserver(tmp_path_factory.mktemp(f"hs{number}"), dsn, extra_config=extra_config, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def federation_ca(tmp_path_factory):
    """The CA of every federating test daemon."""
    return FederationCa(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def start_federating(start_homeserver, federation_ca):
    """
    Factory: start a daemon that federates over TLS on loopback, named
    C{localhost:<port>}; C{federation} adds or overrides C{[federation]} keys
    (loopback is allowlisted, the test CA trusted); rate limits are off
    unless C{extra_config} has a C{[rate_limits]} table.
    """
    # Rate limits off unless a test sets them: these tests register many users from one address.
    return lambda federation=None, extra_config="": start_homeserver(
        extra_config if "[rate_limits]" in extra_config else "[rate_limits]\nenabled = false\n" + extra_config,
        federation=federation or {}, ca=federation_ca)


@pytest.fixture(scope="session")
def homeserver(start_homeserver):
    """The shared daemon most tests use: default config, guests enabled."""
    return start_homeserver("[guests]\nenabled = true\n[rate_limits]\nenabled = false\n")


class Response:
    def __init__(self, code: int, body: bytes, headers):
        self.code = code
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<Response {self.code} {self.raw[:300]!r}>"


class Client:
    """
    A treq client for one daemon. Every response to a path the spec
    documents is validated against the spec.
    """

    def __init__(self, server: Homeserver, spec: SpecValidator):
        self.server = server
        self._spec = spec
        self._pool = HTTPConnectionPool(reactor, persistent=False)

    async def request(self, method: str, path: str, body=None, *, token: str | None = None,
                      query: dict | None = None, headers: dict | None = None,
                      validate: bool = True) -> Response:
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        all_headers = {"Content-Type": ["application/json"]}
        if token is not None:
            all_headers["Authorization"] = [f"Bearer {token}"]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        response = await treq.request(
            method, self.server.base_url + path, data=data, headers=all_headers,
            params=query, pool=self._pool, timeout=60,
        )
        raw = await response.content()
        headers_out = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
        result = Response(response.code, raw, headers_out)
        if validate:
            self._spec.validate(method, path.split("?")[0], query or {}, data,
                                response.code, raw, headers_out)
        return result

    async def register(self, localpart: str | None = None, password: str = PASSWORD, **extra) -> dict:
        """Register through the UIA dummy flow; return the login response."""
        localpart = localpart or unique_localpart()
        body = {"username": localpart, "password": password, **extra}
        first = await self.request("POST", "register", body)
        assert first.code == 401, first
        body["auth"] = {"type": "m.login.dummy", "session": first.json["session"]}
        second = await self.request("POST", "register", body)
        assert second.code == 200, second
        return second.json

    async def register_guest(self, body: dict | None = None) -> dict:
        """Register a guest (C{kind=guest}); assert 200 and return the login response."""
        response = await self.request("POST", "register", body or {}, query={"kind": "guest"})
        assert response.code == 200, response
        return response.json

    async def with_password_uia(self, method: str, path: str, body: dict, user: dict,
                                password: str = PASSWORD) -> Response:
        """
        Send C{body} as C{user}, expect the 401 password-only UIA challenge,
        answer it with C{password} and return the final response.
        """
        first = await self.request(method, path, body, token=user["access_token"])
        assert first.code == 401, first
        assert first.json["flows"] == [{"stages": ["m.login.password"]}]
        auth = password_auth(user["user_id"], first.json["session"], password)
        return await self.request(method, path, {**body, "auth": auth}, token=user["access_token"])

    async def login(self, user: str, password: str = PASSWORD, **extra) -> Response:
        return await self.request("POST", "login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password, **extra,
        })


@pytest.fixture
def client(homeserver, spec):
    return Client(homeserver, spec)


@pytest.fixture
def make_client(spec):
    """Factory: a client for any daemon."""
    return lambda server: Client(server, spec)
