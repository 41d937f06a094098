"""The one-time notice (一次性告知): every missing material listed at once, as an event
``case.notice_issued``; the latest one is read back for printing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify
from node.cases.common import get
from node.config import NodeConfig
from node.items import item_summaries
from onestop.errors import NotFound


def issue_notice(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    reason: str,
    gaps: list[dict[str, Any]],
    at: str,
    *,
    accepted: bool,
    catch_up_date: str | None = None,
    note: str | None = None,
) -> None:
    body: dict[str, Any] = {
        "case_no": case["case_no"],
        "reason": reason,
        "accepted": accepted,
        "missing": [{k: m[k] for k in ("code", "name_zh", "name_en", "critical")} for m in gaps],
        "catch_up_date": catch_up_date,
    }
    if note is not None:
        body["note"] = notify.redact(note)
    events.append(conn, "case.notice_issued", "case", case["case_no"], body, at=at)


def notice(db: sqlite_utils.Database, cfg: NodeConfig, case_no: str) -> dict[str, Any]:
    """The latest one-time notice (一次性告知) of a case."""
    case = get(db, case_no)
    ev = dbm.one(
        db,
        "SELECT seq, at, body FROM events WHERE entity = 'case' AND "
        "entity_id = ? AND kind = 'case.notice_issued' ORDER BY seq DESC LIMIT 1",
        [case_no],
    )
    if ev is None:
        raise NotFound(f"case {case_no} has no notice: nothing was missing", field="case_no")
    body = json.loads(ev["body"])
    return {
        "case_no": case_no,
        "center": cfg.name,
        "center_code": cfg.code,
        "issued_at": ev["at"],
        "reason": body["reason"],
        "accepted": body["accepted"],
        "missing": body["missing"],
        "catch_up_date": body.get("catch_up_date"),
        "note": body.get("note"),
        "items": item_summaries(db, case["items"]),
        "state": case["state"],
    }
