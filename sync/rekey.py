"""Re-keying a node whose signing key is lost: the hub's signed authorisation of a new key.

A node's log changes keys by a ``key.rotated`` record signed with the old key
(:mod:`sync.chain`).  When the old key is gone, nothing can sign that record; instead a hub
administrator authorises a new key for the same node code (``onestop hub rekey``).  The
authorisation is::

    {"node": "370102001",                  the node code
     "old_key_id": "…", "new_key_id": "…", the key the hub held as current, the new one
     "new_public_key": "…",                the new Ed25519 key, raw, standard base64
     "from_seq": 141,                      the hub's head seq for the node + 1
     "prev": "…",                          the hub's head hash (64 zeros for an empty log)
     "at": "…", "by": "…", "reason": "…",  when, by whom, why
     "hub": "…"}                           the hub key id that signs it

signed by the hub's Ed25519 key (the one that signs receipts) over
``b"onestop-rekey-v1\\n" + canonical(authorisation)``.  :func:`make_authorisation` gives the
signed form ``{"authorisation": {…}, "sig": "base64"}``.

That signed form is the body of a ``node.rekeyed`` event (:data:`REKEY_KIND`, entity
``node``, entity id the node code): the first record under the new key, at seq ``from_seq``
with ``prev`` the old head hash, **signed with the new key**.  :class:`sync.chain.ChainVerifier`
accepts the key change there only when :func:`check_rekey` holds: the authorisation verifies
with the hub key the verifier is given and names the record's node, the verifier's current
key as the old one, the record's key as the new one, the record's seq and its ``prev``.
Because ``prev`` is the hub-signed head hash, the authorisation also vouches for every record
before it (each record's hash covers its predecessor's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from sync.canonical import b64decode, b64encode, canonical, is_sha256_hex
from sync.errors import BAD_SHAPE, BAD_SIGNATURE, BROKEN_CHAIN, WRONG_NODE, RecordError
from sync.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    public_from_raw_b64,
    public_key_id,
    public_raw_b64,
)

REKEY_KIND = "node.rekeyed"
REKEY_SIG_CONTEXT = b"onestop-rekey-v1\n"
AUTH_KEYS = frozenset(
    {"node", "old_key_id", "new_key_id", "new_public_key", "from_seq", "prev", "at", "by",
     "reason", "hub"}
)  # fmt: skip
SIGNED_KEYS = frozenset({"authorisation", "sig"})
MAX_TEXT = 500
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Authorisation:
    """A parsed authorisation (see the module docstring); ``signed`` is its signed form."""

    node: str
    old_key_id: str
    new_key_id: str
    new_key: Ed25519PublicKey
    from_seq: int
    prev: str
    at: str
    by: str
    reason: str
    hub: str
    signed: dict[str, Any]

    @property
    def sig(self) -> str:
        return str(self.signed["sig"])


def _unsigned(
    hub_key_id: str, node: str, old_key_id: str, new_public_key: Ed25519PublicKey,
    from_seq: int, prev: str, at: str, by: str, reason: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "node": node, "old_key_id": old_key_id, "new_key_id": public_key_id(new_public_key),
        "new_public_key": public_raw_b64(new_public_key), "from_seq": from_seq, "prev": prev, "at": at,
        "by": by, "reason": reason, "hub": hub_key_id,
    }  # fmt: skip


def make_authorisation(
    hub_key: Ed25519PrivateKey,
    node: str,
    old_key_id: str,
    new_public_key: Ed25519PublicKey,
    from_seq: int,
    prev: str,
    at: str,
    by: str,
    reason: str = "",
) -> dict[str, Any]:
    """The hub-signed authorisation ``{"authorisation": {…}, "sig": …}``; ``ValueError`` for
    values that cannot make a valid one."""
    auth = _unsigned(public_key_id(hub_key.public_key()), node, old_key_id, new_public_key,
                     from_seq, prev, at, by, reason)  # fmt: skip
    _check_fields(auth)
    sig = hub_key.sign(REKEY_SIG_CONTEXT + canonical(auth))
    return {"authorisation": auth, "sig": b64encode(sig)}


def _check_fields(auth: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming what is wrong with an authorisation's fields."""
    if set(auth) != AUTH_KEYS:
        missing, extra = sorted(AUTH_KEYS - set(auth)), sorted(set(auth) - AUTH_KEYS)
        raise ValueError(f"authorisation fields wrong: missing {missing}, unexpected {extra}")
    for k in ("node", "at", "by"):
        if not isinstance(auth[k], str) or not auth[k].strip():
            raise ValueError(f"authorisation {k} must be a non-empty string")
    for k in ("node", "at", "by", "reason"):
        if not isinstance(auth[k], str) or len(auth[k]) > MAX_TEXT:
            raise ValueError(f"authorisation {k} must be a string of at most {MAX_TEXT}")
    for k in ("old_key_id", "new_key_id", "hub"):
        if not isinstance(auth[k], str) or not _KEY_ID.fullmatch(auth[k]):
            raise ValueError(f"authorisation {k} must be a key id (16 lowercase hex)")
    if type(auth["from_seq"]) is not int or not 1 <= auth["from_seq"] <= 2**53 - 1:
        raise ValueError("authorisation from_seq must be an integer >= 1")
    if not is_sha256_hex(auth["prev"]):
        raise ValueError("authorisation prev must be 64 lowercase hex characters")
    try:
        new = public_from_raw_b64(auth["new_public_key"])
    except ValueError as e:
        raise ValueError(f"authorisation new_public_key is not a raw Ed25519 key: {e}") from None
    if public_key_id(new) != auth["new_key_id"]:
        raise ValueError("authorisation new_key_id does not match its new_public_key")
    if auth["new_key_id"] == auth["old_key_id"]:
        raise ValueError("authorisation replaces a key by itself")


def parse_authorisation(signed: object, seq: int | None = None) -> Authorisation:
    """The authorisation in a signed form (shape only: the signature is not checked);
    :class:`RecordError` ``bad_shape`` if malformed."""
    if not isinstance(signed, Mapping) or set(signed) != SIGNED_KEYS:
        raise RecordError(
            BAD_SHAPE, f"{REKEY_KIND} body must be exactly {sorted(SIGNED_KEYS)}", seq
        )
    auth = signed["authorisation"]
    if not isinstance(auth, Mapping):
        raise RecordError(BAD_SHAPE, "the authorisation must be an object", seq)
    try:
        _check_fields(auth)
        b64decode(signed["sig"])
    except ValueError as e:
        raise RecordError(BAD_SHAPE, str(e), seq) from None
    return Authorisation(
        node=auth["node"], old_key_id=auth["old_key_id"], new_key_id=auth["new_key_id"],
        new_key=public_from_raw_b64(auth["new_public_key"]), from_seq=auth["from_seq"],
        prev=auth["prev"], at=auth["at"], by=auth["by"], reason=auth["reason"],
        hub=auth["hub"], signed={"authorisation": dict(auth), "sig": signed["sig"]},
    )  # fmt: skip


def verify_authorisation(
    signed: object, hub_public: Ed25519PublicKey, seq: int | None = None
) -> Authorisation:
    """:func:`parse_authorisation`, and the hub's signature checked with ``hub_public``
    (:class:`RecordError` ``bad_signature`` otherwise)."""
    auth = parse_authorisation(signed, seq)
    kid = public_key_id(hub_public)
    if auth.hub != kid:
        raise RecordError(
            BAD_SIGNATURE, f"authorisation signed by hub key {auth.hub}, expected {kid}", seq
        )
    try:
        hub_public.verify(
            b64decode(auth.sig), REKEY_SIG_CONTEXT + canonical(auth.signed["authorisation"])
        )
    except (ValueError, InvalidSignature):
        raise RecordError(
            BAD_SIGNATURE, "the hub's signature on the authorisation does not verify", seq
        ) from None
    return auth


def rekey_event(signed: Mapping[str, Any], at: str) -> dict[str, Any]:
    """The ``node.rekeyed`` event (``at``, ``kind``, ``entity``, ``entity_id``, ``body``)
    carrying a signed authorisation; its record goes at ``from_seq`` (see module docstring)."""
    auth = parse_authorisation(signed)
    return {"at": at, "kind": REKEY_KIND, "entity": "node", "entity_id": auth.node,
            "body": auth.signed}  # fmt: skip


def check_rekey(
    record: Mapping[str, Any],
    hub_public: Ed25519PublicKey | None,
    old_key: Ed25519PublicKey | None,
    seq: int,
) -> Authorisation:
    """The authorisation of a ``node.rekeyed`` record, checked against the record and the
    chain (the record's own hash and signature are the caller's: :mod:`sync.chain`).

    ``old_key``: the key the chain holds as current before the record.  Raises
    :class:`RecordError`: ``bad_shape`` (malformed), ``bad_signature`` (no hub key, a hub
    signature that fails, another old or new key), ``wrong_node``, ``broken_chain`` (another
    seq or ``prev``).
    """
    event = record["event"]
    if hub_public is None:
        raise RecordError(
            BAD_SIGNATURE, f"{REKEY_KIND}: no hub key to verify its authorisation with", seq
        )
    auth = verify_authorisation(event["body"], hub_public, seq)
    if auth.node != record["node"]:
        raise RecordError(
            WRONG_NODE, f"authorisation is for node {auth.node}, record of {record['node']}", seq
        )
    if event.get("entity") != "node" or event.get("entity_id") != record["node"]:
        raise RecordError(BAD_SHAPE, f"{REKEY_KIND} must have entity node and the node code", seq)
    held = public_key_id(old_key) if old_key is not None else None
    if auth.old_key_id != held:
        raise RecordError(
            BAD_SIGNATURE, f"authorisation replaces key {auth.old_key_id}, the log's is {held}", seq
        )
    if auth.new_key_id != record["key_id"]:
        raise RecordError(
            BAD_SIGNATURE,
            f"authorisation is for key {auth.new_key_id}, record signed with {record['key_id']}",
            seq,
        )
    if auth.from_seq != seq:
        raise RecordError(BROKEN_CHAIN, f"authorisation is for seq {auth.from_seq}", seq)
    if auth.prev != record["prev"]:
        raise RecordError(
            BROKEN_CHAIN, f"authorisation follows {auth.prev[:16]}…, the record another", seq
        )
    return auth
