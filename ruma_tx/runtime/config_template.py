"""
The commented configuration file that C{ruma-admin generate-config} writes;
every key in it is checked by the schema in L{ruma_tx.runtime.config}.
"""
from __future__ import annotations

from pathlib import Path

from ruma_tx.matrix.identifiers import is_valid_server_name
from ruma_tx.runtime.config import ConfigError, load_config

CONFIG_TEMPLATE = """\
# ruma_tx configuration (TOML). Unknown keys stop the server at start.

# The domain in @alice:{server_name}; fixed for the life of the server.
server_name = "{server_name}"

# Secrets, media and the embedded database live here; relative to this file.
# The macaroon secret key is generated into {data_dir}/macaroon_secret.key
# (mode 0600) on first start and by `ruma-admin generate-config`.
data_dir = "{data_dir}"

# Optional: the public URL clients reach the server at (used in /.well-known).
# public_baseurl = "https://matrix.{server_name}/"

# One table per listening socket: a Twisted endpoint description
# (tcp:PORT:interface=ADDR, or ssl:PORT:privateKey=KEY:certKey=CERT).
[[listeners]]
endpoint = "tcp:{port}:interface=127.0.0.1"
resources = ["client"]

[database]
# PostgreSQL DSN. Absent: ruma_tx runs its own private cluster under data_dir
# (initdb on first start, unix socket only, stopped with the server).
# dsn = "postgresql://ruma@127.0.0.1/ruma"
pool_size = 8

[registration]
enabled = true

[guests]
enabled = false

[passwords]
# bcrypt cost factor; hashing runs in a thread, never on the reactor.
bcrypt_rounds = 12

[rate_limits]
enabled = true
# Leaky buckets: login and register per client IP, message per user.
login = {{ per_second = 1.0, burst_count = 30 }}
register = {{ per_second = 1.0, burst_count = 30 }}
message = {{ per_second = 20.0, burst_count = 200 }}

[tokens]
# Lifetime of access tokens that come with a refresh token.
refreshable_access_token_lifetime_ms = 300000
# Number of verified access tokens kept in memory.
cache_size = 10000

[http]
max_body_bytes = 1048576
shutdown_grace_s = 5.0

[logging]
# debug, info, warn, error, critical
level = "info"
# Level of the one line logged per request, or "off".
requests = "info"

[outbound]
# Requests to other hosts (push gateways, URL previews) never connect to
# these CIDR ranges (the default: private, loopback, link-local and other
# non-public ranges; leave the key out to keep it) unless a range is in
# ip_range_allowlist, e.g. ["192.168.1.10/32"] for a gateway on your LAN.
# ip_range_blocklist = [...]
ip_range_allowlist = []
timeout_s = 10.0
"""


def _toml_string_body(value: str) -> str:
    """The inside of a TOML basic string (between the double quotes)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def generate_config(path: Path, server_name: str, data_dir: str = "var", port: int = 8008) -> None:
    """
    Write a complete, commented config to C{path}; it is removed again if
    it does not load (nothing half-made is left behind).

    @raise ConfigError: if C{path} exists, or the server name, data_dir or
        port is invalid, or a file cannot be written.
    """
    if not is_valid_server_name(server_name):
        raise ConfigError(f"{server_name!r} is not a valid server name")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"port {port!r}: must be between 1 and 65535")
    if not data_dir or any(ord(c) < 32 or ord(c) == 127 for c in data_dir):
        raise ConfigError(f"data_dir {data_dir!r}: must be a non-empty path without control characters")
    text = CONFIG_TEMPLATE.format(
        server_name=server_name, data_dir=_toml_string_body(data_dir), port=port
    )
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": refuse to overwrite, even a file created since we looked.
        with open(path, "x") as f:
            f.write(text)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists; not overwriting") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot write: {e.strerror}") from None
    try:
        load_config(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
