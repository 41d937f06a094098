"""Projectors of the case events (see :mod:`node.projection`): tables ``cases``,
``case_materials``, ``case_files`` and ``case_visits``.

A case event names its case by number (``case_no``, also the event's entity id); the rows
carry the ids the writer chose (``case_id``, ``visit_id``, ``file_id``), the dates and
deadlines it computed (working-day calendars may change after the fact) and the checklist of
materials as it stood at intake (the catalog may change too).  Times are the event's ``at``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from node.projectors.common import Context, ProjectionError, changed_one

#: 办件编码: node code, local date (YYYYMMDD), daily sequence.
CASE_NO = re.compile(r"^(\d{2,12})-(\d{4})(\d{2})(\d{2})-(\d{4,})$")


def need(body: Mapping[str, Any], key: str, kind: str) -> Any:
    """``body[key]``, or a :class:`ProjectionError` naming the field an old record lacks."""
    if key not in body:
        raise ProjectionError(f"{kind} carries no {key} (a record from before projection)")
    return body[key]


def case_id(conn: sqlite3.Connection, case_no: Any) -> int:
    row = conn.execute("SELECT id FROM cases WHERE case_no = ?", [str(case_no)]).fetchone()
    if row is None:
        raise ProjectionError(f"case {case_no} is not in the tables")
    return int(row[0])


def _case_no(ev: Mapping[str, Any]) -> str:
    return str(ev["body"].get("case_no") or ev["entity_id"])


def _opened(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b, kind = ev["body"], "case.opened"
    case_no = _case_no(ev)
    m = CASE_NO.match(case_no)
    if m is None:
        raise ProjectionError(f"case number {case_no!r} is not node-YYYYMMDD-sequence")
    node_code, y, mo, d, seq = m.groups()
    cid = int(need(b, "case_id", kind))
    conn.execute(
        """INSERT INTO cases (id, case_no, node_code, service_date, seq, kind, items,
             departments, state, id_enc, id_hash, id_masked, phone_enc, phone_masked, lang,
             preapplication_id, promised_days, statutory_days, created_at, created_by)
           VALUES (?,?,?,?,?,?,?,?, 'pending_materials', ?,?,?,?,?,?,?,?,?,?,?)""",
        [
            cid,
            case_no,
            node_code,
            f"{y}-{mo}-{d}",
            int(seq),
            b["kind"],
            json.dumps(b["items"]),
            json.dumps(b["departments"]),
            ctx.encrypted(b, "id"),
            b["id_hash"],
            b["id_masked"],
            ctx.encrypted(b, "phone"),
            b["phone_masked"],
            need(b, "lang", kind),
            b.get("preapplication_id"),
            int(need(b, "promised_days", kind)),
            int(need(b, "statutory_days", kind)),
            ev["at"],
            b["by"],
        ],
    )
    for pos, mat in enumerate(need(b, "materials", kind)):
        received = mat["state"] == "received"
        conn.execute(
            "INSERT INTO case_materials (case_id, code, name_zh, name_en, critical, position, "
            "state, received_at) VALUES (?,?,?,?,?,?,?,?)",
            [
                cid,
                mat["code"],
                mat["name_zh"],
                mat["name_en"],
                1 if mat["critical"] else 0,
                pos,
                mat["state"],
                ev["at"] if received else None,
            ],
        )


def _visit(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b, kind = ev["body"], "case.visit"
    conn.execute(
        "INSERT INTO case_visits (id, case_id, ticket_id, purpose, at, by, channel) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            int(need(b, "visit_id", kind)),
            case_id(conn, _case_no(ev)),
            b.get("ticket_id"),
            b["purpose"],
            ev["at"],
            b["by"],
            b.get("channel"),
        ],
    )


def _accepted(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE cases SET state = 'accepted', accepted_at = ?, accepted_date = ?, "
        "promised_deadline = ?, statutory_deadline = ?, commitment = ?, catch_up_date = ? "
        "WHERE case_no = ?",
        [
            ev["at"],
            b["accepted_date"],
            b["promised_deadline"],
            b["statutory_deadline"],
            1 if b.get("commitment") else 0,
            b.get("catch_up_date"),
            _case_no(ev),
        ],
    )
    changed_one(cur, f"case {_case_no(ev)}")


def _materials(
    conn: sqlite3.Connection, cid: int, codes: list[Any], state: str, at: str | None
) -> None:
    for code in codes:
        cur = conn.execute(
            "UPDATE case_materials SET state = ?, received_at = ? WHERE case_id = ? AND code = ?",
            [state, at, cid, code],
        )
        changed_one(cur, f"material {code} of case {cid}")


def _supplement_requested(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cid = case_id(conn, _case_no(ev))
    _materials(conn, cid, list(b.get("materials") or []), "requested", None)
    conn.execute(
        "UPDATE cases SET state = 'supplement', paused_at = ?, paused_date = ? WHERE id = ?",
        [ev["at"], b["paused_date"], cid],
    )


def _supplemented(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    """Materials in; from 补正 the review resumes with the deadlines moved by the paused
    working days.  From pending materials a ``case.accepted`` follows when they suffice; a
    容缺 catch-up changes the materials only."""
    b = ev["body"]
    cid = case_id(conn, _case_no(ev))
    _materials(conn, cid, list(b["received"]), "received", ev["at"])
    if b.get("from_state") == "supplement":
        conn.execute(
            "UPDATE cases SET state = 'accepted', paused_at = NULL, paused_date = NULL, "
            "paused_days = paused_days + ?, promised_deadline = ?, statutory_deadline = ? "
            "WHERE id = ?",
            [
                int(b.get("paused_workdays") or 0),
                b["promised_deadline"],
                b["statutory_deadline"],
                cid,
            ],
        )


def _approved(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE cases SET state = 'approved', outcome = 'approved', decided_at = ?, "
        "decided_date = ? WHERE case_no = ?",
        [ev["at"], b["decided_date"], _case_no(ev)],
    )
    changed_one(cur, f"case {_case_no(ev)}")


def _rejected(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE cases SET state = 'rejected', outcome = 'rejected', decided_at = ?, "
        "decided_date = ?, reject_reason = ? WHERE case_no = ?",
        [ev["at"], b["decided_date"], b.get("reason"), _case_no(ev)],
    )
    changed_one(cur, f"case {_case_no(ev)}")


def _result_ready(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute(
        "UPDATE cases SET state = 'result_ready', result_at = ? WHERE case_no = ?",
        [ev["at"], _case_no(ev)],
    )
    changed_one(cur, f"case {_case_no(ev)}")


def _handed_over(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE cases SET state = 'delivered', handed_over_at = ?, handover_method = ?, "
        "tracking = ? WHERE case_no = ?",
        [ev["at"], b["method"], b.get("tracking"), _case_no(ev)],
    )
    changed_one(cur, f"case {_case_no(ev)}")


def _file_attached(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b, kind = ev["body"], "case.file_attached"
    conn.execute(
        "INSERT INTO case_files (id, case_id, material, sha256, name, size, content_type, "
        "uploaded_at, uploaded_by) VALUES (?,?,?,?,?,?,?,?,?)",
        [
            int(b["file_id"]),
            case_id(conn, _case_no(ev)),
            b["material"],
            b["sha256"],
            need(b, "name", kind),
            int(b["size"]),
            b["content_type"],
            ev["at"],
            b["by"],
        ],
    )


PROJECTORS: dict[str, Any] = {
    "case.opened": _opened,
    "case.visit": _visit,
    "case.accepted": _accepted,
    "case.supplement_requested": _supplement_requested,
    "case.supplemented": _supplemented,
    "case.approved": _approved,
    "case.rejected": _rejected,
    "case.result_ready": _result_ready,
    "case.handed_over": _handed_over,
    "case.file_attached": _file_attached,
}
