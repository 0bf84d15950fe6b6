"""
A real Synapse database to move into ruma_tx (the tests of C{ruma-admin
import-synapse}): Synapse from ../shared/bench/synapse.sh, in a home of its
own on free ports, given real traffic by synapse_traffic.py (nio clients,
their crypto stores kept), then stopped; its database (PostgreSQL DSN or
SQLite file), signing key and media store are handed out with the
traffic's manifest.

Fixtures: C{synapse_export} (PostgreSQL, the full traffic) and
C{synapse_sqlite_export} (SQLite, accounts, a profile, media and account
data), module-scoped; C{import_target}, a factory of ruma_tx daemons (not
started) on new databases to import into. Skipped only when ../shared is
absent (a plain clone), like synapse_peer.py.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from admin_helpers import ruma_admin

from conftest import Homeserver, free_port

SYNAPSE_SCRIPT = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "synapse.sh"
TRAFFIC = Path(__file__).with_name("synapse_traffic.py")
#: An installed Synapse is reused (installing one takes minutes).
SHARED_VENV = Path.home() / ".cache" / "ruma-bench" / "synapse-venv"

needs_synapse = pytest.mark.skipif(not SYNAPSE_SCRIPT.exists(), reason=f"no Synapse script at {SYNAPSE_SCRIPT}")

_targets = itertools.count(1)


@dataclass(frozen=True)
class SynapseExport:
    """
    A stopped Synapse's data, as an operator hands it to the import.

    @ivar database: its PostgreSQL DSN or its SQLite file.
    @ivar manifest: what synapse_traffic.py made (user ids, rooms, media...),
        read from C{manifest_path}.
    @ivar store_dir: the nio crypto stores of the traffic's devices.
    """

    engine: str
    database: str
    signing_key: Path
    media_store: Path
    manifest: dict
    manifest_path: Path
    store_dir: Path

    @property
    def server_name(self) -> str:
        return self.manifest["server_name"]

    def import_args(self, homeserver: Homeserver, *extra: str) -> list[str]:
        return ["import-synapse", "--config", str(homeserver.config_path), "--synapse-db", self.database,
                "--signing-key", str(self.signing_key), "--media-store", str(self.media_store), *extra]

    def import_into(self, homeserver: Homeserver, *extra: str) -> subprocess.CompletedProcess:
        """Run C{ruma-admin import-synapse --yes} into C{homeserver}'s database."""
        return ruma_admin(*self.import_args(homeserver, "--yes", *extra), timeout=600)


def _key_values(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def _script(environment: dict[str, str], *args: str, timeout: float = 900) -> dict[str, str]:
    done = subprocess.run(["bash", str(SYNAPSE_SCRIPT), *args], env=environment, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"synapse.sh {' '.join(args)}: {done.stderr[-3000:]}"
    return _key_values(done.stdout)


def _stop_process(pid: int, timeout: float = 30) -> None:
    """SIGTERM the Synapse this module started, and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _environment(home: Path) -> dict[str, str]:
    """The script's environment for a Synapse of its own under C{home}, on free ports."""
    bench = home / "bench"
    bench.mkdir()
    if SHARED_VENV.exists():
        (bench / "synapse-venv").symlink_to(SHARED_VENV)
    extra = home / "extra.yaml"
    # Synapse lets no one publish rooms in its directory unless told to.
    extra.write_text("allow_guest_access: true\nroom_list_publication_rules: [{action: allow}]\n")
    return {**os.environ, "BENCH_HOME": str(bench), "SYNAPSE_PORT": str(free_port()),
            "SYNAPSE_PG_PORT": str(free_port()), "BCRYPT_ROUNDS": "4", "SYNAPSE_EXTRA_YAML": str(extra)}


def _run_synapse(home: Path, environment: dict[str, str], engine: str, small: bool) -> SynapseExport:
    """Start Synapse, give it traffic, stop it (its PostgreSQL keeps running)."""
    bench = Path(environment["BENCH_HOME"])
    started = _script(environment, "start", engine)
    data = bench / "synapse" / f"data-{engine}"
    store_dir = home / "nio-stores"
    store_dir.mkdir()
    manifest_path = home / "manifest.json"
    try:
        secret = re.search(r'^registration_shared_secret:\s*"?([^"\n]+)"?', (data / "homeserver.yaml").read_text(),
                           re.MULTILINE)
        assert secret, "no registration_shared_secret in Synapse's generated config"
        traffic = subprocess.run(
            [sys.executable, str(TRAFFIC), started["BASE_URL"], secret.group(1), str(store_dir), str(manifest_path),
             *(["--small"] if small else [])],
            capture_output=True, text=True, timeout=600)
        assert traffic.returncode == 0, f"synapse_traffic.py failed:\n{traffic.stdout}\n{traffic.stderr[-5000:]}"
    finally:
        _stop_process(int(started["PID"]))
    database = (f"postgresql://synapse:synapse@127.0.0.1:{environment['SYNAPSE_PG_PORT']}/synapse"
                if engine == "postgres" else str(data / "homeserver.db"))
    keys = sorted(data.glob("*.signing.key"))
    assert keys, f"no signing key in {data}"
    return SynapseExport(
        engine=engine, database=database, signing_key=keys[0], media_store=data / "media_store",
        manifest=json.loads(manifest_path.read_text()), manifest_path=manifest_path, store_dir=store_dir)


def _exported(tmp_path_factory, engine: str, small: bool):
    home = tmp_path_factory.mktemp(f"synapse-{engine}")
    environment = _environment(home)
    try:
        yield _run_synapse(home, environment, engine, small)
    finally:
        # Also after a failed start or traffic: the cluster must not outlive the module.
        subprocess.run(["bash", str(SYNAPSE_SCRIPT), "reset", engine], env=environment, capture_output=True,
                       timeout=300)


@pytest.fixture(scope="module")
def synapse_export(tmp_path_factory):
    """A Synapse on PostgreSQL after the full traffic, stopped (its PostgreSQL runs until the module ends)."""
    yield from _exported(tmp_path_factory, "postgres", small=False)


@pytest.fixture(scope="module")
def synapse_sqlite_export(tmp_path_factory):
    """A Synapse on SQLite after the small traffic, stopped."""
    yield from _exported(tmp_path_factory, "sqlite", small=True)


@pytest.fixture(scope="module")
def import_target(pg_cluster, tmp_path_factory):
    """
    Factory: a ruma_tx daemon named like the export's server, on a new
    database, not started (import first, then C{.start()}); stopped at the end.
    """
    made: list[Homeserver] = []

    def make(server_name: str) -> Homeserver:
        number = next(_targets)
        dsn = pg_cluster.create_database(f"ruma_import_{os.getpid()}_{number}")
        server = Homeserver(tmp_path_factory.mktemp(f"import{number}"), dsn, server_name=server_name,
                            extra_config="[rate_limits]\nenabled = false\n[guests]\nenabled = true\n")
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="module")
def imported(synapse_export, import_target):
    """The export imported into a new database, and the daemon started on it: C{(daemon, import run)}."""
    server = import_target(synapse_export.server_name)
    done = synapse_export.import_into(server)
    assert done.returncode == 0, done.stdout + done.stderr
    server.start()
    return server, done


@pytest.fixture
def moved(imported, make_client):
    """A client of the daemon that received the import."""
    return make_client(imported[0])
