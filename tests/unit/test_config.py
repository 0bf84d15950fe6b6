"""Loading and generating the TOML configuration (ruma_tx.runtime.config)."""
import dataclasses
import os
import stat

import pytest

from ruma_tx.runtime.config import (
    Config,
    ConfigError,
    DatabaseConfig,
    RateLimitsConfig,
    load_config,
)
from ruma_tx.runtime.config_template import generate_config
from ruma_tx.runtime.secrets import (
    create_secrets,
    load_or_create_signing_key,
    read_or_create_secret,
)

MINIMAL = 'server_name = "example.org"\n'


def write(tmp_path, text, name="ruma.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_config_error(path, *fragments):
    """load_config(path) raises a ConfigError naming the file and every fragment."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path.absolute()) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_defaults_applied(tmp_path):
    """A file with only server_name gets every default from the schema."""
    config = load_config(write(tmp_path, MINIMAL))
    assert isinstance(config, Config)
    assert config.server_name == "example.org"
    assert config.database == DatabaseConfig()
    assert config.database.dsn is None
    assert config.rate_limits == RateLimitsConfig()
    assert config.passwords.bcrypt_rounds == 12
    assert config.listeners[0].endpoint == "tcp:8008:interface=127.0.0.1"
    assert config.data_dir == (tmp_path / "var").resolve()
    assert config.path == tmp_path / "ruma.toml"


def test_values_read(tmp_path):
    """Values given in the file replace the defaults, nested tables and inline tables included."""
    config = load_config(write(tmp_path, MINIMAL + (
        '[database]\ndsn = "postgresql://x@127.0.0.1/db"\npool_size = 3\n'
        '[rate_limits]\nlogin = { per_second = 2, burst_count = 5 }\n'
        '[[listeners]]\nendpoint = "tcp:9000"\n'
    )))
    assert config.database == DatabaseConfig(dsn="postgresql://x@127.0.0.1/db", pool_size=3)
    assert config.rate_limits.login.per_second == 2.0
    assert config.rate_limits.login.burst_count == 5
    assert config.rate_limits.register == RateLimitsConfig().register
    assert [listener.endpoint for listener in config.listeners] == ["tcp:9000"]
    assert config.listeners[0].resources == ("client",)


@pytest.mark.parametrize("text, key", [
    pytest.param(MINIMAL + "sever_name = 'x'\n", "sever_name", id="top-level"),
    pytest.param(MINIMAL + '[database]\ndns = "postgresql://x@h/db"\n', "database.dns", id="in-a-table"),
    pytest.param(MINIMAL + '[[listeners]]\nendpont = "tcp:1"\n', "listeners[0].endpont",
                 id="in-an-array-of-tables"),
    # 'path' (where the config was read from) is a field of Config, not a setting.
    pytest.param(MINIMAL + 'path = "/etc/elsewhere.toml"\n', "path", id="path-is-not-a-setting"),
])
def test_unknown_key(tmp_path, text, key):
    """An unknown or misspelt key, at any depth, is refused, naming its dotted path and the file."""
    assert_config_error(write(tmp_path, text), key)


@pytest.mark.parametrize("text, fragments", [
    pytest.param(MINIMAL + '[database]\npool_size = "8"\n', ["database.pool_size", "integer"],
                 id="string-for-integer"),
    # Python's bool being an int notwithstanding.
    pytest.param(MINIMAL + "[passwords]\nbcrypt_rounds = true\n", ["passwords.bcrypt_rounds"],
                 id="bool-is-not-an-integer"),
    pytest.param(MINIMAL + "database = 5\n", ["database"], id="value-for-table"),
])
def test_wrong_type(tmp_path, text, fragments):
    """A value of the wrong type (a string or true for an integer, a plain value for a table) is refused, naming the key and the file (and, for a string, the expected type)."""
    assert_config_error(write(tmp_path, text), *fragments)


@pytest.mark.parametrize("text, key", [
    pytest.param('server_name = "not a name"\n', "server_name", id="bad-server-name"),
    pytest.param("[registration]\nenabled = true\n", "server_name", id="missing-server-name"),
    pytest.param(MINIMAL + '[logging]\nlevel = "verbose"\n', "logging.level", id="unknown-log-level"),
    # nan is valid TOML.
    pytest.param(MINIMAL + "[rate_limits]\nlogin = { per_second = nan, burst_count = 5 }\n",
                 "rate_limits.login", id="nan-rate"),
    pytest.param(MINIMAL + "[http]\nshutdown_grace_s = -1\n", "http.shutdown_grace_s",
                 id="negative-shutdown-grace"),
])
def test_invalid_value(tmp_path, text, key):
    """A missing server_name, or a value of the right type that the key does not allow, is refused, naming the key and the file."""
    assert_config_error(write(tmp_path, text), key)


def test_not_toml(tmp_path):
    """A syntax error is reported with the file name."""
    assert_config_error(write(tmp_path, "server_name = \n"), "TOML")


def test_not_utf8(tmp_path):
    """Bytes that are not UTF-8 give a ConfigError, not a traceback."""
    path = tmp_path / "ruma.toml"
    path.write_bytes(b'server_name = "example.org"\n# \xff\n')
    assert_config_error(path, "UTF-8")


def test_missing_file(tmp_path):
    """A missing file gives a ConfigError naming it."""
    assert_config_error(tmp_path / "absent.toml", "cannot read")


def test_relative_data_dir_resolved_against_config_folder(tmp_path, monkeypatch):
    """A relative data_dir is relative to the config file's folder, not the working directory."""
    (tmp_path / "etc").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(write(tmp_path / "etc", MINIMAL + 'data_dir = "../state"\n'))
    assert config.data_dir == (tmp_path / "state").resolve()
    assert config.macaroon_key_path == (tmp_path / "state" / "macaroon_secret.key").resolve()


def test_relative_config_path_made_absolute(tmp_path, monkeypatch):
    """A config path given relative to the working directory is stored absolute."""
    write(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = load_config("ruma.toml")
    assert config.path == tmp_path / "ruma.toml"
    assert config.data_dir == (tmp_path / "var").resolve()


def test_absolute_data_dir_kept(tmp_path):
    """An absolute data_dir is used as it is."""
    target = tmp_path / "abs"
    config = load_config(write(tmp_path, MINIMAL + f'data_dir = "{target}"\n'))
    assert config.data_dir == target.resolve()


def test_generated_config_loads(tmp_path):
    """generate_config writes a file that loads cleanly with the given values."""
    path = tmp_path / "etc" / "ruma.toml"
    generate_config(path, "example.org", data_dir="state", port=8448)
    config = load_config(path)
    assert config.server_name == "example.org"
    assert config.data_dir == (tmp_path / "etc" / "state").resolve()
    assert config.listeners[0].endpoint == "tcp:8448:interface=127.0.0.1"
    text = path.read_text()
    assert text.count("#") > 10, "the generated config is commented"
    for table in ("[database]", "[registration]", "[guests]", "[passwords]", "[rate_limits]",
                  "[tokens]", "[http]", "[logging]", "[[listeners]]"):
        assert table in text


def test_generated_config_sets_every_default(tmp_path):
    """The generated file spells out the schema's defaults (it is complete, not a stub)."""
    path = tmp_path / "ruma.toml"
    generate_config(path, "example.org")
    generated = load_config(path)
    defaults = load_config(write(tmp_path, MINIMAL, name="minimal.toml"))
    assert generated == dataclasses.replace(defaults, path=generated.path)


def test_generated_secrets_have_mode_0600(tmp_path):
    """The server's secrets are created readable by their owner only, and the signing key loads."""
    path = tmp_path / "ruma.toml"
    generate_config(path, "example.org")
    config = load_config(path)
    create_secrets(config)
    for key_path in (config.macaroon_key_path, config.signing_key_path):
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert len(config.macaroon_key_path.read_bytes().strip()) >= 32
    assert load_or_create_signing_key(config.signing_key_path).alg == "ed25519"


def test_existing_secrets_not_regenerated(tmp_path):
    """Existing secrets are kept as they are when secrets are created for their data_dir."""
    key_path = tmp_path / "var" / "macaroon_secret.key"
    first = read_or_create_secret(key_path)
    generate_config(tmp_path / "ruma.toml", "example.org")
    config = load_config(tmp_path / "ruma.toml")
    signing = load_or_create_signing_key(config.signing_key_path)
    create_secrets(config)
    assert key_path.read_bytes().strip() == first
    assert read_or_create_secret(key_path) == first
    assert load_or_create_signing_key(config.signing_key_path).version == signing.version


def test_secret_file_appears_whole(tmp_path, monkeypatch):
    """A crash while writing a new secret leaves no file at all (never an empty key)."""
    key_path = tmp_path / "var" / "macaroon_secret.key"
    real_fsync = os.fsync

    def crash(fd):
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(ConfigError):
        read_or_create_secret(key_path)
    assert not key_path.exists()
    assert list(key_path.parent.iterdir()) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert len(read_or_create_secret(key_path)) >= 32


def test_short_secret_refused(tmp_path):
    """A secret key file that is too short is refused rather than used."""
    key_path = tmp_path / "key"
    key_path.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        read_or_create_secret(key_path)


def test_generate_refuses_to_overwrite(tmp_path):
    """generate_config never overwrites an existing file."""
    path = write(tmp_path, "# mine\n")
    with pytest.raises(ConfigError, match="already exists"):
        generate_config(path, "example.org")
    assert path.read_text() == "# mine\n"


def test_generate_refuses_bad_server_name(tmp_path):
    """generate_config refuses an invalid server name and writes nothing."""
    path = tmp_path / "ruma.toml"
    with pytest.raises(ConfigError, match="server name"):
        generate_config(path, "bad name")
    assert not path.exists()


def test_generate_quotes_data_dir(tmp_path):
    """A data_dir with quotes or backslashes still gives a loadable file."""
    path = tmp_path / "ruma.toml"
    generate_config(path, "example.org", data_dir='odd "dir" \\ name')
    assert load_config(path).data_dir == (tmp_path / 'odd "dir" \\ name').resolve()


def test_generate_refuses_bad_port(tmp_path):
    """generate_config refuses a port outside 1..65535."""
    with pytest.raises(ConfigError, match="port"):
        generate_config(tmp_path / "ruma.toml", "example.org", port=70000)
    assert not (tmp_path / "ruma.toml").exists()


def test_outbound_ranges_are_checked_at_load(tmp_path):
    """A blocklist or allowlist entry that is not a CIDR range stops the load, naming the key."""
    path = write(tmp_path, MINIMAL + '[outbound]\nip_range_allowlist = ["10.0.0.0/8", "not-a-range"]\n')
    with pytest.raises(ConfigError, match="outbound.ip_range_allowlist"):
        load_config(path)
    config = load_config(write(tmp_path, MINIMAL + '[outbound]\nip_range_allowlist = ["192.168.1.10/32"]\n',
                               name="ok.toml"))
    assert config.outbound.ip_range_allowlist == ("192.168.1.10/32",)
    assert "127.0.0.0/8" in config.outbound.ip_range_blocklist
