"""The request envelope of a push (``POST /api/v1/ingest``): the body, gzip or not, parsed
and its outer shape checked (:func:`parse_push`, :func:`parse_envelope`), the keys a push
announces for its own signed request (:func:`announced_keys`), and the push handled as a
whole (:func:`ingest_envelope`: the sender and relaying checked, then each batch by
:func:`hub.ingest.batch.ingest_batch`)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from hub import db as hubdb
from hub.identity import HubIdentity
from hub.ingest.batch import ingest_batch, raise_alert
from hub.ingest.results import REVOKED_KEY, UNKNOWN_NODE
from onestop.clock import utcnow
from onestop.errors import ApiError, Forbidden, Invalid, Unauthorized
from sync.chain import ROTATION_KIND, ChainVerifier, SignatureResults
from sync.errors import RecordError
from sync.keys import Ed25519PublicKey, public_from_raw_b64


@dataclass(frozen=True)
class Envelope:
    node: str
    batches: list[dict[str, Any]]
    backlog: int | None
    sent_at: str | None


def parse_envelope(data: object, max_batch_records: int = 5000) -> Envelope:
    """Check the push body's outer shape; raise :class:`Invalid` naming the field.

    Records and checkpoints themselves are checked per batch (their problems are answered in
    ``rejected``, not as a request error).
    """
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object", field="body")
    node = data.get("node")
    if not isinstance(node, str) or not node:
        raise Invalid("node (the sender's code) must be a non-empty string", field="node")
    batches = data.get("batches")
    if not isinstance(batches, list):
        raise Invalid("batches must be a list", field="batches")
    for i, b in enumerate(batches):
        where = f"batches[{i}]"
        if not isinstance(b, dict):
            raise Invalid(f"{where} must be an object", field=where)
        if not isinstance(b.get("node"), str) or not b["node"]:
            raise Invalid(f"{where}.node must be a non-empty string", field=f"{where}.node")
        if not isinstance(b.get("records"), list):
            raise Invalid(f"{where}.records must be a list", field=f"{where}.records")
        if len(b["records"]) > max_batch_records:
            raise Invalid(
                f"{where}.records holds {len(b['records'])} records; at most {max_batch_records}"
                " per batch",
                field=f"{where}.records",
            )
        cp = b.get("checkpoint")
        if cp is not None and not isinstance(cp, dict):
            raise Invalid(f"{where}.checkpoint must be an object or null",
                          field=f"{where}.checkpoint")  # fmt: skip
    backlog = data.get("backlog")
    if backlog is not None and (type(backlog) is not int or backlog < 0):
        raise Invalid("backlog must be an integer >= 0", field="backlog")
    sent_at = data.get("sent_at")
    if sent_at is not None and not isinstance(sent_at, str):
        raise Invalid("sent_at must be a string", field="sent_at")
    return Envelope(node, batches, backlog, sent_at)


def parse_push(raw: bytes, max_body: int, max_batch_records: int) -> Envelope:
    """A push request body (gzip or not) to its :class:`Envelope`, or :class:`Invalid`."""
    if raw[:2] == b"\x1f\x8b":  # gzip without the Content-Encoding header
        raw = gunzip(raw, max_body)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("request body is not valid JSON", field="body") from None
    return parse_envelope(data, max_batch_records)


def gunzip(raw: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise Invalid(f"request body is not valid gzip: {exc}", field="body") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ApiError(f"decompressed body exceeds {limit} bytes", status=413, code="too_large")
    return out


def announced_keys(
    db: sqlite_utils.Database,
    envelope: Envelope,
    node: str,
    hub_key: Ed25519PublicKey | None = None,
) -> list[Ed25519PublicKey]:
    """New keys of ``node`` announced by ``key.rotated`` records in its own batches of this
    push that verify from the hub's position (so a request signed with the new key is
    accepted in the very push that carries the rotation); ``hub_key`` lets the walk pass a
    ``node.rekeyed`` record (whose key the request may already use, :mod:`hub.rekeys`)."""
    row = hubdb.one(db, "SELECT * FROM nodes WHERE code = ? AND status = 'active'", [node])
    if row is None:
        return []
    verifier = ChainVerifier(
        public_from_raw_b64(row["cur_key"]), node=node, prev=row["ack_hash"],
        seq=row["ack_seq"], hub_key=hub_key,
    )  # fmt: skip
    keys: list[Ed25519PublicKey] = []
    for batch in envelope.batches:
        if batch["node"] != node:
            continue
        for record in batch["records"]:
            if not isinstance(record, Mapping) or type(record.get("seq")) is not int:
                return keys
            if record["seq"] <= verifier.seq:
                continue
            try:
                verifier.check(record)
            except RecordError:
                return keys
            if record["event"]["kind"] == ROTATION_KIND and verifier.key is not None:
                keys.append(verifier.key)
    return keys


def ingest_envelope(
    db: sqlite_utils.Database,
    ident: HubIdentity,
    envelope: Envelope,
    *,
    authenticated: str | None,
    now: str | None = None,
    signatures: SignatureResults | None = None,
) -> dict[str, Any]:
    """Handle a push: check the sender, then each batch; returns the response body.

    ``authenticated`` is the node whose signed request headers verified (None if unsigned).
    Batches for other nodes than the sender (relaying) need a signed request.
    ``signatures``: record signatures checked ahead (:class:`hub.worker.SignatureJobs`), if any.
    """
    now = now or utcnow()
    sender = envelope.node
    if authenticated is not None and authenticated != sender:
        raise Forbidden(f"request signed by node {authenticated} but sent as {sender}",
                        field="node")  # fmt: skip
    row = hubdb.one(db, "SELECT status FROM nodes WHERE code = ?", [sender])
    if row is None:
        raise_alert(db, sender, "unknown_node", f"push from unknown node {sender}", now)
        raise Forbidden(
            f"node {sender} is not enrolled at this hub", field="node", code=UNKNOWN_NODE,
            hint=f"on the hub: onestop hub enroll --data DIR --code {sender} --pubkey node.pub",
        )  # fmt: skip
    relayed = sorted({b["node"] for b in envelope.batches} - {sender})
    if relayed and authenticated is None:
        raise Unauthorized(
            f"relaying batches for {', '.join(relayed)} needs a request signed by {sender}",
            hint="headers X-Onestop-Node, X-Onestop-Time, X-Onestop-Sig (docs/sync-protocol.md)",
        )
    if relayed and row["status"] != "active":
        raise Forbidden(f"node {sender}'s key was revoked; it cannot relay", code=REVOKED_KEY)
    results = [
        ingest_batch(db, ident, b, sender=sender, now=now, signatures=signatures).wire()
        for b in envelope.batches
    ]
    if authenticated == sender:  # only a verified request speaks for the node's status
        with hubdb.tx(db):
            db.execute(
                "UPDATE nodes SET last_contact = ?, reported_backlog = COALESCE(?, reported_backlog)"
                " WHERE code = ?",
                [now, envelope.backlog, sender],
            )
    return {"results": results}
