"""Hub dashboards at scale: a hub database with millions of events from thousands of nodes,
and the hub's dashboard and API reads timed against it (p50/p95).

The database is made directly with SQL (the hub's own schema from ``onestop hub init``, bulk
inserts in large transactions, secondary indexes rebuilt after the load): ingesting 5 million
records through the API would take hours and measure ingest, not dashboards.  Each node's log
is a coherent stream over the last ``DAYS`` days - tickets issued, called and finished; every
third visit a case opened, accepted, decided, handed over and rated - with bodies that follow
the event schemas, a consistent hash chain per node, and placeholder signatures (dashboards
read, they do not verify).  The hub's rollups are filled by its own
:func:`hub.rollups.bulk_load` from the same rows (else :func:`hub.rollups.rebuild`), chunk by
chunk, as the hub would have built them at ingest.

Timed, logged in as a province-wide hub user: ``GET /api/v1/nodes``, ``/api/v1/dash/{code}``
for the province, a city and one center, every ``/api/v1/dash/37/{table}``, and the HTML page
``/dash/37``, each for the last 30 days, ``dash_samples`` times after a warm-up request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.cookiejar
import importlib
import json
import random
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import Options, Row, log, percentile, run_onestop, skipped, workdir
from bench.records import case_events
from onestop.clock import utcnow

GENESIS = "0" * 64
PLACEHOLDER_SIG = "A" * 86 + "=="  # 64 zero bytes, base64: the shape of an Ed25519 signature
DAYS = 30
QUEUES = ("dept:edu", "dept:civil", "dept:housing", "dept:hrss", "dept:samr", "dept:police")
USER, PASSWORD = "bench", "bench-pass-2026"
CHUNK = 100_000  # records per transaction (and per rollup bulk load)

Event = tuple[str, str, str, dict[str, Any]]  # kind, entity, entity_id, body


def _templates(seed: int) -> dict[str, list[dict[str, Any]]]:
    """Schema-valid case.opened and rating.given bodies (600-800 bytes) to vary from."""
    out: dict[str, list[dict[str, Any]]] = {"case.opened": [], "rating.given": []}
    for ev in case_events("370101001", 1200, seed=seed):
        if ev["kind"] in out:
            out[ev["kind"]].append(ev["body"])
    return out


def _visits(
    code: str, rng: random.Random, tpl: dict[str, list[dict[str, Any]]], today: dt.date
) -> Iterator[tuple[dt.datetime, Event]]:
    """An endless, time-ordered stream of one center's events over the last DAYS days."""
    day0 = today - dt.timedelta(days=DAYS - 1)
    ticket = case = 0
    t = dt.datetime.combine(day0, dt.time(1, 0), tzinfo=dt.UTC)  # 09:00 Beijing
    while True:
        ticket += 1
        q = QUEUES[rng.randrange(len(QUEUES))]
        local = (t + dt.timedelta(hours=8)).date()
        tno = f"{'ABCDEF'[QUEUES.index(q)]}{ticket % 900 + 1:03d}"
        win = 1 + ticket % 6
        wait = dt.timedelta(seconds=rng.randrange(60, 1800))
        serve = dt.timedelta(seconds=rng.randrange(120, 900))
        tid = str(ticket)
        yield (
            t,
            (
                "ticket.issued",
                "ticket",
                tid,
                {
                    "ticket_no": tno,
                    "queue": q,
                    "service_date": local.isoformat(),
                    "item": None,
                    "priority": 0,
                    "priority_reason": None,
                },
            ),
        )
        yield (
            t + wait,
            (
                "ticket.called",
                "ticket",
                tid,
                {"ticket_no": tno, "queue": q, "window": win, "by": f"window{win}"},
            ),
        )
        yield (
            t + wait + serve,
            (
                "ticket.finished",
                "ticket",
                tid,
                {"ticket_no": tno, "queue": q, "window": win, "by": f"window{win}"},
            ),
        )
        if ticket % 3 == 0:
            case += 1
            case_no = f"{code}-{local:%Y%m%d}-{case:04d}"
            opened = dict(rng.choice(tpl["case.opened"]), case_no=case_no, ticket_no=tno)
            depts = opened["departments"]
            at = t + wait + serve
            d = local.isoformat()
            due = (local + dt.timedelta(days=10)).isoformat()
            yield at, ("case.opened", "case", case_no, opened)
            yield (
                at,
                (
                    "case.accepted",
                    "case",
                    case_no,
                    {
                        "case_no": case_no,
                        "accepted_date": d,
                        "promised_deadline": due,
                        "statutory_deadline": (local + dt.timedelta(days=20)).isoformat(),
                        "departments": depts,
                        "missing": [],
                        "commitment": False,
                        "catch_up_date": None,
                        "by": f"window{win}",
                    },
                ),
            )
            if rng.random() < 0.9:  # decided the same day (即办) or later in the stream
                yield (
                    at + serve,
                    (
                        "case.approved",
                        "case",
                        case_no,
                        {"case_no": case_no, "decided_date": d, "on_time": rng.random() < 0.96},
                    ),
                )
                yield (
                    at + serve * 2,
                    (
                        "case.handed_over",
                        "case",
                        case_no,
                        {
                            "case_no": case_no,
                            "method": "pickup",
                            "tracking": None,
                            "ticket_no": tno,
                            "visits": 1,
                            "by": f"window{win}",
                        },
                    ),
                )
                rating = dict(rng.choice(tpl["rating.given"]), case_no=case_no, rating_id=case)
                yield at + serve * 2, ("rating.given", "rating", str(case), rating)
        t += dt.timedelta(seconds=rng.randrange(20, 90))
        if (t + dt.timedelta(hours=8)).hour >= 17:  # the hall closes: next morning
            nxt = (t + dt.timedelta(hours=8)).date() + dt.timedelta(days=1)
            t = dt.datetime.combine(nxt, dt.time(1, 0), tzinfo=dt.UTC)
            if nxt > today:
                t = dt.datetime.combine(day0, dt.time(1, 0), tzinfo=dt.UTC)


def _node_rows(
    code: str, count: int, rng: random.Random, tpl: dict[str, list[dict[str, Any]]], today: dt.date
) -> list[tuple[Any, ...]]:
    rows = []
    prev = GENESIS
    kid = code[-6:] + "0000000000"
    stream = _visits(code, rng, tpl, today)
    for seq in range(1, count + 1):
        when, (kind, entity, eid, body) = next(stream)
        h = hashlib.sha256(f"{code}:{seq}:{prev}".encode()).hexdigest()
        at = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        rows.append((code, seq, h, prev, kid, PLACEHOLDER_SIG, at, kind, entity, eid, text, at))
        prev = h
    return rows


def _rollup_loader(path: Path) -> tuple[Callable[[list[tuple[Any, ...]]], None] | None, str]:
    """The hub's rollup bulk loader, fed each chunk of rows, or None with the reason."""
    try:
        rollups = importlib.import_module("hub.rollups")
    except ModuleNotFoundError:
        return None, "no rollup tables (the hub has none)"
    bulk = getattr(rollups, "bulk_load", None)
    if not callable(bulk):
        return None, "hub.rollups has no bulk_load"
    from hub import db as hubdb

    db = hubdb.connect(path)

    def load(rows: list[tuple[Any, ...]]) -> None:
        bulk(db, ((r[0], r[6], r[7], r[9], r[10]) for r in rows))

    return load, "rollups by hub.rollups.bulk_load"


def build_hub_db(
    path: Path,
    events: int,
    nodes: int,
    node_code: Callable[[int], str],
    opts: Options,
    seed: int = 5,
) -> dict[str, Any]:
    """Fill an initialised hub database with ``events`` records from ``nodes`` nodes."""
    from cryptography.hazmat.primitives import serialization as ser

    from sync.keys import Ed25519PrivateKey, public_key_id, public_raw_b64

    t0 = time.perf_counter()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # bulk load: no WAL copy of gigabytes
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
        "tbl_name = 'records' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    rng = random.Random(seed)
    tpl = _templates(seed)
    today = dt.datetime.now(dt.UTC).date()
    per, extra = divmod(events, nodes)
    now = utcnow()
    key = Ed25519PrivateKey.generate()  # one key is enough for rows nobody verifies
    pem = (
        key.public_key()
        .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    raw, kid = public_raw_b64(key.public_key()), public_key_id(key.public_key())
    cols = [r[1] for r in conn.execute("PRAGMA table_info(nodes)").fetchall()]
    loader, rollup_note = _rollup_loader(path)
    rollup_s = 0.0
    inserted = 0
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:
        nonlocal rollup_s
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO records (node, seq, hash, prev, key_id, sig, at, kind, entity, "
            "entity_id, body, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            chunk,
        )
        conn.execute("COMMIT")
        if loader is not None:
            t = time.perf_counter()
            loader(chunk)
            rollup_s += time.perf_counter() - t
        chunk.clear()

    for i in range(nodes):
        code = node_code(i)
        count = per + (1 if i < extra else 0)
        rows = _node_rows(code, count, rng, tpl, today)
        node = {
            "code": code,
            "name": f"{code} 便民服务中心",
            "level": "township",
            "parent": code[:6],
            "pubkey": pem,
            "key_id": kid,
            "cur_key": raw,
            "status": "active",
            "enrolled_at": now,
            "last_contact": now,
            "ack_seq": count,
            "ack_hash": rows[-1][2] if rows else GENESIS,
        }
        node = {k: v for k, v in node.items() if k in cols}
        conn.execute(
            f"INSERT INTO nodes ({','.join(node)}) VALUES ({','.join('?' * len(node))})",
            list(node.values()),
        )
        conn.execute(
            "INSERT OR IGNORE INTO node_keys (node, key_id, pubkey, from_seq, source, "
            "added_at) VALUES (?, ?, ?, 0, 'enrolled', ?)",
            [code, kid, raw, now],
        )
        chunk += rows
        inserted += len(rows)
        if len(chunk) >= CHUNK:
            flush()
            if inserted % 500_000 < len(rows) or opts.verbose and inserted == events:
                log(opts, f"dashboard: {inserted:,} records ({i + 1} nodes)")
    if chunk:
        flush()
    load_s = time.perf_counter() - t0
    t = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    index_s = time.perf_counter() - t
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    if loader is None:
        rollup_note = _rebuild_rollups(path) or rollup_note
    return {
        "events": inserted,
        "nodes": nodes,
        "load_s": load_s,
        "index_s": index_s,
        "rollup_s": rollup_s,
        "rollups": rollup_note,
        "total_s": time.perf_counter() - t0,
        "db_mb": path.stat().st_size / 1024 / 1024,
    }


def _rebuild_rollups(path: Path) -> str:
    """Fallback: the hub's own rollup rebuild, if it has one."""
    try:
        mod = importlib.import_module("hub.rollups")
    except ModuleNotFoundError:
        return ""
    f = getattr(mod, "rebuild", None)
    if not callable(f):
        return ""
    from hub import db as hubdb

    db = hubdb.open_db(path)
    t = time.perf_counter()
    f(db)
    db.conn.close()
    return f"hub.rollups.rebuild: {time.perf_counter() - t:.1f} s"


def dashboard_paths(node_code: Callable[[int], str]) -> list[str]:
    """GET paths to time (the last 30 days): the API and the province's HTML page."""
    try:
        from hub import dash

        tables = list(dash.TABLES)
    except (ImportError, AttributeError):
        tables = []
    q = "?preset=30d"
    center = node_code(0)
    paths = [
        "/api/v1/nodes",
        f"/api/v1/dash/37{q}",
        f"/api/v1/dash/{center[:4]}{q}",
        f"/api/v1/dash/{center}{q}",
    ]
    paths += [f"/api/v1/dash/37/{t}{q}" for t in tables]
    paths.append(f"/dash/37{q}")
    return paths


class Client:
    """urllib with a cookie jar: a hub staff session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def login(self, username: str, password: str) -> int:
        body = json.dumps({"username": username, "password": password}).encode()
        req = urllib.request.Request(
            self.url + "/api/v1/login", data=body, headers={"Content-Type": "application/json"}
        )
        status, _ = self._open(req)
        return status

    def _open(self, req: urllib.request.Request | str) -> tuple[int, bytes]:
        try:
            with self.opener.open(req, timeout=600) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read()

    def time_get(self, path: str, samples: int) -> dict[str, Any]:
        status, body = self._open(self.url + path)  # warm-up
        lat = []
        for _ in range(samples):
            t = time.perf_counter()
            status, body = self._open(self.url + path)
            lat.append((time.perf_counter() - t) * 1000)
        return {
            "status": status,
            "bytes": len(body),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "samples": samples,
            "error": body[:300].decode(errors="replace") if status >= 400 else "",
        }


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
        user_note = ""
        try:
            # A child process: an in-process CLI could leave the database open and locked.
            run_onestop(
                "hub",
                "user",
                "add",
                "--data",
                str(hub_dir),
                "--username",
                USER,
                "--role",
                "admin",
                "--scope",
                "37",
                stdin=PASSWORD + "\n",
            )
        except RuntimeError as exc:
            user_note = f"no hub user ({exc}); "
        log(opts, f"dashboard: generating {events:,} events from {nodes:,} nodes")
        built = build_hub_db(hub_dir / "hub.db", events, nodes, hubutil.node_code, opts)
        gen = Row(
            "dashboard",
            "generate hub DB (direct SQL + rollups)",
            built["events"] / built["total_s"],
            "events/s",
            note=f"{built['events']:,} events, {nodes:,} nodes, {built['db_mb']:,.0f} MB "
            f"in {built['total_s']:.0f} s (indexes {built['index_s']:.0f} s, "
            f"rollups {built['rollup_s']:.0f} s); {built['rollups']}",
            extra=built,
        )
        rows = [gen]
        with hubutil.hub_serve(hub_dir) as srv:
            client = Client(srv.url)
            login = client.login(USER, PASSWORD)
            if login != 200:
                user_note += f"login answered {login}; "
            for p in dashboard_paths(hubutil.node_code):
                r = client.time_get(p, opts.dash_samples)
                ok = 200 <= r["status"] < 300
                rows.append(
                    Row(
                        "dashboard",
                        f"GET {p} p50",
                        r["p50_ms"],
                        "ms",
                        status="" if ok else "ERROR",
                        note=f"{user_note}p95 {r['p95_ms']:.1f} ms, {r['samples']} samples, HTTP "
                        f"{r['status']}, {r['bytes']:,} B" + (f": {r['error']}" if not ok else ""),
                        extra=r,
                    )
                )
    return rows
