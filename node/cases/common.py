"""What the case modules share: the states and their names, the SMS texts, the fields every
request parses, and a case read back with its materials and review tasks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlite_utils

from node import db as dbm
from onestop.errors import Invalid, NotFound

CASE_NO_RE = re.compile(r"^(\d{2,12})-(\d{8})-(\d{4,})$")
OPEN_STATES = ("accepted", "supplement")  # the deadline clock concerns these
DECIDED_STATES = ("approved", "rejected", "result_ready", "delivered")

STATE_NAMES = {
    "pending_materials": ("待补齐材料（未受理）", "waiting for materials (not accepted)"),
    "accepted": ("已受理，审查中", "accepted, under review"),
    "supplement": ("待补正（时限暂停）", "supplementary materials requested (clock paused)"),
    "approved": ("审批通过，待出件", "approved, result being prepared"),
    "rejected": ("不予许可，待出件", "rejected, decision being prepared"),
    "result_ready": ("办结，待领取", "result ready for collection"),
    "delivered": ("已送达", "delivered"),
}

SMS_TEXTS = {
    "accepted": (
        "【{center}】您的办件{case_no}已受理，承诺办结日期{deadline}。",
        "[{center}] Your case {case_no} has been accepted; promised by {deadline}.",
    ),
    "supplement": (
        "【{center}】您的办件{case_no}需补正：{reason}。请携带材料到窗口办理，期间办理时限暂停。",
        "[{center}] Case {case_no} needs more: {reason}. Please bring the materials to the "
        "window; the deadline is paused meanwhile.",
    ),
    "result_ready": (
        "【{center}】您的办件{case_no}已办结，请到统一出件窗口领取结果或申请邮寄。",
        "[{center}] The result of case {case_no} is ready at the results window (pickup or mail).",
    ),
    "mailed": (
        "【{center}】您的办件{case_no}结果已寄出，运单号{tracking}。",
        "[{center}] The result of case {case_no} was mailed; tracking number {tracking}.",
    ),
}


def sms_text(template: str, lang: str, **fields: Any) -> str:
    zh, en = SMS_TEXTS[template]
    return (en if lang == "en" else zh).format(**fields)


def int_field(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{field} must be an integer", field=field)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field} must be an integer", field=field) from None


def get(db: sqlite_utils.Database, case_no: str) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM cases WHERE case_no = ?", [case_no])
    if row is None:
        raise NotFound(f"no case with number {case_no}", field="case_no")
    row["items"] = json.loads(row["items"])
    row["departments"] = json.loads(row["departments"])
    return row


def materials(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    rows = dbm.rows(
        db,
        "SELECT code, name_zh, name_en, critical, state, received_at "
        "FROM case_materials WHERE case_id = ? ORDER BY position",
        [case_id],
    )
    for r in rows:
        r["critical"] = bool(r["critical"])
    return rows


def missing(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    return [m for m in materials(db, case_id) if m["state"] != "received"]


def material_names(materials: list[dict[str, Any]]) -> str:
    return ", ".join(f"{m['code']} ({m['name_zh']} / {m['name_en']})" for m in materials)


def tasks(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    return dbm.rows(
        db,
        """SELECT r.id, r.department, d.name_zh AS department_name_zh,
            d.name_en AS department_name_en, r.state, r.reason, r.decided_by, r.decided_at,
            r.created_at
          FROM review_tasks r LEFT JOIN departments d ON d.code = r.department
         WHERE r.case_id = ? ORDER BY r.position""",
        [case_id],
    )
