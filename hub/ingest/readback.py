"""Reading the hub's copy back: a node's stored records in the signed record format and its
checkpoints (what a node restores from), its acknowledged position (with the hub's signed
receipt for it: :func:`signed_position`), and an offline audit of
the stored log (:func:`verify_stored`)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from hub import db as hubdb
from sync.chain import GENESIS
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, load_public
from sync.receipts import make_receipt
from sync.verify import VerifyReport, verify_log


def stored_records(
    db: sqlite_utils.Database, code: str, after: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """The hub's copy of a node's records after seq ``after``, in the signed record format."""
    sql = (
        "SELECT seq, hash, prev, key_id, sig, at, kind, entity, entity_id, body FROM records "
        "WHERE node = ? AND seq > ? ORDER BY seq"
    )
    params: list[Any] = [code, after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    out = []
    for r in db.execute(sql, params).fetchall():
        out.append({
            "node": code, "seq": r["seq"], "prev": r["prev"],
            "event": {"at": r["at"], "kind": r["kind"], "entity": r["entity"],
                      "entity_id": r["entity_id"], "body": json.loads(r["body"])},
            "hash": r["hash"], "sig": r["sig"], "key_id": r["key_id"],
        })  # fmt: skip
    return out


def stored_checkpoints(db: sqlite_utils.Database, code: str) -> list[dict[str, Any]]:
    return hubdb.rows(
        db,
        "SELECT node, tree_size, root, at, key_id, sig FROM checkpoints WHERE node = ? "
        "ORDER BY tree_size",
        [code],
    )


def position(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    row = hubdb.one(db, "SELECT code, ack_seq, ack_hash FROM nodes WHERE code = ?", [code])
    if row is None:
        return None
    return {"node": row["code"], "ack_seq": row["ack_seq"], "ack_hash": row["ack_hash"]}


def signed_position(
    db: sqlite_utils.Database, hub_key: Ed25519PrivateKey, code: str, at: str
) -> dict[str, Any] | None:
    """:func:`position` with the hub's receipt for it (what a node may advance on)."""
    pos = position(db, code)
    if pos is None:
        return None
    pos["receipt"] = make_receipt(hub_key, code, pos["ack_seq"], pos["ack_hash"], at)
    return pos


def verify_stored(
    db: sqlite_utils.Database, code: str, hub_key: Ed25519PublicKey | None = None
) -> tuple[dict[str, Any], VerifyReport]:
    """Audit the hub's stored copy of one node's log offline (:func:`sync.verify.verify_log`)
    from its enrolled key; also check the stored position agrees with the records.
    ``hub_key`` (the hub's own) verifies the authorisations of ``node.rekeyed`` records."""
    node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [code])
    if node is None:
        raise LookupError(f"node {code} is not enrolled at this hub")
    records = stored_records(db, code)
    checkpoints = stored_checkpoints(db, code)
    report = verify_log(code, records, checkpoints, load_public(node["pubkey"]), hub_key=hub_key)
    last = records[-1] if records else None
    expect_seq, expect_hash = (last["seq"], last["hash"]) if last else (0, GENESIS)
    if (node["ack_seq"], node["ack_hash"]) != (expect_seq, expect_hash):
        report.problems.append(
            f"position: hub says seq {node['ack_seq']} {node['ack_hash'][:16]}… but its records "
            f"end at seq {expect_seq} {expect_hash[:16]}…"
        )
    for i, r in enumerate(records, start=1):
        if r["seq"] != i:
            report.problems.append(f"records: seq {i} is missing (found {r['seq']})")
            break
    report.ok = not report.problems
    return node, report
