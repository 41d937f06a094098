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

Re-keying (the old key lost): a :data:`~sync.rekey.REKEY_KIND` record signed with the NEW
key, carrying the hub's signed authorisation of it (:mod:`sync.rekey`); a verifier given the
hub's key accepts the change only where the authorisation names this node, the current key,
the record's key, seq and ``prev``.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from sync.canonical import (
    INT_MAX,
    b64decode,
    b64encode,
    canonical,
    encode_str,
    is_plain,
    is_sha256_hex,
    sha256_hex,
)
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
from sync.rekey import REKEY_KIND, check_rekey, parse_authorisation

__all__ = [
    "GENESIS",
    "REKEY_KIND",
    "ROTATION_KIND",
    "RECORD_SIG_CONTEXT",
    "ChainState",
    "ChainVerifier",
    "KeySource",
    "RecordError",
    "SignatureResults",
    "check_shape",
    "make_record",
    "parse_rotation",
    "record_hash",
    "rotation_body",
    "verify_chain",
    "verify_record",
    "serve_signatures",
    "verify_signatures",
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


EVENT_KEYSET = frozenset(EVENT_KEYS)

# Signature checks done ahead of the chain walk (in parallel, by :func:`verify_signatures`):
# ``(public key, sig as sent (base64), hash hex) -> True/False``, or None when that signature
# was not checked ahead (it is then verified on the spot).
SignatureResults = Callable[[Ed25519PublicKey, str, str], bool | None]


def _tail(node: str, prev: str, seq: int) -> bytes:
    """``,"node":…,"prev":…,"seq":…}``: what follows ``"event"`` in a record's canonical JSON."""
    return (
        ',"node":' + encode_str(node) + ',"prev":' + encode_str(prev) + ',"seq":' + str(seq) + "}"
    ).encode("utf-8")


def record_bytes(
    node: str, seq: int, prev: str, event: Mapping[str, Any]
) -> tuple[bytes, bytes | None]:
    """The RFC 8785 canonical JSON of ``{"node", "seq", "prev", "event"}`` (what a record's
    hash is taken of) and, as a by-product, the canonical JSON of ``event["body"]`` (None when
    not produced).  The body is canonicalised once and the rest, fixed ASCII keys in JCS order
    around JSON strings and an integer, is put around it; anything unusual (not exactly the
    five event fields as strings and a body, an integer beyond JSON's, text that is not UTF-8)
    is left to :func:`sync.canonical.canonical` of the whole, raising as it does."""
    if (
        type(event) is dict
        and event.keys() == EVENT_KEYSET
        and type(node) is str
        and type(prev) is str
        and type(seq) is int
        and -INT_MAX <= seq <= INT_MAX
    ):
        at, kind, entity, eid = event["at"], event["kind"], event["entity"], event["entity_id"]
        if type(at) is str and type(kind) is str and type(entity) is str and type(eid) is str:
            try:
                body = canonical(event["body"])
                head = ('{"event":{"at":' + encode_str(at) + ',"body":').encode("utf-8")
                mid = (
                    ',"entity":' + encode_str(entity) + ',"entity_id":' + encode_str(eid)
                    + ',"kind":' + encode_str(kind) + "}"
                ).encode("utf-8")  # fmt: skip
                return head + body + mid + _tail(node, prev, seq), body
            except ValueError:  # not canonical JSON (or not UTF-8): the general path says why
                pass
    return canonical({"node": node, "seq": seq, "prev": prev, "event": event}), None


def record_hash(node: str, seq: int, prev: str, event: Mapping[str, Any]) -> str:
    return sha256_hex(record_bytes(node, seq, prev, event)[0])


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


def _event_fields(event: Mapping[str, Any], seq: int) -> tuple[dict[str, Any], bytes]:
    """The event's five fields as a receiver parses them back, and their canonical JSON."""
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
        raw = canonical(ev)
        normalised: dict[str, Any] = json.loads(raw)
    except ValueError as e:
        raise RecordError(
            BAD_SHAPE, f"event is not representable as canonical JSON: {e}", seq
        ) from None
    return normalised, raw


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
    ev, raw = _event_fields(event, seq)
    if ev["kind"] == ROTATION_KIND:
        parse_rotation(ev, seq)
    elif ev["kind"] == REKEY_KIND:
        parse_authorisation(ev["body"], seq)
    # When the parsed-back body holds only strings, safe integers, booleans, null, lists and
    # objects, its canonical JSON is ``raw`` again, so the record's is ``raw`` in the fixed
    # frame.  Otherwise (floats: 1e20 comes back as an integer JSON cannot carry exactly, ...)
    # the general path hashes the parsed-back event, raising as it always did.
    try:
        if type(node_code) is not str or seq > INT_MAX or not is_plain(ev["body"]):
            raise ValueError("not the plain case")
        digest = hashlib.sha256(b'{"event":' + raw + _tail(node_code, prev_hash, seq)).digest()
        h = digest.hex()
    except ValueError:
        h = record_hash(node_code, seq, prev_hash, ev)
        digest = bytes.fromhex(h)
    sig = private_key.sign(RECORD_SIG_CONTEXT + digest)
    return {
        "node": node_code, "seq": seq, "prev": prev_hash, "event": ev,
        "hash": h, "sig": b64encode(sig), "key_id": _signing_key_id(private_key),
    }  # fmt: skip


_last_signing_key: tuple[Ed25519PrivateKey, str] | None = None


def _signing_key_id(private_key: Ed25519PrivateKey) -> str:
    """``public_key_id`` of the key's public half (the last key's id is kept)."""
    global _last_signing_key
    last = _last_signing_key
    if last is None or last[0] is not private_key:
        last = _last_signing_key = (private_key, public_key_id(private_key.public_key()))
    return last[1]


def check_shape(record: object) -> int:
    """Check field names and types; return the record's seq or raise ``bad_shape``."""
    if not isinstance(record, Mapping):
        raise RecordError(BAD_SHAPE, "record must be a JSON object")
    seq = record.get("seq")
    if type(seq) is not int or seq < 1:
        raise RecordError(BAD_SHAPE, f"seq must be a positive integer, got {seq!r}")
    if record.keys() != RECORD_KEYS:
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
    if not isinstance(ev, Mapping) or ev.keys() != EVENT_KEYSET:
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
    signatures: SignatureResults | None = None,
) -> bytes:
    """Verify one record; raise :class:`RecordError` (checks: shape, node, hash, signature, chain).

    ``expected_prev`` None skips the link check; ``node``/``expected_seq`` are optional checks.
    ``signatures`` may hold this record's signature check, done ahead (see
    :data:`SignatureResults`).  Returns the canonical JSON of the event body, computed on the
    way (the hub stores it).
    """
    seq = check_shape(record)
    return _verify_shaped(record, seq, public_key, expected_prev, node, expected_seq, signatures)


def _verify_shaped(
    record: Mapping[str, Any],
    seq: int,
    public_key: Ed25519PublicKey,
    expected_prev: str | None,
    node: str | None,
    expected_seq: int | None,
    signatures: SignatureResults | None,
    kid: str | None = None,
) -> bytes:
    """:func:`verify_record` of a record :func:`check_shape` passed (``kid``: the key's id)."""
    if node is not None and record["node"] != node:
        raise RecordError(
            WRONG_NODE, f"record is from node {record['node']!r}, expected {node!r}", seq
        )
    event = record["event"]
    try:
        raw, body = record_bytes(record["node"], seq, record["prev"], event)
        if body is None:
            body = canonical(event["body"])
    except ValueError as e:
        raise RecordError(BAD_SHAPE, f"record is not canonical JSON: {e}", seq) from None
    digest = hashlib.sha256(raw).digest()
    h = digest.hex()
    if h != record["hash"]:
        raise RecordError(BAD_HASH, "content does not match its hash (record altered)", seq)
    kid = kid or public_key_id(public_key)
    if record["key_id"] != kid:
        raise RecordError(
            BAD_SIGNATURE, f"signed with key {record['key_id']}, expected key {kid}", seq
        )
    ok = signatures(public_key, record["sig"], h) if signatures is not None else None
    if ok is None:
        try:
            public_key.verify(b64decode(record["sig"]), RECORD_SIG_CONTEXT + digest)
            ok = True
        except (ValueError, InvalidSignature):
            ok = False
    if not ok:
        raise RecordError(BAD_SIGNATURE, f"signature does not verify with key {kid}", seq)
    if expected_prev is not None and record["prev"] != expected_prev:
        raise RecordError(BROKEN_CHAIN, "prev does not match the preceding record's hash", seq)
    if expected_seq is not None and seq != expected_seq:
        raise RecordError(BROKEN_CHAIN, f"expected seq {expected_seq}", seq)
    if event["kind"] == ROTATION_KIND:
        parse_rotation(event, seq)
    elif event["kind"] == REKEY_KIND:
        parse_authorisation(event["body"], seq)
    return body


def verify_signatures(items: Sequence[tuple[bytes, str, str]]) -> list[bool]:
    """Check record signatures ``(raw Ed25519 public key, sig base64, hash hex)``: does each
    ``sig`` verify over ``RECORD_SIG_CONTEXT + hash`` with the key?  The Ed25519 work of
    :func:`verify_record`, for a process pool (``cryptography`` keeps the GIL while it
    verifies); a malformed key, signature or hash is False."""
    keys: dict[bytes, Ed25519PublicKey | None] = {}
    out: list[bool] = []
    for raw_key, sig, h in items:
        if raw_key not in keys:
            try:
                keys[raw_key] = Ed25519PublicKey.from_public_bytes(raw_key)
            except ValueError:
                keys[raw_key] = None
        key = keys[raw_key]
        if key is None:
            out.append(False)
            continue
        try:
            key.verify(b64decode(sig), RECORD_SIG_CONTEXT + bytes.fromhex(h))
            out.append(True)
        except (ValueError, TypeError, InvalidSignature):
            out.append(False)
    return out


def serve_signatures(conn: Any) -> None:
    """A signature-checking process (``hub.worker``): answer each ``(job, items)`` received
    on ``conn`` (a ``multiprocessing`` connection) with ``(job, results)``, one byte per item
    (1: verifies, see :func:`verify_signatures`), until the parent closes it."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    while True:
        try:
            job, items = conn.recv()
        except (EOFError, OSError):
            return
        conn.send((job, bytes(verify_signatures(items))))


@dataclass(frozen=True)
class ChainState:
    """Where a verified chain ends: resume verification from here with the current key."""

    node: str | None
    seq: int
    head: str
    key: Ed25519PublicKey | None


class ChainVerifier:
    """Stateful, record-by-record chain verification that follows key rotations.

    ``hub_key``: the hub's Ed25519 key, which signs re-key authorisations; without it a
    ``node.rekeyed`` record is refused (``bad_signature``)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        node: str | None = None,
        prev: str = GENESIS,
        seq: int = 0,
        hub_key: Ed25519PublicKey | None = None,
    ) -> None:
        self._keys = keys
        self.hub_key = hub_key
        self.node, self.seq, self.head = node, seq, prev
        self.key = keys if isinstance(keys, Ed25519PublicKey) else None
        # (tree size from which the key is current, key); sizes count records, i.e. seq.
        self.history: list[tuple[int, Ed25519PublicKey]] = [(seq, self.key)] if self.key else []
        # Signature checks done ahead, if any (see SignatureResults).
        self.signatures: SignatureResults | None = None
        self._kid: tuple[Ed25519PublicKey, str] | None = None  # (key, its id): computed once

    def lookup(self, key_id: str) -> Ed25519PublicKey | None:
        """Resolve a key id through the trusted key source (start of chain only)."""
        keys = self._keys
        if isinstance(keys, Ed25519PublicKey):
            return keys if public_key_id(keys) == key_id else None
        if isinstance(keys, Mapping):
            return keys.get(key_id)
        return keys(key_id)

    def check(self, record: Mapping[str, Any], *, shape_checked: bool = False) -> bytes:
        """Verify the next record and advance, or raise :class:`RecordError` and stay put.

        Returns the canonical JSON of the record's event body (see :func:`verify_record`).
        ``shape_checked``: the caller's :func:`check_shape` just passed (not done again)."""
        seq = record["seq"] if shape_checked else check_shape(record)
        if record["event"]["kind"] == REKEY_KIND:
            return self._check_rekey(record, seq)
        key = self.key or self.lookup(record["key_id"])
        if key is None:
            raise RecordError(BAD_SIGNATURE, f"unknown key {record['key_id']}", seq)
        if self._kid is None or self._kid[0] is not key:
            self._kid = (key, public_key_id(key))
        body = _verify_shaped(
            record, seq, key, self.head, self.node, self.seq + 1, self.signatures, self._kid[1]
        )
        if self.key is None:
            self.key = key
            self.history.append((self.seq, key))
        self.node, self.seq, self.head = record["node"], seq, record["hash"]
        if record["event"]["kind"] == ROTATION_KIND:
            self.key = parse_rotation(record["event"], seq)
            self.history.append((seq, self.key))
        return body

    def _check_rekey(self, record: Mapping[str, Any], seq: int) -> bytes:
        """:meth:`check` of a ``node.rekeyed`` record: signed with the key its authorisation
        names, which the hub signed for this node, the current key, this seq and ``prev``."""
        auth = parse_authorisation(record["event"]["body"], seq)
        old = self.key or self.lookup(auth.old_key_id)
        body = _verify_shaped(
            record, seq, auth.new_key, self.head, self.node, self.seq + 1, self.signatures,
            auth.new_key_id,
        )  # fmt: skip
        check_rekey(record, self.hub_key, old, seq)
        if self.key is None and old is not None:
            self.history.append((self.seq, old))
        self.node, self.seq, self.head = record["node"], seq, record["hash"]
        self.key = auth.new_key
        self.history.append((seq, self.key))
        return body

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
    hub_key: Ed25519PublicKey | None = None,
) -> ChainState:
    """Verify records in order, following key rotations; raise on the first bad record.

    ``keys`` says which key the first record must be signed by.  ``prev``/``seq`` are the head
    already verified (defaults: empty log); ``hub_key`` verifies re-key authorisations.
    Returns the state to resume from.
    """
    verifier = ChainVerifier(keys, node=node, prev=prev, seq=seq, hub_key=hub_key)
    for record in records:
        verifier.check(record)
    return verifier.state()
