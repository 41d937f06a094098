"""``onestop node rebuild --data DIR``: the tables again, from the signed log alone.

The log is copied as it is into a fresh database (``--out FILE``, else a temporary file that
is removed afterwards), every event is applied in order by its projector
(:mod:`node.projection`), and every projected table is compared row by row with the live
database.  Encrypted personal data (``*_enc``) is compared by its clear value, when the
recovery key can open the events' sealed copies (``DIR/recovery.key`` before the key bundle
was exported, or ``--recovery-key FILE``); without it those columns are left out of the
comparison and the report says so.  Exit status 0: the rebuild matches; 1: it does not.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from node import config as cfgm
from node import db as dbm
from node import pii as piim
from node import projection
from node import recovery as recoverym
from onestop.errors import CliError
from sync import sealing

#: How many differing rows the report shows per table.
SHOWN = 5


@dataclass
class TableDiff:
    table: str
    live: int = 0
    rebuilt: int = 0
    missing: list[str] = field(default_factory=list)  # keys live only
    extra: list[str] = field(default_factory=list)  # keys rebuilt only
    differing: list[str] = field(default_factory=list)  # "key: column live != rebuilt"

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.differing)


@dataclass
class RebuildReport:
    events: int = 0
    applied: Counter[str] = field(default_factory=Counter)
    log_only: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)  # kinds with no projector
    failures: list[str] = field(default_factory=list)
    tables: list[TableDiff] = field(default_factory=list)
    personal_compared: bool = False

    @property
    def equal(self) -> bool:
        return not self.failures and all(t.equal for t in self.tables)


def event_of(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    seq, at, kind, entity, entity_id, body = tuple(row)[:6]
    return {
        "seq": int(seq),
        "at": at,
        "kind": kind,
        "entity": entity,
        "entity_id": entity_id,
        "body": json.loads(body) if isinstance(body, str) else body,
    }


def log_events(conn: sqlite3.Connection, after: int = 0) -> Iterator[dict[str, Any]]:
    cur = conn.execute(
        "SELECT seq, at, kind, entity, entity_id, body FROM events WHERE seq > ? ORDER BY seq",
        [after],
    )
    for row in cur:
        yield event_of(row)


def replay(
    conn: sqlite3.Connection,
    evs: Iterable[dict[str, Any]],
    ctx: projection.Context,
    report: RebuildReport,
) -> None:
    """Apply ``evs`` in order; an event that fails is rolled back alone and reported."""
    for ev in evs:
        report.events += 1
        kind = str(ev["kind"])
        if kind not in projection.PROJECTORS:
            (report.log_only if kind in projection.LOG_ONLY else report.unknown)[kind] += 1
            continue
        conn.execute("SAVEPOINT replay")
        try:
            projection.apply(conn, ev, ctx)
        except (sqlite3.Error, KeyError, ValueError, TypeError) as exc:
            conn.execute("ROLLBACK TO replay")
            report.failures.append(f"seq {ev['seq']} {kind} {ev['entity_id']}: {exc}")
        else:
            report.applied[kind] += 1
        conn.execute("RELEASE replay")


def rebuild_into(
    source: sqlite3.Connection,
    out: Path,
    pii: piim.Pii | None,
    recovery: sealing.X25519PrivateKey | None,
) -> RebuildReport:
    """Build ``out`` from the log of ``source`` and compare it with ``source``'s tables."""
    db = dbm.connect(out)
    try:
        dbm.migrate(db)
        conn = db.conn
        report = RebuildReport(personal_compared=recovery is not None and pii is not None)
        conn.execute("PRAGMA foreign_keys = OFF")  # the log is copied before it is applied
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM meta")
            for key, value in source.execute("SELECT key, value FROM meta").fetchall():
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", [key, value])
            cols = "seq, at, kind, entity, entity_id, body, prev, hash, sig, key_id"
            for row in source.execute(f"SELECT {cols} FROM events ORDER BY seq"):
                conn.execute(f"INSERT INTO events ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
            ctx = projection.Context(pii=pii, recovery=recovery, replay=True)
            replay(conn, log_events(conn), ctx, report)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        conn.execute("PRAGMA foreign_keys = ON")
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        for b in broken[:SHOWN]:
            report.failures.append(f"foreign key: {b[0]} row {b[1]} points at a missing {b[2]}")
        for table in projection.TABLES:
            report.tables.append(compare(source, conn, table, pii, report.personal_compared))
        return report
    finally:
        db.conn.close()


def _key_columns(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[str]]:
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    cols = [str(r[1]) for r in info]
    pk = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]]
    return cols, pk or cols


def _plain(pii: piim.Pii | None, value: Any) -> Any:
    if not value or pii is None:
        return value
    try:
        return pii.decrypt(str(value))
    except (InvalidToken, ValueError):
        return "<unreadable>"


def compare(
    live: sqlite3.Connection,
    rebuilt: sqlite3.Connection,
    table: str,
    pii: piim.Pii | None,
    personal: bool,
) -> TableDiff:
    cols, pk = _key_columns(rebuilt, table)
    live_cols, _ = _key_columns(live, table)
    cols = [c for c in cols if c in live_cols]
    enc = [c for c in cols if c.endswith("_enc")]
    shown = [c for c in cols if personal or c not in enc]
    sql = f"SELECT {', '.join(cols)} FROM {table} ORDER BY {', '.join(pk)}"

    def keyed(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for row in conn.execute(sql).fetchall():
            rec = dict(zip(cols, tuple(row), strict=True))
            out["/".join(str(rec[k]) for k in pk)] = rec
        return out

    a, b = keyed(live), keyed(rebuilt)
    diff = TableDiff(table, live=len(a), rebuilt=len(b))
    diff.missing = [k for k in a if k not in b]
    diff.extra = [k for k in b if k not in a]
    for key in a.keys() & b.keys():
        for col in shown:
            x, y = a[key][col], b[key][col]
            if col in enc:
                x, y = _plain(pii, x), _plain(pii, y)
                if x != y:
                    diff.differing.append(f"{key}: {col} differs (personal data, not shown)")
                continue
            if x != y:
                diff.differing.append(f"{key}: {col} live {x!r} != rebuilt {y!r}")
    diff.differing.sort()
    return diff


def recovery_key_for(data: Path, path: str = "") -> sealing.X25519PrivateKey | None:
    if path:
        try:
            return sealing.load_seal_private(Path(path))
        except (OSError, ValueError) as exc:
            raise CliError(f"--recovery-key {path}: {exc}") from None
    return recoverym.private_key(data)


def run(data: Path, out: str = "", recovery_key: str = "") -> RebuildReport:
    try:
        cfg = cfgm.load(data)
    except cfgm.ConfigError as exc:
        raise CliError(str(exc)) from None
    db_path = cfg.db_path
    if not db_path.exists():
        raise CliError(f"{db_path} not found", hint=f"onestop node restore --data {data}")
    try:
        pii: piim.Pii | None = piim.load(data)
    except OSError:
        pii = None
    key = recovery_key_for(data, recovery_key)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if out:
            target = Path(out)
            if target.exists():
                raise CliError(f"--out {target} exists; rebuild writes a fresh database")
            return rebuild_into(source, target, pii, key)
        with tempfile.TemporaryDirectory(prefix="rebuild-", dir=data) as tmp:
            return rebuild_into(source, Path(tmp) / "rebuilt.db", pii, key)
    finally:
        source.close()


def print_report(r: RebuildReport) -> None:
    applied = sum(r.applied.values())
    print(f"events: {r.events} ({applied} applied, {sum(r.log_only.values())} log only)")
    for kind, n in sorted(r.unknown.items()):
        print(f"  no projector for {kind}: {n}")
    for f in r.failures[:20]:
        print(f"  failed: {f}")
    for t in r.tables:
        mark = "=" if t.equal else "≠"
        line = f"{mark} {t.table}: {t.live} live, {t.rebuilt} rebuilt"
        if not t.equal:
            line += f" ({len(t.missing)} missing, {len(t.extra)} extra, {len(t.differing)} differ)"
        print(line)
        for k in t.missing[:SHOWN]:
            print(f"    missing {k}")
        for k in t.extra[:SHOWN]:
            print(f"    extra {k}")
        for d in t.differing[:SHOWN]:
            print(f"    {d}")
    if not r.personal_compared:
        print(
            "personal data (*_enc) not compared: no recovery key here "
            "(pass --recovery-key FILE, from the key bundle)"
        )
    print("rebuild matches the live tables" if r.equal else "rebuild DIFFERS from the live tables")


def register(nsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = nsub.add_parser(
        "rebuild", help="rebuild every table from the signed log and compare with the live ones"
    )
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--out", default="", metavar="FILE", help="keep the rebuilt database here")
    p.add_argument(
        "--recovery-key",
        default="",
        metavar="FILE",
        help="the node's recovery key (from the key bundle) to compare personal data",
    )
    p.set_defaults(func=cmd_rebuild)


def cmd_rebuild(args: argparse.Namespace) -> int:
    report = run(Path(args.data), args.out, args.recovery_key)
    print_report(report)
    return 0 if report.equal else 1
