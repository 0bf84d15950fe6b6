"""
PostgreSQL LISTEN/NOTIFY on one dedicated connection: how daemon processes
sharing a database tell each other what changed.
"""
from __future__ import annotations

from typing import Callable

from psycopg2.extensions import Notify
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from txpostgres import txpostgres

from ruma_tx.logs import logger
from ruma_tx.storage.database import new_detector

log = logger(__name__)


class NotificationListener:
    """
    Calls C{callback(payload)} for each NOTIFY on a channel it listens to.

    Notifications sent while the connection was down are lost, so after a
    reconnection every C{on_reconnect} callback runs (callers drop what
    they may have missed, e.g. the whole token cache).
    """

    def __init__(self, dsn: str, reactor: IReactorTime) -> None:
        self._dsn = dsn
        self._detector = new_detector(reactor)
        self._connection = txpostgres.Connection(reactor=reactor, detector=self._detector)
        self._callbacks: dict[str, Callable[[str], None]] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self._connection.addNotifyObserver(self._dispatch)
        self._detector.addRecoveryHandler(self._recovery_handler)

    async def start(self) -> None:
        await self._connection.connect(self._dsn)
        await self._listen_all()

    def close(self) -> None:
        self._detector.removeRecoveryHandler(self._recovery_handler)
        try:
            self._connection.close()
        except Exception:
            pass  # already closed or never connected

    async def listen(self, channel: str, callback: Callable[[str], None],
                     on_reconnect: Callable[[], None] | None = None) -> None:
        self._callbacks[channel] = callback
        if on_reconnect is not None:
            self._on_reconnect.append(on_reconnect)
        await self._connection.runOperation(f'LISTEN "{channel}"')

    async def _listen_all(self) -> None:
        for channel in self._callbacks:
            await self._connection.runOperation(f'LISTEN "{channel}"')

    def _recovery_handler(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._recovered())

    async def _recovered(self) -> None:
        await self._listen_all()
        for callback in self._on_reconnect:
            callback()
        log.info("notification listener reconnected")

    def _dispatch(self, notify: Notify) -> None:
        callback = self._callbacks.get(notify.channel)
        if callback is not None:
            callback(notify.payload)
