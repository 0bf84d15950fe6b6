"""
Wiring of the metrics and the health check: the state gauges, GET /health
(served on client listeners too) and the root of "metrics" listeners.
"""
from __future__ import annotations

from ruma_tx.http.observability import HealthApi, MetricsApi
from ruma_tx.http.routing import Router
from ruma_tx.http.site import MatrixRoot
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.guard import Guard
from ruma_tx.services.health import HealthCheck
from ruma_tx.services.metrics import Metrics
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ratelimit import RateLimiter
from ruma_tx.services.streams import StreamWriter
from ruma_tx.storage.database import Database


def build_observability(metrics: Metrics, *, database: Database, notifier: Notifier, streams: StreamWriter,
                        sender: FederationSender | None, reactor: IRuntimeReactor, guard: Guard,
                        rate_limiter: RateLimiter) -> tuple[HealthApi, MatrixRoot]:
    """
    Publish the state gauges, start measuring reactor lag, and build the
    health endpoint and the root of "metrics" listeners.
    """
    metrics.observe(stream_position=lambda: streams.current, sync_waiters=lambda: notifier.waiting,
                    sync_wakeups=lambda: notifier.wakeups, pool_in_use=lambda: database.in_use,
                    federation_backing_off=(lambda: sender.backing_off) if sender is not None else None,
                    federation_pending=(lambda: sender.destinations_pending) if sender is not None else None)
    metrics.start_reactor_lag()
    health = HealthApi(HealthCheck(lambda: database.fetch_one("SELECT 1"), reactor))
    router = Router([MetricsApi(metrics), health], guard=guard, rate_limiter=rate_limiter)
    return health, MatrixRoot(router.resource())
