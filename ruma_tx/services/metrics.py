"""
Every Prometheus metric of the server, on one registry given to
L{Metrics}: the components report to it through plain callbacks (a request
finished, an event stored, a query ran), and the gauges that describe
state (waiters, stream position, pool use) are read only when scraped, so
the hot paths pay one dictionary lookup and one observation each.
"""
from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from twisted.internet.task import LoopingCall

from ruma_tx.services.clock import Clock
from ruma_tx.services.ports.events import NewEvent

#: The content type of L{Metrics.render}'s text exposition format.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The label of requests that matched no route (404s, OPTIONS, refused bodies).
UNROUTED = "unrouted"

#: Request latencies: a sync long-poll lasts up to its timeout (30 s is common).
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    """
    The server's metrics on C{registry}, with the process collector (CPU,
    memory, open files) of this process.

    @param server_name: tells our users' events from received ones.
    """

    def __init__(self, registry: CollectorRegistry, clock: Clock, server_name: str) -> None:
        self._registry = registry
        self._clock = clock
        self._local_suffix = ":" + server_name
        self._requests = Counter(
            "ruma_http_requests", "HTTP requests answered, by route template and status.",
            ["endpoint", "status"], registry=registry)
        # By route only: with the status too it would be 13 buckets per pair.
        self._request_seconds = Histogram(
            "ruma_http_request_duration_seconds", "Time from a request's arrival to its last byte, by route.",
            ["endpoint"], buckets=_REQUEST_BUCKETS, registry=registry)
        self._events = Counter(
            "ruma_events_persisted", "Events stored, by origin (local: sent by our users; received).",
            ["origin"], registry=registry)
        self._query_seconds = Histogram(
            "ruma_database_query_duration_seconds",
            "Time a query or transaction held a pooled connection.", buckets=_QUERY_BUCKETS,
            registry=registry)
        self._reactor_lag = Gauge(
            "ruma_reactor_lag_seconds", "How late the reactor ran the last timer: the time it was busy.",
            registry=registry)
        ProcessCollector(registry=registry)
        # (endpoint, status) -> counter child, endpoint -> histogram child:
        # labels() costs a lock and a tuple each time.
        self._request_counters: dict[tuple[str, int], Counter] = {}
        self._request_timers: dict[str, Histogram] = {}
        self._lag_loop: LoopingCall | None = None

    def observe(self, *, stream_position: Callable[[], float], sync_waiters: Callable[[], float],
                sync_wakeups: Callable[[], float], pool_in_use: Callable[[], float],
                federation_backing_off: Callable[[], float] | None = None,
                federation_pending: Callable[[], float] | None = None) -> None:
        """Publish the state these functions read, each read at every scrape."""
        self._registry.register(_ReadCounter(
            "ruma_sync_wakeups", "Long-polls (/sync, /events) woken by something new for them.", sync_wakeups))
        gauges = [
            ("ruma_stream_position", "The newest position of the event stream.", stream_position),
            ("ruma_sync_waiters", "Long-polls (/sync, /events) waiting for something new.", sync_waiters),
            ("ruma_database_pool_connections_in_use", "Pooled connections running a query now.",
             pool_in_use),
        ]
        if federation_backing_off is not None:
            gauges.append(("ruma_federation_destinations_backing_off",
                           "Servers we wait to retry after failures to send to them.", federation_backing_off))
        if federation_pending is not None:
            gauges.append(("ruma_federation_destinations_pending",
                           "Servers with events or EDUs still to send (in flight, queued or awaiting a retry).",
                           federation_pending))
        for name, documentation, read in gauges:
            Gauge(name, documentation, registry=self._registry).set_function(read)

    def request_finished(self, endpoint: str, status: int, seconds: float) -> None:
        """
        @param endpoint: the route template (C{"PUT /_matrix/client/v3/rooms/<room_id>/..."}),
            never the path itself: label values must stay few.
        """
        counter = self._request_counters.get((endpoint, status))
        if counter is None:
            counter = self._request_counters[endpoint, status] = self._requests.labels(endpoint, str(status))
        counter.inc()
        timer = self._request_timers.get(endpoint)
        if timer is None:
            timer = self._request_timers[endpoint] = self._request_seconds.labels(endpoint)
        timer.observe(seconds)

    def event_stored(self, event: NewEvent, position: int) -> None:
        local = str(event.pdu.get("sender", "")).endswith(self._local_suffix)
        self._events.labels("local" if local else "received").inc()

    def query_finished(self, seconds: float) -> None:
        self._query_seconds.observe(seconds)

    def start_reactor_lag(self, interval_s: float = 1.0) -> None:
        """Measure, every C{interval_s}, how late the reactor runs a timer due then."""
        started = self._clock.seconds()
        ticks = 0

        def tick(count: int) -> None:
            nonlocal ticks
            ticks += count  # intervals elapsed, more than one when very late
            self._reactor_lag.set(max(0.0, self._clock.seconds() - (started + ticks * interval_s)))

        self._lag_loop = LoopingCall.withCount(tick)
        self._lag_loop.clock = self._clock  # type: ignore[assignment]  # seconds() and callLater() suffice
        self._lag_loop.start(interval_s, now=False)

    def stop(self) -> None:
        if self._lag_loop is not None and self._lag_loop.running:
            self._lag_loop.stop()

    def render(self) -> bytes:
        """The text exposition of every metric, for C{GET /metrics}."""
        return generate_latest(self._registry)


class _ReadCounter(Collector):
    """A counter kept elsewhere (a plain int on a hot path), read at each scrape."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())
