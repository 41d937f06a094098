"""Back-office review: each department decides on its task -- approve, reject or ask for
supplementary materials (补正), which pauses the deadline clock.  The case is approved when
every task approves, rejected when one rejects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify
from node.cases.common import DECIDED_STATES, get, materials, sms_text
from node.cases.notices import issue_notice
from node.cases_db import DECISIONS
from node.config import NodeConfig
from node.items import code_list
from onestop.clock import Now, iso, local_date, system_now
from onestop.errors import Conflict, Forbidden, Invalid, invalid_fields
from sync import figures


def decide(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    department: str,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """A department's decision on its review task: approve, reject or supplement (补正).

    The reason is kept as the events carry it: any phone or ID number typed into it masked.
    """
    decision = data.get("decision")
    if decision not in DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise Invalid("reason must be text", field="reason")
    reason = (reason or "").strip()
    if decision in ("reject", "supplement") and not reason:
        raise Invalid(f"a reason is required to {decision}", field="reason")
    if len(reason) > 2000:
        raise Invalid("reason is longer than 2000 characters", field="reason")
    errors: dict[str, str] = {}
    wanted = code_list(data, "materials", errors) or []
    if errors:
        raise invalid_fields(errors)
    if user["role"] == "reviewer" and user.get("department") != department:
        raise Forbidden(
            f"reviewer {user['username']} works for department {user.get('department')!r}, "
            f"not {department!r}",
            field="department",
        )
    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        task = dbm.one(
            db,
            "SELECT * FROM review_tasks WHERE case_id = ? AND department = ?",
            [case["id"], department],
        )
        if task is None and case["state"] != "pending_materials":
            raise Conflict(
                f"department {department} is not involved in case {case_no} "
                f"(departments: {', '.join(case['departments'])})",
                field="department",
            )
        if case["state"] == "pending_materials":
            raise Conflict(
                f"case {case_no} is not accepted yet: it waits for materials", field="state"
            )
        if case["state"] == "supplement":
            raise Conflict(
                f"case {case_no} waits for supplementary materials (补正); "
                "reviews resume when the citizen brings them",
                field="state",
            )
        if case["state"] in DECIDED_STATES:
            raise Conflict(
                f"case {case_no} is already {case['state']}; its review is closed", field="state"
            )
        assert task is not None
        if task["state"] != "pending":
            raise Conflict(
                f"department {department} already decided on case {case_no} ({task['state']})",
                field="department",
            )
        if wanted:
            mats = {m["code"] for m in materials(db, case["id"])}
            unknown = [c for c in wanted if c not in mats]
            if unknown:
                raise Invalid(
                    f"material {', '.join(unknown)} is not on the checklist of case {case_no}",
                    field="materials",
                )
        events.append(
            conn,
            "review.decided",
            "review_task",
            task["id"],
            {
                "case_no": case_no,
                "task_id": task["id"],
                "department": department,
                "decision": decision,
                "reason": notify.redact(reason) if reason else None,
                "by": user["username"],
            },
            at=at,
        )
        if decision == "approve":
            left = conn.execute(
                "SELECT COUNT(*) FROM review_tasks WHERE case_id = ? AND state != 'approved'",
                [case["id"]],
            ).fetchone()[0]
            if left == 0:
                events.append(
                    conn,
                    "case.approved",
                    "case",
                    case_no,
                    {
                        "case_no": case_no,
                        "decided_date": today.isoformat(),
                        "on_time": figures.on_time(
                            today, dt.date.fromisoformat(case["promised_deadline"])
                        ),
                    },
                    at=at,
                )
        elif decision == "reject":
            for other in dbm.rows(
                db,
                "SELECT id, department FROM review_tasks WHERE case_id = ? AND state = 'pending'",
                [case["id"]],
            ):
                events.append(
                    conn,
                    "review.cancelled",
                    "review_task",
                    other["id"],
                    {"case_no": case_no, "task_id": other["id"], "department": other["department"]},
                    at=at,
                )
            events.append(
                conn,
                "case.rejected",
                "case",
                case_no,
                {
                    "case_no": case_no,
                    "department": department,
                    "reason": notify.redact(reason),
                    "decided_date": today.isoformat(),
                    "on_time": figures.on_time(
                        today, dt.date.fromisoformat(case["promised_deadline"])
                    ),
                },
                at=at,
            )
        else:
            events.append(
                conn,
                "case.supplement_requested",
                "case",
                case_no,
                {
                    "case_no": case_no,
                    "department": department,
                    "reason": notify.redact(reason),
                    "materials": wanted,
                    "paused_date": today.isoformat(),
                },
                at=at,
            )
            requested = [m for m in materials(db, case["id"]) if m["code"] in wanted]
            issue_notice(conn, case, "supplement", requested, at, accepted=True, note=reason)
            notify.queue(
                conn,
                case["phone_enc"],
                case["phone_masked"],
                "supplement",
                sms_text(
                    "supplement",
                    case["lang"],
                    center=cfg.name,
                    case_no=case_no,
                    reason=notify.redact(reason)[:200],
                ),
                case_id=case["id"],
                case_no=case_no,
                at=at,
            )
    return get(db, case_no)
