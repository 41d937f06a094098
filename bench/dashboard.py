"""Hub dashboards at scale: a hub database with millions of events from thousands of nodes,
and the hub's read endpoints timed against it (p50/p95).

The database is made directly with SQL (the hub's own schema from ``onestop hub init``, bulk
inserts in large transactions, secondary indexes rebuilt after the load): ingesting 5 million
records through the API would take hours and measure ingest, not dashboards.  Rows have the
shape the hub stores - realistic bodies (a pool of case, ticket and rating events), a
consistent hash chain per node - but placeholder signatures: dashboards read, they do not
verify.  Rollup tables, where the hub has them, are filled by the hub's own rebuild function
(``hub.rollups``/``hub.dashboard``: ``rebuild``/``refresh``/``rebuild_rollups``).

Timed: ``GET /api/v1/nodes`` and every ``/api/v1/dashboard...`` route the hub has (found from
its route table), each ``dash_samples`` times after a warm-up request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import random
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Options, Row, log, percentile, skipped, workdir
from bench.records import case_events

GENESIS = "0" * 64
PLACEHOLDER_SIG = "A" * 86 + "=="  # 64 zero bytes, base64: the shape of an Ed25519 signature
TICKET_KINDS = ("ticket.issued", "ticket.called", "ticket.finished")
QUEUES = ("dept:edu", "dept:civil", "dept:housing", "dept:hrss", "area:agri", "area:social")


def _body_pool(seed: int = 3) -> list[tuple[str, str, str]]:
    """(kind, entity, body JSON) for a realistic mix: tickets, cases, ratings."""
    rng = random.Random(seed)
    pool = []
    for ev in case_events("370101001", 600, seed=seed):
        pool.append((ev["kind"], ev["entity"], _json(ev["body"])))
    for i in range(900):
        kind = TICKET_KINDS[i % 3]
        q = QUEUES[i % len(QUEUES)]
        body: dict[str, Any] = {"ticket_no": f"{'ABCDEF'[i % 6]}{i % 300 + 1:03d}", "queue": q}
        if kind == "ticket.issued":
            body.update(service_date="2026-11-24", item=None, priority=int(rng.random() < 0.1),
                        priority_reason=None)
        else:
            body.update(window=1 + i % 8, by=f"window{1 + i % 8}")
        pool.append((kind, "ticket", _json(body)))
    for i in range(100):
        body = {"level": rng.choice((5, 5, 5, 4, 4, 3, 2, 1)), "case_no": None,
                "ticket_no": f"A{i + 1:03d}", "channel": "kiosk"}
        pool.append(("rating.created", "rating", _json(body)))
    return pool


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _rows(code: str, count: int, pool: list[tuple[str, str, str]], rng: random.Random,
          start: dt.datetime, span_s: int) -> Iterator[tuple[Any, ...]]:
    prev = GENESIS
    ats = sorted(rng.randrange(span_s) for _ in range(count))
    for seq in range(1, count + 1):
        kind, entity, body = pool[rng.randrange(len(pool))]
        h = hashlib.sha256(f"{code}:{seq}:{prev}".encode()).hexdigest()
        at = (start + dt.timedelta(seconds=ats[seq - 1])).isoformat(timespec="milliseconds")
        at = at.replace("+00:00", "Z")
        yield (code, seq, h, prev, code[-6:] + "0000000000", PLACEHOLDER_SIG, at, kind, entity,
               str(seq // 3 + 1), body, at)
        prev = h


def build_hub_db(path: Path, events: int, nodes: int, node_code: Any, opts: Options,
                 seed: int = 5) -> dict[str, Any]:
    """Fill an initialised hub database with ``events`` records from ``nodes`` nodes."""
    from cryptography.hazmat.primitives import serialization as ser

    from sync.keys import Ed25519PrivateKey, public_key_id, public_raw_b64

    t0 = time.perf_counter()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # bulk load: no WAL copy of 5 GB
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'records' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    rng = random.Random(seed)
    pool = _body_pool(seed)
    per, extra = divmod(events, nodes)
    start = dt.datetime(2025, 11, 24, 0, 0, tzinfo=dt.UTC)
    span = 365 * 86400
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    key = Ed25519PrivateKey.generate()  # one key is enough for rows nobody verifies
    pem = key.public_key().public_bytes(ser.Encoding.PEM,
                                        ser.PublicFormat.SubjectPublicKeyInfo).decode()
    raw, kid = public_raw_b64(key.public_key()), public_key_id(key.public_key())
    cols = [r[1] for r in conn.execute("PRAGMA table_info(nodes)").fetchall()]
    inserted = pending = 0
    conn.execute("BEGIN")
    for i in range(nodes):
        code = node_code(i)
        count = per + (1 if i < extra else 0)
        last = GENESIS
        batch = list(_rows(code, count, pool, rng, start, span))
        if batch:
            last = batch[-1][2]
        node = {"code": code, "name": f"{code} 便民服务中心", "level": "township",
                "parent": code[:6], "pubkey": pem, "key_id": kid, "cur_key": raw,
                "status": "active", "enrolled_at": now, "last_contact": now,
                "ack_seq": count, "ack_hash": last}
        node = {k: v for k, v in node.items() if k in cols}
        conn.execute(f"INSERT INTO nodes ({','.join(node)}) VALUES "
                     f"({','.join('?' * len(node))})", list(node.values()))
        conn.execute("INSERT OR IGNORE INTO node_keys (node, key_id, pubkey, from_seq, source, "
                     "added_at) VALUES (?, ?, ?, 0, 'enrolled', ?)", [code, kid, raw, now])
        conn.executemany(
            "INSERT INTO records (node, seq, hash, prev, key_id, sig, at, kind, entity, "
            "entity_id, body, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        inserted += len(batch)
        pending += len(batch)
        if pending >= 500_000:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            pending = 0
            log(opts, f"dashboard: {inserted:,} records ({i + 1} nodes)")
    conn.execute("COMMIT")
    load_s = time.perf_counter() - t0
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    index_s = time.perf_counter() - t0 - load_s
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    rollup = _rebuild_rollups(path)
    return {"events": events, "nodes": nodes, "load_s": load_s, "index_s": index_s,
            "rollups": rollup, "total_s": time.perf_counter() - t0,
            "db_mb": path.stat().st_size / 1024 / 1024}


def _rebuild_rollups(path: Path) -> str:
    """Run the hub's own rollup rebuild, if it has one; say what happened."""
    for modname in ("hub.rollups", "hub.rollup", "hub.dashboard", "hub.dashboards"):
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError:
            continue
        for fn in ("rebuild", "rebuild_rollups", "refresh", "refresh_rollups"):
            f = getattr(mod, fn, None)
            if callable(f):
                from hub import db as hubdb

                db = hubdb.open_db(path)
                t = time.perf_counter()
                f(db)
                db.conn.close()
                return f"{modname}.{fn}: {time.perf_counter() - t:.1f} s"
    return "no rollup tables (the hub has no rollup rebuild yet)"


def dashboard_paths(hub_dir: Path) -> list[str]:
    """GET paths to time: /api/v1/nodes and the hub's /api/v1/dashboard... routes."""
    paths = ["/api/v1/nodes"]
    try:
        from hub import config as hubcfg
        from hub.app import create_app

        app = create_app(hubcfg.load(hub_dir))
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            p = info.get("path") or info.get("formatter") or ""
            if route.method == "GET" and "/dashboard" in p and "{" not in p:
                paths.append(p)
    except Exception:  # noqa: BLE001 - no app to inspect: time what surely exists
        pass
    return list(dict.fromkeys(paths))


def time_get(url: str, samples: int) -> dict[str, Any]:
    def get() -> tuple[int, int]:
        try:
            with urllib.request.urlopen(url, timeout=300) as r:
                return r.status, len(r.read())
        except urllib.error.HTTPError as e:
            return e.code, len(e.read())

    status, size = get()  # warm-up
    lat = []
    for _ in range(samples):
        t = time.perf_counter()
        status, size = get()
        lat.append((time.perf_counter() - t) * 1000)
    return {"status": status, "bytes": size, "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95), "samples": samples}


def run(opts: Options) -> list[Row]:
    from bench import hubutil

    events, nodes = opts.dash_events, opts.dash_nodes
    with workdir(opts, "dashboard") as tmp:
        hub_dir = tmp / "hub"
        try:
            hubutil.hub_init(hub_dir)
        except Exception as exc:  # noqa: BLE001
            why = f"no hub to run: onestop hub init failed ({exc})"[:300]
            return [skipped("dashboard", "dashboard views", why, "ms")]
        log(opts, f"dashboard: generating {events:,} events from {nodes:,} nodes")
        built = build_hub_db(hub_dir / "hub.db", events, nodes, hubutil.node_code, opts)
        gen = Row("dashboard", "generate hub DB (direct SQL)", events / built["total_s"],
                  "events/s",
                  note=f"{events:,} events, {nodes:,} nodes, {built['db_mb']:,.0f} MB in "
                       f"{built['total_s']:.0f} s (indexes {built['index_s']:.0f} s); "
                       f"{built['rollups']}", extra=built)
        rows = [gen]
        paths = dashboard_paths(hub_dir)
        with hubutil.hub_serve(hub_dir) as srv:
            for p in paths:
                r = time_get(srv.url + p, opts.dash_samples)
                ok = 200 <= r["status"] < 300
                rows.append(Row(
                    "dashboard", f"GET {p} p50 @ {events / 1e6:g}M events", r["p50_ms"], "ms",
                    status="" if ok else "ERROR",
                    note=f"p95 {r['p95_ms']:.1f} ms, {r['samples']} samples, HTTP "
                         f"{r['status']}, {r['bytes']:,} B", extra=r))
            if not any("/dashboard" in p for p in paths):
                rows.append(skipped("dashboard", "dashboard views p50/p95",
                                    "the hub has no /api/v1/dashboard... endpoints yet "
                                    "(dashboards are a later issue)", "ms"))
    return rows
