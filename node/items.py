"""The catalog's service items as a case or a pre-application names them: the materials
checklist (the union over the items), the departments that review, and the checks of the item
and material codes a request sends.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from node import db as dbm
from onestop.errors import Invalid

#: Item kinds that are cases of their own and never share a case with other kinds.
OWN_KINDS = ("consultation", "complaint")


def load_items(db: sqlite_utils.Database, codes: list[str]) -> list[dict[str, Any]]:
    """Catalog items in the given order; raises Invalid naming unknown codes."""
    out = []
    unknown = []
    for code in codes:
        it = dbm.one(db, "SELECT * FROM items WHERE code = ?", [code])
        if it is None:
            unknown.append(code)
            continue
        it["departments"] = json.loads(it["departments"])
        it["materials"] = json.loads(it["materials"])
        out.append(it)
    if unknown:
        raise Invalid(f"no service item with code {', '.join(unknown)}", field="items")
    return out


def checklist(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The union of the items' materials by code; critical if critical for any item."""
    out: dict[str, dict[str, Any]] = {}
    for it in items:
        for m in it["materials"]:
            if m["code"] in out:
                out[m["code"]]["critical"] = out[m["code"]]["critical"] or bool(m["critical"])
            else:
                out[m["code"]] = {
                    "code": m["code"],
                    "name_zh": m["name_zh"],
                    "name_en": m["name_en"],
                    "critical": bool(m["critical"]),
                }
    return list(out.values())


def departments_of(items: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for it in items:
        for d in it["departments"]:
            if d not in out:
                out.append(d)
    return out


def item_summaries(db: sqlite_utils.Database, codes: list[str]) -> list[dict[str, Any]]:
    out = []
    for code in codes:
        it = dbm.one(
            db,
            "SELECT code, name_zh, name_en, kind, departments, promised_days, "
            "statutory_days FROM items WHERE code = ?",
            [code],
        )
        if it is None:
            out.append({"code": code, "name_zh": code, "name_en": code})
            continue
        it["departments"] = json.loads(it["departments"])
        out.append(it)
    return out


def validate_items(
    db: sqlite_utils.Database, codes: list[str] | None, errors: dict[str, str]
) -> list[dict[str, Any]]:
    if codes is None:
        errors.setdefault("items", "items is required: a list of service item codes")
        return []
    if not codes:
        errors["items"] = "items needs at least one service item code"
        return []
    try:
        items = load_items(db, codes)
    except Invalid as exc:
        errors["items"] = exc.message
        return []
    kinds = {it["kind"] for it in items}
    own = kinds & set(OWN_KINDS)
    if own and len(items) > 1:
        errors["items"] = (
            f"a {sorted(own)[0]} is a case of its own: open one case per consultation or "
            "complaint item"
        )
    return items


def validate_materials(
    codes: list[str] | None, items: list[dict[str, Any]], field: str, errors: dict[str, str]
) -> list[str]:
    if codes is None or not items:
        return codes or []
    known = {m["code"] for m in checklist(items)}
    unknown = [c for c in codes if c not in known]
    if unknown:
        errors[field] = (
            f"material {', '.join(unknown)} is not on the checklist of these items "
            f"(known: {', '.join(sorted(known))})"
        )
    return codes


def code_list(data: dict[str, Any], field: str, errors: dict[str, str]) -> list[str] | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors[field] = f"{field} must be a list of codes"
        return None
    return list(dict.fromkeys(value))
