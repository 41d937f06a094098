"""``GET /metrics`` for node and hub: Prometheus text exposition from one registry per app.

Each application has its own :class:`CollectorRegistry` (never the process-wide default), so
several apps in one process (the tests) keep their counts apart.  Counters are incremented
where things happen; gauges that describe the database (waiting tickets, open alerts, the
push backlog, the file size) are computed when the scraper asks, by collectors given to
:func:`setup`.

Who may read it: the machine itself (loopback) and the addresses or networks of the setting
``metrics_allow``; anyone else gets 403 in the one error shape.  The numbers carry no personal
data, but queue lengths and ingest failures are nobody else's business on the LAN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from onestop.config import networks
from onestop.errors import Forbidden, error_response

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The classic text exposition format, which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Requests by route (the route's pattern, never the concrete path) and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "onestop_http_requests", "HTTP requests answered, by method, route and status",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "onestop_http_request_duration_seconds", "Time to answer an HTTP request, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip


REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
HTTP = web.AppKey("metrics_http", HttpMetrics)
ALLOW: web.AppKey[list[Network]] = web.AppKey("metrics_allow")


def setup(
    app: web.Application, allow: str, collectors: Iterable[Collector] = ()
) -> CollectorRegistry:
    """A registry for ``app``, the HTTP metrics, the scrape-time ``collectors`` and the route
    ``GET /metrics``; returns the registry for the app's own counters."""
    disable_created_metrics()  # no "_created" twin of every counter: half the lines, no use
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[HTTP] = HttpMetrics(registry)
    app[ALLOW] = networks(allow)
    for collector in collectors:
        registry.register(collector)
    app.router.add_get("/metrics", serve)
    return registry


def allowed(remote: str | None, allow: list[Network]) -> bool:
    """Loopback always; other addresses when they are in one of the ``allow`` networks."""
    if not remote:
        return False
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or any(addr in net for net in allow)


async def serve(request: web.Request) -> web.Response:
    app = request.app
    if not allowed(request.remote, app[ALLOW]):
        exc = Forbidden(
            f"metrics are not served to {request.remote}",
            hint="add the scraper's address to metrics_allow in the settings",
        )
        return error_response(exc, request)
    body = generate_latest(app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def observe_request(request: web.Request, status: int, seconds: float) -> None:
    """Count one answered request (called by the access middleware)."""
    http = request.app.get(HTTP)
    if http is None:
        return
    resource = request.match_info.route.resource  # None: no route matched (404, 405)
    route = resource.canonical if resource is not None else "unmatched"
    http.requests.labels(request.method, route, str(status)).inc()
    http.seconds.labels(route).observe(seconds)


def db_size(name: str, help_text: str, path: Path) -> GaugeMetricFamily:
    """A gauge of the SQLite database's size on disk: the file plus its write-ahead log."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return GaugeMetricFamily(name, help_text, value=total)
