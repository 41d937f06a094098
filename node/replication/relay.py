"""Relay: a county/city node that carries its townships' signed logs to the hub.

A township's ``hub_url`` may point to its county node.  The county node answers the same
protocol as the hub (``POST /api/v1/ingest``, ``GET /api/v1/ingest/{code}/position``,
``GET /api/v1/catalog/latest``) for the nodes registered with ``onestop sync relay add``:

- requests must be signed by the township's key (:mod:`sync.requests`: method, path and
  query, body, a nonce seen only once);
- each batch is checked against the township's chain as far as the relay holds it (so junk
  and gaps are refused early) and stored **unchanged** in ``relay_outbox``; the answer is the
  relay's own position (``ack_seq``: records the relay holds), plus the hub's position and
  receipt for that township once the hub has answered for it (``hub_ack_seq``, ``receipt``);
  the relay moves the hub's position for a township only on the hub's receipt for it;
- the relay's own pushes carry the stored records upward as extra batches, each with the
  township's own checkpoint, so the hub verifies the township's signatures end to end.

The relay cannot read sealed ID numbers: they are sealed to the hub's key.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from node import db as dbm
from node import signer as signerm
from node.replication.state import record_rejection, store_receipt
from onestop.clock import system_now, utcnow
from onestop.errors import ApiError, Forbidden, NotFound
from sync.chain import GENESIS, ChainVerifier
from sync.checkpoint import verify_checkpoint
from sync.errors import VerifyError
from sync.keys import Ed25519PublicKey, public_from_raw_b64, public_key_id, public_raw_b64
from sync.receipts import ReceiptError, check_receipt
from sync.requests import ReplayCache, verify_signed

MAX_SKEW_SECONDS = 300
MAX_RECORDS_PER_BATCH = 5000

DbLike = sqlite_utils.Database | sqlite3.Connection


def _conn(db: DbLike) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def _row(db: DbLike, code: str) -> dict[str, Any] | None:
    conn = _conn(db)
    cur = conn.execute("SELECT * FROM relay_nodes WHERE code = ?", [code])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


# --------------------------------------------------------------------------- registry


def add_node(db: sqlite_utils.Database, code: str, pub: Ed25519PublicKey) -> dict[str, Any]:
    """Relay for node ``code`` whose log starts with key ``pub`` (idempotent for the same key)."""
    raw = public_raw_b64(pub)
    with dbm.tx(db) as conn:
        old = _row(conn, code)
        if old is not None:
            if old["pubkey"] != raw:
                raise ApiError(
                    f"node {code} is already relayed with another key", status=409, code="conflict"
                )
            return old
        conn.execute(
            "INSERT INTO relay_nodes (code, pubkey, cur_key, seq, head, added_at) "
            "VALUES (?, ?, ?, 0, ?, ?)",
            [code, raw, raw, GENESIS, utcnow()],
        )
        row = _row(conn, code)
    assert row is not None
    return row


def nodes(db: DbLike) -> list[dict[str, Any]]:
    conn = _conn(db)
    cur = conn.execute("SELECT * FROM relay_nodes ORDER BY code")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def pending_count(db: DbLike) -> int:
    try:
        row = (
            _conn(db)
            .execute(
                "SELECT ifnull(sum(seq - hub_ack_seq), 0) FROM relay_nodes WHERE seq > hub_ack_seq"
            )
            .fetchone()
        )
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


# --------------------------------------------------------------------------- receiving


def verify_sender(
    db: DbLike,
    headers: Mapping[str, str],
    method: str,
    target: str,
    body_hash: str,
    replays: ReplayCache,
    now: dt.datetime | None = None,
) -> str:
    """The registered node that signed this request (as the hub checks it); 401/403 otherwise.

    ``target`` is the path and query as received, ``body_hash`` the SHA-256 of the body as
    read (:func:`sync.requests.body_sha256`)."""

    def registered(node: str) -> list[Ed25519PublicKey]:
        row = _row(db, node)
        if row is None:
            raise Forbidden(
                f"this node does not relay for node {node}",
                code="unknown_node",
                hint=f"on this node: onestop sync relay add --data DIR --code {node} "
                "--pubkey node.pub",
            )
        return [public_from_raw_b64(k) for k in dict.fromkeys((row["cur_key"], row["pubkey"]))]

    return verify_signed(headers, method, target, body_hash, now or system_now(),
                         MAX_SKEW_SECONDS, registered, replays,
                         clock_of="this node's clock")  # fmt: skip


def _result(
    conn: sqlite3.Connection,
    row: Mapping[str, Any],
    relay_code: str,
    rejected: list[dict[str, Any]],
    alert: Any = None,
) -> dict[str, Any]:
    """The answer for one batch; the hub's own verdicts on that node are passed down too."""
    receipt = json.loads(row["hub_receipt"]) if row.get("hub_receipt") else None
    held = {r.get("seq") for r in rejected}
    for seq, reason, message in conn.execute(
        "SELECT seq, reason, message FROM sync_rejections WHERE node = ? AND resolved = 0 "
        "AND seq IS NOT NULL AND reason NOT IN ('fork', 'rollback') ORDER BY seq LIMIT 20",
        [row["code"]],
    ).fetchall():
        if seq not in held:
            rejected = [*rejected, {"seq": seq, "reason": reason, "message": f"hub: {message}"}]
    if alert is None and row.get("alert"):
        kind, _, message = str(row["alert"]).partition(": ")
        alert = {"kind": kind, "message": f"hub: {message}"}
    return {
        "node": row["code"],
        "ack_seq": row["seq"],
        "ack_hash": row["head"],
        "receipt": receipt,
        "rejected": rejected,
        "alert": alert,
        "relay": relay_code,
        "hub_ack_seq": row["hub_ack_seq"],
        "hub_ack_hash": row["hub_ack_hash"],
    }


def position(db: DbLike, code: str) -> dict[str, Any]:
    row = _row(db, code)
    if row is None:
        raise NotFound(f"this node does not relay for node {code}")
    return {
        "node": code,
        "ack_seq": row["seq"],
        "ack_hash": row["head"],
        "hub_ack_seq": row["hub_ack_seq"],
        "hub_ack_hash": row["hub_ack_hash"],
        "receipt": json.loads(row["hub_receipt"]) if row.get("hub_receipt") else None,
        "relay": signerm.node_code(db),
    }


def ingest(db: sqlite_utils.Database, sender: str, payload: Any) -> dict[str, Any]:
    """Store the batches of one ingest request; the answer has the hub's shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get("batches"), list):
        raise ApiError(
            "the body must be a JSON object with a batches list",
            field="batches",
            status=400,
            code="bad_request",
        )
    relay_code = signerm.node_code(db)
    results = []
    for batch in payload["batches"]:
        results.append(_ingest_batch(db, sender, batch, relay_code))
    return {"results": results}


def _ingest_batch(
    db: sqlite_utils.Database, sender: str, batch: Any, relay_code: str
) -> dict[str, Any]:

    code = batch.get("node") if isinstance(batch, dict) else None
    records = batch.get("records") if isinstance(batch, dict) else None
    if not isinstance(code, str) or not isinstance(records, list):
        return {
            "node": code if isinstance(code, str) else "",
            "ack_seq": 0,
            "ack_hash": GENESIS,
            "receipt": None,
            "alert": None,
            "relay": relay_code,
            "rejected": [
                {
                    "seq": None,
                    "reason": "bad_shape",
                    "message": "a batch is {node, records, checkpoint}",
                }
            ],
        }
    with dbm.tx(db) as conn:
        row = _row(conn, code)
        if row is None:
            return {
                "node": code,
                "ack_seq": 0,
                "ack_hash": GENESIS,
                "receipt": None,
                "alert": None,
                "relay": relay_code,
                "rejected": [
                    {
                        "seq": None,
                        "reason": "unknown_node",
                        "message": f"this node does not relay for node {code}",
                    }
                ],
            }
        if len(records) > MAX_RECORDS_PER_BATCH:
            return _result(
                conn,
                row,
                relay_code,
                [
                    {
                        "seq": None,
                        "reason": "bad_shape",
                        "message": f"at most {MAX_RECORDS_PER_BATCH} records per batch",
                    }
                ],
            )
        cur = public_from_raw_b64(row["cur_key"])
        verifier = ChainVerifier(cur, node=code, prev=row["head"], seq=row["seq"])
        rejected: list[dict[str, Any]] = []
        alert = None
        accepted: list[dict[str, Any]] = []
        for rec in records:
            seq = rec.get("seq") if isinstance(rec, dict) else None
            if type(seq) is int and 1 <= seq <= verifier.seq:
                held = conn.execute(
                    "SELECT hash FROM relay_outbox WHERE node = ? AND seq = ?", [code, seq]
                ).fetchone()
                if held is None or held[0] == rec.get("hash"):
                    continue  # already held (or acknowledged by the hub): idempotent
                alert = {
                    "kind": "fork",
                    "message": f"record {seq} differs from the one this relay holds",
                }
                break
            try:
                verifier.check(rec)
            except VerifyError as exc:
                rejected.append(
                    {
                        "seq": seq if type(seq) is int else None,
                        "reason": exc.reason,
                        "message": exc.message,
                    }
                )
                break
            accepted.append(rec)
        if alert is not None:
            record_rejection(conn, code, None, alert["kind"], alert["message"])
            conn.execute(
                "UPDATE relay_nodes SET alert = ?, last_seen = ? WHERE code = ?",
                [f"{alert['kind']}: {alert['message']}", utcnow(), code],
            )
            row = _row(conn, code)
            assert row is not None
            return _result(conn, row, relay_code, [], alert)
        now = utcnow()
        for rec in accepted:
            conn.execute(
                "INSERT INTO relay_outbox (node, seq, hash, record, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [code, rec["seq"], rec["hash"], json.dumps(rec, ensure_ascii=False), now],
            )
        state = verifier.state()
        key = state.key or cur
        conn.execute(
            "UPDATE relay_nodes SET seq = ?, head = ?, cur_key = ?, last_seen = ? WHERE code = ?",
            [state.seq, state.head, public_raw_b64(key), now, code],
        )
        _keep_checkpoint(conn, code, batch.get("checkpoint"), state.seq, verifier, row)
        row = _row(conn, code)
        assert row is not None
        return _result(conn, row, relay_code, rejected)


def _keep_checkpoint(
    conn: sqlite3.Connection,
    code: str,
    cp: Any,
    held: int,
    verifier: ChainVerifier,
    row: Mapping[str, Any],
) -> None:
    """Keep a township checkpoint signed by one of its known keys (the hub checks its root)."""
    if not isinstance(cp, dict) or type(cp.get("tree_size")) is not int:
        return
    if not 0 < cp["tree_size"] <= held:
        return
    keys = {
        public_key_id(k): k
        for k in (
            public_from_raw_b64(row["pubkey"]),
            public_from_raw_b64(row["cur_key"]),
            *(k for _, k in verifier.history),
        )
    }
    key = keys.get(str(cp.get("key_id")))
    if key is None:
        return
    try:
        verify_checkpoint(cp, key, node=code)
    except VerifyError:
        return
    conn.execute(
        "INSERT OR IGNORE INTO relay_checkpoints (node, tree_size, checkpoint) VALUES (?, ?, ?)",
        [code, cp["tree_size"], json.dumps(cp)],
    )


# --------------------------------------------------------------------------- forwarding


def pending_batches(db: DbLike, batch_size: int, room: int) -> list[dict[str, Any]]:
    """Batches of relayed records the hub has not acknowledged, within ``room`` records."""
    conn = _conn(db)
    out: list[dict[str, Any]] = []
    try:
        rows = conn.execute(
            "SELECT code, seq, hub_ack_seq FROM relay_nodes WHERE seq > hub_ack_seq ORDER BY code"
        ).fetchall()
    except sqlite3.OperationalError:
        return out
    for code, seq, ack in rows:
        if room <= 0:
            break
        end = min(seq, ack + min(batch_size, room))
        cp_row = conn.execute(
            "SELECT tree_size, checkpoint FROM relay_checkpoints WHERE node = ? AND "
            "tree_size > ? AND tree_size <= ? ORDER BY tree_size DESC LIMIT 1",
            [code, ack, end],
        ).fetchone()
        cp = None
        if cp_row is not None:
            end, cp = int(cp_row[0]), json.loads(cp_row[1])
        records = [
            json.loads(r[0])
            for r in conn.execute(
                "SELECT record FROM relay_outbox WHERE node = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq",
                [code, ack, end],
            ).fetchall()
        ]
        if not records:
            continue
        out.append({"node": code, "records": records, "checkpoint": cp})
        room -= len(records)
    return out


def apply_hub_result(
    conn: sqlite3.Connection, res: Mapping[str, Any], hub_pub: Any
) -> tuple[int, int]:
    """Keep the hub's answer for a relayed node; returns (records newly acked, rejections)."""

    code = str(res.get("node"))
    row = _row(conn, code)
    if row is None:
        return 0, 0
    ack, ack_hash = res.get("ack_seq"), res.get("ack_hash")
    moved = 0
    receipt: Any = res.get("receipt")
    if type(ack) is int and ack >= 0:
        held = conn.execute(
            "SELECT hash FROM relay_outbox WHERE node = ? AND seq = ?", [code, ack]
        ).fetchone()
        try:  # the hub's position for that node counts only with its receipt for it
            receipt = check_receipt(receipt, hub_pub, code, ack, ack_hash)
        except ReceiptError:
            receipt = None
        if ack and held is not None and held[0] != ack_hash:
            record_rejection(
                conn, code, ack, "fork", f"the hub holds a different record {ack} of node {code}"
            )
        elif receipt is not None:
            moved = max(ack - int(row["hub_ack_seq"]), 0)
            conn.execute(
                "UPDATE relay_nodes SET hub_ack_seq = ?, hub_ack_hash = ? WHERE code = ?",
                [ack, ack_hash if ack else None, code],
            )
            if ack > row["seq"] and isinstance(ack_hash, str):
                # The hub already holds more of this log (sent before the node used this
                # relay): continue the township's chain from the hub's position.
                conn.execute(
                    "UPDATE relay_nodes SET seq = ?, head = ? WHERE code = ?", [ack, ack_hash, code]
                )
    if isinstance(receipt, dict) and receipt.get("node") == code:
        held = conn.execute(
            "SELECT hash FROM relay_outbox WHERE node = ? AND seq = ?", [code, receipt.get("seq")]
        ).fetchone()
        problem = store_receipt(conn, receipt, hub_pub, held[0] if held else None)
        if problem is None:
            conn.execute(
                "UPDATE relay_nodes SET hub_receipt = ? WHERE code = ?",
                [json.dumps(receipt, ensure_ascii=False), code],
            )
    n_rej = 0
    for rej in res.get("rejected") or []:
        if isinstance(rej, dict):
            seq = rej.get("seq") if type(rej.get("seq")) is int else None
            record_rejection(
                conn, code, seq, str(rej.get("reason") or "rejected"), str(rej.get("message") or "")
            )
            n_rej += 1
    alert = res.get("alert")
    if alert:
        kind = str(alert.get("kind") if isinstance(alert, dict) else alert)
        message = str(alert.get("message") if isinstance(alert, dict) else kind)
        record_rejection(conn, code, None, kind, message)
        conn.execute(
            "UPDATE relay_nodes SET alert = ? WHERE code = ?", [f"{kind}: {message}", code]
        )
    elif moved:
        conn.execute(
            "UPDATE relay_nodes SET alert = NULL WHERE code = ? AND alert NOT LIKE 'fork:%' "
            "AND alert NOT LIKE 'rollback:%'",
            [code],
        )
    if type(ack) is int and ack > 0:
        conn.execute(
            "UPDATE sync_rejections SET resolved = 1 WHERE node = ? AND seq IS NOT NULL AND "
            "seq <= ? AND reason NOT IN ('fork', 'rollback')",
            [code, ack],
        )
    return moved, n_rej
