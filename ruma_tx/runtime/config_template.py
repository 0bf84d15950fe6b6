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
# resources: "client" (the client API, with the OpenID userinfo endpoint
# that integrations call), or "openid" (that endpoint alone).
[[listeners]]
endpoint = "tcp:{port}:interface=127.0.0.1"
resources = ["client"]

# Prometheus metrics (GET /metrics) and the health check (GET /health) on a
# listener of their own, kept off the public network:
# [[listeners]]
# endpoint = "tcp:9090:interface=127.0.0.1"
# resources = ["metrics"]

[database]
# PostgreSQL DSN. Absent: ruma_tx runs its own private cluster under data_dir
# (initdb on first start, unix socket only, stopped with the server).
# dsn = "postgresql://ruma@127.0.0.1/ruma"
pool_size = 8

[registration]
enabled = true
# Registration then needs a registration token: create them with the admin
# API (POST /_synapse/admin/v1/registration_tokens/new).
requires_token = false

[guests]
enabled = false

[passwords]
# bcrypt cost factor; hashing runs in a thread, never on the reactor.
bcrypt_rounds = 12

[rate_limits]
enabled = true
# Leaky buckets: login and register per client IP, message (events sent)
# and report (reports of content) per user.
login = {{ per_second = 1.0, burst_count = 30 }}
register = {{ per_second = 1.0, burst_count = 30 }}
message = {{ per_second = 20.0, burst_count = 200 }}
report = {{ per_second = 1.0, burst_count = 5 }}

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

[push]
# Notifications to push gateways (phones), sent through [outbound]: a
# gateway in a blocked range is never reached unless allowlisted there.
# Send events' content to the gateways (false: ids, type and sender only).
include_content = true
# A failing gateway is retried after backoff_initial_s, doubling up to
# backoff_max_s; a notification it has refused for give_up_after_s is skipped.
backoff_initial_s = 1.0
backoff_max_s = 3600.0
give_up_after_s = 86400.0
max_concurrent_deliveries = 10

[voip]
# TURN servers for calls (GET /voip/turnServer), e.g.
# ["turn:turn.{server_name}:3478?transport=udp", "turns:turn.{server_name}:5349?transport=tcp"].
# With none, clients are told there is none (404 M_NOT_FOUND).
turn_uris = []
# Credentials: a secret shared with the TURN server (coturn: use-auth-secret
# and static-auth-secret), inline or in a file (an absolute path); clients
# get credentials that expire after turn_user_lifetime_s.
# turn_shared_secret = "..."
# turn_shared_secret_path = "/etc/ruma/turn_shared_secret"
# Or static credentials, handed to every client as they are:
# turn_username = "..."
# turn_password = "..."
turn_user_lifetime_s = 3600
turn_allow_guests = true

[well_known]
# /.well-known/matrix/support: where users find help, who runs the server.
# With neither set it answers 404 (spec).
# support_page = "https://{server_name}/support.html"
# support_contacts = [
#     {{ matrix_id = "@admin:{server_name}", email_address = "admin@{server_name}", role = "m.role.admin" }},
#     {{ email_address = "security@{server_name}", role = "m.role.security" }},
# ]

[user_directory]
# POST /user_directory/search finds users who share a room with the
# searcher and users in rooms anyone may join or read (local users, and
# other servers' users joined to our rooms); true: every one of them.
search_all_users = false

[server_notices]
# Messages from the admins to one user (the admin API's send_server_notice),
# from @<system_mxid_localpart>:{server_name}: off until the localpart is
# set. That account is created on the first notice and cannot log in; pick
# a localpart no user has. Each user gets a room of notices (room_name,
# room_topic, room_avatar_url), invited to it, or joined with auto_join.
# system_mxid_localpart = "server"
# system_mxid_display_name = "Server Notices"
# system_mxid_avatar_url = "mxc://{server_name}/..."
room_name = "Server Notices"
# room_topic = "Messages from the admins of {server_name}"
# room_avatar_url = "mxc://{server_name}/..."
auto_join = false

[media]
# Uploads (POST /_matrix/media/v3/upload) up to this many bytes (Synapse:
# 50 MiB); advertised to clients as m.upload.size. Bodies stream to disk.
# Also the largest media fetched from another server.
max_upload_size = 52428800
# The total bytes one user may upload (403 M_FORBIDDEN past it); absent: no quota.
# max_bytes_per_user = 1073741824
# Media ids reserved by POST /_matrix/media/v1/create a user may hold before
# uploading to them, and how long one waits for its content (24 h).
max_pending_uploads = 5
unused_expiration_ms = 86400000
# Thumbnails are made of PNG, JPEG, GIF and WebP images only, at these sizes
# (once per image and size, on first request), from images of at most
# max_thumbnail_pixels (width x height), thumbnail_threads at a time.
thumbnail_sizes = [
    {{ width = 32, height = 32, method = "crop" }},
    {{ width = 96, height = 96, method = "crop" }},
    {{ width = 320, height = 240, method = "scale" }},
    {{ width = 640, height = 480, method = "scale" }},
    {{ width = 800, height = 600, method = "scale" }},
]
max_thumbnail_pixels = 32000000
thumbnail_threads = 2
# Threads reading and writing media files (and talking to S3).
io_threads = 8
# The deprecated unauthenticated /_matrix/media/v3/download and /thumbnail
# are frozen (404) as the spec asks; true serves every media there again.
legacy_unauthenticated = false
# Where the files go: "local" (data_dir/media) or "s3" (the bucket below;
# boto3 finds credentials itself when the keys are left out).
backend = "local"
# URL previews (GET /_matrix/client/v1/media/preview_url): off, the
# endpoint does not exist (404). Pages and their images are fetched through
# [outbound], so blocked address ranges are never reached; each fetch may
# be at most url_preview_max_bytes (10 MiB) and take url_preview_timeout_s.
url_preview_enabled = false
url_preview_max_bytes = 10485760
url_preview_timeout_s = 10.0
# URLs never previewed: a URL whose every named part (scheme, netloc,
# hostname, port, username, password, path, query, fragment) matches the
# glob (or, starting with ^, the regular expression) of an entry, e.g.
# [{{ hostname = "*.internal.example.org" }}, {{ scheme = "http" }}].
url_preview_url_blocklist = []
# [media.s3]
# bucket = "matrix-media"
# endpoint_url = "https://s3.example.net"
# region = "eu-west-1"
# access_key_id = "..."
# secret_access_key = "..."
# prefix = "media/"
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
