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

from node import config as cfgm
from node import db as dbm
from node import litestream as lsm
from node import pii as piim
from node import projection
from node import recovery as recoverym
from node import signer as signerm
from node.replication.readback import RecoveryError, fetch_records, insert_record
from onestop.clock import system_now
from onestop.errors import CliError
from sync import sealing
from sync.chain import ChainVerifier, RecordError


@dataclass
class Context:
    """What re-applying the recovered records uses: the node's local secret (``pii``) to
    encrypt personal data into the tables, and its recovery key, while it is still on the
    node, to open the numbers the records carry sealed."""

    cfg: cfgm.NodeConfig
    pii: Any = None
    recovery: sealing.X25519PrivateKey | None = None


@dataclass
class RestoreReport:
    restored_seq: int = 0
    restored_hash: str = ""
    hub_ack_seq: int | None = None
    recovered: int = 0
    projected: Counter[str] = field(default_factory=Counter)
    log_only: Counter[str] = field(default_factory=Counter)
    log_only_entities: list[str] = field(default_factory=list)
    failed_projections: list[str] = field(default_factory=list)
    moved_aside: Path | None = None
    hub_error: str = ""

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
    p.set_defaults(func=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    report = restore(Path(args.data), force=args.force, use_hub=not args.no_hub)
    print_report(report)
    return 1 if report.hub_error or report.failed_projections else 0


def print_report(r: RestoreReport) -> None:
    if r.moved_aside:
        print(f"moved the old database aside to {r.moved_aside}")
    print(f"restored from the replica: log up to seq {r.restored_seq}")
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
        print(f"in the log only (re-enter in the tables if needed): {kinds}")
        shown = r.log_only_entities[:20]
        print(f"  entities: {', '.join(shown)}" + (" ..." if len(r.log_only_entities) > 20 else ""))
    for msg in r.failed_projections:
        print(f"not re-applied: {msg}")
    print(
        "next: start the node and `onestop node replicate`; check with `onestop verify --data DIR`"
    )


# ---- restore -----------------------------------------------------------------------------


def restore(data: Path, *, force: bool = False, use_hub: bool = True) -> RestoreReport:
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    ls_cfg = lsm.config_path(data)
    if not ls_cfg.exists():
        raise CliError(
            f"{ls_cfg} not found: nothing says where the replica is",
            hint=f"onestop node replica-config --data {data} [--replica-path DIR]",
        )
    db_path = lsm.db_path_of(ls_cfg)
    report = RestoreReport()
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
    tmp = db_path.with_name(db_path.name + ".restoring")
    for p in _db_files(tmp):
        p.unlink(missing_ok=True)
    run = subprocess.run(
        [lsm.binary(), "restore", "-config", str(ls_cfg), "-o", str(tmp), str(db_path)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0 or not tmp.exists():
        raise CliError(
            f"litestream restore failed: {(run.stderr or run.stdout).strip()[-800:]}",
            hint="check the replica settings in DIR/litestream.yml",
        )
    check = _integrity(tmp)
    if check != "ok":
        raise CliError(
            f"the restored database fails PRAGMA integrity_check: {check}",
            hint=f"the file is kept as {tmp}; try an older point with litestream",
        )
    tmp.replace(db_path)
    for p in _db_files(tmp)[1:]:
        p.unlink(missing_ok=True)

    db = dbm.connect(db_path)
    try:
        dbm.migrate(db)
        conn = db.conn
        report.restored_seq = signerm.log_size(conn)
        report.restored_hash = signerm.hash_at(conn, report.restored_seq) or ""
        if use_hub and cfg.hub_url:
            try:
                recover_from_hub(cfg, conn, report)
            except RecoveryError as exc:
                report.hub_error = str(exc)
        elif use_hub:
            report.hub_error = "no hub_url configured: nothing recovered beyond the replica"
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise CliError(f"integrity_check after recovery: {check}")
    finally:
        db.conn.close()
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


def recover_from_hub(cfg: cfgm.NodeConfig, conn: sqlite3.Connection, report: RestoreReport) -> None:
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
    ctx = Context(cfg, recovery=recoverym.private_key(Path(cfg.data_dir)))
    try:
        ctx.pii = piim.load(Path(cfg.data_dir))
    except OSError:
        ctx.pii = None
    conn.execute("BEGIN IMMEDIATE")
    try:
        for rec in records:
            insert_record(conn, rec)
        if ack_seq is not None and ack_hash and signerm.hash_at(conn, int(ack_seq)) == ack_hash:
            conn.execute(
                "UPDATE sync_state SET hub_ack_seq = ?, hub_ack_hash = ?", [int(ack_seq), ack_hash]
            )
        for rec in records:
            project(conn, rec, ctx, report)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    report.recovered = len(records)


# ---- re-applying events to the current tables ------------------------------------------


def project(
    conn: sqlite3.Connection, rec: dict[str, Any], ctx: Context, report: RestoreReport
) -> None:
    """Apply one recovered record to the tables by its projector (:mod:`node.projection`);
    a kind that changes no table stays in the log, and a record that fails is rolled back
    alone and reported."""
    ev = rec["event"]
    if ev["kind"] not in projection.PROJECTORS:
        report.log_only[ev["kind"]] += 1
        ent = f"{ev['entity']} {ev['entity_id']}"
        if ent not in report.log_only_entities:
            report.log_only_entities.append(ent)
        return
    conn.execute("SAVEPOINT project")
    try:
        projection.apply(
            conn, ev, projection.Context(pii=ctx.pii, recovery=ctx.recovery, replay=True)
        )
    except (sqlite3.Error, KeyError, ValueError, TypeError) as exc:
        conn.execute("ROLLBACK TO project")
        report.failed_projections.append(f"seq {rec['seq']} {ev['kind']}: {exc}")
    else:
        report.projected[ev["kind"]] += 1
    conn.execute("RELEASE project")
