"""
C{ruma-admin} commands that act through the running daemon's admin API
(C{/_synapse/admin}), for operators who would rather type than click:
listing users, resetting passwords, granting admin, creating registration
tokens, deleting rooms, quarantining media.

They go through the daemon rather than the database because the daemon is
the only writer of the event stream (a room delete sends leave events) and
holds caches the change must reach. The command logs in as a server admin
(C{--admin-user}, password asked or read from stdin, the session ended
afterwards) or uses an admin's token from C{RUMA_ADMIN_TOKEN}.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, cast
from urllib.parse import quote

import treq
from twisted.internet.task import deferLater
from twisted.web.http_headers import Headers

from ruma_tx.runtime.config import Config
from ruma_tx.runtime.reactor import IRuntimeReactor

#: The environment variable holding an admin's access token.
TOKEN_VARIABLE = "RUMA_ADMIN_TOKEN"
_ADMIN = "/_synapse/admin"


class ApiCommandError(Exception):
    """A failure to report as one line (the caller's AdminError convention)."""


def add_api_commands(commands: Any) -> None:
    """Add the API-backed subcommands to C{ruma-admin}'s subparsers."""
    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", "-c", required=True, help="the TOML config file")
        parser.add_argument("--url", help="the daemon's client API (default: the config's client listener)")
        parser.add_argument("--admin-user", help=f"a server admin to log in as (else ${TOKEN_VARIABLE})")
        return parser

    users = command("list-users", "list the server's users (through the running daemon)")
    users.add_argument("--name", help="only users whose id or display name contains this")
    users.add_argument("--deactivated", action="store_true", help="include deactivated users")
    users.add_argument("--admins", action="store_true", help="only server admins")
    reset = command("reset-password", "set a user's password and log out their devices")
    reset.add_argument("user_id", help="the user id (@alice:example.org) or localpart")
    grant = command("make-admin", "make a user a server admin (or, with --revoke, no longer one)")
    grant.add_argument("user_id", help="the user id (@alice:example.org) or localpart")
    grant.add_argument("--revoke", action="store_true", help="remove the admin flag instead")
    token = command("create-registration-token", "create a token that lets someone register")
    token.add_argument("--uses", type=int, help="how many registrations it allows (default: unlimited)")
    token.add_argument("--valid-days", type=float, help="days until it expires (default: never)")
    purge = command("purge-room", "remove every local user from a room and delete it from the database")
    purge.add_argument("room_id", help="the room id (!abc:example.org)")
    purge.add_argument("--block", action="store_true", help="also forbid local users to join it again")
    quarantine = command("quarantine-media", "stop serving a media item (mxc://server/id)")
    quarantine.add_argument("mxc_uri", help="the media's mxc:// URI")


#: The subcommands L{add_api_commands} adds.
API_COMMANDS = ("list-users", "reset-password", "make-admin", "create-registration-token", "purge-room",
                "quarantine-media")


def client_url(config: Config) -> str:
    """The base URL of the config's first client listener, reached on loopback when it listens on all interfaces."""
    for listener in config.listeners:
        if "client" not in listener.resources:
            continue
        kind, _, rest = listener.endpoint.partition(":")
        fields = rest.split(":")
        options = dict(field.split("=", 1) for field in fields[1:] if "=" in field)
        host = options.get("interface", "127.0.0.1")
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if kind == "ssl" else "http"
        return f"{scheme}://{host}:{fields[0]}"
    raise ApiCommandError("the config has no client listener: give --url")


class AdminApiClient:
    """JSON requests to the daemon's APIs with an admin's token."""

    def __init__(self, base_url: str, reactor: IRuntimeReactor) -> None:
        self._base_url = base_url.rstrip("/")
        self._reactor = reactor
        self.token: str | None = None

    async def request(self, method: str, path: str, body: object = None,
                      params: dict[str, str] | None = None) -> Any:
        headers = Headers({b"Content-Type": [b"application/json"]})
        if self.token is not None:
            headers.addRawHeader(b"Authorization", f"Bearer {self.token}".encode())
        try:
            response = await treq.request(
                method, self._base_url + path, headers=headers, params=params,
                data=json.dumps(body).encode() if body is not None else None, timeout=60,
                reactor=cast(Any, self._reactor))  # treq's reactor protocol: the runtime reactor provides it
            raw = await response.content()
        except Exception as e:  # noqa: BLE001 - any connection failure is one line
            raise ApiCommandError(f"cannot reach the daemon at {self._base_url}: {e}") from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if response.code >= 400:
            what = answer.get("error") or answer.get("errcode") or f"HTTP {response.code}"
            raise ApiCommandError(f"{method} {path}: {what} ({response.code})")
        return answer

    async def log_in(self, user_id: str, password: str) -> None:
        answer = await self.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
            "password": password, "initial_device_display_name": "ruma-admin"})
        self.token = answer["access_token"]

    async def log_out(self) -> None:
        await self.request("POST", "/_matrix/client/v3/logout", {})
        self.token = None


def _ask_password(prompt: str) -> str:
    password = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ApiCommandError("the password must not be empty")
    return password


@dataclass(frozen=True)
class _Run:
    """One command's inputs: the logged-in client, the arguments, and what turns names into user ids."""

    client: AdminApiClient
    args: argparse.Namespace
    user_id_of: Callable[[str], str]
    reactor: IRuntimeReactor
    new_password: str | None


async def run_api_command(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace,
                          user_id_of: Callable[[str], str]) -> None:
    """
    Run one API-backed command. Passwords are read before anything is sent:
    the admin's first, then (reset-password) the new one.

    @param user_id_of: a localpart or user id -> a user id of this server.
    """
    client = AdminApiClient(args.url or client_url(config), reactor)
    admin_password = None
    if os.environ.get(TOKEN_VARIABLE):
        client.token = os.environ[TOKEN_VARIABLE]
    elif args.admin_user:
        admin_password = _ask_password(f"Password of {args.admin_user}: ")
    else:
        raise ApiCommandError(f"give --admin-user (a server admin) or set ${TOKEN_VARIABLE}")
    new_password = _ask_password("New password: ") if args.command == "reset-password" else None
    if admin_password is not None:
        await client.log_in(user_id_of(args.admin_user), admin_password)
    try:
        await _COMMANDS[args.command](_Run(client, args, user_id_of, reactor, new_password))
    finally:
        if admin_password is not None:
            await client.log_out()


async def _list_users(run: _Run) -> None:
    params = {"limit": "100", "deactivated": "true" if run.args.deactivated else "false"}
    if run.args.name:
        params["name"] = run.args.name
    if run.args.admins:
        params["admins"] = "true"
    shown, total = 0, 0
    while True:
        page = await run.client.request("GET", f"{_ADMIN}/v2/users", params=params)
        total = page.get("total", total)
        for user in page["users"]:
            flags = [flag for flag in ("admin", "deactivated", "locked", "shadow_banned", "is_guest")
                     if user.get(flag)]
            print(f"{user['name']}\t{user.get('displayname') or ''}\t{','.join(flags)}")
            shown += 1
        if not page.get("next_token"):
            break
        params["from"] = str(page["next_token"])
    print(f"{shown} of {total} users", file=sys.stderr)


async def _reset_password(run: _Run) -> None:
    user_id = run.user_id_of(run.args.user_id)
    await run.client.request("POST", f"{_ADMIN}/v1/reset_password/{quote(user_id)}",
                             {"new_password": run.new_password, "logout_devices": True})
    print(f"password of {user_id} reset; their devices are logged out")


async def _make_admin(run: _Run) -> None:
    user_id = run.user_id_of(run.args.user_id)
    await run.client.request("PUT", f"{_ADMIN}/v1/users/{quote(user_id)}/admin", {"admin": not run.args.revoke})
    print(f"{user_id} is {'no longer ' if run.args.revoke else ''}a server admin")


async def _create_registration_token(run: _Run) -> None:
    body: dict[str, object] = {"uses_allowed": run.args.uses}
    if run.args.valid_days is not None:
        body["expiry_time"] = int(run.reactor.seconds() * 1000) + int(run.args.valid_days * 86_400_000)
    created = await run.client.request("POST", f"{_ADMIN}/v1/registration_tokens/new", body)
    print(created["token"])


async def _purge_room(run: _Run) -> None:
    room_id = run.args.room_id
    started = await run.client.request("DELETE", f"{_ADMIN}/v2/rooms/{quote(room_id)}",
                                       {"purge": True, "block": run.args.block})
    while True:
        status = await run.client.request("GET", f"{_ADMIN}/v2/rooms/delete_status/{quote(started['delete_id'])}")
        if status["status"] in ("complete", "failed"):
            break
        await deferLater(run.reactor, 0.5, lambda: None)
    if status["status"] == "failed":
        raise ApiCommandError(f"deleting {room_id} failed: {status.get('error') or 'see the daemon log'}")
    kicked = status.get("shutdown_room", {}).get("kicked_users", [])
    print(f"{room_id} deleted; {len(kicked)} local users removed")


async def _quarantine_media(run: _Run) -> None:
    uri = run.args.mxc_uri
    server_name, _, media_id = uri.removeprefix("mxc://").partition("/")
    if not uri.startswith("mxc://") or not server_name or not media_id or "/" in media_id:
        raise ApiCommandError(f"{uri!r} is not an mxc://server/id URI")
    await run.client.request("POST", f"{_ADMIN}/v1/media/quarantine/{quote(server_name)}/{quote(media_id)}", {})
    print(f"{uri} quarantined")


_COMMANDS: dict[str, Callable[[_Run], Awaitable[None]]] = {
    "list-users": _list_users,
    "reset-password": _reset_password,
    "make-admin": _make_admin,
    "create-registration-token": _create_registration_token,
    "purge-room": _purge_room,
    "quarantine-media": _quarantine_media,
}
