"""The node's ``/metrics`` (see :mod:`onestop.metrics` for the route and who may read it).

Counted as it happens, by the API handlers: tickets issued (by queue), the wait from issue to
a ticket's first call, and the time a window's "call next" takes.  Read from the database at
scrape time: tickets waiting now (by queue; the partial index of waiting tickets), the push to
the hub (backlog and lag), and the database's size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.keys import CLOCK, CONFIG, DB
from node.replication.client import backlog
from node.replication.state import state
from onestop import metrics as metricsm
from onestop.clock import local_date, parse

WAIT_BUCKETS = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, math.inf)


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter(
            "onestop_node_tickets_issued", "Tickets issued, by queue",
            ["queue"], registry=registry,
        )  # fmt: skip
        self.wait = Histogram(
            "onestop_node_ticket_wait_seconds",
            "Seconds from issuing a ticket to its first call at a window",
            buckets=WAIT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.call_next = Histogram(
            "onestop_node_call_next_seconds",
            "Seconds a window's call-next takes on the node (choosing, updating, logging)",
            buckets=metricsm.LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip


METRICS = web.AppKey("node_metrics", NodeMetrics)


def setup_metrics(app: web.Application) -> None:
    """The node's registry, counters and scrape-time gauges, and ``GET /metrics``."""
    registry = metricsm.setup(app, app[CONFIG].metrics_allow, [NodeState(app)])
    app[METRICS] = NodeMetrics(registry)


def ticket_issued(app: web.Application, ticket: dict[str, Any]) -> None:
    m = app.get(METRICS)
    if m is not None:
        m.issued.labels(ticket["queue"]).inc()


@contextmanager
def call_next_timer(app: web.Application) -> Iterator[None]:
    """Time a call-next (also when it fails: a refused call took time too)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        m = app.get(METRICS)
        if m is not None:
            m.call_next.observe(time.perf_counter() - started)


def ticket_called(app: web.Application, ticket: dict[str, Any] | None) -> None:
    """The wait of a ticket called for the first time (not after a transfer)."""
    m = app.get(METRICS)
    if m is None or ticket is None or not ticket.get("called_at"):
        return
    calls = (
        app[DB]
        .execute(
            "SELECT count(*) FROM events WHERE entity = 'ticket' AND entity_id = ? "
            "AND kind = 'ticket.called'",
            [str(ticket["id"])],
        )
        .fetchone()[0]
    )
    if calls == 1:
        wait = parse(ticket["called_at"]) - parse(ticket["created_at"])
        m.wait.observe(max(wait.total_seconds(), 0.0))


class NodeState(Collector):
    """Gauges read from the database when ``/metrics`` is scraped."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        db, cfg = app[DB], app[CONFIG]
        now = app[CLOCK]()
        today = local_date(now, cfg.timezone).isoformat()
        waiting = GaugeMetricFamily(
            "onestop_node_tickets_waiting", "Tickets waiting now (today), by queue",
            labels=["queue"],
        )  # fmt: skip
        counts = dict(db.execute(
            "SELECT queue, COUNT(*) FROM tickets INDEXED BY tickets_line "
            "WHERE state = 'waiting' AND service_date = ? GROUP BY queue", [today],
        ).fetchall())  # fmt: skip
        for (code,) in db.execute("SELECT code FROM queues WHERE active = 1 ORDER BY code"):
            waiting.add_metric([code], counts.pop(code, 0))
        for code, n in sorted(counts.items()):  # queues closed with tickets still waiting
            waiting.add_metric([code], n)
        yield waiting
        if cfg.hub_url:
            yield from self._push(now)
        yield metricsm.db_size(
            "onestop_node_db_size_bytes", "Size of node.db on disk (file and WAL)", cfg.db_path
        )

    def _push(self, now: Any) -> Iterator[Metric]:

        db = self.app[DB]
        st = state(db)
        ack = int(st.get("hub_ack_seq") or 0)
        yield GaugeMetricFamily(
            "onestop_node_push_backlog_records",
            "Records the hub has not acknowledged yet (own and relayed)", value=backlog(db),
        )  # fmt: skip
        row = db.execute("SELECT at FROM events WHERE seq = ?", [ack + 1]).fetchone()
        lag = max((now - parse(row[0])).total_seconds(), 0.0) if row else 0.0
        yield GaugeMetricFamily(
            "onestop_node_push_lag_seconds",
            "Age of the oldest record the hub has not acknowledged (0: all acknowledged)",
            value=lag,
        )  # fmt: skip
        if st.get("last_success"):
            yield GaugeMetricFamily(
                "onestop_node_push_last_success_timestamp_seconds",
                "Unix time of the last successful push to the hub",
                value=parse(st["last_success"]).timestamp(),
            )  # fmt: skip
