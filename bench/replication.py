"""Replication benchmark: a node's signed log to a real hub over HTTP on 127.0.0.1.

1. ``onestop hub init``, ``onestop node init --hub-url ... --hub-pubkey ...``,
   ``onestop hub enroll`` with the node's ``node.pub``;
2. N case events (600-800 byte bodies, :mod:`bench.records`) written into the node's database
   through the node's own signing path (:func:`node.signer.sign_next` with the signer attached
   by :func:`node.signer.open_node_db`: signed and chained in the write transaction; as
   records only, since no case stands behind them);
3. ``onestop hub serve`` in its own process; the node's real push client
   (:class:`node.replication.client.PushClient`, what ``onestop sync push`` and the node server run)
   pushes the whole log (full catch-up), then 1,000 more events (incremental);
4. the hub verifies every record (hash, signature, chain, checkpoint) before storing it;
   the run checks the hub's position and stored count equal the node's log.

Bytes on the wire are the gzip request bodies counted by an aiohttp trace hook on the push
client's session.  The push client runs in this process (timed from the first request to the
hub's last answer, like the peer's ``replicate.to``); the hub runs in its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import Options, Row, Server, log, onestop_argv, workdir
from bench.hubutil import enroll, hub_init, position

NODE_CODE = "370102001"


def _append_events(db: Any, count: int, start_seq: int, chunk: int = 500) -> float:
    """Sign and chain ``count`` case records into the node's log; returns seconds.

    The records are synthetic (no case stands behind them), so they go into the log as
    records only, the way a restore appends records (no projector runs): signed by the
    node's signer (:func:`node.signer.sign_next`) exactly as :func:`node.events.append` signs.
    """
    from bench.records import case_events
    from node import db as dbm
    from node import signer as signerm

    evs = list(case_events(NODE_CODE, count, start_seq=start_seq))
    t0 = time.perf_counter()
    for i in range(0, len(evs), chunk):
        with dbm.tx(db) as conn:
            signer = signerm.current_signer(conn)
            assert signer is not None
            for ev in evs[i : i + chunk]:
                event = {
                    "at": ev["at"],
                    "kind": ev["kind"],
                    "entity": ev["entity"],
                    "entity_id": str(ev["entity_id"]),
                    "body": ev["body"],
                }
                rec = signerm.sign_next(conn, signer, event)
                conn.execute(
                    "INSERT INTO events (seq, at, kind, entity, entity_id, body, prev, hash, sig,"
                    " key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rec["seq"], event["at"], event["kind"], event["entity"], event["entity_id"],
                     signerm.body_text(event["body"]), rec["prev"], rec["hash"], rec["sig"],
                     rec["key_id"]],
                )  # fmt: skip
    return time.perf_counter() - t0


class _Counter:
    def __init__(self) -> None:
        self.body_bytes = 0
        self.requests = 0


def _client(cfg: Any, db: Any, counter: _Counter) -> Any:
    import aiohttp

    from node.replication.client import PushClient

    class CountingPushClient(PushClient):
        """The real push client; its HTTP session also counts request body bytes."""

        def _http(self) -> aiohttp.ClientSession:
            if self._session is None or self._session.closed:
                trace = aiohttp.TraceConfig()

                async def on_chunk(session: Any, ctx: Any, params: Any) -> None:
                    counter.body_bytes += len(params.chunk)

                async def on_end(session: Any, ctx: Any, params: Any) -> None:
                    counter.requests += 1

                trace.on_request_chunk_sent.append(on_chunk)
                trace.on_request_end.append(on_end)
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=5),
                    trace_configs=[trace],
                )
            return self._session

    return CountingPushClient(cfg, db)


async def _push(client: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    report = await client.push_once()
    return report, time.perf_counter() - t0


def _hub_count(hub_db: Path, code: str) -> int:
    conn = sqlite3.connect(f"file:{hub_db}?mode=ro", uri=True)
    try:
        return int(
            conn.execute("SELECT count(*) FROM records WHERE node = ?", [code]).fetchone()[0]
        )
    finally:
        conn.close()


def run(opts: Options) -> list[Row]:
    from bench.common import run_cli_inprocess
    from node import config as cfgm
    from node import signer as signerm

    n, inc = opts.n, opts.incremental
    with workdir(opts, "replication") as tmp:
        hub_dir, node_dir = tmp / "hub", tmp / "node"
        hub_init(hub_dir)
        run_cli_inprocess(
            "node",
            "init",
            "--data",
            str(node_dir),
            "--code",
            NODE_CODE,
            "--name",
            "解放路街道便民服务中心",
            "--level",
            "township",
            "--hub-url",
            "http://127.0.0.1:9",  # the hub's own port is known once it serves (below)
            "--hub-pubkey",
            str(hub_dir / "hub.pub"),
        )
        enroll(hub_dir, NODE_CODE, node_dir / "node.pub", "解放路街道便民服务中心")
        cfg = cfgm.load(node_dir)
        db = signerm.open_node_db(cfg)
        node_key = signerm.load_node_key(node_dir)
        seeded = signerm.log_size(db)
        log(opts, f"replication: signing {n:,} events into the node database")
        sign_s = _append_events(db, n, 1)
        size_full = signerm.log_size(db)
        argv = onestop_argv("hub", "serve", "--data", str(hub_dir), "--port", "0")
        with Server(argv, hub_dir / "serve.log", "/api/v1/nodes") as hub:
            url = hub.url
            cfg = dataclasses.replace(cfg, hub_url=url)
            log(opts, f"replication: pushing {size_full:,} records to {url}")
            counter = _Counter()
            client = _client(cfg, db, counter)
            loop = asyncio.new_event_loop()
            try:
                full, full_s = loop.run_until_complete(_push(client))
                full_bytes, full_reqs = counter.body_bytes, counter.requests
                pos_full = position(url, NODE_CODE, node_key)
                _append_events(db, inc, n + 1)
                size_inc = signerm.log_size(db)
                counter.body_bytes = counter.requests = 0
                incr, inc_s = loop.run_until_complete(_push(client))
                inc_bytes = counter.body_bytes
                loop.run_until_complete(client.close())
            finally:
                loop.close()
            pos_inc = position(url, NODE_CODE, node_key)
            mem = hub.memory_kb()
        stored = _hub_count(hub_dir / "hub.db", NODE_CODE)
        db.conn.close()
    full_n = size_full  # the whole log: the seeded catalog's events and the N case events
    checks = {
        "full_ack": pos_full.get("ack_seq"),
        "full_size": size_full,
        "inc_ack": pos_inc.get("ack_seq"),
        "inc_size": size_inc,
        "stored": stored,
        "rejected": full.rejected + incr.rejected,
        "errors": full.errors + incr.errors,
        "alert": full.alert or incr.alert,
    }
    all_verified = (
        pos_full.get("ack_seq") == size_full
        and pos_inc.get("ack_seq") == size_inc
        and stored == size_inc
        and not checks["rejected"]
        and not checks["errors"]
        and not checks["alert"]
    )
    vnote = (
        f"hub verified and stored all {size_inc:,} records"
        if all_verified
        else f"NOT all verified: {checks}"
    )
    return [
        Row(
            "replication",
            "node signing (signer.sign_next)",
            n / sign_s,
            "records/s",
            note=f"{n:,} case events signed and chained into the node DB in {sign_s:.1f} s",
        ),
        Row(
            "replication",
            "full catch-up",
            full_n / full_s,
            "records/s",
            note=f"{full_n:,} records ({seeded} from the seeded catalog) in {full_s:.2f} s, "
            f"{full_reqs} requests; {vnote}",
            extra={
                "records": full_n,
                "seconds": full_s,
                "all_verified": all_verified,
                "checks": checks,
                "report": full.as_dict(),
            },
        ),
        Row(
            "replication",
            "incremental push",
            inc / inc_s,
            "records/s",
            note=f"{inc:,} records in {inc_s:.2f} s",
            extra={"records": inc, "seconds": inc_s, "report": incr.as_dict()},
        ),
        Row(
            "replication",
            "bytes on the wire per record",
            full_bytes / full_n,
            "B/record",
            note=f"gzip request bodies, full catch-up ({full_bytes / 1e6:.1f} MB); "
            f"incremental {inc_bytes / max(inc, 1):.0f} B/record",
            extra={"full_bytes": full_bytes, "incremental_bytes": inc_bytes},
        ),
        Row(
            "replication",
            "hub RSS (VmHWM)",
            mem.get("VmHWM", 0) / 1024,
            "MB",
            note=f"hub process after both pushes; VmRSS {mem.get('VmRSS', 0) / 1024:.1f} MB",
            extra=mem,
        ),
    ]
