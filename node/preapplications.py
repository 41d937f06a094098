"""Online pre-applications (网上预审): the citizen names the items and the materials already
provided; the visit to the window then only checks the originals.  The reference (``P...``)
opens the case at intake.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, numbers
from node import tickets as tk
from node.config import NodeConfig
from node.items import (
    checklist,
    code_list,
    item_summaries,
    load_items,
    validate_items,
    validate_materials,
)
from node.pii import Pii
from node.projection import Personal
from onestop import identity
from onestop.clock import Now, iso, local_date, system_now
from onestop.errors import NotFound, invalid_fields


def submit(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """An online pre-application (网上预审): the visit then only checks the originals."""
    t = now()
    today = local_date(t, cfg.timezone)
    errors: dict[str, str] = {}
    id_number, phone, lang = identity.person_fields(data, today, errors, cfg.default_lang)
    items = validate_items(db, code_list(data, "items", errors), errors)
    provided = code_list(data, "materials", errors)
    provided = validate_materials(provided or [], items, "materials", errors)
    if errors:
        raise invalid_fields(errors)
    at = iso(t)
    with dbm.tx(db) as conn:
        ref = tk.reference("P")
        pid = numbers.next_id(conn, "preapplications")
        events.append(
            conn,
            "preapplication.submitted",
            "preapplication",
            pid,
            {
                "preapplication_id": pid,
                "items": [it["code"] for it in items],
                "materials": provided,
                "ref": ref,
                "lang": lang,
                **tk.person_body(conn, pii, id_number, phone),
            },
            at=at,
            personal=Personal(pii, {"id": id_number, "phone": phone}),
        )
    return public(db, ref)


def public(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
    pre = dbm.one(db, "SELECT * FROM preapplications WHERE ref = ?", [ref.strip().upper()])
    if pre is None:
        raise NotFound("no pre-application with this reference", field="ref")
    codes = json.loads(pre["items"])
    provided = set(json.loads(pre["materials"]))
    check = checklist(load_items(db, codes))
    for m in check:
        m["provided"] = m["code"] in provided
    return {
        "ref": pre["ref"],
        "state": pre["state"],
        "case_no": pre["case_no"],
        "items": [
            {k: it[k] for k in ("code", "name_zh", "name_en")} for it in item_summaries(db, codes)
        ],
        "materials": check,
        "missing": [m["code"] for m in check if not m["provided"]],
        "missing_critical": [m["code"] for m in check if not m["provided"] and m["critical"]],
        "created_at": pre["created_at"],
    }
