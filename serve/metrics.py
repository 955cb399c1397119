"""Prometheus metrics of one app: requests and latency per route, the indexes and catalog it serves.

Each app has its own registry (two apps in one process, as in tests, do not
share counters). Routes are labelled by their template (`/shots/{shot_id}`),
never the raw path, so label sets stay bounded whatever clients send. Index
and catalog figures are read from the engine's loaded state when scraped, so
they show what queries are answered from right now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexes.query import EngineState

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, loaded: Callable[[], EngineState | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "archivist_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "archivist_http_request_seconds",
            "time to answer an HTTP request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StateCollector(loaded))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


class StateCollector(Collector):
    def __init__(self, loaded: Callable[[], EngineState | None]) -> None:
        self.loaded = loaded

    def collect(self) -> Iterator[Metric]:
        state = self.loaded()
        if state is None:
            return
        info = InfoMetricFamily("archivist_index", "the index loaded per embedding space", labels=["space"])
        vectors = GaugeMetricFamily(
            "archivist_index_vectors", "vectors in the loaded index", labels=["space"]
        )
        for space, loaded in sorted(state.spaces.items()):
            version = loaded.version
            info.add_metric(
                [space],
                {
                    "snapshot_id": str(version.snapshot_id),
                    "kind": version.kind,
                    "model": version.model,
                    "built_at": version.built_at,
                },
            )
            vectors.add_metric([space], version.count)
        rows = GaugeMetricFamily(
            "archivist_catalog_rows", "rows per catalog table at its current snapshot", labels=["table"]
        )
        for table, (_, count) in sorted(state.tables.items()):
            rows.add_metric([table], count)
        yield info
        yield vectors
        yield rows
        yield GaugeMetricFamily(
            "archivist_catalog_shots_served", "shots queries can return", value=state.view.size
        )


class MetricsMiddleware:
    """Counts and times every HTTP request, including those refused before routing."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)
