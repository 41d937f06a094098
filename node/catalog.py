"""The service catalog: departments, functional areas and service items.

A catalog document (:mod:`schemas.catalog`, checked by its ``load_catalog``) is imported by
:func:`import_catalog`: one ``catalog.imported`` event that carries the document and the
queues it keeps (one ticket queue per area and per department), projected into the tables
by :mod:`node.projectors.catalog`.

Queue prefixes (the letters of a ticket number, ``A001``) are stable: a queue keeps its
prefix across imports, new queues take the next unused letters (``A`` .. ``Z``, ``AA``,
``AB`` ...), and queues whose area or department left the catalog are deactivated, never
deleted, so old tickets still point at them and their prefix is never reused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    """Import a catalog into the node database: one ``catalog.imported`` event.

    The event carries the whole catalog and the queues it keeps: one per area
    (``area:<code>``) and per department (``dept:<code>``), reusing existing prefixes, and
    the queues whose area or department is gone, to deactivate; its projector
    (:mod:`node.projectors.catalog`) upserts departments, areas, items and queues.
    Departments, areas and items missing from the catalog are left in place (tickets and
    cases may point at them); ``stale_items`` counts such items.  Returns counts.
    """
    catalog = load_catalog(catalog)  # never trust a dict that may have been edited since
    version = catalog["version"]
    departments = catalog["departments"]
    areas = catalog["areas"]
    items = catalog["items"]

    with nodedb.tx(db) as conn:
        plan = _plan_queues(conn, areas, departments)
        item_codes = {it["code"] for it in items}
        stale_items = sum(
            1 for (code,) in conn.execute("SELECT code FROM items") if code not in item_codes
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
                "catalog": catalog,
                "queues": plan.queues,
                "queues_deactivated": plan.deactivated,
            },
        )

    return {
        "version": version,
        "departments": len(departments),
        "areas": len(areas),
        "items": len(items),
        "stale_items": stale_items,
        "queues": len(plan.queues),
        "queues_created": plan.created,
        "queues_reactivated": plan.reactivated,
        "queues_deactivated": len(plan.deactivated),
    }


@dataclass
class QueuePlan:
    """The queues a catalog keeps (rows as the ``queues`` table holds them, all active) and
    the codes of those it deactivates."""

    queues: list[dict[str, Any]] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    created: int = 0
    reactivated: int = 0


def _plan_queues(
    conn: sqlite3.Connection, areas: list[dict[str, Any]], departments: list[dict[str, Any]]
) -> QueuePlan:
    existing = {
        row[0]: {"prefix": row[1], "active": row[2]}
        for row in conn.execute("SELECT code, prefix, active FROM queues ORDER BY code")
    }
    used = {q["prefix"] for q in existing.values()}
    free = _free_prefixes(used)
    wanted: list[tuple[str, str, dict[str, Any]]] = [
        *((f"area:{a['code']}", "area", a) for a in areas),
        *((f"dept:{d['code']}", "department", d) for d in departments),
    ]
    plan = QueuePlan()
    for sort, (code, kind, ref) in enumerate(wanted):
        old = existing.get(code)
        if old is None:
            prefix = next(free)
            plan.created += 1
        else:
            prefix = old["prefix"]
            if not old["active"]:
                plan.reactivated += 1
        plan.queues.append(
            {
                "code": code,
                "kind": kind,
                "ref": ref["code"],
                "prefix": prefix,
                "name_zh": ref["name_zh"],
                "name_en": ref["name_en"],
                "sort": sort,
            }
        )
    keep = {code for code, _, _ in wanted}
    plan.deactivated = [
        code
        for code, old in existing.items()
        if code not in keep and old["active"] and code.startswith(("area:", "dept:"))
    ]
    return plan
