"""The record signatures of a push worth checking ahead, on the hub's signature processes
(:class:`hub.worker.SignaturePool`) while the push waits for the ingest thread."""

from __future__ import annotations

import contextlib

import sqlite_utils

from hub import db as hubdb
from hub.ingest.envelope import Envelope
from sync.canonical import b64decode
from sync.chain import ROTATION_KIND


def signature_items(db: sqlite_utils.Database, envelope: Envelope) -> list[tuple[bytes, str, str]]:
    """The record signatures of a push worth checking ahead, in order: ``(raw public key,
    sig, hash)`` for records above the hub's position of active nodes, with the key their
    ``key_id`` names (an enrolled key, the new key of a pending re-key, or one announced by a
    ``key.rotated`` record before it in the batch).  Only a guess at the work: the chain walk
    decides which key each record needs and uses a result only for that exact key
    (:class:`hub.worker.SignatureJobs`)."""
    known: dict[str, tuple[int, dict[str, bytes]]] = {}
    for code in dict.fromkeys(b["node"] for b in envelope.batches):
        row = hubdb.one(db, "SELECT ack_seq, status FROM nodes WHERE code = ?", [code])
        if row is None or row["status"] != "active":
            continue
        keys: dict[str, bytes] = {}
        for kid, pub in db.execute(
            "SELECT key_id, pubkey FROM node_keys WHERE node = ? UNION ALL "
            "SELECT new_key_id, new_key FROM rekeys WHERE node = ? AND state = 'pending'",
            [code, code],
        ).fetchall():
            with contextlib.suppress(ValueError):
                keys[str(kid)] = b64decode(pub)
        known[code] = (int(row["ack_seq"]), keys)
    items: list[tuple[bytes, str, str]] = []
    for batch in envelope.batches:
        if batch["node"] not in known:
            continue
        ack_seq, enrolled = known[batch["node"]]
        keys = dict(enrolled)
        for r in batch["records"]:
            if not isinstance(r, dict):
                continue
            seq, kid, sig, h = r.get("seq"), r.get("key_id"), r.get("sig"), r.get("hash")
            if type(seq) is not int or seq <= ack_seq:
                continue
            if (
                type(kid) is str and type(sig) is str and type(h) is str and kid in keys
                and len(sig) <= 128 and len(h) == 64  # a signature is 88 characters
            ):  # fmt: skip
                items.append((keys[kid], sig, h))
            ev = r.get("event")
            if isinstance(ev, dict) and ev.get("kind") == ROTATION_KIND:
                body = ev.get("body")
                if isinstance(body, dict) and isinstance(body.get("key_id"), str):
                    with contextlib.suppress(ValueError):
                        keys[body["key_id"]] = b64decode(body.get("public_key"))
    return items
