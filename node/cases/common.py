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
from onestop.i18n import lazy_gettext, lazy_pgettext
from sync import figures

CASE_NO_RE = re.compile(r"^(\d{2,12})-(\d{8})-(\d{4,})$")
OPEN_STATES = figures.OPEN_STATES  # the deadline clock concerns these (the backlog)
DECIDED_STATES = ("approved", "rejected", "result_ready", "delivered")

#: The long names of the case states (the citizen's status page and the API).
STATE_NAMES = {
    "pending_materials": lazy_pgettext("case status", "待补齐材料（未受理）"),
    "accepted": lazy_pgettext("case status", "已受理，审查中"),
    "supplement": lazy_pgettext("case status", "待补正（时限暂停）"),
    "approved": lazy_pgettext("case status", "审批通过，待出件"),
    "rejected": lazy_pgettext("case status", "不予许可，待出件"),
    "result_ready": lazy_pgettext("case status", "办结，待领取"),
    "delivered": lazy_pgettext("case status", "已送达"),
}

#: SMS to the applicant, in the language of the case.
SMS_TEXTS = {
    "accepted": lazy_gettext("【{center}】您的办件{case_no}已受理，承诺办结日期{deadline}。"),
    "supplement": lazy_gettext(
        "【{center}】您的办件{case_no}需补正：{reason}。请携带材料到窗口办理，期间办理时限暂停。"
    ),
    "result_ready": lazy_gettext(
        "【{center}】您的办件{case_no}已办结，请到统一出件窗口领取结果或申请邮寄。"
        "评价码{rating_code}，欢迎对本次办件评价：{link}"
    ),
    "mailed": lazy_gettext("【{center}】您的办件{case_no}结果已寄出，运单号{tracking}。"),
    "appointment": lazy_gettext(
        "【{center}】您已预约{date} {slot}办理业务，预约号{ref}，请按时到自助机签到取号。"
    ),
}

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def sms_text(template: str, lang: str, **fields: Any) -> str:
    return SMS_TEXTS[template].text(lang, **fields)


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
