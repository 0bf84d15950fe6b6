"""bcrypt password hashing, always in a thread: never on the reactor."""
from __future__ import annotations

import base64
import hashlib
import unicodedata

import bcrypt
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

from ruma_tx.services.ports.accounts import Accounts


def _prepare(password: str) -> bytes:
    """
    The bytes bcrypt hashes for C{password}: its NFKC normal form (as
    Synapse hashes it, so a password typed as composed or decomposed
    characters on different keyboards is the same password), in UTF-8.
    bcrypt reads at most 72 bytes (and bcrypt 5 refuses more): longer
    passwords are first reduced with SHA-256 so every byte still counts.
    """
    return _bytes_for_bcrypt(unicodedata.normalize("NFKC", password))


def _bytes_for_bcrypt(password: str) -> bytes:
    """
    C{password} in UTF-8, reduced to fit bcrypt. A lone surrogate (refused
    as input by L{ruma_tx.matrix.login.check_password_text}) is encoded as
    is rather than failing the request.
    """
    raw = password.encode("utf-8", "surrogatepass")
    if len(raw) > 72:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


class PasswordHasher:
    def __init__(self, reactor: IReactorThreads, rounds: int) -> None:
        self._reactor = reactor
        self._rounds = rounds

    async def hash(self, password: str) -> str:
        """The bcrypt hash of C{password}, computed in a thread."""
        prepared = _prepare(password)

        def work() -> str:
            return bcrypt.hashpw(prepared, bcrypt.gensalt(self._rounds)).decode("ascii")

        return await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), work)

    async def check(self, password: str, password_hash: str | None) -> bool:
        """
        Constant-time check (bcrypt's); C{False} for a missing hash. A hash
        made before passwords were normalised (of the password as typed)
        still matches.
        """
        if not password_hash:
            return False
        candidates = [_prepare(password)]
        if unicodedata.normalize("NFKC", password) != password:
            candidates.append(_bytes_for_bcrypt(password))

        def work() -> bool:
            try:
                return any(bcrypt.checkpw(candidate, password_hash.encode("ascii"))
                           for candidate in candidates)
            except ValueError:
                return False

        return await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), work)


class PasswordChecker:
    """Checks a user's password against their stored hash."""

    def __init__(self, accounts: Accounts, hasher: PasswordHasher) -> None:
        self._accounts = accounts
        self._hasher = hasher

    async def check(self, user_id: str, password: str) -> bool:
        """C{False} for unknown, deactivated or password-less accounts."""
        account = await self._accounts.get_account(user_id)
        if account is None or account.deactivated:
            return False
        return await self._hasher.check(password, account.password_hash)
