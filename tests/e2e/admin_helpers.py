"""
Admin API test helpers: an admin account made the way an operator makes
one (C{ruma-admin register-user --admin} against the daemon's database),
and a checker of response shapes as Synapse's admin API documents them.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import PASSWORD, unique_localpart

RUMA_ADMIN = str(Path(sys.executable).parent / "ruma-admin")

ADMIN = "/_synapse/admin"


def ruma_admin(*args, stdin: str | None = None, timeout: float = 120,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ruma-admin with C{args}; stdin is empty unless given."""
    return subprocess.run([RUMA_ADMIN, *map(str, args)], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout, env=env)


async def register_admin(client, localpart: str | None = None) -> dict:
    """A new server admin of C{client}'s daemon, logged in: the login response."""
    localpart = localpart or unique_localpart("admin")
    done = ruma_admin("register-user", "--config", client.server.config_path, "--admin", localpart,
                      stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    login = await client.login(localpart)
    assert login.code == 200, login
    return login.json


def assert_shape(value, shape, where: str = "$") -> None:
    """
    C{value} has C{shape}: a type (C{int}, C{str}, C{bool}, C{type(None)}),
    a tuple of types (any of them), a dict of key to shape (every key
    present; C{"key?"} marks an optional one; other keys allowed), or a
    one-item list (every item has that shape).
    """
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for key, inner in shape.items():
            optional = key.endswith("?")
            name = key.rstrip("?")
            if name not in value:
                assert optional, f"{where}: no {name!r} in {sorted(value)}"
                continue
            assert_shape(value[name], inner, f"{where}.{name}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for index, item in enumerate(value):
            assert_shape(item, shape[0], f"{where}[{index}]")
    else:
        types = shape if isinstance(shape, tuple) else (shape,)
        # JSON has no bool/int distinction to lose: True is not a count.
        assert isinstance(value, types) and not (isinstance(value, bool) and bool not in types), \
            f"{where}: {value!r} is not {shape}"
