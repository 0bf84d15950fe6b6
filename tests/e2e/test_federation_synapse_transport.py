"""
Interop with Synapse, the reference homeserver, as a federation peer on
loopback (../shared/fed/synapse-peer.sh): keys and signed profile queries
both ways. Skipped only when ../shared is absent (a plain clone).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

from conftest import free_port

PEER_SCRIPT = Path(__file__).resolve().parents[2].parent / "shared" / "fed" / "synapse-peer.sh"

pytestmark = pytest.mark.skipif(not PEER_SCRIPT.exists(), reason=f"no Synapse peer script at {PEER_SCRIPT}")


def _key_values(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


class SynapseCa:
    """The peer script's CA, seen as the test CA of the conftest's federating daemons."""

    def __init__(self, environment: dict[str, str], cert_path: Path) -> None:
        self._environment = environment
        self.cert_path = cert_path

    def issue(self, directory: Path) -> tuple[Path, Path]:
        issued = _key_values(subprocess.run(
            ["bash", str(PEER_SCRIPT), "issue-cert", "localhost", str(directory)], env=self._environment,
            check=True, capture_output=True, text=True).stdout)
        return Path(issued["CERT"]), Path(issued["KEY"])


@pytest.fixture(scope="module")
def synapse(tmp_path_factory):
    """A Synapse peer of its own (own ports, own state and CA), stopped at the end."""
    environment = {**os.environ, "FED_HOME": str(tmp_path_factory.mktemp("synapse-fed")),
                   "FED_PORT": str(free_port()), "CLIENT_PORT": str(free_port())}
    started = subprocess.run(["bash", str(PEER_SCRIPT), "start"], env=environment, capture_output=True,
                             text=True, timeout=600)
    assert started.returncode == 0, started.stderr[-3000:]
    peer = _key_values(started.stdout)
    yield peer, SynapseCa(environment, Path(peer["CA_CERT"]))
    subprocess.run(["bash", str(PEER_SCRIPT), "stop"], env=environment, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def ruma(synapse, start_homeserver):
    """A ruma_tx daemon federating with the peer: its certificate from the peer's CA, which it trusts."""
    _, ca = synapse
    return start_homeserver(federation={}, ca=ca)


async def synapse_request(peer, method, path, body=None, token=None):
    pool = HTTPConnectionPool(reactor, persistent=False)
    headers = {"Authorization": [f"Bearer {token}"]} if token else {}
    response = await treq.request(method, peer["CLIENT_URL"] + path, json=body, headers=headers, pool=pool,
                                  timeout=60)
    return response.code, await response.json()


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


@pytest_twisted.ensureDeferred
async def test_we_read_a_synapse_users_profile(synapse, ruma, make_client):
    """Our client reads the profile of a Synapse user: we query Synapse, signed, and verify its TLS."""
    peer, _ = synapse
    someone = await synapse_user(peer, "Sam on Synapse")
    seen = await make_client(ruma).request("GET", f"profile/{quote(someone['user_id'])}")
    assert seen.code == 200, seen
    assert seen.json["displayname"] == "Sam on Synapse"


@pytest_twisted.ensureDeferred
async def test_synapse_reads_our_users_profile(synapse, ruma, make_client):
    """A Synapse client reads our user's profile: Synapse fetches our keys and signs its query to us."""
    peer, _ = synapse
    client = make_client(ruma)
    ours = await client.register()
    await client.request("PUT", f"profile/{quote(ours['user_id'])}/displayname", {"displayname": "Rita on ruma"},
                         token=ours["access_token"])
    someone = await synapse_user(peer, "Sam")
    code, body = await synapse_request(peer, "GET", f"/_matrix/client/v3/profile/{quote(ours['user_id'])}",
                                       token=someone["access_token"])
    assert code == 200, body
    assert body["displayname"] == "Rita on ruma"
