"""A node set up again under its code with a new key adopts the hub's copy of its old log.

The way back for a node whose signing key is lost with it (no replica, no key bundle: see
``docs/sync-protocol.md``, *Re-keying*):

1. ``onestop node init --data DIR --code CODE ... --hub-url URL --hub-pubkey hub.pub`` makes
   a new node under the same code, with a new key pair (``DIR/node.pub``).
2. A hub administrator authorises that key: ``onestop hub rekey --node CODE --pubkey node.pub
   --by NAME`` (a hub-signed authorisation, :mod:`sync.rekey`).
3. :func:`adopt_hub_log` (this module) fetches every record the hub holds for the node, with
   requests signed by the new key; checks the authorisation with ``DIR/hub.pub`` (it must
   name this node and this node's key); verifies the records from seq 1 (hashes, chain,
   signatures with the keys the hub lists, following rotations) up to the head the
   authorisation names, so the hub's signature vouches for all of them; writes them into
   ``events`` unchanged; applies them to the tables (:func:`node.rebuild.replay`); and appends
   the ``node.rekeyed`` record carrying the authorisation, signed with the new key, at the
   authorisation's ``from_seq``.  The log then continues under the new key, and the push
   sends that record and what follows.

The new node's own events from its init (the seeded catalog's ``catalog.imported``), which
the hub never saw, are set aside first (kept in ``DIR/replaced-TIME/events.json``): the log
must start with the hub's records.  Anything else already in the new node's log, or a node
that has pushed, is refused.  The old keys' public halves are written as
``DIR/node-<key id>.pub`` so ``onestop verify --data DIR`` checks the old records too.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization as ser

from node import config as cfgm
from node import pii as piim
from node import projection, rebuild
from node import signer as signerm
from node.replication.readback import RecoveryError, fetch_records, insert_record
from node.replication.state import set_state
from onestop.clock import system_now, utcnow
from onestop.errors import CliError
from sync.chain import ChainVerifier, RecordError, make_record
from sync.keys import Ed25519PublicKey, public_from_raw_b64, public_key_id
from sync.rekey import REKEY_KIND, Authorisation, rekey_event, verify_authorisation
from sync.sealing import X25519PrivateKey

#: Kinds ``onestop node init`` writes: a new node's own events, set aside to adopt a log.
INIT_KINDS = frozenset({"catalog.imported"})


class RekeyError(CliError):
    """The hub's log cannot be adopted here; the message says why, ``hint`` what to do."""


@dataclass
class RekeyReport:
    fetched: int = 0  # records fetched from the hub (and adopted)
    last_seq: int = 0  # where the log ends now
    rekey_seq: int | None = None  # the node.rekeyed record appended (None: the hub had it)
    old_key_id: str = ""
    new_key_id: str = ""
    hub_ack_seq: int = 0
    set_aside: int = 0  # the new node's own events replaced (its init's)
    set_aside_to: Path | None = None
    applied: Counter[str] = field(default_factory=Counter)
    log_only: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _hint(cfg: cfgm.NodeConfig) -> str:
    return (f"on the hub: onestop hub rekey --data HUBDIR --node {cfg.code} --pubkey "
            f"{Path(cfg.data_dir) / 'node.pub'} --by NAME")  # fmt: skip


def fetch_all(cfg: cfgm.NodeConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every record the hub holds for this node (requests signed with ``DIR/node.key``) and
    the last page (its ``ack_seq``, ``ack_hash``, ``keys`` and ``rekey``)."""
    records: list[dict[str, Any]] = []
    after = 0
    while True:
        try:
            page = fetch_records(cfg, after)
        except RecoveryError as exc:
            raise RekeyError(f"cannot read the hub's copy of node {cfg.code}: {exc}",
                             hint=_hint(cfg)) from None  # fmt: skip
        batch = page.get("records") or []
        records += batch
        if not batch or not page.get("more"):
            return records, page
        after = int(batch[-1]["seq"])


def _hub_keys(page: dict[str, Any]) -> tuple[Ed25519PublicKey | None, dict[str, Ed25519PublicKey]]:
    """The node's enrolled key and every key the hub lists for it (each id checked)."""
    first: Ed25519PublicKey | None = None
    out: dict[str, Ed25519PublicKey] = {}
    for k in page.get("keys") or []:
        try:
            pub = public_from_raw_b64(k["public_key"])
        except (KeyError, TypeError, ValueError):
            continue
        if public_key_id(pub) != k.get("key_id"):
            continue
        out[k["key_id"]] = pub
        if k.get("source") == "enrolled" and first is None:
            first = pub
    return first, out


def _own_events(conn: sqlite3.Connection, cfg: cfgm.NodeConfig) -> list[dict[str, Any]]:
    """The new node's own records, when they may be set aside (else :class:`RekeyError`)."""
    own = signerm.load_records(conn, code=cfg.code)
    kinds = sorted({r["event"]["kind"] for r in own} - INIT_KINDS)
    pushed = conn.execute("SELECT hub_ack_seq FROM sync_state").fetchone()
    receipts = conn.execute("SELECT count(*) FROM receipts").fetchone()[0]
    checkpoints = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    if kinds or (pushed and pushed[0]) or receipts or checkpoints:
        what = f"events of kinds {', '.join(kinds)}" if kinds else "a log the hub has seen"
        raise RekeyError(
            f"{cfg.data_dir} already holds {what}: only a node fresh from `onestop node init` "
            "adopts the hub's log",
            hint=f"set the node up again in a new directory: onestop node init --data NEWDIR "
            f"--code {cfg.code} ...",
        )
    return own


def _set_aside(conn: sqlite3.Connection) -> None:
    """Empty the log (inside the caller's transaction; the append-only trigger is put back)."""
    trigger = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_delete'"
    ).fetchone()
    if trigger:
        conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events")
    if trigger:
        conn.execute(trigger[0])


def _apply(
    conn: sqlite3.Connection,
    cfg: cfgm.NodeConfig,
    records: list[dict[str, Any]],
    ctx: projection.Context,
    report: RekeyReport,
) -> None:
    """Apply the adopted records to the tables in order, with :func:`node.rebuild.replay`."""
    rep = rebuild.RebuildReport()
    rebuild.replay(conn, ({**rec["event"], "seq": rec["seq"]} for rec in records), ctx, rep)
    report.applied = rep.applied
    report.log_only = rep.log_only + rep.unknown
    report.failures = rep.failures


def _keep_public_keys(data: Path, keys: list[Ed25519PublicKey], own: str) -> None:
    """``DIR/node-<id>.pub`` for the old keys (what ``onestop verify --data`` trusts)."""
    for key in keys:
        kid = public_key_id(key)
        path = data / f"{signerm.KEY_NAME}-{kid}.pub"
        if kid != own and not path.exists():
            pem = key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
            path.write_bytes(pem)


def adopt_hub_log(data: Path, *, recovery_key: X25519PrivateKey | None = None) -> RekeyReport:
    """Adopt the hub's copy of this node's log under the node's new key (module docstring).

    ``data``: the new node's data directory (``onestop node init`` under the old code, with
    ``hub_url`` and ``DIR/hub.pub``); ``recovery_key``: the old node's recovery key, if it
    survived (a key bundle), to bring personal data back into the tables.  Raises
    :class:`RekeyError` (a :class:`~onestop.errors.CliError`) when the hub has not authorised
    this node's key, the records or the authorisation do not verify, or ``data`` is no fresh
    node.  Run it with the node server stopped.
    """
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise RekeyError(str(exc)) from None
    if not cfg.hub_url:
        raise RekeyError(f"{data}: no hub_url: nowhere to adopt the log from",
                         hint=f"set hub_url in {data / 'node.toml'}")  # fmt: skip
    hub_pub = signerm.hub_public_key(cfg)
    if hub_pub is None:
        raise RekeyError(f"{data / signerm.HUB_PUB} not found: the hub's authorisation cannot "
                         "be checked", hint="copy the hub's hub.pub there")  # fmt: skip
    db = signerm.open_node_db(cfg)
    conn = db.conn
    try:
        signer = signerm.current_signer(conn)
        assert signer is not None
        own = _own_events(conn, cfg)
        records, page = fetch_all(cfg)
        if not page.get("rekey"):
            raise RekeyError(f"the hub holds no re-key authorisation for node {cfg.code}",
                             hint=_hint(cfg))  # fmt: skip
        try:
            auth = verify_authorisation(page["rekey"], hub_pub)
        except RecordError as exc:
            raise RekeyError(f"the hub's re-key authorisation does not verify: {exc}") from None
        if auth.node != cfg.code or auth.new_key_id != signer.key_id:
            raise RekeyError(
                f"the hub authorised key {auth.new_key_id} for node {auth.node}; this is node "
                f"{cfg.code} with key {signer.key_id}",
                hint=_hint(cfg),
            )
        verifier, rekey_record = _verify(cfg, records, page, auth, hub_pub, signer.key)
        report = RekeyReport(
            fetched=len(records), old_key_id=auth.old_key_id, new_key_id=auth.new_key_id,
            set_aside=len(own),
        )  # fmt: skip
        if own:
            stamp = system_now().strftime("%Y%m%dT%H%M%SZ")
            aside = Path(cfg.data_dir) / f"replaced-{stamp}"
            aside.mkdir(exist_ok=True)
            (aside / "events.json").write_text(json.dumps(own, ensure_ascii=False, indent=1))
            report.set_aside_to = aside
        try:
            pii: piim.Pii | None = piim.load(Path(cfg.data_dir))
        except OSError:
            pii = None
        ctx = projection.Context(pii=pii, recovery=recovery_key, replay=True)
        keys = [k for _, k in verifier.history]
        conn.execute("BEGIN IMMEDIATE")
        try:
            _set_aside(conn)
            for rec in records:
                insert_record(conn, rec)
            _apply(conn, cfg, records, ctx, report)
            if rekey_record is not None:
                insert_record(conn, rekey_record)
                report.rekey_seq = int(rekey_record["seq"])
            ack_seq, ack_hash = page.get("ack_seq"), page.get("ack_hash")
            if type(ack_seq) is int and signerm.hash_at(conn, ack_seq) == ack_hash:
                set_state(conn, hub_ack_seq=ack_seq, hub_ack_hash=ack_hash)
                report.hub_ack_seq = ack_seq
            _keep_public_keys(Path(cfg.data_dir), keys, signer.key_id)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        report.last_seq = signerm.log_size(conn)
        return report
    finally:
        conn.close()


def _verify(
    cfg: cfgm.NodeConfig,
    records: list[dict[str, Any]],
    page: dict[str, Any],
    auth: Authorisation,
    hub_pub: Ed25519PublicKey,
    new_key: Any,
) -> tuple[ChainVerifier, dict[str, Any] | None]:
    """Verify the hub's records from seq 1, and the ``node.rekeyed`` record that continues
    them (made here and signed with ``new_key``, or None when the hub's log holds it)."""
    first, listed = _hub_keys(page)
    verifier = ChainVerifier(first or listed, node=cfg.code, hub_key=hub_pub)
    for rec in records:
        try:
            verifier.check(rec)
        except (RecordError, KeyError, TypeError) as exc:
            raise RekeyError(
                f"the hub's record {rec.get('seq') if isinstance(rec, dict) else '?'} of node "
                f"{cfg.code} does not verify: {exc}; nothing adopted"
            ) from None
    held = verifier.key is not None and public_key_id(verifier.key) == auth.new_key_id
    if verifier.seq >= auth.from_seq:
        if held:  # the hub's log already carries this node's node.rekeyed record
            return verifier, None
        raise RekeyError(f"the hub's log of node {cfg.code} goes on past seq "
                         f"{auth.from_seq} under another key; nothing adopted")  # fmt: skip
    event = {**rekey_event(auth.signed, utcnow()), "seq": auth.from_seq}
    record = make_record(cfg.code, event, verifier.head, new_key)
    try:
        verifier.check(record)
    except RecordError as exc:
        raise RekeyError(
            f"the hub's log of node {cfg.code} (up to seq {verifier.seq}) does not lead to the "
            f"re-key its authorisation describes: {exc}; nothing adopted",
            hint=_hint(cfg),
        ) from None
    assert record["event"]["kind"] == REKEY_KIND
    return verifier, record
