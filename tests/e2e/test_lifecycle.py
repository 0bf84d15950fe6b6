"""The daemon's life: the twistd plugin, refusing bad configs, daemon mode, signals, and PostgreSQL restarts."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest_twisted
from conftest import TWISTD, Homeserver, unique_localpart
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater


def alive(pid: int) -> bool:
    """Whether process C{pid} runs (a zombie, exited but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # The state follows the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def versions_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/_matrix/client/versions", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def test_twistd_lists_ruma_plugin():
    """`twistd --help` lists the ruma subcommand (the plugin is found in the installed package)."""
    result = subprocess.run([TWISTD, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+ruma\s", result.stdout, re.MULTILINE), result.stdout


def test_unknown_config_key_stops_start(tmp_path):
    """`twistd -n ruma` with an unknown config key exits non-zero at once, naming the key and the file."""
    config = tmp_path / "ruma.toml"
    config.write_text('server_name = "test.local"\n[database]\npool_size = 2\nbogus_setting = 1\n')
    result = subprocess.run([TWISTD, "-n", "ruma", "--config", str(config)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "database.bogus_setting" in output, output
    assert str(config) in output, output


def test_unreachable_database_exits_non_zero(tmp_path):
    """A daemon whose database cannot be reached exits with code 1 and logs why, rather than serving errors."""
    server = Homeserver(tmp_path, "postgresql://ruma@127.0.0.1:1/nothing")
    result = subprocess.run([TWISTD, "-n", "ruma", "--config", str(server.config_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, (result.returncode, result.stdout[-3000:])
    assert "could not start" in result.stdout + result.stderr
    assert not versions_ok(server.base_url)


def test_daemon_mode_pidfile_and_sigterm(tmp_path, pg_cluster):
    """In daemon mode the server writes its pidfile, serves, and on SIGTERM stops within seconds and removes the pidfile."""
    dsn = pg_cluster.create_database(f"lifecycle_{unique_localpart('daemon')}")
    server = Homeserver(tmp_path, dsn)
    pidfile, logfile = tmp_path / "ruma.pid", tmp_path / "ruma.log"
    result = subprocess.run(
        [TWISTD, "--pidfile", str(pidfile), "--logfile", str(logfile),
         "ruma", "--config", str(server.config_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert wait_until(pidfile.exists, 10), "no pidfile"
    pid = int(pidfile.read_text().strip())
    try:
        assert wait_until(lambda: versions_ok(server.base_url), 30), logfile.read_text()
        assert pid != os.getpid() and alive(pid)
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not alive(pid), 30), "still running 30 s after SIGTERM"
        assert wait_until(lambda: not pidfile.exists(), 2), "pidfile left behind"
        assert not versions_ok(server.base_url)
        log = logfile.read_text()
        assert "Server Shut Down." in log
        assert "Traceback" not in log, log
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_in_foreground_exits_cleanly(start_homeserver):
    """`twistd -n ruma` stops on SIGTERM within seconds, and its log shows a clean shutdown."""
    server = start_homeserver()
    code = server.stop(timeout=30)
    log = server.log()
    assert "Server Shut Down." in log, log[-3000:]
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    assert not versions_ok(server.base_url)
    # After a clean shutdown twistd re-raises the signal that stopped it, as
    # Unix daemons do; systemd counts death by SIGTERM as a clean stop.
    assert code == -signal.SIGTERM, f"exit status {code}"


def json_request(base_url: str, path: str, body: dict | None = None, token: str | None = None,
                 timeout: float = 60) -> dict:
    """A blocking client-API request (for a thread): the JSON body of a 2xx answer."""
    request = urllib.request.Request(
        base_url + "/_matrix/client/v3/" + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        return json.load(e)


def test_sigterm_answers_open_long_polls_and_stops(start_homeserver):
    """SIGTERM while a /sync and an /events long-poll wait: both answer at once, empty, and the daemon exits within seconds."""
    server = start_homeserver()
    body = {"username": unique_localpart("poller"), "password": "correct horse battery staple"}
    session = json_request(server.base_url, "register", body)["session"]
    token = json_request(server.base_url, "register",
                         {**body, "auth": {"type": "m.login.dummy", "session": session}})["access_token"]
    since = json_request(server.base_url, "sync?timeout=0", token=token)["next_batch"]
    with ThreadPoolExecutor(2) as pool:
        sync = pool.submit(json_request, server.base_url, f"sync?timeout=60000&since={since}", token=token)
        events = pool.submit(json_request, server.base_url, f"events?timeout=60000&from={since}", token=token)
        time.sleep(1)  # both polls are waiting (each would wait 60 s)
        code = server.stop(timeout=15)
        assert code == -signal.SIGTERM, f"exit status {code}"
        assert sync.result(timeout=5)["next_batch"] == since
        assert events.result(timeout=5)["chunk"] == []
    assert "Server Shut Down." in server.log()


async def within(seconds: float, coroutine):
    """Await C{coroutine}, failing with TimeoutError after C{seconds}: a hang is a failure."""
    d = defer.ensureDeferred(coroutine)
    d.addTimeout(seconds, reactor)
    return await d


@pytest_twisted.ensureDeferred
async def test_database_restart_under_running_daemon(start_homeserver, make_client, pg_cluster,
                                                     homeserver):
    """While PostgreSQL is down requests that need it answer 5xx Matrix errors promptly, and after it restarts they succeed again without restarting the daemon."""
    server = start_homeserver()
    client = make_client(server)
    user = await client.register()
    user_id = user["user_id"]
    localpart = user_id[1:].split(":", 1)[0]
    profile_path = f"profile/{quote(user_id, safe='')}"

    async def wrong_password():
        return await within(5, client.login(localpart, password="not the password"))

    async def profile():
        return await within(5, client.request("GET", profile_path))

    assert (await wrong_password()).code == 403
    assert (await profile()).code == 200

    pg_cluster.stop()
    try:
        for attempt in (wrong_password, profile):
            response = await attempt()
            assert 500 <= response.code < 600, response
            assert response.json["errcode"].startswith("M_"), response
            assert isinstance(response.json["error"], str), response
    finally:
        pg_cluster.start()

    deadline = time.monotonic() + 15
    codes = None
    while time.monotonic() < deadline:
        codes = ((await wrong_password()).code, (await profile()).code)
        if codes == (403, 200):
            break
        await deferLater(reactor, 0.25, lambda: None)
    assert codes == (403, 200), f"not recovered 15 s after PostgreSQL restarted: {codes}"
    # The daemon was not restarted, and a real login works again.
    assert server.process.poll() is None
    assert (await client.login(localpart)).code == 200
    # The restart hit every daemon on the cluster: let the shared one (idle
    # meanwhile, so still backing off) recover before other tests use it.
    shared = make_client(homeserver)
    for _ in range(60):
        if (await shared.request("GET", profile_path)).code != 503:
            break
        await deferLater(reactor, 0.25, lambda: None)


def test_log_level_hides_lower_levels(start_homeserver):
    """With [logging] level = "warn", ruma_tx's info lines (start-up, one line per request) stay out of the log."""
    quiet = start_homeserver('[logging]\nlevel = "warn"\n')
    loud = start_homeserver()
    for server in (quiet, loud):
        assert versions_ok(server.base_url)
        server.stop()
    assert "ruma_tx serving" in loud.log() and "GET /_matrix/client/versions 200" in loud.log()
    assert "ruma_tx serving" not in quiet.log()
    assert "GET /_matrix/client/versions" not in quiet.log()
