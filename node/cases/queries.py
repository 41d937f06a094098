"""Reading cases: a case's detail and timeline, the staff list, a department's inbox, the
center's overview, and the status a citizen may see.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any

import sqlite_utils

from node import db as dbm
from node import ratings, tickets, workdays
from node.cases.common import STATE_NAMES, get, materials, missing, tasks
from node.cases.results import deadline
from node.cases.visits import COUNTED, visit_count, visits
from node.config import NodeConfig
from node.items import item_summaries
from onestop.clock import Now, local_date, system_now
from onestop.errors import NotFound
from sync import figures


def detail(
    db: sqlite_utils.Database, cfg: NodeConfig, case: dict[str, Any], now: Now = system_now
) -> dict[str, Any]:
    today = local_date(now(), cfg.timezone)
    out = summary(db, case, today)
    out["items"] = item_summaries(db, case["items"])
    mats = materials(db, case["id"])
    files = dbm.rows(
        db,
        "SELECT id, material, sha256, name, size, content_type, uploaded_at, "
        "uploaded_by FROM case_files WHERE case_id = ? ORDER BY id",
        [case["id"]],
    )
    for m in mats:
        m["files"] = [f for f in files if f["material"] == m["code"]]
    out["materials"] = mats
    out["missing"] = [m["code"] for m in mats if m["state"] != "received"]
    out["tasks"] = tasks(db, case["id"])
    out["visits"] = visits(db, case["id"])
    if case["preapplication_id"]:
        pre = dbm.one(
            db, "SELECT ref FROM preapplications WHERE id = ?", [case["preapplication_id"]]
        )
        out["preapplication"] = pre["ref"] if pre else None
    out["timeline"] = timeline(db, case["case_no"])
    return out


def summary(db: sqlite_utils.Database, case: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """A case as listed to staff: masked identity, deadline status, no timeline."""
    keep = (
        "case_no",
        "kind",
        "state",
        "outcome",
        "items",
        "departments",
        "id_masked",
        "phone_masked",
        "lang",
        "commitment",
        "catch_up_date",
        "promised_days",
        "statutory_days",
        "accepted_at",
        "accepted_date",
        "promised_deadline",
        "statutory_deadline",
        "paused_at",
        "paused_days",
        "decided_at",
        "reject_reason",
        "result_at",
        "handed_over_at",
        "handover_method",
        "tracking",
        "created_at",
        "created_by",
        "service_date",
    )
    out = {k: case[k] for k in keep}
    out["commitment"] = bool(case["commitment"])
    name = STATE_NAMES[case["state"]]
    out["state_name_zh"], out["state_name_en"] = name.text("zh"), name.text("en")
    out["deadline"] = deadline(case, today)
    out["visit_count"] = visit_count(db, case["id"])
    return out


def timeline(db: sqlite_utils.Database, case_no: str) -> list[dict[str, Any]]:
    rows = dbm.rows(
        db,
        """SELECT seq, at, kind, entity, entity_id, body FROM events
         WHERE json_extract(body, '$.case_no') = ? ORDER BY seq""",
        [case_no],
    )
    for r in rows:
        r["body"] = json.loads(r["body"])
    return rows


def list_cases(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    *,
    state: str | None = None,
    date: str | None = None,
    department: str | None = None,
    limit: int = 200,
    now: Now = system_now,
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM cases WHERE 1"
    params: list[Any] = []
    if state:
        sql += " AND state = ?"
        params.append(state)
    if date:
        sql += " AND service_date = ?"
        params.append(date)
    if department:
        sql += " AND id IN (SELECT case_id FROM review_tasks WHERE department = ?)"
        params.append(department)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    today = local_date(now(), cfg.timezone)
    out = []
    for row in dbm.rows(db, sql, params):
        row["items"] = json.loads(row["items"])
        row["departments"] = json.loads(row["departments"])
        out.append(summary(db, row, today))
    return out


def inbox(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    department: str,
    state: str | None = None,
    now: Now = system_now,
) -> list[dict[str, Any]]:
    """A department's review tasks with their deadline status, most urgent first."""
    if dbm.one(db, "SELECT 1 AS x FROM departments WHERE code = ?", [department]) is None:
        raise NotFound(f"no department with code {department!r}", field="department")
    today = local_date(now(), cfg.timezone)
    sql = (
        "SELECT r.id AS task_id, r.state AS task_state, r.reason, r.decided_by, "
        "r.decided_at, r.position, c.* FROM review_tasks r JOIN cases c ON c.id = r.case_id "
        "WHERE r.department = ?"
    )
    params: list[Any] = [department]
    if state in (None, "", "open"):
        sql += " AND r.state IN ('pending', 'supplement')"
    elif state != "all":
        sql += " AND r.state = ?"
        params.append(state)
    sql += " ORDER BY c.promised_deadline, c.id"
    out = []
    for row in dbm.rows(db, sql, params):
        row["items"] = json.loads(row["items"])
        row["departments"] = json.loads(row["departments"])
        case = summary(db, row, today)
        others = tasks(db, row["id"])
        out.append(
            {
                "task_id": row["task_id"],
                "department": department,
                "state": row["task_state"],
                "lead": row["position"] == 0,
                "reason": row["reason"],
                "decided_by": row["decided_by"],
                "decided_at": row["decided_at"],
                "case_no": row["case_no"],
                "case_state": row["state"],
                "kind": row["kind"],
                "items": [
                    {k: it[k] for k in ("code", "name_zh", "name_en")}
                    for it in item_summaries(db, row["items"])
                ],
                "id_masked": row["id_masked"],
                "accepted_date": row["accepted_date"],
                "promised_deadline": row["promised_deadline"],
                "statutory_deadline": row["statutory_deadline"],
                "deadline": case["deadline"],
                "status": case["deadline"]["status"] if case["deadline"] else None,
                "tasks": [{"department": o["department"], "state": o["state"]} for o in others],
            }
        )
    return out


def overview(db: sqlite_utils.Database, cfg: NodeConfig, now: Now = system_now) -> dict[str, Any]:
    """Counts by deadline status, the overdue list, visits and rating figures."""
    today = local_date(now(), cfg.timezone)
    by_state = {s: 0 for s in STATE_NAMES}
    for r in dbm.rows(db, "SELECT state, COUNT(*) AS n FROM cases GROUP BY state"):
        by_state[r["state"]] = r["n"]
    by_status = {s: 0 for s in workdays.STATUSES}
    overdue = []
    paused = 0
    for row in dbm.rows(
        db,
        "SELECT * FROM cases WHERE state IN ('accepted', 'supplement') "
        "ORDER BY promised_deadline, id",
    ):
        row["items"] = json.loads(row["items"])
        row["departments"] = json.loads(row["departments"])
        dl = deadline(row, today)
        assert dl is not None
        by_status[dl["status"]] += 1
        paused += 1 if dl["paused"] else 0
        if dl["status"] == workdays.RED:
            pending = [
                t["department"]
                for t in tasks(db, row["id"])
                if t["state"] in ("pending", "supplement")
            ]
            overdue.append(
                {
                    "case_no": row["case_no"],
                    "state": row["state"],
                    "items": row["items"],
                    "promised_deadline": row["promised_deadline"],
                    "statutory_deadline": row["statutory_deadline"],
                    "overdue_workdays": dl["overdue_workdays"],
                    "statutory_overdue": dl["statutory_overdue"],
                    "pending_departments": pending,
                }
            )
    done = dbm.rows(
        db,
        f"""SELECT c.id, (SELECT COUNT(*) FROM case_visits v
            WHERE v.case_id = c.id AND {COUNTED}) AS n FROM cases c WHERE c.state = 'delivered'""",
    )
    completed = len(done)
    one_visit = sum(1 for d in done if figures.at_most_once(d["n"]))
    total_visits = int(
        db.execute(f"SELECT COUNT(*) FROM case_visits v WHERE {COUNTED}").fetchone()[0]
    )
    return {
        "date": today.isoformat(),
        "warn_workdays": workdays.WARN_WORKDAYS,
        "cases": {"total": sum(by_state.values()), "by_state": by_state},
        "deadlines": {**by_status, "open": sum(by_status.values()), "paused": paused},
        "overdue": overdue,
        "decisions": decisions(db),
        "tickets": tickets.day_figures(db, cfg, today.isoformat()),
        "visits": {
            "total": total_visits,
            "completed_cases": completed,
            "at_most_one_visit": one_visit,
            "at_most_one_visit_share": figures.at_most_once_share(one_visit, completed),
            "average_per_completed_case": (
                round(sum(d["n"] for d in done) / completed, 2) if completed else None
            ),
        },
        "ratings": ratings.figures(db, cfg, now),
    }


def decisions(db: sqlite_utils.Database) -> dict[str, Any]:
    """Decided cases (办结) and how many kept their promised deadline
    (:func:`sync.figures.on_time`)."""
    n = late = 0
    for r in db.execute(
        "SELECT decided_date, promised_deadline FROM cases WHERE decided_date IS NOT NULL "
        "AND promised_deadline IS NOT NULL"
    ).fetchall():
        n += 1
        late += not figures.on_time(dt.date.fromisoformat(r[0]), dt.date.fromisoformat(r[1]))
    return {"total": n, "late": late, "on_time_share": figures.on_time_share(n, late)}


def public_status(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    phone_last4: str,
    now: Now = system_now,
) -> dict[str, Any]:
    """What the citizen may see, given the case number and the last 4 digits of the phone.

    A wrong number and a wrong phone give the same 404, so case numbers cannot be probed.
    """
    nope = NotFound("no case with this number and phone", field="case_no")
    row = dbm.one(db, "SELECT case_no, phone_masked FROM cases WHERE case_no = ?", [case_no])
    if row is None or not hmac.compare_digest(row["phone_masked"][-4:], phone_last4):
        raise nope
    case = get(db, case_no)
    today = local_date(now(), cfg.timezone)
    dl = deadline(case, today)
    gaps = missing(db, case["id"])
    name = STATE_NAMES[case["state"]]
    zh, en = name.text("zh"), name.text("en")
    return {
        "case_no": case_no,
        "state": case["state"],
        "state_name_zh": zh,
        "state_name_en": en,
        "kind": case["kind"],
        "outcome": case["outcome"],
        "items": [
            {k: it[k] for k in ("code", "name_zh", "name_en")}
            for it in item_summaries(db, case["items"])
        ],
        "created_at": case["created_at"],
        "accepted_date": case["accepted_date"],
        "promised_deadline": case["promised_deadline"],
        "deadline_status": dl["status"] if dl else None,
        "paused": case["state"] == "supplement",
        "missing": [
            {k: m[k] for k in ("code", "name_zh", "name_en", "critical", "state")} for m in gaps
        ],
        "catch_up_date": case["catch_up_date"],
        "handover_method": case["handover_method"],
        "tracking": case["tracking"],
        "center": cfg.name,
    }
