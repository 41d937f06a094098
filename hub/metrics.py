"""The hub's ``/metrics`` (see :mod:`onestop.metrics` for the route and who may read it).

Counted from each push's answer (:class:`PushObserver`, around the ingest handler): records by
result, verification failures by reason, and the time a push takes to verify and store.  The
ingest rate is the counter's rate (``rate(onestop_hub_ingest_records_total[5m])``).  Read from
the database at scrape time: open alerts by kind, enrolled and online nodes, the file size.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.ingest import results as ingest_results
from hub.ingest.envelope import Envelope
from hub.keys import CLOCK, CONFIG, DB
from onestop import metrics as metricsm
from onestop.clock import iso
from onestop.errors import ApiError
from sync import errors as syncerr

RESULTS = ("accepted", "duplicate", "rejected")
# Every reason a record, checkpoint, batch or push can be refused for (others appear as seen).
REASONS = tuple(sorted(syncerr.REASONS | {
    ingest_results.BAD_SCHEMA, ingest_results.REVOKED_KEY, ingest_results.UNKNOWN_NODE, "fork", "rollback",
}))  # fmt: skip
ALERT_KINDS = ("fork", "rollback", "rejected", "revoked_key", "unknown_node")
VERIFY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HubMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "onestop_hub_ingest_records",
            "Records pushed to the hub, by result: accepted (stored), duplicate (already held), "
            "rejected (not taken: a bad record and the rest of its batch, a forked batch, "
            "a refused push)",
            ["result"], registry=registry,
        )  # fmt: skip
        self.failures = Counter(
            "onestop_hub_verification_failures",
            "Refusals by reason: a record, checkpoint or batch that failed verification "
            "(bad_signature, broken_chain, bad_schema, fork, rollback, ...) or a refused push",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.verify = Histogram(
            "onestop_hub_ingest_verify_seconds",
            "Seconds to verify and store one push, all its batches (waiting for the ingest "
            "thread included)",
            buckets=VERIFY_BUCKETS, registry=registry,
        )  # fmt: skip
        for result in RESULTS:
            self.records.labels(result)
        for reason in REASONS:
            self.failures.labels(reason)


METRICS = web.AppKey("hub_metrics", HubMetrics)


def setup_metrics(app: web.Application) -> None:
    """The hub's registry, counters and scrape-time gauges, and ``GET /metrics``."""
    registry = metricsm.setup(app, app[CONFIG].metrics_allow, [HubState(app)])
    app[METRICS] = HubMetrics(registry)


class PushObserver:
    """Counts one push: ``parsed(envelope)`` once it is read, ``answered(body)`` with the
    answer; a push refused as a whole (an :class:`ApiError` or HTTP error leaving the
    ``with`` block) counts its reason and, if it was parsed, its records as rejected."""

    def __init__(self, app: web.Application) -> None:
        self.metrics = app.get(METRICS)
        self.envelope: Envelope | None = None
        self.started = 0.0

    def __enter__(self) -> PushObserver:
        return self

    def parsed(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.started = time.perf_counter()

    def answered(self, body: Mapping[str, Any]) -> None:
        m = self.metrics
        if m is None or self.envelope is None:
            return
        m.verify.observe(time.perf_counter() - self.started)
        for batch, res in zip(self.envelope.batches, body.get("results") or [], strict=False):
            sent = len(batch.get("records") or [])
            stored, dups = int(res.get("stored") or 0), int(res.get("duplicates") or 0)
            m.records.labels("accepted").inc(stored)
            m.records.labels("duplicate").inc(dups)
            m.records.labels("rejected").inc(max(sent - stored - dups, 0))
            for rej in res.get("rejected") or []:
                m.failures.labels(str(rej.get("reason") or "unknown")).inc()
            if res.get("alert") in ("fork", "rollback"):  # a quarantined batch names no record
                m.failures.labels(res["alert"]).inc()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        m = self.metrics
        if m is None or exc is None:
            return
        if isinstance(exc, ApiError):
            reason = exc.code
        elif isinstance(exc, web.HTTPException) and exc.status >= 400:
            reason = "too_large" if exc.status == 413 else "bad_request"
        else:
            return
        m.failures.labels(reason).inc()
        if self.envelope is not None:
            n = sum(len(b.get("records") or []) for b in self.envelope.batches)
            m.records.labels("rejected").inc(n)


class HubState(Collector):
    """Gauges read from the database when ``/metrics`` is scraped."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        db, cfg = app[DB], app[CONFIG]
        alerts = GaugeMetricFamily(
            "onestop_hub_alerts_open", "Alerts not resolved, by kind", labels=["kind"]
        )
        counts = dict(db.execute(
            "SELECT kind, count(*) FROM alerts WHERE resolved = 0 GROUP BY kind"
        ).fetchall())  # fmt: skip
        for kind in ALERT_KINDS:
            alerts.add_metric([kind], counts.get(kind, 0))
        yield alerts
        nodes = GaugeMetricFamily(
            "onestop_hub_nodes", "Enrolled nodes, by key status", labels=["status"]
        )
        by_status = dict(
            db.execute("SELECT status, count(*) FROM nodes GROUP BY status").fetchall()
        )
        for status in ("active", "revoked"):
            nodes.add_metric([status], by_status.get(status, 0))
        yield nodes
        since = iso(app[CLOCK]() - dt.timedelta(seconds=cfg.online_seconds))
        online = db.execute(
            "SELECT count(*) FROM nodes WHERE status = 'active' AND last_contact >= ?", [since]
        ).fetchone()[0]
        yield GaugeMetricFamily(
            "onestop_hub_nodes_online",
            "Active nodes that pushed within online_seconds (the dashboards' online)",
            value=online,
        )  # fmt: skip
        yield metricsm.db_size(
            "onestop_hub_db_size_bytes", "Size of hub.db on disk (file and WAL)", cfg.db_path
        )
