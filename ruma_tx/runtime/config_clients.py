"""
Configuration sections of what the server hands to clients as it is
configured: TURN servers for calls (C{[voip]}) and support contacts
(C{[well_known]}). Part of the schema in L{ruma_tx.runtime.config}; kept
here with their checks so that module stays small.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NoReturn

from ruma_tx.matrix.support import SupportContact, contact_problem
from ruma_tx.matrix.turn import TurnSettings

#: C{bad(key, why)}: refuse the configuration (raises a ConfigError).
Refuse = Callable[[str, str], NoReturn]


@dataclass(frozen=True)
class VoipConfig:
    """
    TURN servers clients use for calls (C{GET /voip/turnServer}), with
    Synapse's settings: a secret shared with the TURN server (coturn's
    C{use-auth-secret}: credentials expire), given inline or as the path of
    a file holding it, or static credentials. Secrets are never logged.
    """

    turn_uris: tuple[str, ...] = ()
    turn_shared_secret: str | None = field(default=None, repr=False)
    turn_shared_secret_path: str | None = None
    turn_username: str | None = None
    turn_password: str | None = field(default=None, repr=False)
    # How long time-limited credentials are valid (Synapse: 1 h).
    turn_user_lifetime_s: int = 3600
    # Whether guests get credentials (Synapse: yes).
    turn_allow_guests: bool = True

    def turn_settings(self) -> TurnSettings:
        """What the server hands out, the shared secret read from its file if given so."""
        secret = self.turn_shared_secret
        if self.turn_shared_secret_path is not None:
            secret = _read_secret(self.turn_shared_secret_path)
        return TurnSettings(uris=self.turn_uris, shared_secret=secret, username=self.turn_username,
                            password=self.turn_password, lifetime_s=self.turn_user_lifetime_s)


@dataclass(frozen=True)
class WellKnownConfig:
    """
    C{/.well-known/matrix/support}: a help page and ways to reach the
    administrators; with neither, the endpoint answers 404 (spec).
    """

    support_page: str | None = None
    support_contacts: tuple[SupportContact, ...] = ()


def _read_secret(path: str) -> str:
    """The secret in a file, without surrounding whitespace (a trailing newline)."""
    return Path(path).read_text(encoding="utf-8").strip()


def check_voip(voip: VoipConfig, bad: Refuse) -> None:
    """Refuse TURN settings that could only hand out unusable credentials."""
    for i, uri in enumerate(voip.turn_uris):
        if not uri.startswith(("turn:", "turns:")):
            bad(f"voip.turn_uris[{i}]", "must start with turn: or turns: (spec)")
    if voip.turn_shared_secret is not None and voip.turn_shared_secret_path is not None:
        bad("voip.turn_shared_secret_path", "set turn_shared_secret or turn_shared_secret_path, not both")
    if (voip.turn_username is None) != (voip.turn_password is None):
        bad("voip.turn_password" if voip.turn_password is None else "voip.turn_username",
            "turn_username and turn_password go together")
    secret_given = voip.turn_shared_secret is not None or voip.turn_shared_secret_path is not None
    if secret_given and voip.turn_username is not None:
        bad("voip.turn_username", "use either a shared secret or static credentials, not both")
    if voip.turn_shared_secret == "":
        bad("voip.turn_shared_secret", "must not be empty")
    if voip.turn_shared_secret_path is not None:
        if not Path(voip.turn_shared_secret_path).is_absolute():
            bad("voip.turn_shared_secret_path", "must be an absolute path")
        try:
            secret = _read_secret(voip.turn_shared_secret_path)
        except (OSError, UnicodeDecodeError) as e:
            bad("voip.turn_shared_secret_path", f"cannot read it: {getattr(e, 'strerror', None) or e}")
        if not secret:
            bad("voip.turn_shared_secret_path", "the file is empty")
    has_credentials = secret_given or voip.turn_username is not None
    if voip.turn_uris and not has_credentials:
        bad("voip.turn_uris", "needs turn_shared_secret, turn_shared_secret_path or turn_username")
    if has_credentials and not voip.turn_uris:
        bad("voip.turn_uris", "TURN credentials are configured but no turn_uris")
    if voip.turn_user_lifetime_s < 1:
        bad("voip.turn_user_lifetime_s", "must be at least 1")


def check_well_known(well_known: WellKnownConfig, bad: Refuse) -> None:
    page = well_known.support_page
    if page is not None and not page.startswith(("http://", "https://")):
        bad("well_known.support_page", "must start with http:// or https://")
    for i, contact in enumerate(well_known.support_contacts):
        problem = contact_problem(contact)
        if problem is not None:
            bad(f"well_known.support_contacts[{i}]", problem)
