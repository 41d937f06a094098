"""Projector of ``catalog.imported``: departments, areas, items and queues, and the catalog
version in ``meta``.

The event carries the whole catalog document (``catalog``) and the queues the import decided
(``queues``: every queue of the catalog with its prefix and place; ``queues_deactivated``:
the queues whose area or department left it), so the tables follow from the event alone.
Departments, areas and items missing from the catalog stay (tickets and cases may point at
them); queues are never deleted.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node.projectors.common import Context

_NAMED = (
    "INSERT INTO {table} (code, name_zh, name_en, sort) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
    "name_en = excluded.name_en, sort = excluded.sort"
)

_ITEM = (
    "INSERT INTO items (code, name_zh, name_en, kind, area, departments, materials,"
    " promised_days, statutory_days, sort) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
    "name_en = excluded.name_en, kind = excluded.kind, area = excluded.area, "
    "departments = excluded.departments, materials = excluded.materials, "
    "promised_days = excluded.promised_days, "
    "statutory_days = excluded.statutory_days, sort = excluded.sort"
)

_QUEUE = (
    "INSERT INTO queues (code, kind, ref, prefix, name_zh, name_en, sort, active) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
    "ON CONFLICT(code) DO UPDATE SET kind = excluded.kind, ref = excluded.ref, "
    "prefix = excluded.prefix, name_zh = excluded.name_zh, name_en = excluded.name_en, "
    "sort = excluded.sort, active = 1"
)


def _imported(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    doc = b["catalog"]
    for sort, a in enumerate(doc["areas"]):
        conn.execute(_NAMED.format(table="areas"), [a["code"], a["name_zh"], a["name_en"], sort])
    for sort, d in enumerate(doc["departments"]):
        conn.execute(
            _NAMED.format(table="departments"), [d["code"], d["name_zh"], d["name_en"], sort]
        )
    for sort, it in enumerate(doc["items"]):
        conn.execute(
            _ITEM,
            [
                it["code"],
                it["name_zh"],
                it["name_en"],
                it["kind"],
                it["area"],
                json.dumps(it["departments"], ensure_ascii=False),
                json.dumps(it["materials"], ensure_ascii=False),
                it["promised_days"],
                it["statutory_days"],
                sort,
            ],
        )
    for q in b["queues"]:
        conn.execute(
            _QUEUE,
            [q["code"], q["kind"], q["ref"], q["prefix"], q["name_zh"], q["name_en"], q["sort"]],
        )
    for code in b["queues_deactivated"]:
        conn.execute("UPDATE queues SET active = 0 WHERE code = ?", [code])
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('catalog_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [b["version"]],
    )


PROJECTORS: dict[str, Any] = {"catalog.imported": _imported}
