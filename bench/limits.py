"""The physical limit of ingest on this machine, to judge the hub against.

- Ed25519 verifications per second on one core (``cryptography``, one thread): the least
  work a hub that checks every signature must do per record;
- SQLite inserts per second of record-sized rows in one transaction, in WAL with the node's
  and hub's pragmas (:func:`node.db.connect`), into the hub's own ``records`` table when the
  hub's schema is there (else a copy of its shape);
- for reference, :func:`sync.chain.verify_record` per second: the whole per-record check in
  Python (RFC 8785 canonical JSON, SHA-256, Ed25519), which is what the hub actually runs.

The physical limit is the lower of the first two.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from bench.common import Options, Row, log, workdir
from bench.records import case_events

RECORDS_DDL = """
CREATE TABLE records (
    node TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, prev TEXT NOT NULL,
    key_id TEXT NOT NULL, sig TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    entity TEXT NOT NULL, entity_id TEXT NOT NULL, body TEXT NOT NULL,
    received_at TEXT NOT NULL, UNIQUE (node, seq));
CREATE INDEX records_kind_at ON records (kind, at);
CREATE INDEX records_entity ON records (node, entity, entity_id);
"""
NODE = "370102001"


def ed25519_verify_per_s(seconds: float) -> dict[str, Any]:
    from sync.keys import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msgs = [b"onestop-record-v1\n" + hashlib.sha256(str(i).encode()).digest() for i in range(1000)]
    sigs = [key.sign(m) for m in msgs]
    pairs = list(zip(sigs, msgs, strict=True))
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        for s, m in pairs:
            pub.verify(s, m)
        n += len(pairs)
    elapsed = time.perf_counter() - t0
    return {"verifications": n, "seconds": elapsed, "per_s": n / elapsed}


def verify_record_per_s(seconds: float) -> dict[str, Any]:
    from bench.records import signed_records
    from sync.chain import verify_record
    from sync.keys import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    records = signed_records(NODE, key, 300)
    # What the hub receives: records parsed back from JSON.
    records = json.loads(json.dumps(records, ensure_ascii=False))
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        prev = None
        for r in records:
            verify_record(r, pub, prev, node=NODE)
            prev = r["hash"]
        n += len(records)
    elapsed = time.perf_counter() - t0
    return {"records": n, "seconds": elapsed, "per_s": n / elapsed}


def _records_db(path: Path) -> tuple[Any, str]:
    """A database with the hub's records table (and a nodes row it references)."""
    from node import db as dbm

    try:
        from hub import db as hubdb
    except ImportError:
        hubdb = None  # type: ignore[assignment]
    if hubdb is not None:
        db = hubdb.open_db(path)
        cols = {r[1]: r for r in db.execute("PRAGMA table_info(nodes)").fetchall()}
        if "code" in cols:
            values: dict[str, Any] = {}
            for name, row in cols.items():
                notnull, default = row[3], row[4]
                if notnull and default is None:
                    values[name] = 0 if "INT" in (row[2] or "").upper() else ""
            values["code"] = NODE
            names = ",".join(values)
            with dbm.tx(db):
                db.execute(
                    f"INSERT INTO nodes ({names}) VALUES ({','.join('?' * len(values))})",
                    list(values.values()),
                )
        return db, "hub.db records table"
    db = dbm.connect(path)
    db.executescript(RECORDS_DDL)
    return db, "records table shaped like the hub's"


def sqlite_inserts_per_s(tmp: Path, n: int) -> dict[str, Any]:
    from node import db as dbm

    db, where = _records_db(tmp / "limits.db")
    rows = []
    for ev in case_events(NODE, n):
        h = hashlib.sha256(str(ev["seq"]).encode()).hexdigest()
        rows.append(
            (
                NODE,
                ev["seq"],
                h,
                h,
                "0123456789abcdef",
                "s" * 88,
                ev["at"],
                ev["kind"],
                ev["entity"],
                ev["entity_id"],
                json.dumps(ev["body"], ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                ev["at"],
            )
        )
    row_bytes = sum(len(str(c).encode()) for c in rows[0])
    t0 = time.perf_counter()
    with dbm.tx(db) as conn:
        conn.executemany(
            "INSERT INTO records (node, seq, hash, prev, key_id, sig, at, kind, entity, "
            "entity_id, body, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    elapsed = time.perf_counter() - t0
    db.conn.close()
    return {
        "rows": n,
        "seconds": elapsed,
        "per_s": n / elapsed,
        "row_bytes": row_bytes,
        "table": where,
    }


def run(opts: Options) -> list[Row]:
    secs = 0.5 if opts.quick else 3.0
    log(opts, "limits: Ed25519 verify, verify_record, SQLite inserts")
    ed = ed25519_verify_per_s(secs)
    vr = verify_record_per_s(secs)
    with workdir(opts, "limits") as tmp:
        sq = sqlite_inserts_per_s(tmp, max(1000, min(opts.n, 50_000)))
    limit = min(ed["per_s"], sq["per_s"])
    bound = "Ed25519 verify" if ed["per_s"] <= sq["per_s"] else "SQLite insert"
    return [
        Row(
            "limits",
            "Ed25519 verify / s (1 core)",
            ed["per_s"],
            "/s",
            note="cryptography (OpenSSL), one thread",
            extra=ed,
        ),
        Row(
            "limits",
            "SQLite inserts / s (1 tx, WAL)",
            sq["per_s"],
            "rows/s",
            note=f"{sq['rows']} rows of ~{sq['row_bytes']} B into the {sq['table']}, "
            "node.db pragmas",
            extra=sq,
        ),
        Row(
            "limits",
            "physical limit (lower of the two)",
            limit,
            "records/s",
            note=f"bound by {bound}",
        ),
        Row(
            "limits",
            "sync.chain.verify_record / s (1 core)",
            vr["per_s"],
            "records/s",
            note="RFC 8785 canonical JSON + SHA-256 + Ed25519 in Python: the hub's real "
            "per-record check",
            extra=vr,
        ),
    ]
