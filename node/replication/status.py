"""What the node knows about its replication to the hub (API, ``/sync`` page, CLI)."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from node import db as dbm
from node import signer as signerm
from node.replication import relay
from node.replication.client import backlog
from node.replication.state import state


def status(cfg: Any, db: sqlite_utils.Database, service: Any = None) -> dict[str, Any]:

    st = state(db)
    size = signerm.log_size(db)
    ack = int(st.get("hub_ack_seq") or 0)
    try:
        signer = signerm.signer_for(db)
        key_id = signer.key_id if signer else None
    except signerm.SignerError:
        key_id = None
    receipts = dbm.one(db, "SELECT count(*) AS n FROM receipts") or {"n": 0}
    last_receipt = dbm.one(
        db,
        "SELECT node, seq, hash, hub, at FROM receipts WHERE node = ? "
        "ORDER BY seq DESC, id DESC LIMIT 1",
        [cfg.code],
    )
    rejections = dbm.rows(
        db,
        "SELECT node, seq, reason, message, first_at, last_at, count FROM sync_rejections "
        "WHERE resolved = 0 ORDER BY last_at DESC LIMIT 50",
    )
    cp = dbm.one(
        db, "SELECT tree_size, root, at, key_id FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
    )
    relayed = [
        {
            "node": r["code"],
            "held": r["seq"],
            "hub_ack_seq": r["hub_ack_seq"],
            "backlog": max(r["seq"] - r["hub_ack_seq"], 0),
            "last_seen": r["last_seen"],
            "alert": r["alert"],
        }
        for r in relay.nodes(db)
    ]
    out: dict[str, Any] = {
        "node": cfg.code,
        "hub_url": cfg.hub_url or None,
        "via_relay": st.get("via_relay") or None,
        "key_id": key_id,
        "log_size": size,
        "hub_ack_seq": ack,
        "hub_ack_hash": st.get("hub_ack_hash"),
        "backlog": backlog(db),
        "own_backlog": max(size - ack, 0),
        "last_attempt": st.get("last_attempt"),
        "last_success": st.get("last_success"),
        "last_error": st.get("last_error"),
        "last_error_at": st.get("last_error_at"),
        "alert": st.get("alert"),
        "receipts": receipts["n"],
        "last_receipt": last_receipt,
        "rejections": rejections,
        "checkpoint": cp,
        "catalog": {
            "version": dbm.get_meta(db, "catalog_version"),
            "hub_version": st.get("catalog_version"),
            "checked_at": st.get("catalog_checked_at"),
            "error": st.get("catalog_error"),
        },
        "relay": relayed,
        "next_try_in": None,
    }
    if service is not None:
        wait = service.next_try - time.monotonic()
        out["next_try_in"] = round(wait, 1) if wait > 0 else None
    return out


def format_text(s: dict[str, Any]) -> str:
    """A plain-text report for ``onestop sync status``."""
    lines = [
        f"node {s['node']}: {s['log_size']} records, key {s['key_id']}",
        f"hub: {s['hub_url'] or '(none configured)'}"
        + (f" via relay {s['via_relay']}" if s["via_relay"] else ""),
        f"hub holds up to seq {s['hub_ack_seq']}; backlog {s['backlog']}",
        f"last success: {s['last_success'] or 'never'}",
        f"receipts: {s['receipts']}",
    ]
    if s["checkpoint"]:
        cp = s["checkpoint"]
        lines.append(f"checkpoint: {cp['tree_size']} records, root {cp['root'][:16]}…")
    if s["last_error"]:
        lines.append(f"last error: {s['last_error']} ({s['last_error_at']})")
    if s["alert"]:
        lines.append(f"ALERT: {s['alert']}")
    for r in s["rejections"]:
        where = f"seq {r['seq']}" if r["seq"] is not None else "batch"
        lines.append(f"rejected {r['node']} {where}: {r['reason']}: {r['message']} (x{r['count']})")
    cat = s["catalog"]
    lines.append(
        f"catalog: {cat['version']}" + (f", hub {cat['hub_version']}" if cat["hub_version"] else "")
    )
    if cat["error"]:
        lines.append(f"catalog refused: {cat['error']}")
    for r in s["relay"]:
        lines.append(
            f"relays {r['node']}: holds {r['held']}, hub at {r['hub_ack_seq']}"
            + (f", ALERT {r['alert']}" if r["alert"] else "")
        )
    return "\n".join(lines)


def as_json(s: dict[str, Any]) -> str:
    return json.dumps(s, ensure_ascii=False, indent=2)
