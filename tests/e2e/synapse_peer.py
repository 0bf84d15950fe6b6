"""
A Synapse federation peer for interop tests (../shared/fed/synapse-peer.sh):
the fixtures that start it and a ruma_tx daemon federating with it, and a
small client for its client API shaped like the suite's own.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import treq
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

from conftest import Response, free_port

PEER_SCRIPT = Path(__file__).resolve().parents[2].parent / "shared" / "fed" / "synapse-peer.sh"

#: Interop tests are skipped only when ../shared is absent (a plain clone).
needs_peer = pytest.mark.skipif(not PEER_SCRIPT.exists(), reason=f"no Synapse peer script at {PEER_SCRIPT}")


def _key_values(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


class SynapseCa:
    """
    The peer script's CA, seen as the test CA of the conftest's federating
    daemons.

    @ivar environment: the script's environment naming the peer: give it
        to L{peer_script} to stop and start the peer again.
    """

    def __init__(self, environment: dict[str, str], cert_path: Path) -> None:
        self.environment = environment
        self.cert_path = cert_path

    def issue(self, directory: Path) -> tuple[Path, Path]:
        issued = _key_values(subprocess.run(
            ["bash", str(PEER_SCRIPT), "issue-cert", "localhost", str(directory)], env=self.environment,
            check=True, capture_output=True, text=True).stdout)
        return Path(issued["CERT"]), Path(issued["KEY"])


def peer_script(environment: dict[str, str], command: str) -> dict[str, str]:
    """Run C{synapse-peer.sh command} (C{start}, C{stop}) for the peer of C{environment}; its output."""
    done = subprocess.run(["bash", str(PEER_SCRIPT), command], env=environment, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return _key_values(done.stdout)


@pytest.fixture(scope="module")
def synapse(tmp_path_factory):
    """A Synapse peer of its own (own ports, own state and CA), stopped at the end."""
    environment = {**os.environ, "FED_HOME": str(tmp_path_factory.mktemp("synapse-fed")),
                   "FED_PORT": str(free_port()), "CLIENT_PORT": str(free_port())}
    peer = peer_script(environment, "start")
    yield peer, SynapseCa(environment, Path(peer["CA_CERT"]))
    subprocess.run(["bash", str(PEER_SCRIPT), "stop"], env=environment, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def synapse_environment(synapse):
    """The script's environment naming the module's peer (for L{peer_script}: stop it, start it again)."""
    _, ca = synapse
    return ca.environment


@pytest.fixture(scope="module")
def ruma(synapse, start_homeserver):
    """A ruma_tx daemon federating with the peer: its certificate from the peer's CA, which it trusts."""
    _, ca = synapse
    return start_homeserver(federation={}, ca=ca)


async def synapse_request(peer, method, path, body=None, token=None):
    answer = await SynapseClient(peer).request(method, path, body, token=token)
    return answer.code, answer.json


async def synapse_user(peer, displayname):
    localpart = f"syn{os.getpid()}x{free_port()}"
    body = {"username": localpart, "password": "a long enough password 1",
            "auth": {"type": "m.login.dummy"}}
    code, user = await synapse_request(peer, "POST", "/_matrix/client/v3/register", body)
    assert code == 200, user
    code, answer = await synapse_request(peer, "PUT",
                                         f"/_matrix/client/v3/profile/{quote(user['user_id'])}/displayname",
                                         {"displayname": displayname}, token=user["access_token"])
    assert code == 200, answer
    return user



class SynapseClient:
    """The peer's client API, with the suite's C{Client.request} shape (not checked against the spec)."""

    def __init__(self, peer: dict[str, str]) -> None:
        self.peer = peer
        self.server_name = peer["SERVER_NAME"]
        self._pool = HTTPConnectionPool(reactor, persistent=False)

    async def request(self, method: str, path: str, body=None, *, token: str | None = None,
                      query: dict | None = None) -> Response:
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        headers = {"Content-Type": ["application/json"]}
        if token is not None:
            headers["Authorization"] = [f"Bearer {token}"]
        data = None if body is None else json.dumps(body).encode()
        response = await treq.request(method, self.peer["CLIENT_URL"] + path, data=data, headers=headers,
                                      params=query, pool=self._pool, timeout=60)
        raw = await response.content()
        return Response(response.code, raw, {})

    async def register(self) -> dict:
        body = {"username": f"syn{os.getpid()}x{free_port()}", "password": "a long enough password 1",
                "auth": {"type": "m.login.dummy"}}
        answer = await self.request("POST", "register", body)
        assert answer.code == 200, answer
        return answer.json


@pytest.fixture
def peer_clients(synapse, ruma, make_client):
    """The clients of the module's ruma_tx daemon and of its Synapse peer."""
    peer, _ = synapse
    return make_client(ruma), SynapseClient(peer)
