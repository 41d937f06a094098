"""Nothing writes a projected table but its projector (the signed log is the truth)."""

from __future__ import annotations

import re
from pathlib import Path

from node import projection

ROOT = Path(__file__).resolve().parents[1]
#: Where writing a projected table is the job: the projectors, the migrations that shape the
#: tables, and the rebuild's fresh database.
ALLOWED = {"node/projectors", "node/db.py", "node/cases_db.py", "node/sync_db.py"}
WRITE = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+(\w+)",
    re.IGNORECASE,
)


def writes_outside_projectors() -> list[str]:
    tables = set(projection.TABLES)
    found = []
    for path in sorted((ROOT / "node").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == a or rel.startswith(a + "/") for a in ALLOWED):
            continue
        text = path.read_text(encoding="utf-8")
        for m in WRITE.finditer(text):
            if m.group(1).lower() in tables:
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {m.group(0)}")
    return found


def test_only_projectors_write_the_projected_tables() -> None:
    assert writes_outside_projectors() == []


def test_the_check_sees_a_direct_write(tmp_path: Path) -> None:
    assert WRITE.search("conn.execute('UPDATE tickets SET state = ?')").group(1) == "tickets"
    assert WRITE.search('"INSERT OR IGNORE INTO windows (id)"').group(1) == "windows"


def test_every_kind_the_node_writes_has_a_projector_or_is_log_only() -> None:
    kinds = set()
    for path in (ROOT / "node").rglob("*.py"):
        kinds |= set(
            re.findall(
                r'"((?:ticket|window|case|review|rating|followup|sms|user|'
                r'catalog|appointment|preapplication)\.[a-z_]+)"',
                path.read_text(encoding="utf-8"),
            )
        )
    schemas = {
        p.name.removesuffix(".schema.json") for p in (ROOT / "schemas" / "events").glob("*.json")
    }
    loose = sorted(
        k
        for k in kinds & schemas
        if k not in projection.PROJECTORS and k not in projection.LOG_ONLY
    )
    assert loose == []
