"""The request envelope of a push (``POST /api/v1/ingest``): the body, gzip or not, inflated
within the body limit and parsed, its outer shape checked (:func:`parse_push`,
:func:`parse_envelope`: node codes are division codes), the keys a push announces for its own
signed request (:func:`announced_keys`), and the push handled as a whole
(:func:`ingest_envelope`: the sender and relaying checked, then each batch by
:func:`hub.ingest.batch.ingest_batch`); a signed push the hub refuses for its signer still
raises an alert (:func:`refused_signer`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from hub import db as hubdb
from hub.identity import HubIdentity
from hub.ingest import alerts
from hub.ingest.alerts import raise_alert
from hub.ingest.batch import ingest_batch
from hub.ingest.results import REVOKED_KEY, UNKNOWN_NODE
from onestop import bodies, jsonbody
from onestop.clock import utcnow
from onestop.errors import Forbidden, Invalid, Unauthorized
from sync.chain import ROTATION_KIND, ChainVerifier, SignatureResults
from sync.errors import RecordError
from sync.keys import Ed25519PublicKey, public_from_raw_b64
from sync.requests import body_sha256

#: A division code: 2 (province), 4, 6, 9 or 12 digits.
DIVISION_CODE = re.compile(r"[0-9]{2}(?:[0-9]{2}(?:[0-9]{2}(?:[0-9]{3}(?:[0-9]{3})?)?)?)?")


def is_division_code(value: object) -> bool:
    return isinstance(value, str) and DIVISION_CODE.fullmatch(value) is not None


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
    if not is_division_code(node):
        raise Invalid("node (the sender's code) must be a division code of 2, 4, 6, 9 or 12 "
                      "digits", field="node")  # fmt: skip
    assert isinstance(node, str)
    batches = data.get("batches")
    if not isinstance(batches, list):
        raise Invalid("batches must be a list", field="batches")
    for i, b in enumerate(batches):
        where = f"batches[{i}]"
        if not isinstance(b, dict):
            raise Invalid(f"{where} must be an object", field=where)
        if not is_division_code(b.get("node")):
            raise Invalid(f"{where}.node must be a division code of 2, 4, 6, 9 or 12 digits",
                          field=f"{where}.node")  # fmt: skip
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


def parse_push(
    raw: bytes, max_body: int, max_batch_records: int, content_encoding: str | None = None
) -> Envelope:
    """A push request body as sent (gzip, declared or not, inflated to at most ``max_body``
    bytes: else 413) to its :class:`Envelope`, or :class:`Invalid`."""
    return read_push(raw, max_body, max_batch_records, content_encoding)[1]


def read_push(
    raw: bytes, max_body: int, max_batch_records: int, content_encoding: str | None = None
) -> tuple[str, Envelope]:
    """:func:`parse_push` with the SHA-256 of the body as meant (inflated: what a request
    signature covers, :func:`sync.requests.body_sha256`: after undoing a declared
    ``Content-Encoding``)."""
    if content_encoding != bodies.GZIP:  # as sent (even gzip sent without the header)
        digest = body_sha256(raw)
    raw = bodies.decode(raw, content_encoding, max_body)
    if content_encoding == bodies.GZIP:  # declared gzip: the JSON before it
        digest = body_sha256(raw)
    data = jsonbody.parse(raw)
    del raw
    return digest, parse_envelope(data, max_batch_records)


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
    client: str | None = None,
) -> dict[str, Any]:
    """Handle a push: check the sender, then each batch; returns the response body.

    ``authenticated`` is the node whose signed request headers verified (None if unsigned).
    Batches for other nodes than the sender (relaying) need a signed request, and only a
    node's registered relay (its ``parent`` at the hub) may send them.
    ``signatures``: record signatures checked ahead (:class:`hub.worker.SignatureJobs`), if any.
    ``client``: the client address, the source of alerts an unsigned push raises.
    """
    now = now or utcnow()
    sender = envelope.node
    if authenticated is not None and authenticated != sender:
        raise Forbidden(f"request signed by node {authenticated} but sent as {sender}",
                        field="node")  # fmt: skip
    source = alerts.verified(sender) if authenticated else alerts.unverified(client)
    row = hubdb.one(db, "SELECT status FROM nodes WHERE code = ?", [sender])
    if row is None:
        raise_alert(db, sender, "unknown_node", f"push from unknown node {sender}", now, source)
        raise Forbidden(
            f"node {sender} is not enrolled at this hub", field="node", code=UNKNOWN_NODE,
            hint=f"on the hub: onestop hub enroll --data DIR --code {sender} --pubkey node.pub",
        )  # fmt: skip
    relayed = sorted({b["node"] for b in envelope.batches} - {sender})
    if relayed and authenticated is None:
        raise Unauthorized(
            f"relaying batches for {', '.join(relayed[:5])}{' …' if len(relayed) > 5 else ''} "
            f"needs a request signed by {sender}",
            hint="headers X-Onestop-Node, X-Onestop-Time, X-Onestop-Sig (docs/sync-protocol.md)",
        )
    if relayed and row["status"] != "active":
        raise Forbidden(f"node {sender}'s key was revoked; it cannot relay", code=REVOKED_KEY)
    results = [
        ingest_batch(db, ident, b, sender=sender, now=now, signatures=signatures,
                     source=source).wire()
        for b in envelope.batches
    ]  # fmt: skip
    if authenticated == sender:  # only a verified request speaks for the node's status
        with hubdb.tx(db):
            db.execute(
                "UPDATE nodes SET last_contact = ?, reported_backlog = COALESCE(?, reported_backlog)"
                " WHERE code = ?",
                [now, envelope.backlog, sender],
            )
    return {"results": results}


def refused_signer(
    db: sqlite_utils.Database, node: str, reason: str, client: str | None, now: str | None = None
) -> None:
    """Alert on a signed push the hub refused for its signer (``reason``: ``unknown_node`` or
    ``revoked_key``) before reading it: the signature could not be checked, so the alert's
    source is the client address."""
    if not is_division_code(node) or reason not in (UNKNOWN_NODE, REVOKED_KEY):
        return
    message = (
        f"signed push from node {node}, which is not enrolled at this hub"
        if reason == UNKNOWN_NODE
        else f"signed push from node {node}, whose key was revoked"
    )
    raise_alert(db, node, reason, message, now or utcnow(), alerts.unverified(client))
