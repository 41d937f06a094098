"""Writing a batch's verified records: the ``records`` rows, the keys ``key.rotated`` and
``node.rekeyed`` records announce, the person links of ``case.opened`` records with a sealed
ID number (opened with the hub's X25519 key; only the hub's keyed hash and the mask are kept)
and the dashboard rollups, all inside the batch's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlite_utils

from hub import rekeys, rollups
from hub.identity import HubIdentity
from hub.ingest.schemas import CASE_OPENED, SEALED_FIELD
from onestop.identity import mask_id
from sync.canonical import canonical
from sync.chain import ROTATION_KIND, parse_rotation
from sync.keys import public_key_id, public_raw_b64
from sync.rekey import REKEY_KIND, parse_authorisation
from sync.sealing import SealError, unseal


def insert_records(
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
        elif ev["kind"] == REKEY_KIND:
            auth = parse_authorisation(ev["body"], r["seq"])
            rekeys.applied(db, code, r["seq"], auth.new_key_id, public_raw_b64(auth.new_key), now)
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


def _record_event_json(record: Mapping[str, Any]) -> str:
    return canonical(record["event"]["body"]).decode("utf-8")
