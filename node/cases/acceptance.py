"""Acceptance (受理) of a case against the materials still missing.

* nothing missing: accepted at once;
* only non-critical materials missing and the citizen commits to bring them by a catch-up
  date no later than the promised deadline: accepted with missing materials (容缺受理);
* otherwise the case waits for materials (``pending_materials``), not accepted.

Acceptance sets the promised and statutory deadlines and opens one review task per
department, in parallel.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import sqlite_utils

from node import events, notify, numbers, workdays
from node.cases.common import material_names, missing, sms_text
from node.config import NodeConfig
from onestop.errors import Invalid
from onestop.requests import date_field


def decide(
    gaps: list[dict[str, Any]], data: dict[str, Any], today: dt.date, promised_days: int
) -> tuple[bool, bool, dt.date | None]:
    """Decide (accept?, commitment?, catch-up date) for the materials still missing."""
    commitment = data.get("commitment", False)
    if not isinstance(commitment, bool):
        raise Invalid("commitment must be true or false", field="commitment")
    if not gaps:
        return True, False, None
    if not commitment:
        return False, False, None
    critical = [m for m in gaps if m["critical"]]
    if critical:
        raise Invalid(
            "容缺受理 (acceptance with missing materials) needs every critical material; "
            f"missing critical material: {material_names(critical)}",
            field="received",
            errors=[
                {
                    "field": "received",
                    "message": f"critical material {m['code']} ({m['name_zh']} / "
                    f"{m['name_en']}) is missing",
                }
                for m in critical
            ],
        )
    catch_up, _ = _catch_up(data, today, promised_days)
    return True, True, catch_up


def _catch_up(data: dict[str, Any], today: dt.date, promised_days: int) -> tuple[dt.date, dt.date]:
    """The 容缺 catch-up date (default: the promised deadline) and the promised deadline."""
    promised = workdays.add_workdays(today, promised_days)
    raw = data.get("catch_up_date")
    if raw is None or raw == "":
        return promised, promised
    day = date_field(raw, "catch_up_date")
    if day < today:
        raise Invalid(f"catch_up_date {day} is in the past", field="catch_up_date")
    if day > promised:
        raise Invalid(
            f"catch_up_date {day} is after the promised deadline {promised} "
            f"({promised_days} working days): missing materials must be in before it",
            field="catch_up_date",
        )
    return day, promised


def accept(
    conn: sqlite3.Connection,
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case: dict[str, Any],
    today: dt.date,
    at: str,
    by: str,
    *,
    commitment: bool,
    catch_up: dt.date | None,
) -> None:
    promised = workdays.add_workdays(today, case["promised_days"])
    statutory = workdays.add_workdays(today, case["statutory_days"])
    for pos, dept in enumerate(case["departments"]):
        task_id = numbers.next_id(conn, "review_tasks")
        events.append(
            conn,
            "review.opened",
            "review_task",
            task_id,
            {
                "case_no": case["case_no"],
                "task_id": task_id,
                "department": dept,
                "lead": pos == 0,
                "position": pos,
            },
            at=at,
        )
    gaps = [m["code"] for m in missing(db, case["id"])]
    events.append(
        conn,
        "case.accepted",
        "case",
        case["case_no"],
        {
            "case_no": case["case_no"],
            "accepted_date": today.isoformat(),
            "promised_deadline": promised.isoformat(),
            "statutory_deadline": statutory.isoformat(),
            "departments": case["departments"],
            "missing": gaps,
            "commitment": commitment,
            "catch_up_date": catch_up.isoformat() if catch_up else None,
            "by": by,
        },
        at=at,
    )
    notify.queue(
        conn,
        case["phone_enc"],
        case["phone_masked"],
        "accepted",
        sms_text(
            "accepted",
            case["lang"],
            center=cfg.name,
            case_no=case["case_no"],
            deadline=promised.isoformat(),
        ),
        case_id=case["id"],
        case_no=case["case_no"],
        at=at,
    )
