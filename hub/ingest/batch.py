"""Verifying and storing one node's batch (:func:`ingest_batch`, one ``BEGIN IMMEDIATE``
transaction); the rules are in ``docs/sync-protocol.md``:

- The batch's node must be enrolled and active (else ``unknown_node`` / ``revoked_key``),
  and a batch relayed for another node than the sender must come from that node's registered
  relay, its ``parent`` in the registry (else ``not_relay``, with a ``rejected`` alert).
- Records are checked in order from the hub's acknowledged position with
  :class:`sync.chain.ChainVerifier` continuing from the stored state (seq, head hash, current
  key), so ``key.rotated`` records are followed, and ``node.rekeyed`` records whose
  authorisation the hub's own key signed.  While the node has a pending re-key
  (:mod:`hub.rekeys`) the next record must be the ``node.rekeyed`` record carrying exactly
  that authorisation: anything else there (a record of the replaced key, an older or a
  superseded authorisation) is ``revoked_key``; without a pending re-key a ``node.rekeyed``
  record is refused the same way.  A record at or below the position with the
  hash the hub holds is a harmless repeat and is skipped.
- The first record that fails is named in ``rejected``; records after it are not stored
  (chain continuity), the ones before it are.
- A validly signed record that differs from the one the hub holds at the same seq (or that
  links to a different predecessor) is a fork (a rollback when the node's records restart
  from seq 1), and so is a checkpoint whose root disagrees with the hub's copy
  (:mod:`hub.ingest.checkpoints`): the batch is quarantined, an alert is raised and nothing
  of the batch is merged.
- Event bodies are checked by :mod:`hub.ingest.schemas` (``bad_schema``); accepted records
  are written by :mod:`hub.ingest.store`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from hub import db as hubdb
from hub import rekeys
from hub.identity import HubIdentity
from hub.ingest import alerts
from hub.ingest.alerts import clip, raise_alert
from hub.ingest.checkpoints import Frontier, check_checkpoint
from hub.ingest.results import (
    BAD_SCHEMA,
    NOT_RELAY,
    REVOKED_KEY,
    UNKNOWN_NODE,
    BatchResult,
    rejection,
)
from hub.ingest.schemas import event_problem
from hub.ingest.store import insert_records
from onestop.clock import utcnow
from sync.chain import (
    ROTATION_KIND,
    ChainVerifier,
    SignatureResults,
    check_shape,
    parse_rotation,
    verify_record,
)
from sync.errors import BAD_SIGNATURE, BROKEN_CHAIN, WRONG_NODE, RecordError
from sync.keys import Ed25519PublicKey, public_from_raw_b64, public_key_id
from sync.merkle import record_leaf
from sync.receipts import make_receipt
from sync.rekey import REKEY_KIND, parse_authorisation


@dataclass
class NodeKeys:
    """A node's key history: ``(from_seq, key_id, key)``, oldest first."""

    history: list[tuple[int, str, Ed25519PublicKey]]
    revoked: set[str]

    @classmethod
    def load(cls, db: sqlite_utils.Database, node: str) -> NodeKeys:
        rows = hubdb.rows(
            db,
            "SELECT key_id, pubkey, from_seq, revoked_at FROM node_keys WHERE node = ? "
            "ORDER BY from_seq, rowid",
            [node],
        )
        history = [(r["from_seq"], r["key_id"], public_from_raw_b64(r["pubkey"])) for r in rows]
        return cls(history, {r["key_id"] for r in rows if r["revoked_at"]})

    def for_size(self, size: int) -> Ed25519PublicKey | None:
        """The key current once ``size`` records are in the log."""
        found = None
        for from_seq, _, key in self.history:
            if from_seq <= size:
                found = key
        return found

    def known(self, key_id: str) -> bool:
        return any(kid == key_id for _, kid, _ in self.history)


def _first_seq(records: Sequence[Any]) -> int | None:
    for r in records:
        if isinstance(r, Mapping) and type(r.get("seq")) is int:
            return int(r["seq"])
    return None


@dataclass
class _Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)  # accepted bodies' canonical JSON
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    divergence: tuple[str, str] | None = None  # (fork|rollback, message)


def _check_records(
    db: sqlite_utils.Database, code: str, node: Mapping[str, Any], keys: NodeKeys,
    records: Sequence[Any], signatures: SignatureResults | None = None,
    hub_key: Ed25519PublicKey | None = None, pending: Mapping[str, Any] | None = None,
) -> _Outcome:  # fmt: skip
    """``hub_key`` verifies re-key authorisations; ``pending``: the node's pending re-key
    (its ``rekeys`` row), if any."""
    out = _Outcome()
    ack_seq, ack_hash = int(node["ack_seq"]), str(node["ack_hash"])
    current = public_from_raw_b64(node["cur_key"])
    verifier = ChainVerifier(current, node=code, prev=ack_hash, seq=ack_seq, hub_key=hub_key)
    verifier.signatures = signatures
    seqs = [int(r["seq"]) for r in records if isinstance(r, Mapping) and type(r.get("seq")) is int]
    held: dict[int, str] = {}
    low = [s for s in seqs if 1 <= s <= ack_seq]
    if low:
        held = {
            int(s): str(h)
            for s, h in db.execute(
                "SELECT seq, hash FROM records WHERE node = ? AND seq BETWEEN ? AND ?",
                [code, min(low), max(low)],
            ).fetchall()
        }
    restarts = _first_seq(records) == 1
    # Rotations seen in this batch, for the key of a repeated record: (from_seq, key).
    batch_keys: list[tuple[int, Ed25519PublicKey]] = []

    def key_at(size: int) -> Ed25519PublicKey | None:
        key = keys.for_size(size)
        for from_seq, k in batch_keys:
            if from_seq <= size:
                key = k
        return key

    for index, record in enumerate(records):
        seq: int | None = None
        try:
            seq = check_shape(record)
            if record["node"] != code:
                raise RecordError(
                    WRONG_NODE, f"record is from node {record['node']!r}, batch is {code!r}", seq
                )
            if seq <= verifier.seq:
                known = held.get(seq) or next(
                    (r["hash"] for r in out.accepted if r["seq"] == seq), None
                )
                if record["hash"] == known:
                    out.duplicates += 1
                    continue
                # A different record where the hub already holds one: a fork if it is genuine.
                # (A node.rekeyed record is signed with the key it brings.)
                key = key_at(seq if record["event"]["kind"] == REKEY_KIND else seq - 1)
                if key is None:
                    raise RecordError(BAD_SIGNATURE, "no key known for this seq", seq)
                verify_record(record, key, None, node=code, signatures=signatures)
                kind = "rollback" if restarts else "fork"
                out.divergence = (kind, (
                    f"seq {seq}: the node sent a signed record with hash {record['hash'][:16]}… "
                    f"where the hub holds {str(known)[:16]}…"
                    + (" (its log restarts from seq 1: rolled-back database?)" if restarts else "")
                ))  # fmt: skip
                return out
            rekeyed = record["event"]["kind"] == REKEY_KIND
            if pending is not None and not rekeyed and seq == verifier.seq + 1:
                out.rejected.append(
                    rejection(seq, REVOKED_KEY, _rekey_problem(code, record, pending))
                )
                break
            before = verifier.state()
            try:
                body = verifier.check(record, shape_checked=True)
            except RecordError as e:
                if (
                    e.reason == BROKEN_CHAIN
                    and seq == before.seq + 1
                    and record["prev"] != before.head
                    and before.seq == ack_seq
                    and ack_seq > 0
                ):
                    # Authentic (hash and signature verified) yet linked to another record
                    # at the hub's position: the node's log differs from the hub's copy.
                    out.divergence = ("fork", (
                        f"seq {seq}: signed record links to {record['prev'][:16]}… but the hub "
                        f"holds {before.head[:16]}… at seq {before.seq}"
                    ))  # fmt: skip
                    return out
                raise
            refusal = _rekey_problem(code, record, pending) if rekeyed else ""
            if refusal:
                out.rejected.append(rejection(seq, REVOKED_KEY, refusal))
                break
            problem = event_problem(record["event"])
            if problem:
                raise _SchemaError(seq, problem)
            if record["event"]["kind"] == ROTATION_KIND:
                batch_keys.append((seq, parse_rotation(record["event"], seq)))
            elif rekeyed:
                batch_keys.append((seq, parse_authorisation(record["event"]["body"]).new_key))
                pending = None  # used: the new key signs what follows
            out.accepted.append(record)  # type: ignore[arg-type]
            out.bodies.append(body.decode("utf-8"))
        except _SchemaError as e:
            out.rejected.append(rejection(e.seq, BAD_SCHEMA, e.message))
            break
        except RecordError as e:
            reason, message = e.reason, e.message
            if reason == BAD_SIGNATURE and isinstance(record, Mapping):
                kid = record.get("key_id")
                if isinstance(kid, str) and (kid in keys.revoked or (
                    keys.known(kid) and kid != public_key_id(verifier.key or current)
                )):  # fmt: skip
                    reason = REVOKED_KEY
                    message = f"signed with key {kid}, which is no longer valid for node {code}"
            where = e.seq if e.seq is not None else seq
            if where is None:
                message = f"record #{index + 1}: {message}"
            out.rejected.append(rejection(where, reason, message))
            break
    return out


def _rekey_problem(code: str, record: Mapping[str, Any], pending: Mapping[str, Any] | None) -> str:
    """Why the record after the position cannot be taken given the node's pending re-key
    ('' if it can: the chain walk checked its signature, authorisation, seq and ``prev``)."""
    ev = record["event"]
    if pending is None:
        return (f"node {code} has no pending re-key at this hub: a {REKEY_KIND} record needs "
                "one (onestop hub rekey)")  # fmt: skip
    if ev["kind"] != REKEY_KIND:
        return (
            f"node {code} was re-keyed at this hub: key {pending['old_key_id']} is replaced and "
            f"seq {pending['from_seq']} must be the {REKEY_KIND} record of key "
            f"{pending['new_key_id']}"
        )
    body = ev["body"]
    if not isinstance(body, Mapping) or body.get("sig") != pending["sig"]:
        return (f"this {REKEY_KIND} record does not carry the hub's pending authorisation for "
                f"node {code} (key {pending['new_key_id']} from seq {pending['from_seq']})")  # fmt: skip
    return ""


class _SchemaError(Exception):
    def __init__(self, seq: int, message: str) -> None:
        super().__init__(message)
        self.seq, self.message = seq, message


def _quarantine(
    db: sqlite_utils.Database, code: str, sender: str, kind: str, message: str,
    batch: Mapping[str, Any], now: str,
) -> None:  # fmt: skip
    raw = json.dumps(batch, ensure_ascii=False, separators=(",", ":"))
    db.execute(
        "INSERT INTO quarantine (node, sender, reason, message, batch, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [code, sender, kind, message, raw, now],
    )


def ingest_batch(
    db: sqlite_utils.Database,
    ident: HubIdentity,
    batch: Mapping[str, Any],
    *,
    sender: str,
    now: str | None = None,
    signatures: SignatureResults | None = None,
    source: str | None = None,
) -> BatchResult:
    """Verify and store one node's batch (one transaction); never raises for bad content.

    ``signatures``: record signatures checked ahead (:class:`hub.worker.SignatureJobs`), if any.
    ``source``: the source of the alerts the request raises (:mod:`hub.ingest.alerts`; default:
    the sender, verified)."""
    now = now or utcnow()
    source = source if source is not None else alerts.verified(sender)
    code = str(batch["node"])
    records: list[Any] = list(batch.get("records") or [])
    cp = batch.get("checkpoint")
    with hubdb.tx(db):
        node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [code])
        if node is None:
            msg = f"node {code} is not enrolled at this hub (batch sent by {sender})"
            raise_alert(db, code, "unknown_node", msg, now, source)
            return BatchResult(code, None, None, None,
                               [rejection(_first_seq(records), UNKNOWN_NODE, msg)],
                               alert="unknown_node")  # fmt: skip
        if code != sender and node["parent"] != sender:
            msg = (f"node {code}'s batches may only be relayed by its registered relay "
                   f"({node['parent'] or 'none registered'}), not by node {sender}")  # fmt: skip
            raise_alert(db, code, "rejected", msg, now, source)
            return BatchResult(code, None, None, None,
                               [rejection(_first_seq(records), NOT_RELAY, msg)],
                               alert="rejected")  # fmt: skip
        ack_seq = int(node["ack_seq"])

        def result(**kw: Any) -> BatchResult:
            row = hubdb.one(db, "SELECT ack_seq, ack_hash FROM nodes WHERE code = ?", [code])
            assert row is not None
            receipt = make_receipt(ident.signing_key, code, row["ack_seq"], row["ack_hash"], now)
            return BatchResult(code, row["ack_seq"], row["ack_hash"], receipt, **kw)

        if node["status"] != "active":
            msg = f"node {code}'s key {node['key_id']} was revoked at {node['revoked_at']}"
            raise_alert(db, code, "revoked_key", msg, now, source)
            db.execute("UPDATE nodes SET last_error = ? WHERE code = ?", [clip(msg), code])
            return result(rejected=[rejection(_first_seq(records), REVOKED_KEY, msg)],
                          alert="revoked_key")  # fmt: skip

        keys = NodeKeys.load(db, code)
        out = _check_records(db, code, node, keys, records, signatures,
                             ident.signing_key.public_key(), rekeys.pending(db, code))  # fmt: skip
        divergence = out.divergence
        stored_cp: Mapping[str, Any] | None = None
        frontier = Frontier.load(db, code, ack_seq, node["frontier"])
        if divergence is None and cp is not None:
            verdict, detail = check_checkpoint(
                db, code, cp, keys.for_size, out.accepted, ack_seq, frontier
            )
            if verdict in ("fork", "rollback"):
                divergence = (verdict, detail)
            elif verdict == "rejected":
                out.rejected.append(detail)
            elif verdict == "ok":
                stored_cp = detail
        if divergence is not None:
            kind, message = divergence
            _quarantine(db, code, sender, kind, message, batch, now)
            # Proven by the node's own signature, whoever carried the records.
            raise_alert(db, code, kind, message, now, alerts.verified(code))
            db.execute(
                "UPDATE nodes SET last_error = ? WHERE code = ?", [clip(f"{kind}: {message}"), code]
            )
            return result(alert=kind, duplicates=out.duplicates)

        problems = insert_records(db, ident, code, out.accepted, now, out.bodies)
        if out.accepted:
            last = out.accepted[-1]
            for r in out.accepted:
                frontier.append(record_leaf(r["hash"]))
            db.execute(
                "UPDATE nodes SET ack_seq = ?, ack_hash = ?, frontier = ? WHERE code = ?",
                [last["seq"], last["hash"], frontier.dump(), code],
            )
        if stored_cp is not None:
            db.execute(
                "INSERT OR IGNORE INTO checkpoints (node, tree_size, root, at, key_id, sig, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [code, stored_cp["tree_size"], stored_cp["root"], stored_cp["at"],
                 stored_cp["key_id"], stored_cp["sig"], now],
            )  # fmt: skip
        for rej in out.rejected:
            where = f"seq {rej['seq']}" if rej["seq"] is not None else (
                f"checkpoint {rej.get('checkpoint')}")  # fmt: skip
            problems.append(f"{where}: {rej['reason']}: {rej['message']}")
        for p in problems:
            raise_alert(db, code, "rejected", p, now, source)
        if out.accepted:  # new records that verified: the node itself is at work
            db.execute("UPDATE nodes SET last_contact = ? WHERE code = ?", [now, code])
        if problems or out.accepted:
            db.execute(
                "UPDATE nodes SET last_error = ? WHERE code = ?",
                [clip(problems[-1]) if problems else None, code],
            )
        res = result(rejected=out.rejected, stored=len(out.accepted), duplicates=out.duplicates)
    return res
