"""The one-time notice (一次性告知): every missing material listed at once, as an event
``case.notice_issued``; the latest one is read back for printing.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from node import db as dbm
from node import events, notify, users
from node.cases.common import get
from node.config import NodeConfig
from node.items import item_summaries
from onestop.clock import parse
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


def printable(
    db: sqlite_utils.Database, cfg: NodeConfig, case_no: str, lang: str
) -> dict[str, Any]:
    """What the printed notice shows, in ``lang``: the latest notice with its local time,
    a document number, the applicant (masked ID), the clerk and window that took the case in,
    and the center's address and phone."""
    n = notice(db, cfg, case_no)
    case = get(db, case_no)
    count = db.execute(
        "SELECT COUNT(*) FROM events WHERE entity = 'case' AND entity_id = ? "
        "AND kind = 'case.notice_issued'",
        [case_no],
    ).fetchone()[0]
    clerk = users.get(db, case["created_by"])
    window = None
    if clerk and clerk.get("window_id"):
        window = dbm.one(db, "SELECT number, name FROM windows WHERE id = ?", [clerk["window_id"]])
    tz = ZoneInfo(cfg.timezone)
    local = parse(n["issued_at"]).astimezone(tz)
    applied = parse(case["created_at"]).astimezone(tz)
    en = lang == "en"

    def when(t: dt.datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M") if en else f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"

    def name(obj: dict[str, Any]) -> str:
        return str(obj.get("name_en") if en and obj.get("name_en") else obj.get("name_zh"))

    return {
        **n,
        "doc_no": f"{case_no}-{count}",
        "issued_local": when(local),
        "applied_local": when(applied),
        "seal_date": f"{local.day} {local:%B %Y}"
        if en
        else f"{local.year}年{local.month}月{local.day}日",
        "applicant_id": case["id_masked"],
        "clerk": case["created_by"],
        "window": window,
        "materials": [{"name": name(m), "critical": bool(m["critical"])} for m in n["missing"]],
        "item_names": [name(it) for it in n["items"]],
        "center_address": cfg.center_address,
        "center_phone": cfg.center_phone,
    }
