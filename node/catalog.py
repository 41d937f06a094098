"""The service catalog: departments, functional areas and service items.

A catalog document (:mod:`schemas.catalog`, checked by its ``load_catalog``) is written into the
node database by :func:`import_catalog` in one transaction, which keeps one ticket queue per
area and per department.

Queue prefixes (the letters of a ticket number, ``A001``) are stable: a queue keeps its
prefix across imports, new queues take the next unused letters (``A`` .. ``Z``, ``AA``,
``AB`` ...), and queues whose area or department left the catalog are deactivated, never
deleted, so old tickets still point at them and their prefix is never reused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import sqlite_utils

from node import db as nodedb
from node import events
from schemas.catalog import load_catalog

# --------------------------------------------------------------------------- importing


def prefix_letters(n: int) -> str:
    """The n-th queue prefix (0-based): A .. Z, AA .. AZ, BA .. ZZ, AAA ..."""
    if n < 0:
        raise ValueError("n must be >= 0")
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(ord("A") + rem) + out
    return out


def _free_prefixes(used: set[str]) -> Iterator[str]:
    n = 0
    while True:
        candidate = prefix_letters(n)
        n += 1
        if candidate not in used:
            used.add(candidate)
            yield candidate


def import_catalog(db: sqlite_utils.Database, catalog: dict[str, Any]) -> dict[str, Any]:
    """Write a catalog into the node database in one transaction.

    Upserts departments, areas and items; keeps one queue per area (``area:<code>``) and per
    department (``dept:<code>``), reusing existing prefixes and deactivating queues whose
    area or department is gone; appends one ``catalog.imported`` event.  Departments, areas
    and items missing from the catalog are left in place (tickets and cases may point at
    them); ``stale_items`` counts such items.  Returns counts.
    """
    catalog = load_catalog(catalog)  # never trust a dict that may have been edited since
    version = catalog["version"]
    departments = catalog["departments"]
    areas = catalog["areas"]
    items = catalog["items"]

    with nodedb.tx(db) as conn:
        for sort, a in enumerate(areas):
            conn.execute(
                "INSERT INTO areas (code, name_zh, name_en, sort) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, sort = excluded.sort",
                [a["code"], a["name_zh"], a["name_en"], sort],
            )
        for sort, d in enumerate(departments):
            conn.execute(
                "INSERT INTO departments (code, name_zh, name_en, sort) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, sort = excluded.sort",
                [d["code"], d["name_zh"], d["name_en"], sort],
            )
        for sort, it in enumerate(items):
            conn.execute(
                "INSERT INTO items (code, name_zh, name_en, kind, area, departments, materials,"
                " promised_days, statutory_days, sort) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, kind = excluded.kind, area = excluded.area, "
                "departments = excluded.departments, materials = excluded.materials, "
                "promised_days = excluded.promised_days, "
                "statutory_days = excluded.statutory_days, sort = excluded.sort",
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
        queues = _sync_queues(conn, areas, departments)

        item_codes = {it["code"] for it in items}
        stale_items = sum(
            1 for (code,) in conn.execute("SELECT code FROM items") if code not in item_codes
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('catalog_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [version],
        )
        events.append(
            conn,
            "catalog.imported",
            "catalog",
            version,
            {
                "version": version,
                "items": len(items),
                "departments": len(departments),
                "areas": len(areas),
            },
        )

    return {
        "version": version,
        "departments": len(departments),
        "areas": len(areas),
        "items": len(items),
        "stale_items": stale_items,
        **queues,
    }


def _sync_queues(
    conn: sqlite3.Connection, areas: list[dict[str, Any]], departments: list[dict[str, Any]]
) -> dict[str, int]:
    existing = {
        row[0]: {"prefix": row[1], "active": row[2]}
        for row in conn.execute("SELECT code, prefix, active FROM queues")
    }
    used = {q["prefix"] for q in existing.values()}
    free = _free_prefixes(used)
    wanted: list[tuple[str, str, dict[str, Any]]] = [
        *((f"area:{a['code']}", "area", a) for a in areas),
        *((f"dept:{d['code']}", "department", d) for d in departments),
    ]
    created = reactivated = 0
    for sort, (code, kind, ref) in enumerate(wanted):
        old = existing.get(code)
        if old is None:
            conn.execute(
                "INSERT INTO queues (code, kind, ref, prefix, name_zh, name_en, sort, active) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                [code, kind, ref["code"], next(free), ref["name_zh"], ref["name_en"], sort],
            )
            created += 1
        else:
            if not old["active"]:
                reactivated += 1
            conn.execute(
                "UPDATE queues SET kind = ?, ref = ?, name_zh = ?, name_en = ?, sort = ?, "
                "active = 1 WHERE code = ?",
                [kind, ref["code"], ref["name_zh"], ref["name_en"], sort, code],
            )
    keep = {code for code, _, _ in wanted}
    deactivated = 0
    for code, old in existing.items():
        if code not in keep and old["active"] and code.startswith(("area:", "dept:")):
            conn.execute("UPDATE queues SET active = 0 WHERE code = ?", [code])
            deactivated += 1
    return {
        "queues": len(wanted),
        "queues_created": created,
        "queues_reactivated": reactivated,
        "queues_deactivated": deactivated,
    }
