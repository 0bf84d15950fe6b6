"""
GET /health (client and metrics listeners) and GET /metrics (the metrics
listener only). Neither is in the spec: they are for load balancers and
Prometheus, need no token, and are not advertised anywhere.
"""
from __future__ import annotations

from ruma_tx.http.routing import NO_PREFIX, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.health import HealthCheck
from ruma_tx.services.metrics import CONTENT_TYPE, Metrics


class HealthApi:
    def __init__(self, health: HealthCheck) -> None:
        self._health = health

    @endpoint("GET", "/health", auth="none", prefixes=NO_PREFIX)
    async def health(self, request: MatrixRequest, requester: None) -> JsonDict:
        """200 when the database answers, else 503 (L{HealthCheck.check} raises)."""
        await self._health.check()
        return {"status": "ok"}


class MetricsApi:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    @endpoint("GET", "/metrics", auth="none", prefixes=NO_PREFIX)
    async def metrics(self, request: MatrixRequest, requester: None) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE.encode("ascii"))
        return self._metrics.render()
