"""
The configuration schema: one set of frozen dataclasses with defaults.

The TOML file is read once at start, checked against these dataclasses
(unknown keys and wrongly typed values are refused with an error naming the
key and the file) and never read again.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from ruma_tx.matrix.identifiers import is_valid_server_name
from ruma_tx.runtime.config_clients import VoipConfig, WellKnownConfig, check_voip, check_well_known
from ruma_tx.runtime.config_federation import FederationConfig, check_federation
from ruma_tx.runtime.config_media import MediaConfig, check_media
from ruma_tx.runtime.config_notices import ServerNoticesConfig, check_server_notices
from ruma_tx.runtime.config_push import PushConfig, check_push
from ruma_tx.runtime.outbound import DEFAULT_BLOCKLIST, parse_networks

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_D = TypeVar("_D", bound="DataclassInstance")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


#: What a listener can serve: "client" is the client API (with the OpenID
#: userinfo endpoint); "openid" only C{/_matrix/federation/v1/openid/userinfo}
#: (as Synapse's resource of that name), for integrations checking tokens;
#: "federation" the Server-Server API (C{/_matrix/federation/*} and
#: C{/_matrix/key/*}), only with C{[federation] enabled}; "metrics" the
#: Prometheus C{/metrics} and C{/health} (keep it off the public network).
LISTENER_RESOURCES = ("client", "openid", "federation", "metrics")
#: The resources served on a listener of their own.
_ALONE_RESOURCES = ("federation", "metrics")


@dataclass(frozen=True)
class Listener:
    endpoint: str = "tcp:8008:interface=127.0.0.1"
    resources: tuple[str, ...] = ("client",)


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str | None = None
    pool_size: int = 8


@dataclass(frozen=True)
class RegistrationConfig:
    enabled: bool = True
    # Registration asks for a token an admin created (the admin API's
    # registration tokens; Synapse's registration_requires_token).
    requires_token: bool = False


@dataclass(frozen=True)
class GuestsConfig:
    enabled: bool = False


@dataclass(frozen=True)
class PasswordsConfig:
    bcrypt_rounds: int = 12


@dataclass(frozen=True)
class ActionLimit:
    per_second: float
    burst_count: int


@dataclass(frozen=True)
class RateLimitsConfig:
    enabled: bool = True
    # Keyed by client IP: these guard the expensive, unauthenticated actions.
    login: ActionLimit = ActionLimit(per_second=1.0, burst_count=30)
    register: ActionLimit = ActionLimit(per_second=1.0, burst_count=30)
    # Keyed by user: messages and state events sent.
    message: ActionLimit = ActionLimit(per_second=20.0, burst_count=200)
    # Keyed by user: reports of events, rooms and users (Synapse's rc_reports).
    report: ActionLimit = ActionLimit(per_second=1.0, burst_count=5)


#: The actions of L{RateLimitsConfig}.
RATE_LIMITED_ACTIONS = ("login", "register", "message", "report")


@dataclass(frozen=True)
class TokensConfig:
    # Lifetime of access tokens issued with a refresh token (Synapse: 5 min).
    refreshable_access_token_lifetime_ms: int = 5 * 60 * 1000
    # Size of the cache of verified access tokens.
    cache_size: int = 10_000


@dataclass(frozen=True)
class HttpConfig:
    max_body_bytes: int = 1024 * 1024
    # Seconds that shutdown waits for in-flight requests.
    shutdown_grace_s: float = 5.0


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    # Level of the one line logged per request, or "off".
    requests: str = "info"


@dataclass(frozen=True)
class OutboundConfig:
    """Requests the server makes to other hosts (push gateways, URL previews)."""

    # CIDR ranges never connected to; the default blocks private, loopback,
    # link-local and other non-public ranges.
    ip_range_blocklist: tuple[str, ...] = DEFAULT_BLOCKLIST
    # Exceptions to the blocklist (e.g. a push gateway on the local network).
    ip_range_allowlist: tuple[str, ...] = ()
    # The longest a request may take, in seconds.
    timeout_s: float = 10.0


@dataclass(frozen=True)
class UserDirectoryConfig:
    # Every local user may be found, not only those sharing a room with the
    # searcher or in public rooms (Synapse's search_all_users).
    search_all_users: bool = False


@dataclass(frozen=True)
class Config:
    """The whole configuration; C{path} is the file it came from."""

    server_name: str
    data_dir: Path
    path: Path
    public_baseurl: str | None = None
    listeners: tuple[Listener, ...] = (Listener(),)
    database: DatabaseConfig = DatabaseConfig()
    registration: RegistrationConfig = RegistrationConfig()
    guests: GuestsConfig = GuestsConfig()
    passwords: PasswordsConfig = PasswordsConfig()
    rate_limits: RateLimitsConfig = RateLimitsConfig()
    tokens: TokensConfig = TokensConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()
    outbound: OutboundConfig = OutboundConfig()
    push: PushConfig = PushConfig()
    voip: VoipConfig = VoipConfig()
    well_known: WellKnownConfig = WellKnownConfig()
    user_directory: UserDirectoryConfig = UserDirectoryConfig()
    media: MediaConfig = MediaConfig()
    federation: FederationConfig = FederationConfig()
    server_notices: ServerNoticesConfig = ServerNoticesConfig()

    @property
    def federation_ca_path(self) -> Path | None:
        """The extra CA for outbound federation TLS, relative to the config file."""
        ca_file = self.federation.ca_file
        return None if ca_file is None else (self.path.parent / ca_file).resolve()

    @property
    def macaroon_key_path(self) -> Path:
        return self.data_dir / "macaroon_secret.key"

    @property
    def signing_key_path(self) -> Path:
        """The server's ed25519 key that signs its events (created on first start)."""
        return self.data_dir / "signing.key"

    @property
    def old_signing_keys_path(self) -> Path:
        """The public halves of the signing keys retired by C{ruma-admin rotate-signing-key}."""
        return self.data_dir / "old_signing_keys.json"


LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


def load_config(path: str | os.PathLike) -> Config:
    """
    Read and validate a TOML configuration file.

    @raise ConfigError: naming the file and the offending key.
    """
    path = Path(path).absolute()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    if "path" in raw:
        # C{Config.path} is where the file was read from, not a setting.
        raise ConfigError(f"{path}: unknown key 'path'")
    raw.setdefault("data_dir", "var")
    raw["path"] = str(path)
    config = _build(Config, raw, path, prefix="")
    if not str(config.data_dir).strip():
        raise ConfigError(f"{path}: data_dir: must not be empty")
    config = dataclasses.replace(
        config, data_dir=(path.parent / config.data_dir).resolve(), path=path
    )
    _check_values(config, path)
    return config


def _check_values(config: Config, path: Path) -> None:
    def bad(key: str, why: str) -> NoReturn:
        raise ConfigError(f"{path}: {key}: {why}")

    if not is_valid_server_name(config.server_name):
        bad("server_name", f"{config.server_name!r} is not a valid server name")
    if not config.listeners:
        bad("listeners", "at least one listener is needed")
    for i, listener in enumerate(config.listeners):
        for resource in listener.resources:
            if resource not in LISTENER_RESOURCES:
                bad(f"listeners[{i}].resources", f"unknown resource {resource!r}")
        if "federation" in listener.resources and not config.federation.enabled:
            bad(f"listeners[{i}].resources", "a 'federation' listener needs federation.enabled = true")
        for alone in _ALONE_RESOURCES:
            if alone in listener.resources and len(listener.resources) > 1:
                bad(f"listeners[{i}].resources", f"{alone!r} is served on a listener of its own")
    if config.database.pool_size < 1:
        bad("database.pool_size", "must be at least 1")
    if not 4 <= config.passwords.bcrypt_rounds <= 31:
        bad("passwords.bcrypt_rounds", "must be between 4 and 31")
    for name in RATE_LIMITED_ACTIONS:
        limit = getattr(config.rate_limits, name)
        # "not > 0" also refuses nan, which TOML allows.
        if not limit.per_second > 0 or limit.burst_count < 1:
            bad(f"rate_limits.{name}", "per_second must be > 0 and burst_count >= 1")
    if config.logging.level not in LOG_LEVELS:
        bad("logging.level", f"must be one of {', '.join(LOG_LEVELS)}")
    if config.logging.requests not in LOG_LEVELS + ("off",):
        bad("logging.requests", f"must be one of {', '.join(LOG_LEVELS)}, off")
    if config.http.max_body_bytes < 1024:
        bad("http.max_body_bytes", "must be at least 1024")
    if not 0 <= config.http.shutdown_grace_s < float("inf"):
        bad("http.shutdown_grace_s", "must be a finite number of seconds, at least 0")
    if config.tokens.cache_size < 1:
        bad("tokens.cache_size", "must be at least 1")
    if config.tokens.refreshable_access_token_lifetime_ms < 1000:
        bad("tokens.refreshable_access_token_lifetime_ms", "must be at least 1000")
    for key in ("ip_range_blocklist", "ip_range_allowlist"):
        try:
            parse_networks(getattr(config.outbound, key))
        except ValueError as e:
            bad(f"outbound.{key}", f"not a list of CIDR ranges: {e}")
    if not 0 < config.outbound.timeout_s < float("inf"):
        bad("outbound.timeout_s", "must be a positive number of seconds")
    check_push(config.push, bad)
    try:
        parse_networks(config.federation.ip_range_allowlist)
    except ValueError as e:
        bad("federation.ip_range_allowlist", f"not a list of CIDR ranges: {e}")
    check_federation(config.federation, bad)
    ca_path = config.federation_ca_path
    if ca_path is not None and not ca_path.is_file():
        bad("federation.ca_file", f"no such file: {ca_path}")
    if config.public_baseurl is not None and not config.public_baseurl.startswith(
        ("http://", "https://")
    ):
        bad("public_baseurl", "must start with http:// or https://")
    check_voip(config.voip, bad)
    check_well_known(config.well_known, bad)
    check_media(config.media, bad)
    check_server_notices(config.server_notices, config.server_name, bad)


def _build(cls: type[_D], raw: object, path: Path, prefix: str) -> _D:
    """Build dataclass C{cls} from the TOML table C{raw}, strictly."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.') or 'top level'}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{path}: unknown key {prefix + key!r}")
    values: dict[str, object] = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: missing required key {key!r}")
            continue
        values[name] = _convert(hints[name], raw[name], path, key)
    return cls(**values)


def _convert(hint: Any, value: object, path: Path, key: str) -> object:
    """C{value} checked against the type hint C{hint} (a class, a union, a tuple type)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, path, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key + ".")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {key}: must be an array")
        return tuple(_convert(args[0], v, path, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is Path:
        hint = str
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint in (str, int, float, bool):
        if type(value) is not hint:
            raise ConfigError(
                f"{path}: {key}: must be {_TYPE_NAMES[hint]}, not {type(value).__name__}"
            )
        return value
    raise AssertionError(f"unsupported config type {hint!r}")  # pragma: no cover


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
