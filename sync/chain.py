"""Signed, hash-chained log records and chain verification with key rotation.

Record format (all values JSON)::

    {"node": "<node code>", "seq": 1, "prev": "<64 hex>",
     "event": {"at": ..., "kind": ..., "entity": ..., "entity_id": "<str>", "body": {...}},
     "hash": "<64 hex>", "sig": "<base64>", "key_id": "<16 hex>"}

``hash`` = SHA-256 of RFC 8785 canonical JSON of ``{"node", "seq", "prev", "event"}``;
``prev`` is the previous record's ``hash`` (:data:`GENESIS`, 64 zeros, for seq 1).
``sig`` = Ed25519 signature over ``RECORD_SIG_CONTEXT + bytes.fromhex(hash)`` (the 32 hash
bytes behind a domain-separation prefix, so a record signature can never be replayed as a
checkpoint signature or anything else signed with the node key).

Key rotation: an event of kind :data:`ROTATION_KIND` whose body holds ``public_key`` (raw
base64, see :func:`rotation_body`) and its ``key_id`` is signed with the OLD key; every later
record must be signed with the new key, and the old key is no longer accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from sync.canonical import b64decode, b64encode, canonical, is_sha256_hex, sha256_hex
from sync.errors import (
    BAD_HASH,
    BAD_SHAPE,
    BAD_SIGNATURE,
    BROKEN_CHAIN,
    WRONG_NODE,
    RecordError,
)
from sync.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    public_from_raw_b64,
    public_key_id,
    public_raw_b64,
)

__all__ = [
    "GENESIS",
    "ROTATION_KIND",
    "RECORD_SIG_CONTEXT",
    "ChainState",
    "ChainVerifier",
    "KeySource",
    "RecordError",
    "check_shape",
    "make_record",
    "parse_rotation",
    "record_hash",
    "rotation_body",
    "verify_chain",
    "verify_record",
]

GENESIS = "0" * 64
ROTATION_KIND = "key.rotated"
RECORD_SIG_CONTEXT = b"onestop-record-v1\n"
RECORD_KEYS = frozenset({"node", "seq", "prev", "event", "hash", "sig", "key_id"})
EVENT_KEYS = ("at", "kind", "entity", "entity_id", "body")

# The trusted key(s) for the start of a chain: the key itself, a {key_id: key} mapping, or
# a lookup function key_id -> key (None when unknown).
KeySource = (
    Ed25519PublicKey | Mapping[str, Ed25519PublicKey] | Callable[[str], Ed25519PublicKey | None]
)


def record_hash(node: str, seq: int, prev: str, event: Mapping[str, Any]) -> str:
    return sha256_hex(canonical({"node": node, "seq": seq, "prev": prev, "event": event}))


def rotation_body(new_public_key: Ed25519PublicKey) -> dict[str, str]:
    """Body for a ``key.rotated`` event announcing ``new_public_key``."""
    return {"public_key": public_raw_b64(new_public_key), "key_id": public_key_id(new_public_key)}


def parse_rotation(event: Mapping[str, Any], seq: int | None = None) -> Ed25519PublicKey:
    """The new public key announced by a ``key.rotated`` event (``bad_shape`` if malformed)."""
    body = event.get("body")
    if not isinstance(body, Mapping):
        raise RecordError(BAD_SHAPE, "key.rotated body must be an object", seq)
    try:
        new = public_from_raw_b64(body.get("public_key"))  # type: ignore[arg-type]
    except ValueError as e:
        raise RecordError(
            BAD_SHAPE, f"key.rotated public_key is not a raw Ed25519 key: {e}", seq
        ) from None
    if body.get("key_id") != public_key_id(new):
        raise RecordError(BAD_SHAPE, "key.rotated key_id does not match its public_key", seq)
    return new


def _event_fields(event: Mapping[str, Any], seq: int) -> dict[str, Any]:
    missing = [k for k in EVENT_KEYS if k not in event]
    if missing:
        raise RecordError(BAD_SHAPE, f"event lacks {', '.join(missing)}", seq)
    ev = {k: event[k] for k in EVENT_KEYS}
    ev["entity_id"] = str(ev["entity_id"])
    for k in ("at", "kind", "entity"):
        if not isinstance(ev[k], str):
            raise RecordError(BAD_SHAPE, f"event {k} must be a string", seq)
    if not isinstance(ev["body"], Mapping):
        raise RecordError(BAD_SHAPE, "event body must be a JSON object", seq)
    try:  # normalise to exactly what a receiver parses back from JSON
        normalised: dict[str, Any] = json.loads(canonical(ev))
    except ValueError as e:
        raise RecordError(
            BAD_SHAPE, f"event is not representable as canonical JSON: {e}", seq
        ) from None
    return normalised


def make_record(
    node_code: str, event: Mapping[str, Any], prev_hash: str, private_key: Ed25519PrivateKey
) -> dict[str, Any]:
    """Sign one node event (``seq``, ``at``, ``kind``, ``entity``, ``entity_id``, ``body``)."""
    seq = event.get("seq")
    if type(seq) is not int or seq < 1:
        raise RecordError(BAD_SHAPE, f"event seq must be a positive integer, got {seq!r}")
    if not isinstance(node_code, str) or not node_code:
        raise RecordError(BAD_SHAPE, "node code must be a non-empty string", seq)
    if not is_sha256_hex(prev_hash):
        raise RecordError(BAD_SHAPE, "prev hash must be 64 lowercase hex characters", seq)
    ev = _event_fields(event, seq)
    if ev["kind"] == ROTATION_KIND:
        parse_rotation(ev, seq)
    h = record_hash(node_code, seq, prev_hash, ev)
    sig = private_key.sign(RECORD_SIG_CONTEXT + bytes.fromhex(h))
    return {
        "node": node_code, "seq": seq, "prev": prev_hash, "event": ev,
        "hash": h, "sig": b64encode(sig), "key_id": public_key_id(private_key.public_key()),
    }  # fmt: skip


def check_shape(record: object) -> int:
    """Check field names and types; return the record's seq or raise ``bad_shape``."""
    if not isinstance(record, Mapping):
        raise RecordError(BAD_SHAPE, "record must be a JSON object")
    seq = record.get("seq")
    if type(seq) is not int or seq < 1:
        raise RecordError(BAD_SHAPE, f"seq must be a positive integer, got {seq!r}")
    if set(record) != RECORD_KEYS:
        missing, extra = sorted(RECORD_KEYS - set(record)), sorted(set(record) - RECORD_KEYS)
        raise RecordError(
            BAD_SHAPE, f"record fields wrong: missing {missing}, unexpected {extra}", seq
        )
    for k in ("node", "key_id", "sig"):
        if not isinstance(record[k], str) or not record[k]:
            raise RecordError(BAD_SHAPE, f"{k} must be a non-empty string", seq)
    for k in ("prev", "hash"):
        if not is_sha256_hex(record[k]):
            raise RecordError(BAD_SHAPE, f"{k} must be 64 lowercase hex characters", seq)
    ev = record["event"]
    if not isinstance(ev, Mapping) or set(ev) != set(EVENT_KEYS):
        raise RecordError(
            BAD_SHAPE, f"event must be an object with exactly {list(EVENT_KEYS)}", seq
        )
    for k in ("at", "kind", "entity", "entity_id"):
        if not isinstance(ev[k], str):
            raise RecordError(BAD_SHAPE, f"event {k} must be a string", seq)
    if not isinstance(ev["body"], Mapping):
        raise RecordError(BAD_SHAPE, "event body must be an object", seq)
    return seq


def verify_record(
    record: Mapping[str, Any],
    public_key: Ed25519PublicKey,
    expected_prev: str | None,
    *,
    node: str | None = None,
    expected_seq: int | None = None,
) -> None:
    """Verify one record; raise :class:`RecordError` (checks: shape, node, hash, signature, chain).

    ``expected_prev`` None skips the link check; ``node``/``expected_seq`` are optional checks.
    """
    seq = check_shape(record)
    if node is not None and record["node"] != node:
        raise RecordError(
            WRONG_NODE, f"record is from node {record['node']!r}, expected {node!r}", seq
        )
    try:
        h = record_hash(record["node"], seq, record["prev"], record["event"])
    except ValueError as e:
        raise RecordError(BAD_SHAPE, f"record is not canonical JSON: {e}", seq) from None
    if h != record["hash"]:
        raise RecordError(BAD_HASH, "content does not match its hash (record altered)", seq)
    kid = public_key_id(public_key)
    if record["key_id"] != kid:
        raise RecordError(
            BAD_SIGNATURE, f"signed with key {record['key_id']}, expected key {kid}", seq
        )
    try:
        sig = b64decode(record["sig"])
        public_key.verify(sig, RECORD_SIG_CONTEXT + bytes.fromhex(h))
    except (ValueError, InvalidSignature):
        raise RecordError(BAD_SIGNATURE, f"signature does not verify with key {kid}", seq) from None
    if expected_prev is not None and record["prev"] != expected_prev:
        raise RecordError(BROKEN_CHAIN, "prev does not match the preceding record's hash", seq)
    if expected_seq is not None and seq != expected_seq:
        raise RecordError(BROKEN_CHAIN, f"expected seq {expected_seq}", seq)
    if record["event"]["kind"] == ROTATION_KIND:
        parse_rotation(record["event"], seq)


@dataclass(frozen=True)
class ChainState:
    """Where a verified chain ends: resume verification from here with the current key."""

    node: str | None
    seq: int
    head: str
    key: Ed25519PublicKey | None


class ChainVerifier:
    """Stateful, record-by-record chain verification that follows key rotations."""

    def __init__(
        self, keys: KeySource, *, node: str | None = None, prev: str = GENESIS, seq: int = 0
    ) -> None:
        self._keys = keys
        self.node, self.seq, self.head = node, seq, prev
        self.key = keys if isinstance(keys, Ed25519PublicKey) else None
        # (tree size from which the key is current, key); sizes count records, i.e. seq.
        self.history: list[tuple[int, Ed25519PublicKey]] = [(seq, self.key)] if self.key else []

    def lookup(self, key_id: str) -> Ed25519PublicKey | None:
        """Resolve a key id through the trusted key source (start of chain only)."""
        keys = self._keys
        if isinstance(keys, Ed25519PublicKey):
            return keys if public_key_id(keys) == key_id else None
        if isinstance(keys, Mapping):
            return keys.get(key_id)
        return keys(key_id)

    def check(self, record: Mapping[str, Any]) -> None:
        """Verify the next record and advance, or raise :class:`RecordError` and stay put."""
        seq = check_shape(record)
        key = self.key or self.lookup(record["key_id"])
        if key is None:
            raise RecordError(BAD_SIGNATURE, f"unknown key {record['key_id']}", seq)
        verify_record(record, key, self.head, node=self.node, expected_seq=self.seq + 1)
        if self.key is None:
            self.key = key
            self.history.append((self.seq, key))
        self.node, self.seq, self.head = record["node"], seq, record["hash"]
        if record["event"]["kind"] == ROTATION_KIND:
            self.key = parse_rotation(record["event"], seq)
            self.history.append((seq, self.key))

    def skip(self, record: object) -> None:
        """Move past a record that failed :meth:`check`, so later records can still be judged."""
        if isinstance(record, Mapping):
            seq, h, node = record.get("seq"), record.get("hash"), record.get("node")
            self.seq = seq if type(seq) is int else self.seq + 1
            self.head = h if is_sha256_hex(h) else self.head
            if self.node is None and isinstance(node, str):
                self.node = node
        else:
            self.seq += 1

    def key_for_size(self, tree_size: int) -> Ed25519PublicKey | None:
        """The key current once ``tree_size`` records are in the log (signs its checkpoint)."""
        found = None
        for size, key in self.history:
            if size <= tree_size:
                found = key
        return found

    def state(self) -> ChainState:
        return ChainState(self.node, self.seq, self.head, self.key)


def verify_chain(
    records: Iterable[Mapping[str, Any]],
    keys: KeySource,
    *,
    node: str | None = None,
    prev: str = GENESIS,
    seq: int = 0,
) -> ChainState:
    """Verify records in order, following key rotations; raise on the first bad record.

    ``keys`` says which key the first record must be signed by.  ``prev``/``seq`` are the head
    already verified (defaults: empty log).  Returns the state to resume from.
    """
    verifier = ChainVerifier(keys, node=node, prev=prev, seq=seq)
    for record in records:
        verifier.check(record)
    return verifier.state()
