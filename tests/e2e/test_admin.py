"""The operator CLI (ruma-admin), run as the installed console script against real databases."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
import pytest_twisted
from conftest import PASSWORD, Homeserver, unique_localpart
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ruma_tx.runtime.config import load_config

RUMA_ADMIN = str(Path(sys.executable).parent / "ruma-admin")


def ruma_admin(*args, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ruma-admin with C{args}; stdin is empty unless given."""
    return subprocess.run(
        [RUMA_ADMIN, *map(str, args)], input=stdin if stdin is not None else "",
        capture_output=True, text=True, timeout=timeout,
    )


def assert_ok(result: subprocess.CompletedProcess) -> str:
    """The command succeeded; return its stdout."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def assert_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with exit code 1 and one line on stderr naming every fragment."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def query_one(dsn: str, statement: str, args=()):
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchone()
    finally:
        conn.close()


def write_config(directory: Path, dsn: str, server_name: str = "admin.test") -> Path:
    path = directory / "ruma.toml"
    path.write_text(
        f'server_name = "{server_name}"\n[database]\ndsn = "{dsn}"\n[passwords]\nbcrypt_rounds = 4\n'
    )
    return path


@pytest.fixture
def fresh_database(pg_cluster, request):
    """The DSN of a new, empty database."""
    return pg_cluster.create_database(f"admin_{os.getpid()}_{unique_localpart('db')}")


def test_generate_config_writes_loadable_file(tmp_path):
    """generate-config writes a config that loads with the given values, and a 0600 secret key."""
    output = tmp_path / "etc" / "ruma.toml"
    stdout = assert_ok(ruma_admin("generate-config", "--server-name", "example.org",
                                  "--output", output, "--data-dir", "state", "--port", "8558"))
    assert str(output) in stdout
    config = load_config(output)
    assert config.server_name == "example.org"
    assert config.data_dir == (tmp_path / "etc" / "state").resolve()
    assert config.listeners[0].endpoint == "tcp:8558:interface=127.0.0.1"
    assert stat.S_IMODE(config.macaroon_key_path.stat().st_mode) == 0o600


def test_generate_config_refuses_to_overwrite(tmp_path):
    """generate-config fails with one line on stderr rather than overwrite a file."""
    output = tmp_path / "ruma.toml"
    output.write_text("# mine\n")
    assert_error(ruma_admin("generate-config", "--server-name", "example.org", "--output", output),
                 "already exists", str(output))
    assert output.read_text() == "# mine\n"


def test_usage_error_is_one_line_exit_1(tmp_path):
    """A missing argument is reported on one line with exit code 1."""
    assert_error(ruma_admin("generate-config", "--output", tmp_path / "x.toml"), "--server-name")


def test_invalid_config_reported(tmp_path):
    """A command given an invalid config names the key and the file, on one line."""
    path = tmp_path / "bad.toml"
    path.write_text('server_name = "a.test"\n[database]\ndns = "x"\n')
    assert_error(ruma_admin("migrate", "--config", path), "database.dns", str(path))


@pytest_twisted.ensureDeferred
async def test_registered_user_can_log_in(client):
    """A user created by register-user on a running daemon's database logs in over HTTP with that password."""
    server = client.server
    localpart = unique_localpart("adm")
    stdout = assert_ok(ruma_admin("register-user", "--config", server.config_path, localpart,
                                  "--password", "s3cret admin pass"))
    user_id = f"@{localpart}:{server.server_name}"
    assert stdout.strip() == user_id
    response = await client.login(localpart, password="s3cret admin pass")
    assert response.code == 200, response
    assert response.json["user_id"] == user_id
    wrong = await client.login(localpart, password=PASSWORD)
    assert wrong.code == 403, wrong


@pytest_twisted.ensureDeferred
async def test_register_user_reads_password_from_stdin(client):
    """Without --password, register-user takes the password from the first line of stdin."""
    server = client.server
    localpart = unique_localpart("adm")
    assert_ok(ruma_admin("register-user", "--config", server.config_path, localpart,
                         stdin="from stdin\n"))
    assert (await client.login(localpart, password="from stdin")).code == 200


def test_admin_flag_sets_is_admin(homeserver):
    """--admin makes the account a server admin; without it the account is not one."""
    dsn = load_config(homeserver.config_path).database.dsn
    admin, plain = unique_localpart("boss"), unique_localpart("plain")
    assert_ok(ruma_admin("register-user", "--config", homeserver.config_path, admin,
                         "--password", "x", "--admin"))
    assert_ok(ruma_admin("register-user", "--config", homeserver.config_path, plain,
                         "--password", "x"))
    server_name = homeserver.server_name
    assert query_one(dsn, "SELECT is_admin FROM users WHERE user_id = %s",
                     (f"@{admin}:{server_name}",)) == (True,)
    assert query_one(dsn, "SELECT is_admin FROM users WHERE user_id = %s",
                     (f"@{plain}:{server_name}",)) == (False,)


def test_register_existing_user_fails(homeserver):
    """Registering a taken name fails with one line naming the user, and keeps the old password."""
    localpart = unique_localpart("dup")
    assert_ok(ruma_admin("register-user", "--config", homeserver.config_path, localpart,
                         "--password", "first"))
    assert_error(ruma_admin("register-user", "--config", homeserver.config_path, localpart,
                            "--password", "second"),
                 "already exists", f"@{localpart}:{homeserver.server_name}")


def test_register_invalid_localpart_fails(homeserver):
    """A localpart outside the user-id grammar is refused before anything is written."""
    assert_error(ruma_admin("register-user", "--config", homeserver.config_path, "Bad Name",
                            "--password", "x"), "Bad Name")


def test_register_numeric_localpart_fails(homeserver):
    """Numeric localparts are reserved for guests and refused, as Synapse does."""
    assert_error(ruma_admin("register-user", "--config", homeserver.config_path, "12345",
                            "--password", "x"), "guest")


def test_register_foreign_user_id_fails(homeserver):
    """A full user id of another server is refused."""
    assert_error(ruma_admin("register-user", "--config", homeserver.config_path,
                            "@someone:elsewhere.example", "--password", "x"), "elsewhere.example")


def test_register_empty_password_fails(homeserver):
    """An empty password is refused."""
    assert_error(ruma_admin("register-user", "--config", homeserver.config_path,
                            unique_localpart("nopw"), stdin="\n"), "password")


@pytest_twisted.ensureDeferred
async def test_deactivated_user_cannot_log_in(client):
    """After deactivate-user, the password no longer logs in (403) and the token the running daemon had already accepted stops working."""
    server = client.server
    localpart = unique_localpart("gone")
    user_id = assert_ok(ruma_admin("register-user", "--config", server.config_path, localpart,
                                   "--password", "bye bye")).strip()
    login = await client.login(localpart, password="bye bye")
    assert login.code == 200
    token = login.json["access_token"]
    assert (await client.request("GET", "account/whoami", token=token)).code == 200  # now cached
    stdout = assert_ok(ruma_admin("deactivate-user", "--config", server.config_path, user_id))
    assert user_id in stdout
    assert "revoked 1 " in stdout
    # The revocation reaches the daemon's token cache by NOTIFY, within moments.
    for _ in range(50):
        whoami = await client.request("GET", "account/whoami", token=token)
        if whoami.code == 401:
            break
        await deferLater(reactor, 0.05, lambda: None)
    assert whoami.code == 401, whoami
    refused = await client.login(localpart, password="bye bye")
    assert refused.code == 403, refused
    # The spec lists both for a deactivated account; Synapse answers M_USER_DEACTIVATED.
    assert refused.json["errcode"] in ("M_USER_DEACTIVATED", "M_FORBIDDEN")


def test_deactivate_unknown_user_fails(homeserver):
    """Deactivating a user who does not exist fails with one line naming them."""
    user_id = f"@{unique_localpart('nobody')}:{homeserver.server_name}"
    assert_error(ruma_admin("deactivate-user", "--config", homeserver.config_path, user_id), user_id)


def test_migrate_applies_once(tmp_path, fresh_database):
    """migrate on a fresh database applies and prints schema version 001; a second run applies nothing."""
    config = write_config(tmp_path, fresh_database)
    first = assert_ok(ruma_admin("migrate", "--config", config))
    assert "applied schema version 001" in first and "002" in first
    assert query_one(fresh_database, "SELECT count(*) FROM schema_version WHERE version = 1") == (1,)
    second = assert_ok(ruma_admin("migrate", "--config", config))
    assert "applied" not in second
    assert "nothing to apply" in second


def test_database_of_a_newer_ruma_tx_is_refused(tmp_path, fresh_database):
    """
    A database migrated by a newer ruma_tx is left alone: migrate fails with one line naming
    both versions, and the daemon refuses to start on it (its data untouched).
    """
    config = write_config(tmp_path, fresh_database)
    assert_ok(ruma_admin("migrate", "--config", config))
    conn = psycopg2.connect(fresh_database)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO schema_version (version, name, applied_ts) VALUES (999, 'future', 0)")
    conn.close()
    assert_error(ruma_admin("migrate", "--config", config), "version 999", "newer than this ruma_tx")
    (tmp_path / "daemon").mkdir()
    server = Homeserver(tmp_path / "daemon", fresh_database)
    with pytest.raises(RuntimeError, match="newer than this ruma_tx"):
        server.start()
    assert server.process.returncode != 0
    assert query_one(fresh_database, "SELECT count(*) FROM schema_version WHERE version = 999") == (1,)


def test_register_before_migrate_says_to_migrate(tmp_path, fresh_database):
    """register-user on a database without the schema tells the operator to run migrate."""
    config = write_config(tmp_path, fresh_database)
    assert_error(ruma_admin("register-user", "--config", config, "early", "--password", "x"),
                 "migrate")
    assert_ok(ruma_admin("migrate", "--config", config))
    assert assert_ok(ruma_admin("register-user", "--config", config, "early",
                                "--password", "x")).strip() == "@early:admin.test"


def test_unreachable_database_is_one_line(tmp_path, pg_cluster):
    """An unreachable database is reported on one line, without a traceback, with exit code 1."""
    config = write_config(tmp_path, "postgresql://ruma@127.0.0.1:1/nothing")
    assert_error(ruma_admin("migrate", "--config", config), "cannot connect to the database")


def test_commands_reach_running_embedded_cluster():
    """
    With no DSN, register-user works while the daemon runs its embedded cluster (through its socket);
    rotate-signing-key waits for the daemon to stop.
    """
    # Not under pytest's 0700 tmp folder: as root the cluster runs as 'postgres', who must reach it.
    directory = Path(tempfile.mkdtemp(prefix="ruma-admin-emb-"))
    os.chmod(directory, 0o755)
    server = Homeserver(directory, dsn=None, server_name="embedded.test")
    try:
        server.start()
        stdout = assert_ok(ruma_admin("register-user", "--config", server.config_path, "carol",
                                      "--password", "x"))
        assert stdout.strip() == "@carol:embedded.test"
        assert_error(ruma_admin("register-user", "--config", server.config_path, "carol",
                                "--password", "x"), "already exists")
        assert "nothing to apply" in assert_ok(ruma_admin("migrate", "--config", server.config_path))
        # The running daemon would go on signing with a retired key.
        signing_key = (directory / "var" / "signing.key").read_bytes()
        assert_error(ruma_admin("rotate-signing-key", "--config", server.config_path), "daemon is running")
        assert (directory / "var" / "signing.key").read_bytes() == signing_key
        server.stop()
        # The daemon stopped: the command starts (and stops) the cluster itself.
        assert "deactivated @carol:embedded.test" in assert_ok(
            ruma_admin("deactivate-user", "--config", server.config_path, "@carol:embedded.test"))
        assert not (directory / "var" / "postgres" / "postmaster.pid").exists()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
