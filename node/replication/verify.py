"""``onestop verify --data DIR``: audit a node's signed log offline.

Reads ``DIR/node.db`` read-only and checks every record (hash, signature, chain, key
rotations), every stored checkpoint (signature and Merkle root) with
:func:`sync.verify.verify_log`, trusting only the public keys in DIR (``node.pub`` and those
kept after rotations or a re-key) and, for ``node.rekeyed`` records, ``DIR/hub.pub``; and the
hub's receipts (signature with ``DIR/hub.pub``, and that the record the hub acknowledged is
the one in the log).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from node import config as cfgm
from node import signer as signerm
from sync.keys import Ed25519PublicKey, KeyFileError, load_public, public_key_id
from sync.receipts import ReceiptError, verify_receipt
from sync.verify import verify_log

MAX_SHOWN = 50


def _connect_ro(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _receipt_problems(
    conn: sqlite3.Connection, data_dir: Path, code: str, size: int
) -> tuple[int, list[str]]:

    rows = conn.execute(
        "SELECT receipt FROM receipts WHERE node = ? ORDER BY seq", [code]
    ).fetchall()
    if not rows:
        return 0, []
    hub_pub_path = data_dir / signerm.HUB_PUB
    if not hub_pub_path.exists():
        return len(rows), []

    hub_pub = load_public(hub_pub_path)
    problems = []
    for (text,) in rows:
        receipt: dict[str, Any] = json.loads(text)
        try:
            verify_receipt(receipt, hub_pub)
        except ReceiptError as exc:
            problems.append(f"receipt seq {receipt.get('seq')}: {exc}")
            continue
        seq = int(receipt["seq"])
        if seq > size:
            problems.append(
                f"receipt seq {seq}: the hub acknowledged {seq} records but the log "
                f"ends at {size} (rolled back?)"
            )
        elif seq and signerm.hash_at(conn, seq) != receipt["hash"]:
            problems.append(
                f"receipt seq {seq}: the hub acknowledged another record at this "
                "seq (log rewritten or forked)"
            )
    return len(rows), problems


def verify_node(data_dir: Path) -> int:
    """Verify the node in ``data_dir``; print a report; 0 when everything holds, else 1."""
    data_dir = Path(data_dir)
    db_path = data_dir / "node.db"
    if not db_path.exists():
        print(f"error: {db_path} not found (is {data_dir} a node's data directory?)")
        return 1
    keys = signerm.known_public_keys(data_dir)
    if not keys:
        print(f"error: no node public key in {data_dir} (node.pub)")
        return 1
    try:
        conn = _connect_ro(db_path)
    except sqlite3.Error as exc:
        print(f"error: cannot open {db_path}: {exc}")
        return 1
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'node.code'").fetchone()
        code = str(row[0]) if row else ""
        if not code:
            code = cfgm.load(data_dir).code
        records = signerm.load_records(conn, code=code)
        checkpoints = signerm.all_checkpoints(conn, code)
        try:
            hub_key: Ed25519PublicKey | None = load_public(data_dir / signerm.HUB_PUB)
        except KeyFileError:  # no hub key: a node.rekeyed record is then a problem
            hub_key = None
        report = verify_log(code, records, checkpoints, keys, hub_key=hub_key)
        problems = list(report.problems)
        try:
            current = public_key_id(load_public(data_dir / f"{signerm.KEY_NAME}.pub"))
        except KeyFileError as exc:
            current = None
            problems.append(str(exc))
        want = signerm.expected_key_id(conn) if records else None
        if current and want and want != current:
            problems.append(f"the log continues with key {want} but node.pub is key {current}")
        n_receipts, receipt_problems = _receipt_problems(conn, data_dir, code, len(records))
        problems += receipt_problems
    except sqlite3.Error as exc:
        print(f"error: cannot read {db_path}: {exc}")
        return 1
    finally:
        conn.close()
    head = records[-1]["hash"] if records else signerm.GENESIS
    print(
        f"node {code}: {report.records} records, {report.checkpoints} checkpoints, "
        f"{n_receipts} hub receipts"
    )
    print(f"head: seq {len(records)} {head}")
    if not problems:
        print("OK: every signature, link, checkpoint and receipt verifies")
        return 0
    print(f"FAILED: {len(problems)} problem(s)")
    for p in problems[:MAX_SHOWN]:
        print(f"  {p}")
    if len(problems) > MAX_SHOWN:
        print(f"  ... and {len(problems) - MAX_SHOWN} more")
    return 1
