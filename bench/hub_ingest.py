"""Hub ingest under fan-in: many enrolled nodes pushing at once to a real ``onestop hub serve``.

``hub_nodes`` (200) node keys are enrolled with ``onestop hub enroll``; each node's
``hub_records`` (100) records are signed and chained with :func:`sync.chain.make_record`, with
a signed checkpoint (:func:`sync.checkpoint.make_checkpoint` over the RFC 6962 root) and
gzipped into one push body of the protocol before the clock starts.  Then every node posts
``POST /api/v1/ingest`` at the same moment over aiohttp with its signed request headers
(``X-Onestop-Node``/``-Time``/``-Sig``).  The rate is the records the hub acknowledged
(verified and stored) per second of wall time until the last answer.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

from bench.common import Options, Row, Server, log, onestop_argv, percentile, workdir
from bench.hubutil import enroll, hub_init, node_code, signed_headers, write_node_key
from onestop.clock import utcnow

INGEST = "/api/v1/ingest"


def _push_body(code: str, key: Any, count: int) -> bytes:
    from bench.records import signed_records
    from sync.checkpoint import make_checkpoint
    from sync.merkle import MerkleTree, record_leaf

    records = signed_records(code, key, count, seed=hash(code) & 0xFFFF)
    tree = MerkleTree(record_leaf(r["hash"]) for r in records)
    cp = make_checkpoint(code, len(records), tree.root(), key)
    now = utcnow()
    payload = {
        "node": code,
        "batches": [{"node": code, "records": records, "checkpoint": cp}],
        "backlog": 0,
        "sent_at": now,
    }
    return gzip.compress(json.dumps(payload, ensure_ascii=False).encode(), 6)


async def _fan_in(url: str, pushes: list[tuple[str, Any, bytes]]) -> dict[str, Any]:
    import aiohttp

    lat: list[float] = []
    acked = 0
    problems: list[str] = []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=900)) as s:
        start = asyncio.Event()

        async def push(code: str, key: Any, body: bytes) -> None:
            nonlocal acked
            headers = signed_headers(key, code, "POST", INGEST, gzip.decompress(body))
            await start.wait()
            t = time.perf_counter()
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
            try:
                async with s.post(url + INGEST, data=body, headers=headers) as r:
                    text = await r.text()
                    status = r.status
            except (TimeoutError, aiohttp.ClientError) as e:
                problems.append(f"{code}: {type(e).__name__}: {e}")
                return
            lat.append((time.perf_counter() - t) * 1000)
            if status != 200:
                problems.append(f"{code}: HTTP {status} {text[:200]}")
                return
            for res in json.loads(text).get("results", []):
                if res.get("rejected") or res.get("alert"):
                    problems.append(f"{code}: {res.get('rejected') or res.get('alert')}")
                acked += int(res.get("ack_seq") or 0)

        tasks = [asyncio.create_task(push(*p)) for p in pushes]
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {
        "acked": acked,
        "seconds": elapsed,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "problems": problems[:10],
        "problem_count": len(problems),
    }


CATEGORIES = (
    # fastjsonschema's compiled checks are code of its own: file "<string>", "validate*".
    ("JSON-schema validation", ("jsonschema", "referencing", "rpds", "<string>:validate")),
    ("RFC 8785 canonical JSON", ("rfc8785",)),
    ("Ed25519", ("ed25519",)),
    ("SQLite", ("sqlite3.Connection", "sqlite_utils")),
    ("JSON parse", ("json/decoder", "json.decoder", "loads")),
)


def profile_ingest(tmp: Any, nodes: int, per: int) -> dict[str, Any]:
    """Where the hub's ingest spends its CPU: cProfile of :func:`hub.ingest.envelope.ingest_envelope`
    (the code the hub's ingest thread runs) on ``nodes`` pushes of ``per`` records, in this
    process, with the time of each function attributed to a category by its module."""
    import cProfile
    import pstats

    from hub import config as hubcfg
    from hub import identity
    from hub.db import open_db
    from hub.ingest.envelope import ingest_envelope, parse_envelope

    hub_dir = tmp / "hub-profile"
    hub_init(hub_dir)
    envelopes = []
    for i in range(nodes):
        code = node_code(10_000 + i)
        key, pub = write_node_key(tmp / "keys-profile", code)
        enroll(hub_dir, code, pub)
        envelopes.append(json.loads(gzip.decompress(_push_body(code, key, per))))
    cfg = hubcfg.load(hub_dir)
    ident = identity.load(cfg)
    db = open_db(cfg.db_path)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for env in envelopes:
        ingest_envelope(db, ident, parse_envelope(env), authenticated=env["node"])
    prof.disable()
    elapsed = time.perf_counter() - t0
    db.conn.close()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values()) or 1.0
    shares = dict.fromkeys([c for c, _ in CATEGORIES] + ["other Python"], 0.0)
    for (filename, _, funcname), v in stats.items():
        where = f"{filename}:{funcname}"
        for cat, needles in CATEGORIES:
            if any(n in where for n in needles):
                shares[cat] += v[2] / total
                break
        else:
            shares["other Python"] += v[2] / total
    return {
        "records": nodes * per,
        "profiled_per_s": nodes * per / elapsed,
        "shares": {k: round(v, 3) for k, v in shares.items()},
    }


def run(opts: Options) -> list[Row]:
    k, per = opts.hub_nodes, opts.hub_records
    with workdir(opts, "hub") as tmp:
        hub_dir = tmp / "hub"
        hub_init(hub_dir)
        log(opts, f"hub: enrolling {k} nodes and signing {k * per:,} records")
        pushes = []
        t0 = time.perf_counter()
        for i in range(k):
            code = node_code(i)
            key, pub = write_node_key(tmp / "keys", code)
            enroll(hub_dir, code, pub, f"{code} 便民服务中心")
            pushes.append((code, key, _push_body(code, key, per)))
        prep_s = time.perf_counter() - t0
        argv = onestop_argv("hub", "serve", "--data", str(hub_dir), "--port", "0")
        with Server(argv, hub_dir / "serve.log", "/api/v1/nodes") as hub:
            url = hub.url
            log(opts, f"hub: {k} nodes push {per} records each at once")
            r = asyncio.run(_fan_in(url, pushes))
            mem = hub.memory_kb()
        try:
            prof = profile_ingest(tmp, max(2, min(20, k)), per)
            shares = sorted(prof["shares"].items(), key=lambda kv: -kv[1])
            where = "CPU of hub.ingest.envelope.ingest_envelope: " + ", ".join(
                f"{name} {share:.0%}" for name, share in shares if share >= 0.01
            )
        except Exception as exc:  # noqa: BLE001 - the profile is an explanation, not a result
            prof, where = {}, f"no ingest profile ({type(exc).__name__}: {exc})"
    total = k * per
    ok = r["acked"] == total and r["problem_count"] == 0
    body_kb = sum(len(p[2]) for p in pushes) / len(pushes) / 1024
    note = (
        f"{k} nodes x {per} records in {r['seconds']:.2f} s, acked {r['acked']:,}/{total:,}"
        f"; push p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; gzip body "
        f"{body_kb:.0f} KB each; hub VmHWM {mem.get('VmHWM', 0) / 1024:.0f} MB"
    )
    if not ok:
        note += f"; PROBLEMS ({r['problem_count']}): {'; '.join(r['problems'][:3])}"
    return [
        Row(
            "hub",
            f"ingest, {k} nodes at once",
            r["acked"] / r["seconds"],
            "records/s",
            status="" if ok else "ERROR",
            note=note,
            extra=dict(
                r, prep_seconds=prep_s, memory_kb=mem, all_acked=ok, profile=prof, bound=where
            ),
        )
    ]
