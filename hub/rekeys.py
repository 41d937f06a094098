"""Re-keying a node whose key is lost, the hub's side (``onestop hub rekey``).

:func:`authorise` writes a hub-signed authorisation (:mod:`sync.rekey`) of a new key for an
enrolled node: it replaces the key the hub holds as current, from the record after the hub's
head.  From then on the node's signed requests (read-back, pushes) are checked with the new
key only (:func:`request_keys`), and the next record the hub accepts for the node is the
``node.rekeyed`` record carrying exactly this authorisation (:mod:`hub.ingest.batch`); storing
it makes the new key current (``node_keys`` source ``rekeyed``, :func:`applied`).  A node
whose key was revoked (``onestop hub revoke``) comes back active with the new key.  A second
authorisation before the first was used supersedes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from hub import db as hubdb
from hub.identity import HubIdentity
from sync.keys import Ed25519PublicKey, public_from_raw_b64, public_key_id, public_raw_b64
from sync.rekey import Authorisation, make_authorisation, parse_authorisation


class RekeyError(ValueError):
    """The hub cannot authorise this re-key (the message says why, ``hint`` what to do)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Authorised:
    auth: Authorisation
    superseded: int  # earlier pending authorisations replaced
    reactivated: bool  # the node's key had been revoked


def authorise(
    db: sqlite_utils.Database,
    ident: HubIdentity,
    code: str,
    new_key: Ed25519PublicKey,
    by: str,
    reason: str,
    now: str,
) -> Authorised:
    """Authorise ``new_key`` for node ``code`` from the record after the hub's head (one
    transaction); :class:`RekeyError` when the node is unknown or the key already used."""
    new_id = public_key_id(new_key)
    with hubdb.tx(db):
        node = hubdb.one(db, "SELECT * FROM nodes WHERE code = ?", [code])
        if node is None:
            raise RekeyError(
                f"node {code} is not enrolled at this hub",
                hint=f"a node new to the hub is enrolled: onestop hub enroll --code {code}",
            )
        used = {r["key_id"] for r in hubdb.rows(
            db, "SELECT key_id FROM node_keys WHERE node = ?", [code])}  # fmt: skip
        if new_id in used:
            raise RekeyError(
                f"key {new_id} has already been a key of node {code}; a re-key needs a new key",
                hint="give the node.pub of the node set up again (onestop node init makes a "
                "new key pair)",
            )
        try:
            signed = make_authorisation(
                ident.signing_key, code, node["key_id"], new_key, int(node["ack_seq"]) + 1,
                node["ack_hash"], now, by, reason,
            )  # fmt: skip
        except ValueError as exc:
            raise RekeyError(str(exc)) from None
        auth = parse_authorisation(signed)
        superseded = db.execute(
            "UPDATE rekeys SET state = 'superseded' WHERE node = ? AND state = 'pending'", [code]
        ).rowcount
        db.execute(
            "INSERT INTO rekeys (node, old_key_id, new_key_id, new_key, from_seq, prev, at, by, "
            "reason, signed, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [code, auth.old_key_id, auth.new_key_id, public_raw_b64(new_key), auth.from_seq,
             auth.prev, now, by, reason, json.dumps(signed, sort_keys=True), auth.sig],
        )  # fmt: skip
        # The replaced key signs nothing more for this node.
        db.execute(
            "UPDATE node_keys SET revoked_at = ? WHERE node = ? AND key_id = ? "
            "AND revoked_at IS NULL",
            [now, code, auth.old_key_id],
        )
        reactivated = node["status"] != "active"
        if reactivated:
            db.execute(
                "UPDATE nodes SET status = 'active', revoked_at = NULL WHERE code = ?", [code]
            )
    return Authorised(auth, superseded, reactivated)


def pending(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    """The node's pending authorisation (its ``rekeys`` row), or None."""
    return hubdb.one(db, "SELECT * FROM rekeys WHERE node = ? AND state = 'pending'", [code])


def latest(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    """The node's newest authorisation that is not superseded, in its signed form (what the
    read-back hands a re-keyed node), or None."""
    row = hubdb.one(
        db,
        "SELECT signed FROM rekeys WHERE node = ? AND state != 'superseded' "
        "ORDER BY id DESC LIMIT 1",
        [code],
    )
    return json.loads(row["signed"]) if row else None


def request_keys(db: sqlite_utils.Database, code: str, current: str) -> list[Ed25519PublicKey]:
    """The keys that may sign the node's requests: the pending authorisation's new key while
    there is one (the replaced key no longer may), else ``current`` (raw base64)."""
    row = pending(db, code)
    return [public_from_raw_b64(row["new_key"] if row else current)]


def applied(db: sqlite_utils.Database, code: str, seq: int, key_id: str, pubkey: str,
            now: str) -> None:  # fmt: skip
    """The ``node.rekeyed`` record at ``seq`` is stored: its key is the node's current one
    (inside the batch's transaction)."""
    db.execute(
        "INSERT OR IGNORE INTO node_keys (node, key_id, pubkey, from_seq, source, added_at) "
        "VALUES (?, ?, ?, ?, 'rekeyed', ?)",
        [code, key_id, pubkey, seq, now],
    )
    db.execute("UPDATE nodes SET key_id = ?, cur_key = ? WHERE code = ?", [key_id, pubkey, code])
    db.execute(
        "UPDATE rekeys SET state = 'applied', applied_at = ? WHERE node = ? AND state = 'pending'"
        " AND new_key_id = ? AND from_seq = ?",
        [now, code, key_id, seq],
    )


def key_history(db: sqlite_utils.Database, code: str) -> list[dict[str, Any]]:
    """The node's keys as the read-back lists them: ``key_id``, ``public_key`` (raw base64),
    ``from_seq``, ``source``, oldest first."""
    return hubdb.rows(
        db,
        "SELECT key_id, pubkey AS public_key, from_seq, source FROM node_keys WHERE node = ? "
        "ORDER BY from_seq, rowid",
        [code],
    )
