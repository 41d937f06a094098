"""Ingest: verify pushed batches against each node's key and chain, then store them.

Pure functions on the hub database (no HTTP): :func:`parse_envelope` checks the request body,
:func:`ingest_envelope` handles a whole push, :func:`ingest_batch` one node's batch in one
``BEGIN IMMEDIATE`` transaction.  The rules (``docs/sync-protocol.md``):

- The batch's node must be enrolled and active (else ``unknown_node`` / ``revoked_key``).
- Records are checked in order from the hub's acknowledged position with
  :class:`sync.chain.ChainVerifier` continuing from the stored state (seq, head hash, current
  key), so ``key.rotated`` records are followed.  A record at or below the position with the
  hash the hub holds is a harmless repeat and is skipped.
- The first record that fails is named in ``rejected``; records after it are not stored
  (chain continuity), the ones before it are.
- A validly signed record that differs from the one the hub holds at the same seq (or that
  links to a different predecessor) is a fork — a rollback when the node's records restart
  from seq 1 — and so is a checkpoint whose root disagrees with the hub's copy: the batch is
  quarantined, an alert is raised and nothing of the batch is merged.
- Event bodies are checked against ``schemas/events/<kind>.schema.json`` when it exists;
  other kinds must match the generic event shape (``bad_schema``).
- ``case.opened`` bodies with ``id_sealed`` are opened with the hub's X25519 key; only the
  hub's keyed hash and the mask are kept (``person_links``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import numbers
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import sqlite_utils
from jsonschema import Draft202012Validator

import schemas
from hub import db as hubdb
from hub import rollups
from hub.identity import HubIdentity
from onestop.clock import utcnow
from onestop.errors import ApiError, Forbidden, Invalid, Unauthorized
from onestop.identity import mask_id
from sync.canonical import b64decode, canonical
from sync.chain import (
    GENESIS,
    ROTATION_KIND,
    ChainVerifier,
    SignatureResults,
    check_shape,
    parse_rotation,
    verify_record,
)
from sync.checkpoint import check_checkpoint_shape, verify_checkpoint
from sync.errors import (
    BAD_ROOT,
    BAD_SHAPE,
    BAD_SIGNATURE,
    BROKEN_CHAIN,
    WRONG_NODE,
    CheckpointError,
    RecordError,
)
from sync.keys import Ed25519PublicKey, load_public, public_from_raw_b64, public_key_id
from sync.merkle import EMPTY_ROOT, MerkleTree, node_hash, record_leaf, verify_consistency
from sync.receipts import make_receipt
from sync.sealing import SealError, unseal
from sync.verify import VerifyReport, verify_log

# Reason codes the hub adds to those of sync/errors.py.
UNKNOWN_NODE = "unknown_node"
REVOKED_KEY = "revoked_key"
BAD_SCHEMA = "bad_schema"

CASE_OPENED = "case.opened"
SEALED_FIELD = "id_sealed"


# --------------------------------------------------------------------------- the envelope


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


# --------------------------------------------------------------------------- results


@dataclass
class BatchResult:
    node: str
    ack_seq: int | None
    ack_hash: str | None
    receipt: dict[str, Any] | None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    alert: str | None = None
    stored: int = 0
    duplicates: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "node": self.node, "ack_seq": self.ack_seq, "ack_hash": self.ack_hash,
            "receipt": self.receipt, "rejected": self.rejected, "alert": self.alert,
            "stored": self.stored, "duplicates": self.duplicates,
        }  # fmt: skip


def _rejection(seq: int | None, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "reason": reason, "message": message, **extra}


# --------------------------------------------------------------------------- alerts


def raise_alert(db: sqlite_utils.Database, node: str, kind: str, message: str, now: str) -> None:
    """Open an alert, or count a repeat of the same open one."""
    if kind not in hubdb.ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    with hubdb.tx(db):
        row = hubdb.one(
            db,
            "SELECT id FROM alerts WHERE node = ? AND kind = ? AND message = ? AND resolved = 0",
            [node, kind, message],
        )
        if row:
            db.execute(
                "UPDATE alerts SET count = count + 1, last_at = ? WHERE id = ?", [now, row["id"]]
            )
        else:
            db.execute(
                "INSERT INTO alerts (node, kind, message, at, last_at) VALUES (?, ?, ?, ?, ?)",
                [node, kind, message, now, now],
            )


# --------------------------------------------------------------------------- event schemas

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_ENTITY = re.compile(r"^[a-z][a-z0-9_.-]*$")
MAX_ENTITY_ID = 200


@functools.cache
def event_validator(kind: str) -> Draft202012Validator | None:
    """The validator of ``schemas/events/<kind>.schema.json``, or None when there is none."""
    if not _KIND.match(kind):
        return None
    entry = resources.files("schemas").joinpath("events", f"{kind}.schema.json")
    if not entry.is_file():
        return None
    schema = json.loads(entry.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    try:

        registry = schemas._registry()
    except Exception:  # noqa: BLE001 - $refs to other schemas are optional
        return Draft202012Validator(schema)
    return Draft202012Validator(schema, registry=registry)


def _schema_target(validator: Draft202012Validator, event: Mapping[str, Any]) -> Any:
    """Schemas describe the body; one whose properties name ``kind`` and ``body`` the event.

    ``id_sealed`` (the sync protocol's sealed ID number on ``case.opened``) is checked by the
    hub itself, so it is left out unless the event schema declares it.
    """
    props = validator.schema.get("properties") if isinstance(validator.schema, dict) else None
    props = props if isinstance(props, dict) else {}
    if "kind" in props and "body" in props:
        return dict(event)
    body = event["body"]
    if event["kind"] == CASE_OPENED and SEALED_FIELD in body and SEALED_FIELD not in props:
        return {k: v for k, v in body.items() if k != SEALED_FIELD}
    return body


def event_problem(event: Mapping[str, Any]) -> str | None:
    """Why an event fails its schema (or the generic event shape), or None if it is fine."""
    kind, entity, entity_id, at = event["kind"], event["entity"], event["entity_id"], event["at"]
    if not _KIND.match(kind):
        return f"kind {kind!r} is not a dotted lower-case name"
    if not _ENTITY.match(entity):
        return f"entity {entity!r} is not a lower-case name"
    if not entity_id or len(entity_id) > MAX_ENTITY_ID:
        return f"entity_id must be 1-{MAX_ENTITY_ID} characters"
    try:
        t = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return f"at {at!r} is not an RFC 3339 time"
    if t.tzinfo is None:
        return f"at {at!r} has no time zone"
    if kind == CASE_OPENED and SEALED_FIELD in event["body"]:
        sealed = event["body"][SEALED_FIELD]
        if not isinstance(sealed, str) or not sealed:
            return f"{SEALED_FIELD} must be a non-empty string (sync.sealing.seal)"
    validator = event_validator(kind)
    if validator is None:
        return None
    target = _schema_target(validator, event)
    quick = event_check(kind)
    if quick is not None and quick(target):
        return None  # valid: the full validator would find nothing either
    errors = sorted(validator.iter_errors(target), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(body)"
    return f"{kind} schema: {where}: {first.message}"


# A compiled yes/no form of the event schemas.  jsonschema walks a schema keyword by keyword
# for every instance (about 0.1 ms per event body, more than the signature check); the event
# schemas use a handful of keywords, compiled here into nested closures with jsonschema's own
# semantics (its Draft 2020-12 type checker, re.search for patterns, its ``equal`` for enum).
# A schema with any other keyword is not compiled (None: jsonschema decides).  The closures
# only say "valid"; a body they call invalid goes through jsonschema, which words the error
# (tests/test_hub_fastpaths.py checks both agree on many generated bodies).
_Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "format",  # format: not asserted (no format_checker)
})  # fmt: skip
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Unsupported(Exception):
    pass


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, numbers.Number)


_TYPES: dict[str, _Check] = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: not isinstance(x, bool) and (
        isinstance(x, int) or (isinstance(x, float) and x.is_integer())),
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
}  # fmt: skip


def _enum_check(members: list[Any]) -> _Check:
    if all(type(m) is str for m in members):
        allowed = frozenset(members)
        return lambda x: isinstance(x, str) and x in allowed
    try:
        from jsonschema._utils import equal  # optional private helper: absent, jsonschema decides
    except ImportError:  # pragma: no cover - jsonschema moved it: let jsonschema decide
        raise _Unsupported("enum") from None
    return lambda x: any(equal(m, x) for m in members)


_KEYWORDS = frozenset({
    "type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems",
    "items", "required", "properties", "additionalProperties", "oneOf",
})  # fmt: skip


def _compile(schema: Any) -> _Check:
    """A yes/no check with jsonschema's semantics, or :class:`_Unsupported`.

    Keywords apply as in jsonschema: each to the instance types it is about (``pattern`` and
    the lengths to strings, ``minimum``/``maximum`` to numbers, ``items``/``minItems`` to
    arrays, ``required``/``properties``/``additionalProperties`` to objects), ``type``,
    ``enum`` and ``oneOf`` to any instance."""
    if schema is True:
        return lambda x: True
    if schema is False:
        return lambda x: False
    if not isinstance(schema, dict):
        raise _Unsupported(type(schema).__name__)
    unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
    if unknown:
        raise _Unsupported(", ".join(sorted(unknown)))
    if schema.get("$schema", _DIALECT) != _DIALECT:
        raise _Unsupported("$schema")
    type_ok: _Check | None = None
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = tuple(_TYPES[n] for n in names)
        type_ok = tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests))
    enum_ok = _enum_check(list(schema["enum"])) if "enum" in schema else None
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    min_items = schema.get("minItems")
    items = _compile(schema["items"]) if "items" in schema else None
    required = tuple(schema.get("required", ()))
    props = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    extra = _compile(schema["additionalProperties"]) if "additionalProperties" in schema else None
    one_of = tuple(_compile(s) for s in schema["oneOf"]) if "oneOf" in schema else None
    has_str = search is not None or min_len is not None or max_len is not None
    has_num = minimum is not None or maximum is not None
    has_arr = min_items is not None or items is not None
    has_obj = bool(required or props or extra is not None)

    def check(x: Any) -> bool:
        if type_ok is not None and not type_ok(x):
            return False
        if enum_ok is not None and not enum_ok(x):
            return False
        if isinstance(x, str):
            if has_str:
                if search is not None and search(x) is None:
                    return False
                if min_len is not None and len(x) < min_len:
                    return False
                if max_len is not None and len(x) > max_len:
                    return False
        elif isinstance(x, dict):
            if has_obj:
                for k in required:
                    if k not in x:
                        return False
                for k, v in x.items():
                    sub = props.get(k)
                    if sub is None:
                        if extra is not None and not extra(v):
                            return False
                    elif not sub(v):
                        return False
        elif isinstance(x, list):
            if has_arr:
                if min_items is not None and len(x) < min_items:
                    return False
                if items is not None:
                    for v in x:
                        if not items(v):
                            return False
        elif has_num and _is_number(x):
            if minimum is not None and x < minimum:
                return False
            if maximum is not None and x > maximum:
                return False
        if one_of is not None:
            return sum(1 for s in one_of if s(x)) == 1
        return True

    return check


@functools.cache
def event_check(kind: str) -> _Check | None:
    """The compiled yes/no form of ``event_validator(kind)``'s schema, or None (no schema, or
    a keyword it does not compile): True means valid, False "ask jsonschema why"."""
    validator = event_validator(kind)
    if validator is None:
        return None
    try:
        return _compile(validator.schema)
    except (_Unsupported, KeyError, TypeError, re.error):
        return None


# --------------------------------------------------------------------------- Merkle frontier


class Frontier:
    """The right edge of a node's RFC 6962 tree: one hash per complete subtree, largest
    first (sizes are the binary digits of the leaf count).  Enough to append leaves and to
    get the root, in O(log n) memory; stored per node in ``nodes.frontier``."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)

    @staticmethod
    def _sizes(n: int) -> list[int]:
        return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]

    def append(self, leaf: bytes) -> None:
        self.hashes.append(leaf)
        self.size += 1
        # Merge equal-sized subtrees: as many as trailing one bits of the old size.
        n = self.size
        while n % 2 == 0:
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            n //= 2

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def dump(self) -> str:
        return json.dumps([h.hex() for h in self.hashes])

    @classmethod
    def load(cls, db: sqlite_utils.Database, node: str, size: int, text: str | None) -> Frontier:
        """The stored frontier if it fits ``size`` records, else rebuilt from the records."""
        try:
            hashes = [bytes.fromhex(h) for h in json.loads(text or "null")]
            if len(hashes) == len(cls._sizes(size)) and all(len(h) == 32 for h in hashes):
                return cls(size, hashes)
        except (ValueError, TypeError):
            pass
        f = cls()
        for (h,) in db.execute(
            "SELECT hash FROM records WHERE node = ? AND seq <= ? ORDER BY seq", [node, size]
        ).fetchall():
            f.append(record_leaf(h))
        if f.size != size:
            raise RuntimeError(f"the hub's copy of node {node} lacks records below seq {size}")
        return f


def stored_tree(db: sqlite_utils.Database, node: str, size: int) -> MerkleTree:
    """The full Merkle tree of the first ``size`` stored records (the slow path)."""
    return MerkleTree(
        record_leaf(h)
        for (h,) in db.execute(
            "SELECT hash FROM records WHERE node = ? AND seq <= ? ORDER BY seq", [node, size]
        ).fetchall()
    )


# --------------------------------------------------------------------------- node state


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


def _record_event_json(record: Mapping[str, Any]) -> str:
    return canonical(record["event"]["body"]).decode("utf-8")


def _first_seq(records: Sequence[Any]) -> int | None:
    for r in records:
        if isinstance(r, Mapping) and type(r.get("seq")) is int:
            return int(r["seq"])
    return None


# --------------------------------------------------------------------------- one batch


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
) -> _Outcome:  # fmt: skip
    out = _Outcome()
    ack_seq, ack_hash = int(node["ack_seq"]), str(node["ack_hash"])
    current = public_from_raw_b64(node["cur_key"])
    verifier = ChainVerifier(current, node=code, prev=ack_hash, seq=ack_seq)
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
                key = key_at(seq - 1)
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
            problem = event_problem(record["event"])
            if problem:
                raise _SchemaError(seq, problem)
            if record["event"]["kind"] == ROTATION_KIND:
                batch_keys.append((seq, parse_rotation(record["event"], seq)))
            out.accepted.append(record)  # type: ignore[arg-type]
            out.bodies.append(body.decode("utf-8"))
        except _SchemaError as e:
            out.rejected.append(_rejection(e.seq, BAD_SCHEMA, e.message))
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
            out.rejected.append(_rejection(where, reason, message))
            break
    return out


class _SchemaError(Exception):
    def __init__(self, seq: int, message: str) -> None:
        super().__init__(message)
        self.seq, self.message = seq, message


def _check_checkpoint(
    db: sqlite_utils.Database,
    code: str,
    cp: Mapping[str, Any],
    keys: NodeKeys,
    accepted: Sequence[Mapping[str, Any]],
    ack_seq: int,
    frontier: Frontier,
) -> tuple[str, Any]:
    """Judge a batch's checkpoint: ``("ok", cp)``, ``("ahead", None)``,
    ``("rejected", rejection)`` or ``("fork"|"rollback", message)``."""
    size: int | None = None
    try:
        size = check_checkpoint_shape(cp)
        new_pos = accepted[-1]["seq"] if accepted else ack_seq
        if size > new_pos:  # covers records the hub doesn't hold yet: not judged
            return "ahead", None
        rotations = [
            (int(r["seq"]), parse_rotation(r["event"]))
            for r in accepted
            if r["event"]["kind"] == ROTATION_KIND
        ]
        key = keys.for_size(size)
        for from_seq, k in rotations:
            if from_seq <= size:
                key = k
        if key is None:
            raise CheckpointError(BAD_SIGNATURE, "no key known for this tree size", size)
        verify_checkpoint(cp, key, node=code)
    except CheckpointError as e:
        return "rejected", _rejection(None, e.reason, e.message, checkpoint=size)
    max_held = (hubdb.one(db, "SELECT max(tree_size) AS m FROM checkpoints WHERE node = ?",
                          [code]) or {}).get("m") or 0  # fmt: skip
    new_root = bytes.fromhex(cp["root"])
    if size >= ack_seq:
        # The usual case: a checkpoint at or after the hub's position; the stored frontier
        # plus this batch's leaves give the root at ``size``.
        f = frontier.copy()
        for r in accepted:
            if r["seq"] > size:
                break
            f.append(record_leaf(r["hash"]))
        actual = f.root()
    else:
        # Below the position: compute from the stored leaves and prove the checkpoint
        # consistent (RFC 9162) with the nearest checkpoints the hub holds.
        tree = stored_tree(db, code, ack_seq)
        actual = tree.root(size)
        if actual == new_root:
            for h in hubdb.rows(
                db,
                "SELECT tree_size, root FROM (SELECT * FROM checkpoints WHERE node = ? AND "
                "tree_size < ? ORDER BY tree_size DESC LIMIT 1) UNION ALL SELECT tree_size, "
                "root FROM (SELECT * FROM checkpoints WHERE node = ? AND tree_size > ? "
                "ORDER BY tree_size LIMIT 1)",
                [code, size, code, size],
            ):
                m, old = int(h["tree_size"]), bytes.fromhex(h["root"])
                lo, hi, lo_root, hi_root = (m, size, old, new_root) if m < size else (
                    size, m, new_root, old)  # fmt: skip
                if not verify_consistency(lo, hi, lo_root, hi_root,
                                          tree.consistency_proof(lo, hi)):  # fmt: skip
                    kind = "rollback" if size < m else "fork"
                    return kind, (f"checkpoint tree_size {size} is not consistent with the "
                                  f"hub's checkpoint at {m}")  # fmt: skip
    if actual != new_root:
        if size <= ack_seq:
            kind = "rollback" if size < max_held else "fork"
            return kind, (
                f"checkpoint tree_size {size} has root {cp['root'][:16]}… but the hub's copy "
                f"gives {actual.hex()[:16]}…" + (f" (the hub holds a checkpoint at {max_held})"
                                                if kind == "rollback" else "")
            )  # fmt: skip
        return "rejected", _rejection(
            None, BAD_ROOT, f"root {cp['root']} but the records give {actual.hex()}",
            checkpoint=size,
        )  # fmt: skip
    return "ok", cp


def _store(
    db: sqlite_utils.Database,
    ident: HubIdentity,
    code: str,
    records: Sequence[Mapping[str, Any]],
    now: str,
    bodies: Sequence[str] | None = None,
) -> list[str]:
    """Insert verified records (with rotations, person links and rollups); return problems to
    alert.  ``bodies``: the records' canonical body JSON, as verification computed it."""
    problems: list[str] = []
    if bodies is None or len(bodies) != len(records):
        bodies = [_record_event_json(r) for r in records]
    db.conn.executemany(
        "INSERT INTO records (node, seq, hash, prev, key_id, sig, at, kind, entity, "
        "entity_id, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(code, r["seq"], r["hash"], r["prev"], r["key_id"], r["sig"], r["event"]["at"],
          r["event"]["kind"], r["event"]["entity"], r["event"]["entity_id"], body, now)
         for r, body in zip(records, bodies, strict=True)],
    )  # fmt: skip
    for r in records:
        ev = r["event"]
        if ev["kind"] == ROTATION_KIND:
            new = parse_rotation(ev, r["seq"])
            kid = public_key_id(new)
            db.execute(
                "INSERT OR IGNORE INTO node_keys (node, key_id, pubkey, from_seq, source, "
                "added_at) VALUES (?, ?, ?, ?, 'rotated', ?)",
                [code, kid, ev["body"]["public_key"], r["seq"], now],
            )
            db.execute(
                "UPDATE nodes SET key_id = ?, cur_key = ? WHERE code = ?",
                [kid, ev["body"]["public_key"], code],
            )
        if ev["kind"] == CASE_OPENED and SEALED_FIELD in ev["body"]:
            problem = _link_person(db, ident, code, r)
            if problem:
                problems.append(problem)
    if records:
        rollups.apply(db, code, records)  # dashboard figures, in the same transaction
    return problems


def _link_person(
    db: sqlite_utils.Database, ident: HubIdentity, code: str, record: Mapping[str, Any]
) -> str | None:
    ev = record["event"]
    try:
        plain = unseal(ident.seal_key, ev["body"][SEALED_FIELD]).decode("utf-8")
    except (SealError, UnicodeDecodeError) as e:
        return f"seq {record['seq']}: id_sealed cannot be opened: {e}"
    try:
        db.execute(
            "INSERT OR REPLACE INTO person_links (node, entity_id, seq, id_hash, id_masked) "
            "VALUES (?, ?, ?, ?, ?)",
            [code, ev["entity_id"], record["seq"], ident.link_hash(plain),
             mask_id(plain.strip().upper())],
        )  # fmt: skip
    finally:
        del plain
    return None


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
) -> BatchResult:
    """Verify and store one node's batch (one transaction); never raises for bad content.

    ``signatures``: record signatures checked ahead (:class:`hub.worker.SignatureJobs`), if any."""
    now = now or utcnow()
    code = str(batch["node"])
    records: list[Any] = list(batch.get("records") or [])
    cp = batch.get("checkpoint")
    with hubdb.tx(db):
        node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [code])
        if node is None:
            msg = f"node {code} is not enrolled at this hub (batch sent by {sender})"
            raise_alert(db, code, "unknown_node", msg, now)
            return BatchResult(code, None, None, None,
                               [_rejection(_first_seq(records), UNKNOWN_NODE, msg)],
                               alert="unknown_node")  # fmt: skip
        db.execute("UPDATE nodes SET last_contact = ? WHERE code = ?", [now, code])
        ack_seq = int(node["ack_seq"])

        def result(**kw: Any) -> BatchResult:
            row = hubdb.one(db, "SELECT ack_seq, ack_hash FROM nodes WHERE code = ?", [code])
            assert row is not None
            receipt = make_receipt(ident.signing_key, code, row["ack_seq"], row["ack_hash"], now)
            return BatchResult(code, row["ack_seq"], row["ack_hash"], receipt, **kw)

        if node["status"] != "active":
            msg = f"node {code}'s key {node['key_id']} was revoked at {node['revoked_at']}"
            raise_alert(db, code, "revoked_key", msg, now)
            db.execute("UPDATE nodes SET last_error = ? WHERE code = ?", [msg, code])
            return result(rejected=[_rejection(_first_seq(records), REVOKED_KEY, msg)],
                          alert="revoked_key")  # fmt: skip

        keys = NodeKeys.load(db, code)
        out = _check_records(db, code, node, keys, records, signatures)
        divergence = out.divergence
        stored_cp: Mapping[str, Any] | None = None
        frontier = Frontier.load(db, code, ack_seq, node["frontier"])
        if divergence is None and cp is not None:
            verdict, detail = _check_checkpoint(db, code, cp, keys, out.accepted, ack_seq, frontier)
            if verdict in ("fork", "rollback"):
                divergence = (verdict, detail)
            elif verdict == "rejected":
                out.rejected.append(detail)
            elif verdict == "ok":
                stored_cp = detail
        if divergence is not None:
            kind, message = divergence
            _quarantine(db, code, sender, kind, message, batch, now)
            raise_alert(db, code, kind, message, now)
            db.execute(
                "UPDATE nodes SET last_error = ? WHERE code = ?", [f"{kind}: {message}", code]
            )
            return result(alert=kind, duplicates=out.duplicates)

        problems = _store(db, ident, code, out.accepted, now, out.bodies)
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
            raise_alert(db, code, "rejected", p, now)
        db.execute(
            "UPDATE nodes SET last_error = ? WHERE code = ?",
            [problems[-1] if problems else None, code],
        )
        res = result(rejected=out.rejected, stored=len(out.accepted), duplicates=out.duplicates)
    return res


# --------------------------------------------------------------------------- a whole push


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
    with hubdb.tx(db):
        db.execute(
            "UPDATE nodes SET last_contact = ?, reported_backlog = COALESCE(?, reported_backlog) "
            "WHERE code = ?",
            [now, envelope.backlog, sender],
        )
    return {"results": results}


def signature_items(db: sqlite_utils.Database, envelope: Envelope) -> list[tuple[bytes, str, str]]:
    """The record signatures of a push worth checking ahead, in order: ``(raw public key,
    sig, hash)`` for records above the hub's position of active nodes, with the key their
    ``key_id`` names (an enrolled key, or one announced by a ``key.rotated`` record before it
    in the batch).  Only a guess at the work: the chain walk decides which key each record
    needs and uses a result only for that exact key (:class:`hub.worker.SignatureJobs`)."""
    known: dict[str, tuple[int, dict[str, bytes]]] = {}
    for code in dict.fromkeys(b["node"] for b in envelope.batches):
        row = hubdb.one(db, "SELECT ack_seq, status FROM nodes WHERE code = ?", [code])
        if row is None or row["status"] != "active":
            continue
        keys: dict[str, bytes] = {}
        for kid, pub in db.execute(
            "SELECT key_id, pubkey FROM node_keys WHERE node = ?", [code]
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
    db: sqlite_utils.Database, envelope: Envelope, node: str
) -> list[Ed25519PublicKey]:
    """New keys of ``node`` announced by ``key.rotated`` records in its own batches of this
    push that verify from the hub's position (so a request signed with the new key is
    accepted in the very push that carries the rotation)."""
    row = hubdb.one(db, "SELECT * FROM nodes WHERE code = ? AND status = 'active'", [node])
    if row is None:
        return []
    verifier = ChainVerifier(
        public_from_raw_b64(row["cur_key"]), node=node, prev=row["ack_hash"], seq=row["ack_seq"]
    )
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


# --------------------------------------------------------------------------- reading back


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


__all__ = [
    "BAD_SCHEMA",
    "BAD_SHAPE",
    "GENESIS",
    "REVOKED_KEY",
    "UNKNOWN_NODE",
    "BatchResult",
    "announced_keys",
    "Envelope",
    "Frontier",
    "event_problem",
    "ingest_batch",
    "ingest_envelope",
    "parse_envelope",
    "parse_push",
    "signature_items",
    "position",
    "raise_alert",
    "stored_checkpoints",
    "stored_records",
    "verify_stored",
]


def verify_stored(db: sqlite_utils.Database, code: str) -> tuple[dict[str, Any], VerifyReport]:
    """Audit the hub's stored copy of one node's log offline (:func:`sync.verify.verify_log`)
    from its enrolled key; also check the stored position agrees with the records."""
    node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [code])
    if node is None:
        raise LookupError(f"node {code} is not enrolled at this hub")
    records = stored_records(db, code)
    checkpoints = stored_checkpoints(db, code)
    report = verify_log(code, records, checkpoints, load_public(node["pubkey"]))
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
