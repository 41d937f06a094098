"""``onestop node restore --data DIR``: bring a node back from its Litestream replica.

1. ``litestream restore`` (config ``DIR/litestream.yml``) into ``DIR/node.db.restoring``; an
   existing ``node.db`` (and its ``-wal``/``-shm`` and Litestream's local state) is refused,
   or moved aside into ``DIR/replaced-<time>/`` with ``--force``.
2. ``PRAGMA integrity_check`` must answer ``ok``; then the file becomes ``node.db``.
3. The replica ends a second or two before the loss (the RPO).  Records the node had already
   pushed are not lost with it: the hub holds them.  Restore asks the hub for this node's
   records after the restored head (``GET /api/v1/nodes/{code}/records?after=N``, a request
   signed with the node key), verifies every one (shape, hash, signature, chain from the
   restored head, key rotations) with :mod:`sync.chain`, and appends them to ``events``
   unchanged.  The log then ends where the hub's does, so the hub sees no rollback and the
   push resumes.
4. The recovered events are applied to the current tables by the same projectors that
   applied them when they were written (:mod:`node.projection`); kinds that have none stay
   in the log only, and the report lists them so staff can re-enter what the tables miss.
   A recovered ticket keeps its status-page token (``ticket.issued`` carries it; only a
   record from before it did gets a new one) and its masks and keyed hash.  The full ID and
   phone numbers travel only sealed to the node's recovery key (:mod:`node.recovery`): while
   ``DIR/recovery.key`` is still on the node they come back into the tables, else those
   columns stay empty.  No number is issued twice all the same: the node takes its next
   ticket number, case number and rating id beyond those of the log (:mod:`node.numbers`).

Run it with the node server and ``onestop node replicate`` stopped; start both afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization as ser

from node import bundle as bundlem
from node import config as cfgm
from node import db as dbm
from node import events, projection, rebuild
from node import litestream as lsm
from node import pii as piim
from node import recovery as recoverym
from node import signer as signerm
from node.replication import rekey as rekeym
from node.replication.readback import RecoveryError, fetch_records, insert_record
from onestop.clock import system_now
from onestop.errors import CliError
from sync import sealing
from sync.chain import ChainVerifier, RecordError


@dataclass
class RestoreReport:
    restored_seq: int = 0
    restored_hash: str = ""
    hub_ack_seq: int | None = None
    recovered: int = 0
    projected: Counter[str] = field(default_factory=Counter)
    log_only: Counter[str] = field(default_factory=Counter)
    failed_projections: list[str] = field(default_factory=list)
    moved_aside: Path | None = None
    hub_error: str = ""
    source: str = "replica"  # replica | hub | hub, new key
    bundle_imported: bool = False
    personal_data: bool = False  # sealed ID/phone numbers opened with the recovery key
    restored_event: int | None = None  # seq of the node.restored event

    @property
    def final_seq(self) -> int:
        return self.restored_seq + self.recovered


# ---- CLI ---------------------------------------------------------------------------------


def register_restore(nsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``onestop node restore`` (and ``replicate``/``replica-config`` from node.litestream)."""
    lsm.register_replicate(nsub)
    p = nsub.add_parser(
        "restore", help="restore node.db from its litestream replica and recover from the hub"
    )
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument(
        "--force",
        action="store_true",
        help="move an existing node.db aside (DIR/replaced-TIME/) and restore anyway",
    )
    p.add_argument(
        "--no-hub",
        action="store_true",
        help="only the replica: do not fetch the records the hub holds beyond it",
    )
    p.add_argument(
        "--key-bundle",
        default="",
        metavar="FILE",
        help="the node's key bundle (onestop node keys export): written into an empty DIR, "
        "and its recovery key brings back the personal data of records the replica lacks",
    )
    p.add_argument(
        "--passphrase-file",
        default="",
        metavar="FILE",
        help="the key bundle's passphrase (else ONESTOP_BUNDLE_PASSPHRASE)",
    )
    p.add_argument(
        "--rekeyed",
        action="store_true",
        help="the node key was lost: after `onestop node init --no-seed` under the same code "
        "and `onestop hub rekey`, take the whole log from the hub under the new key",
    )
    p.set_defaults(func=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    report = restore(
        Path(args.data),
        force=args.force,
        use_hub=not args.no_hub,
        key_bundle=args.key_bundle,
        passphrase_file=args.passphrase_file,
        rekeyed=args.rekeyed,
    )
    print_report(report)
    return 1 if report.hub_error or report.failed_projections else 0


def print_report(r: RestoreReport) -> None:
    if r.moved_aside:
        print(f"moved the old database aside to {r.moved_aside}")
    if r.bundle_imported:
        print("keys: written from the key bundle")
    if r.source == "replica":
        print(f"restored from the replica: log up to seq {r.restored_seq}")
    else:
        print(f"no replica: the log comes from the hub ({r.source})")
    if r.hub_error:
        print(f"hub: {r.hub_error}")
    elif r.hub_ack_seq is not None:
        print(
            f"hub holds up to seq {r.hub_ack_seq}: recovered {r.recovered} record(s), "
            f"log now ends at seq {r.final_seq}"
        )
    if r.projected:
        done = ", ".join(f"{k} {n}" for k, n in sorted(r.projected.items()))
        print(f"re-applied to the tables: {done}")
    if r.log_only:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r.log_only.items()))
        print(f"in the log only (they change no table): {kinds}")
    for msg in r.failed_projections:
        print(f"not re-applied: {msg}")
    if r.recovered:
        print(
            "personal data of the recovered records: "
            + (
                "restored with the recovery key"
                if r.personal_data
                else "masks only (give --key-bundle to bring the numbers back)"
            )
        )
    if r.restored_event is not None:
        print(f"signed node.restored at seq {r.restored_event}")
    if r.source == "hub, new key":
        print(
            "the node's keys are new: export them off this host, "
            "onestop node keys export --data DIR --out FILE"
        )
    print(
        "next: start the node and `onestop node replicate`; check with `onestop verify --data DIR`"
    )


# ---- restore -----------------------------------------------------------------------------


def restore(
    data: Path,
    *,
    force: bool = False,
    use_hub: bool = True,
    key_bundle: str = "",
    passphrase_file: str = "",
    rekeyed: bool = False,
) -> RestoreReport:
    """Bring the node in ``data`` back by whichever path its losses leave (module docs)."""
    report = RestoreReport()
    recovery = None
    if key_bundle:
        recovery = _from_bundle(data, Path(key_bundle), passphrase_file, report)
    if rekeyed:
        return _restore_rekeyed(data, recovery, report)
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(
            str(exc),
            hint=f"a lost node comes back from its key bundle: onestop node restore --data "
            f"{data} --key-bundle FILE",
        ) from None
    if recovery is None:
        recovery = recoverym.private_key(data)
    ls_cfg = lsm.config_path(data)
    if not ls_cfg.exists():
        lsm.init_config(data, cfg.db_path)  # as `node init` wrote it: the default replica
    db_path = lsm.db_path_of(ls_cfg)
    present = [p for p in _db_files(db_path) if p.exists()]
    if present and not force:
        raise CliError(
            f"{db_path} exists; restore never overwrites a database",
            hint=f"stop the node and litestream, then: onestop node restore --data {data} "
            "--force (the old files are moved aside, not deleted)",
        )
    stamp = system_now().strftime("%Y%m%dT%H%M%SZ")
    aside = data / f"replaced-{stamp}"
    meta = db_path.parent / f".{db_path.name}-litestream"
    for p in [*present, meta]:
        if p.exists():
            aside.mkdir(exist_ok=True)
            shutil.move(str(p), str(aside / p.name))
            if p in present:
                report.moved_aside = aside
    if not _from_replica(ls_cfg, db_path):
        if not (use_hub and cfg.hub_url):
            raise CliError(
                "the replica holds no copy of node.db, and without the hub there is nothing "
                "to restore from",
                hint="check the replica settings in DIR/litestream.yml, or set hub_url",
            )
        report.source = "hub"
    db = dbm.connect(db_path)
    try:
        dbm.migrate(db)
        conn = db.conn
        if report.source == "hub":
            _fresh_node(db, cfg)
        report.restored_seq = signerm.log_size(conn)
        report.restored_hash = signerm.hash_at(conn, report.restored_seq) or ""
        if use_hub and cfg.hub_url:
            try:
                recover_from_hub(cfg, conn, report, recovery)
            except RecoveryError as exc:
                report.hub_error = str(exc)
        elif use_hub:
            report.hub_error = "no hub_url configured: nothing recovered beyond the replica"
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise CliError(f"integrity_check after recovery: {check}")
    finally:
        db.conn.close()
    if report.source == "hub" and report.hub_error:
        for p in _db_files(db_path):  # nothing came back: leave no empty node behind
            p.unlink(missing_ok=True)
        raise CliError(f"no replica, and the hub: {report.hub_error}",
                       hint=f"when the hub is reachable: onestop node restore --data {data}")  # fmt: skip
    if not report.hub_error:
        _signed_restored(cfg, report)
    if report.bundle_imported:
        (data / recoverym.RECOVERY_KEY).unlink(missing_ok=True)  # it lives off the node
    return report


def _from_bundle(
    data: Path, path: Path, passphrase_file: str, report: RestoreReport
) -> sealing.X25519PrivateKey | None:
    """The bundle's recovery key; its files written into ``data`` when that holds no node."""
    passphrase = bundlem.read_passphrase(passphrase_file)
    if not (data / "node.toml").exists() and not (data / "node.key").exists():
        opened = bundlem.import_bundle(data, path, passphrase)
        report.bundle_imported = True
    else:
        try:
            opened = bundlem.open_bundle(path.read_bytes(), passphrase)
        except OSError as exc:
            raise CliError(f"cannot read --key-bundle {path}: {exc.strerror}") from None
    entry = opened.files.get(recoverym.RECOVERY_KEY)
    if entry is None:
        return None
    key = ser.load_pem_private_key(entry[1], None)
    if not isinstance(key, sealing.X25519PrivateKey):
        raise CliError(f"--key-bundle {path}: its recovery key is not an X25519 key")
    return key


def _from_replica(ls_cfg: Path, db_path: Path) -> bool:
    """``litestream restore`` into place, checked; False when the replica holds nothing."""
    tmp = db_path.with_name(db_path.name + ".restoring")
    for p in _db_files(tmp):
        p.unlink(missing_ok=True)
    run = subprocess.run(
        [lsm.binary(), "restore", "-if-replica-exists", "-config", str(ls_cfg), "-o", str(tmp),
         str(db_path)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if run.returncode != 0:
        raise CliError(
            f"litestream restore failed: {(run.stderr or run.stdout).strip()[-800:]}",
            hint="check the replica settings in DIR/litestream.yml",
        )
    if not tmp.exists():
        return False
    check = _integrity(tmp)
    if check != "ok":
        raise CliError(
            f"the restored database fails PRAGMA integrity_check: {check}",
            hint=f"the file is kept as {tmp}; try an older point with litestream",
        )
    tmp.replace(db_path)
    for p in _db_files(tmp)[1:]:
        p.unlink(missing_ok=True)
    return True


def _fresh_node(db: Any, cfg: cfgm.NodeConfig) -> None:
    """An empty node database of this node (as `node init` makes it, with no seed): every
    table then comes from the hub's copy of the log."""
    with dbm.tx(db):
        for k in ("code", "name", "level", "parent_code"):
            dbm.set_meta(db, f"node.{k}", getattr(cfg, k))


def _signed_restored(cfg: cfgm.NodeConfig, report: RestoreReport) -> None:
    """Append ``node.restored``: what came back from where, signed with the node key."""
    db = signerm.open_node_db(cfg)
    try:
        with dbm.tx(db) as conn:
            report.restored_event = events.append(
                conn, "node.restored", "node", cfg.code, restored_body(report)
            )
    finally:
        db.conn.close()


def restored_body(report: RestoreReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "replica_seq": report.restored_seq if report.source == "replica" else 0,
        "hub_ack_seq": report.hub_ack_seq,
        "recovered": report.recovered,
        "applied": sum(report.projected.values()),
        "failed": len(report.failed_projections),
        "personal_data": report.personal_data,
        "key_bundle": report.bundle_imported,
    }


def _restore_rekeyed(
    data: Path, recovery: sealing.X25519PrivateKey | None, report: RestoreReport
) -> RestoreReport:
    """Path (d): the node key is lost; the hub authorised a new one (``onestop hub rekey``)."""
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(
            str(exc),
            hint=f"first: onestop node init --data {data} --no-seed --code CODE ... (same code)",
        ) from None
    got = rekeym.adopt_hub_log(data, recovery_key=recovery)
    report.source = "hub, new key"
    report.recovered = got.fetched
    report.hub_ack_seq = got.hub_ack_seq
    report.projected = Counter(got.applied)
    report.log_only = Counter(got.log_only)
    report.failed_projections = list(got.failures)
    report.personal_data = recovery is not None
    _signed_restored(cfg, report)
    return report


def _db_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


# ---- recovery from the hub ---------------------------------------------------------------


def _start_key(conn: sqlite3.Connection, data_dir: Path) -> Any:
    """The key (or key lookup) the record after the restored head must be signed with."""

    known = signerm.known_public_keys(data_dir)
    want = signerm.expected_key_id(conn)
    if want is None:
        return known
    if want not in known:
        raise RecoveryError(
            f"the log continues with key {want}, whose public key is not in {data_dir}"
        )
    return known[want]


def recover_from_hub(
    cfg: cfgm.NodeConfig,
    conn: sqlite3.Connection,
    report: RestoreReport,
    recovery: sealing.X25519PrivateKey | None = None,
) -> None:
    """Append the hub's verified records after the restored head; re-apply them."""

    head_seq, head_hash = report.restored_seq, report.restored_hash or signerm.hash_at(conn, 0)
    verifier = ChainVerifier(
        _start_key(conn, Path(cfg.data_dir)), node=cfg.code, prev=str(head_hash), seq=head_seq
    )
    records: list[dict[str, Any]] = []
    after, ack_seq, ack_hash = head_seq, None, None
    while True:
        page = fetch_records(cfg, after)
        ack_seq, ack_hash = page.get("ack_seq"), page.get("ack_hash")
        batch = page.get("records") or []
        for rec in batch:
            try:
                verifier.check(rec)
            except RecordError as exc:
                raise RecoveryError(
                    f"the hub's record {rec.get('seq')} does not continue the restored log "
                    f"(seq {head_seq}): {exc}; nothing recovered"
                ) from None
            records.append(rec)
        if not batch or not page.get("more"):
            break
        after = int(batch[-1]["seq"])
    report.hub_ack_seq = int(ack_seq) if ack_seq is not None else None
    if report.hub_ack_seq is not None and report.hub_ack_seq < head_seq:
        # The hub is behind the replica: nothing to recover, the push sends it the rest.
        pass
    try:
        pii: piim.Pii | None = piim.load(Path(cfg.data_dir))
    except OSError:
        pii = None
    ctx = projection.Context(
        pii=pii, recovery=recovery or recoverym.private_key(Path(cfg.data_dir)), replay=True
    )
    report.personal_data = ctx.recovery is not None
    conn.execute("BEGIN IMMEDIATE")
    try:
        for rec in records:
            insert_record(conn, rec)
        if ack_seq is not None and ack_hash and signerm.hash_at(conn, int(ack_seq)) == ack_hash:
            conn.execute(
                "UPDATE sync_state SET hub_ack_seq = ?, hub_ack_hash = ?", [int(ack_seq), ack_hash]
            )
        apply_records(conn, records, ctx, report)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    report.recovered = len(records)


# ---- re-applying events to the current tables ------------------------------------------


def apply_records(
    conn: sqlite3.Connection,
    records: list[dict[str, Any]],
    ctx: projection.Context,
    report: RestoreReport,
) -> None:
    """Apply recovered records to the tables in order by their projectors
    (:func:`node.rebuild.replay`: a record that fails is rolled back alone and reported)."""
    rep = rebuild.RebuildReport()
    rebuild.replay(conn, ({**r["event"], "seq": r["seq"]} for r in records), ctx, rep)
    report.projected += rep.applied
    report.log_only += rep.log_only + rep.unknown
    report.failed_projections += rep.failures
