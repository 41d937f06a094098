"""Cases (办件): intake at the window, review in the back office, results at one window.

A case is opened at the window from the ticket being served (or an online pre-application).
Its number (办件编码) is ``<node division code>-<local date>-<daily sequence>``, e.g.
``370102001-20261129-0007``: unique across the province without any coordination.

Intake compares the materials received with the catalog's checklist:

* nothing missing: the case is accepted (受理) at once;
* only non-critical materials missing and the citizen commits to bring them by a catch-up
  date no later than the promised deadline: accepted with missing materials (容缺受理);
* otherwise the case waits for materials (``pending_materials``), not accepted.

Whenever something is missing a one-time notice (一次性告知) listing *every* missing material
is issued (event ``case.notice_issued``).  Acceptance opens one review task per department of
the case's items; the tasks run in parallel.  The case is approved when every task approves,
rejected when one rejects; a request for supplementary materials (补正) pauses the deadline
clock until the citizen brings them to the window, and the deadlines move by the working days
paused.  Results are handed out at one window (统一出件): picked up or mailed.

Every change is written with an event in the same transaction; event bodies hold masks and
keyed hashes only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import sqlite3
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify, workdays
from node import tickets as tk
from node.clock import Now, iso, local_date, system_now
from node.config import NodeConfig
from node.pii import Pii
from onestop import identity
from onestop.errors import Conflict, Forbidden, Invalid, NotFound, invalid_fields
from onestop.i18n import lazy_gettext, lazy_pgettext

CASE_NO_RE = re.compile(r"^(\d{2,12})-(\d{8})-(\d{4,})$")
#: Item kinds that are cases of their own and never share a case with other kinds.
OWN_KINDS = ("consultation", "complaint")
OPEN_STATES = ("accepted", "supplement")  # the deadline clock concerns these
DECIDED_STATES = ("approved", "rejected", "result_ready", "delivered")
DECISIONS = ("approve", "reject", "supplement")
HANDOVER_METHODS = ("pickup", "mail")

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
    ),
    "mailed": lazy_gettext("【{center}】您的办件{case_no}结果已寄出，运单号{tracking}。"),
    "appointment": lazy_gettext(
        "【{center}】您已预约{date} {slot}办理业务，预约号{ref}，请按时到自助机签到取号。"
    ),
}

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _ref(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


def sms_text(template: str, lang: str, **fields: Any) -> str:
    return SMS_TEXTS[template].text(lang, **fields)


# --------------------------------------------------------------------------- catalog helpers


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


def _code_list(data: dict[str, Any], field: str, errors: dict[str, str]) -> list[str] | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors[field] = f"{field} must be a list of codes"
        return None
    return list(dict.fromkeys(value))


def _validate_items(
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


def _validate_materials(
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


def _names(materials: list[dict[str, Any]]) -> str:
    return ", ".join(f"{m['code']} ({m['name_zh']} / {m['name_en']})" for m in materials)


def _parse_date(value: Any, field: str) -> dt.date:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a date like 2026-10-12", field=field)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{field} must be a date like 2026-10-12, got {value!r}", field=field
        ) from None


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{field} must be an integer", field=field)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field} must be an integer", field=field) from None


# --------------------------------------------------------------------------- lookups


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


def visits(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    return dbm.rows(
        db,
        """SELECT v.id, v.purpose, v.at, v.by, t.ticket_no, t.service_date
          FROM case_visits v LEFT JOIN tickets t ON t.id = v.ticket_id
         WHERE v.case_id = ? ORDER BY v.id""",
        [case_id],
    )


def visit_count(db: sqlite_utils.Database, case_id: int) -> int:
    return int(
        db.execute("SELECT COUNT(*) FROM case_visits WHERE case_id = ?", [case_id]).fetchone()[0]
    )


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


def deadline(case: dict[str, Any], today: dt.date) -> dict[str, Any] | None:
    """Where the case stands against its promised deadline (None before acceptance).

    While the clock is paused (补正) the status is frozen at the day it stopped; a decided
    case reports whether it was decided on time.
    """
    if not case["promised_deadline"]:
        return None
    promised = dt.date.fromisoformat(case["promised_deadline"])
    statutory = dt.date.fromisoformat(case["statutory_deadline"])
    out: dict[str, Any] = {
        "promised": case["promised_deadline"],
        "statutory": case["statutory_deadline"],
        "paused_days": case["paused_days"],
    }
    if case["state"] in OPEN_STATES:
        paused = case["state"] == "supplement"
        as_of = dt.date.fromisoformat(case["paused_date"]) if paused else today
        out.update(
            {
                "running": not paused,
                "paused": paused,
                "as_of": as_of.isoformat(),
                "status": workdays.status(promised, as_of),
                "workdays_left": workdays.workdays_between(as_of, promised),
                "overdue_workdays": workdays.overdue_workdays(promised, as_of),
                "statutory_overdue": as_of > statutory,
            }
        )
    else:
        decided = dt.date.fromisoformat(case["decided_date"]) if case["decided_date"] else today
        out.update(
            {
                "running": False,
                "paused": False,
                "as_of": decided.isoformat(),
                "status": None,
                "on_time": decided <= promised,
                "statutory_overdue": decided > statutory,
            }
        )
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


# --------------------------------------------------------------------------- intake


def _ticket_at_window(
    db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any]
) -> dict[str, Any]:
    """The ticket being served now: called at a window or suspended there."""
    t = dbm.one(db, "SELECT * FROM tickets WHERE id = ?", [ticket_id])
    if t is None:
        raise Invalid(f"no ticket with id {ticket_id}", field="ticket_id")
    if t["state"] not in ("called", "suspended"):
        raise Conflict(
            f"ticket {t['ticket_no']} is {t['state']}: only a ticket called at a window or "
            "suspended there can be linked to a case",
            field="ticket_id",
        )
    if (
        user["role"] == "window"
        and user.get("window_id") is not None
        and t["window_id"] != user["window_id"]
    ):
        raise Forbidden(f"ticket {t['ticket_no']} is served at another window", field="ticket_id")
    return t


def _link_visit(
    conn: sqlite3.Connection,
    db: sqlite_utils.Database,
    case: dict[str, Any],
    ticket: dict[str, Any] | None,
    purpose: str,
    by: str,
    at: str,
) -> bool:
    """Record a visit; the same ticket linked twice is one visit.  True if new."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO case_visits (case_id, ticket_id, purpose, at, by) "
        "VALUES (?, ?, ?, ?, ?)",
        [case["id"], ticket["id"] if ticket else None, purpose, at, by],
    )
    if not cur.rowcount:
        return False
    events.append(
        conn,
        "case.visit",
        "case",
        case["case_no"],
        {
            "case_no": case["case_no"],
            "ticket_no": ticket["ticket_no"] if ticket else None,
            "purpose": purpose,
            "visits": visit_count(db, case["id"]),
            "by": by,
        },
        at=at,
    )
    return True


def _same_person(case: dict[str, Any], ticket: dict[str, Any]) -> None:
    if ticket["id_hash"] != case["id_hash"]:
        raise Conflict(
            f"ticket {ticket['ticket_no']} belongs to someone else ({ticket['id_masked']}); "
            f"case {case['case_no']} is for {case['id_masked']}",
            field="ticket_id",
        )


def _issue_notice(
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


def _accept(
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
    conn.execute(
        "UPDATE cases SET state = 'accepted', accepted_at = ?, accepted_date = ?, "
        "promised_deadline = ?, statutory_deadline = ?, commitment = ?, catch_up_date = ? "
        "WHERE id = ?",
        [
            at,
            today.isoformat(),
            promised.isoformat(),
            statutory.isoformat(),
            1 if commitment else 0,
            catch_up.isoformat() if catch_up else None,
            case["id"],
        ],
    )
    for pos, dept in enumerate(case["departments"]):
        cur = conn.execute(
            "INSERT INTO review_tasks (case_id, department, position, state, created_at) "
            "VALUES (?, ?, ?, 'pending', ?)",
            [case["id"], dept, pos, at],
        )
        events.append(
            conn,
            "review.opened",
            "review_task",
            int(cur.lastrowid or 0),
            {
                "case_no": case["case_no"],
                "task_id": int(cur.lastrowid or 0),
                "department": dept,
                "lead": pos == 0,
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


def _catch_up(data: dict[str, Any], today: dt.date, promised_days: int) -> tuple[dt.date, dt.date]:
    """The 容缺 catch-up date (default: the promised deadline) and the promised deadline."""
    promised = workdays.add_workdays(today, promised_days)
    raw = data.get("catch_up_date")
    if raw is None or raw == "":
        return promised, promised
    day = _parse_date(raw, "catch_up_date")
    if day < today:
        raise Invalid(f"catch_up_date {day} is in the past", field="catch_up_date")
    if day > promised:
        raise Invalid(
            f"catch_up_date {day} is after the promised deadline {promised} "
            f"({promised_days} working days): missing materials must be in before it",
            field="catch_up_date",
        )
    return day, promised


def _acceptance(
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
            f"missing critical material: {_names(critical)}",
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


def _preapplication(db: sqlite_utils.Database, ref: Any) -> dict[str, Any]:
    if isinstance(ref, int) and not isinstance(ref, bool):
        pre = dbm.one(db, "SELECT * FROM preapplications WHERE id = ?", [ref])
    elif isinstance(ref, str) and ref:
        pre = dbm.one(db, "SELECT * FROM preapplications WHERE ref = ?", [ref.strip().upper()])
    else:
        raise Invalid(
            "preapplication_id must be the reference of a pre-application",
            field="preapplication_id",
        )
    if pre is None:
        raise Invalid(f"no pre-application {ref}", field="preapplication_id")
    pre["items"] = json.loads(pre["items"])
    pre["materials"] = json.loads(pre["materials"])
    return pre


def _sealed_id(cfg: NodeConfig, pii: Pii | None, id_enc: str) -> dict[str, str]:
    if pii is None:
        return {}
    from sync.signer import seal_for_hub

    sealed = seal_for_hub(cfg, pii.decrypt(id_enc))
    return {"id_sealed": sealed} if sealed else {}


def intake(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
    pii: Pii | None = None,
) -> dict[str, Any]:
    """Open a case at the window; returns the new case row (see :func:`detail`).

    With ``pii`` and a hub sealing key, the ``case.opened`` event carries the full ID number
    sealed to the hub (``id_sealed``) so the hub can link a person's cases; relays can't read it.
    """
    errors: dict[str, str] = {}
    ticket_id = data.get("ticket_id")
    pre_ref = data.get("preapplication_id")
    if ticket_id is None and pre_ref is None:
        errors["ticket_id"] = (
            "give ticket_id (the ticket served at the window) or preapplication_id"
        )
    tid = None
    if ticket_id is not None:
        try:
            tid = _int(ticket_id, "ticket_id")
        except Invalid as exc:
            errors["ticket_id"] = exc.message
    pre = None
    if pre_ref is not None:
        try:
            pre = _preapplication(db, pre_ref)
        except Invalid as exc:
            errors["preapplication_id"] = exc.message
    item_codes = _code_list(data, "items", errors)
    if item_codes is None and pre is not None and "items" not in errors:
        item_codes = list(pre["items"])
    items = _validate_items(db, item_codes, errors)
    received = _code_list(data, "received", errors)
    if received is None and "received" not in errors:
        received = list(pre["materials"]) if pre is not None else []
    received = _validate_materials(received, items, "received", errors)
    if errors:
        raise invalid_fields(errors)

    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    check = checklist(items)
    got = set(received)
    gaps = [m for m in check if m["code"] not in got]
    promised_days = max(it["promised_days"] for it in items)
    statutory_days = max(it["statutory_days"] for it in items)
    accept, commitment, catch_up = _acceptance(gaps, data, today, promised_days)

    with dbm.tx(db) as conn:
        ticket = _ticket_at_window(db, tid, user) if tid is not None else None
        if pre is not None:
            pre = dbm.one(db, "SELECT * FROM preapplications WHERE id = ?", [pre["id"]])
            assert pre is not None
            if pre["state"] != "submitted":
                raise Conflict(
                    f"pre-application {pre['ref']} was already used for case {pre['case_no']}",
                    field="preapplication_id",
                )
            if ticket is not None and ticket["id_hash"] != pre["id_hash"]:
                raise Conflict(
                    f"ticket {ticket['ticket_no']} ({ticket['id_masked']}) and pre-application "
                    f"{pre['ref']} ({pre['id_masked']}) are for different people",
                    field="preapplication_id",
                )
        person = ticket if ticket is not None else pre
        assert person is not None
        lang = person["lang"] if person.get("lang") in ("zh", "en") else cfg.default_lang
        day = today.isoformat()
        seq = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM cases WHERE node_code = ? AND service_date = ?",
            [cfg.code, day],
        ).fetchone()[0]
        case_no = f"{cfg.code}-{today:%Y%m%d}-{seq:04d}"
        kind = items[0]["kind"]
        depts = departments_of(items)
        cur = conn.execute(
            """INSERT INTO cases (case_no, node_code, service_date, seq, kind, items,
                 departments, state, id_enc, id_hash, id_masked, phone_enc, phone_masked, lang,
                 preapplication_id, promised_days, statutory_days, created_at, created_by)
               VALUES (?,?,?,?,?,?,?, 'pending_materials', ?,?,?,?,?,?,?,?,?,?,?)""",
            [
                case_no,
                cfg.code,
                day,
                seq,
                kind,
                json.dumps([it["code"] for it in items]),
                json.dumps(depts),
                person["id_enc"],
                person["id_hash"],
                person["id_masked"],
                person["phone_enc"],
                person["phone_masked"],
                lang,
                pre["id"] if pre is not None else None,
                promised_days,
                statutory_days,
                at,
                user["username"],
            ],
        )
        case_id = int(cur.lastrowid or 0)
        for pos, m in enumerate(check):
            have = m["code"] in got
            conn.execute(
                "INSERT INTO case_materials (case_id, code, name_zh, name_en, critical, "
                "position, state, received_at) VALUES (?,?,?,?,?,?,?,?)",
                [
                    case_id,
                    m["code"],
                    m["name_zh"],
                    m["name_en"],
                    1 if m["critical"] else 0,
                    pos,
                    "received" if have else "missing",
                    at if have else None,
                ],
            )
        case = get(db, case_no)
        events.append(
            conn,
            "case.opened",
            "case",
            case_no,
            {
                "case_no": case_no,
                "kind": kind,
                "items": case["items"],
                "departments": depts,
                "id_masked": case["id_masked"],
                "id_hash": case["id_hash"],
                "phone_masked": case["phone_masked"],
                "ticket_no": ticket["ticket_no"] if ticket else None,
                "preapplication_id": pre["id"] if pre is not None else None,
                "received": [m["code"] for m in check if m["code"] in got],
                "missing": [m["code"] for m in gaps],
                "by": user["username"],
                **_sealed_id(cfg, pii, person["id_enc"]),
            },
            at=at,
        )
        _link_visit(conn, db, case, ticket, "intake", user["username"], at)
        if pre is not None:
            conn.execute(
                "UPDATE preapplications SET state = 'used', case_no = ?, used_at = ? WHERE id = ?",
                [case_no, at, pre["id"]],
            )
            events.append(
                conn,
                "preapplication.used",
                "preapplication",
                pre["id"],
                {"preapplication_id": pre["id"], "case_no": case_no},
                at=at,
            )
        if accept:
            _accept(
                conn,
                db,
                cfg,
                case,
                today,
                at,
                user["username"],
                commitment=commitment,
                catch_up=catch_up,
            )
        if gaps:
            _issue_notice(
                conn,
                case,
                "intake",
                gaps,
                at,
                accepted=accept,
                catch_up_date=catch_up.isoformat() if catch_up else None,
            )
    return get(db, case_no)


# --------------------------------------------------------------------------- supplement


def supplement(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Materials brought to the window on a later visit (or the same one).

    * ``supplement`` (补正): every requested material must come; the review resumes and the
      deadlines move by the working days the clock was paused.
    * ``pending_materials``: the materials are recorded; the case is accepted when nothing
      is missing, or with 容缺 when only non-critical ones are and the citizen commits;
      otherwise a new notice lists what is still missing.
    * ``accepted`` or ``approved`` with 容缺 materials outstanding: they are recorded (the
      result of an approved case waits for them).
    """
    errors: dict[str, str] = {}
    tid = None
    if data.get("ticket_id") is not None:
        try:
            tid = _int(data["ticket_id"], "ticket_id")
        except Invalid as exc:
            errors["ticket_id"] = exc.message
    received = _code_list(data, "received", errors)
    if received is None and "received" not in errors:
        errors["received"] = "received is required: the codes of the materials brought"
    if errors:
        raise invalid_fields(errors)
    assert received is not None
    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        mats = {m["code"]: m for m in materials(db, case["id"])}
        unknown = [c for c in received if c not in mats]
        if unknown:
            raise Invalid(
                f"material {', '.join(unknown)} is not on the checklist of case {case_no}",
                field="received",
            )
        outstanding = [m for m in mats.values() if m["state"] != "received"]
        if case["state"] in ("accepted", "approved") and not outstanding:
            raise Conflict(
                f"case {case_no} is {case['state']} with every material in; "
                "materials are supplemented when a department asks (补正)",
                field="state",
            )
        if case["state"] not in ("supplement", "pending_materials", "accepted", "approved"):
            raise Conflict(
                f"case {case_no} is {case['state']}: there is nothing to supplement", field="state"
            )
        if case["state"] == "supplement":
            requested = [m for m in mats.values() if m["state"] == "requested"]
            lacking = [m for m in requested if m["code"] not in received]
            if lacking:
                raise Invalid(
                    f"requested material still missing: {_names(lacking)}", field="received"
                )
        if not received:
            raise Invalid("received needs at least one material code", field="received")
        ticket = _ticket_at_window(db, tid, user) if tid is not None else None
        if ticket is not None:
            _same_person(case, ticket)
        for code in received:
            conn.execute(
                "UPDATE case_materials SET state = 'received', received_at = ? "
                "WHERE case_id = ? AND code = ?",
                [at, case["id"], code],
            )
        _link_visit(conn, db, case, ticket, "supplement", user["username"], at)
        still = missing(db, case["id"])
        body: dict[str, Any] = {
            "case_no": case_no,
            "received": received,
            "still_missing": [m["code"] for m in still],
            "ticket_no": ticket["ticket_no"] if ticket else None,
            "by": user["username"],
            "from_state": case["state"],
        }
        if case["state"] == "supplement":
            paused = max(
                0, workdays.workdays_between(dt.date.fromisoformat(case["paused_date"]), today)
            )
            promised = workdays.add_workdays(
                dt.date.fromisoformat(case["promised_deadline"]), paused
            )
            statutory = workdays.add_workdays(
                dt.date.fromisoformat(case["statutory_deadline"]), paused
            )
            conn.execute(
                "UPDATE cases SET state = 'accepted', paused_at = NULL, paused_date = NULL, "
                "paused_days = paused_days + ?, promised_deadline = ?, statutory_deadline = ? "
                "WHERE id = ?",
                [paused, promised.isoformat(), statutory.isoformat(), case["id"]],
            )
            for task in dbm.rows(
                db,
                "SELECT id, department FROM review_tasks "
                "WHERE case_id = ? AND state = 'supplement'",
                [case["id"]],
            ):
                conn.execute(
                    "UPDATE review_tasks SET state = 'pending', decided_by = NULL, "
                    "decided_at = NULL WHERE id = ?",
                    [task["id"]],
                )
                events.append(
                    conn,
                    "review.reopened",
                    "review_task",
                    task["id"],
                    {"case_no": case_no, "task_id": task["id"], "department": task["department"]},
                    at=at,
                )
            body.update(
                {
                    "paused_workdays": paused,
                    "promised_deadline": promised.isoformat(),
                    "statutory_deadline": statutory.isoformat(),
                    "state": "accepted",
                }
            )
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
        elif case["state"] == "pending_materials":
            accept, commitment, catch_up = _acceptance(still, data, today, case["promised_days"])
            body["state"] = "accepted" if accept else "pending_materials"
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
            if accept:
                _accept(
                    conn,
                    db,
                    cfg,
                    case,
                    today,
                    at,
                    user["username"],
                    commitment=commitment,
                    catch_up=catch_up,
                )
            if still:
                _issue_notice(
                    conn,
                    case,
                    "still_missing",
                    still,
                    at,
                    accepted=accept,
                    catch_up_date=catch_up.isoformat() if catch_up else None,
                )
        else:  # accepted or approved: 容缺 materials caught up
            body["state"] = case["state"]
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
    return get(db, case_no)


# --------------------------------------------------------------------------- review


def decide(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    department: str,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """A department's decision on its review task: approve, reject or supplement (补正)."""
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
    wanted = _code_list(data, "materials", errors) or []
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
        state = {"approve": "approved", "reject": "rejected", "supplement": "supplement"}[decision]
        conn.execute(
            "UPDATE review_tasks SET state = ?, reason = ?, decided_by = ?, "
            "decided_at = ? WHERE id = ?",
            [state, reason or None, user["username"], at, task["id"]],
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
                conn.execute(
                    "UPDATE cases SET state = 'approved', outcome = 'approved', "
                    "decided_at = ?, decided_date = ? WHERE id = ?",
                    [at, today.isoformat(), case["id"]],
                )
                events.append(
                    conn,
                    "case.approved",
                    "case",
                    case_no,
                    {
                        "case_no": case_no,
                        "decided_date": today.isoformat(),
                        "on_time": today <= dt.date.fromisoformat(case["promised_deadline"]),
                    },
                    at=at,
                )
        elif decision == "reject":
            for other in dbm.rows(
                db,
                "SELECT id, department FROM review_tasks WHERE case_id = ? AND state = 'pending'",
                [case["id"]],
            ):
                conn.execute(
                    "UPDATE review_tasks SET state = 'cancelled' WHERE id = ?", [other["id"]]
                )
                events.append(
                    conn,
                    "review.cancelled",
                    "review_task",
                    other["id"],
                    {"case_no": case_no, "task_id": other["id"], "department": other["department"]},
                    at=at,
                )
            conn.execute(
                "UPDATE cases SET state = 'rejected', outcome = 'rejected', "
                "decided_at = ?, decided_date = ?, reject_reason = ? WHERE id = ?",
                [at, today.isoformat(), reason, case["id"]],
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
                    "on_time": today <= dt.date.fromisoformat(case["promised_deadline"]),
                },
                at=at,
            )
        else:
            for code in wanted:
                conn.execute(
                    "UPDATE case_materials SET state = 'requested', received_at = NULL "
                    "WHERE case_id = ? AND code = ?",
                    [case["id"], code],
                )
            conn.execute(
                "UPDATE cases SET state = 'supplement', paused_at = ?, paused_date = ? "
                "WHERE id = ?",
                [at, today.isoformat(), case["id"]],
            )
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
            _issue_notice(conn, case, "supplement", requested, at, accepted=True, note=reason)
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
                    reason=reason[:200],
                ),
                case_id=case["id"],
                case_no=case_no,
                at=at,
            )
    return get(db, case_no)


# --------------------------------------------------------------------------- results


def result_ready(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """The result (licence or decision) has reached the results window (统一出件)."""
    at = iso(now())
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        if case["state"] not in ("approved", "rejected"):
            raise Conflict(
                f"case {case_no} is {case['state']}: a result is ready only after "
                "the case is approved or rejected",
                field="state",
            )
        if case["outcome"] == "approved":
            gaps = missing(db, case["id"])
            if gaps:
                raise Conflict(
                    f"case {case_no} still lacks the materials promised under 容缺受理 "
                    f"(due {case['catch_up_date']}): {_names(gaps)}",
                    field="materials",
                )
        conn.execute(
            "UPDATE cases SET state = 'result_ready', result_at = ? WHERE id = ?", [at, case["id"]]
        )
        events.append(
            conn,
            "case.result_ready",
            "case",
            case_no,
            {"case_no": case_no, "outcome": case["outcome"], "by": user["username"]},
            at=at,
        )
        notify.queue(
            conn,
            case["phone_enc"],
            case["phone_masked"],
            "result_ready",
            sms_text("result_ready", case["lang"], center=cfg.name, case_no=case_no),
            case_id=case["id"],
            case_no=case_no,
            at=at,
        )
    return get(db, case_no)


def handover(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Hand the result over: picked up at the window (a visit) or mailed (no visit)."""
    method = data.get("method")
    if method not in HANDOVER_METHODS:
        raise Invalid("method must be pickup or mail", field="method")
    tracking = data.get("tracking")
    if tracking is not None and not isinstance(tracking, str):
        raise Invalid("tracking must be text", field="tracking")
    tracking = (tracking or "").strip() or None
    if method == "mail" and not tracking:
        raise Invalid(
            "tracking (the mail tracking number) is required to mail a result", field="tracking"
        )
    if tracking and len(tracking) > 64:
        raise Invalid("tracking is longer than 64 characters", field="tracking")
    tid = _int(data["ticket_id"], "ticket_id") if data.get("ticket_id") is not None else None
    if method == "mail" and tid is not None:
        raise Invalid("ticket_id applies to pickup at the window, not to mail", field="ticket_id")
    at = iso(now())
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        if case["state"] != "result_ready":
            raise Conflict(
                f"case {case_no} is {case['state']}: only a ready result can be handed over",
                field="state",
            )
        ticket = _ticket_at_window(db, tid, user) if tid is not None else None
        if ticket is not None:
            _same_person(case, ticket)
        conn.execute(
            "UPDATE cases SET state = 'delivered', handed_over_at = ?, "
            "handover_method = ?, tracking = ? WHERE id = ?",
            [at, method, tracking, case["id"]],
        )
        if method == "pickup":
            _link_visit(conn, db, case, ticket, "pickup", user["username"], at)
        events.append(
            conn,
            "case.handed_over",
            "case",
            case_no,
            {
                "case_no": case_no,
                "method": method,
                "tracking": tracking,
                "ticket_no": ticket["ticket_no"] if ticket else None,
                "visits": visit_count(db, case["id"]),
                "by": user["username"],
            },
            at=at,
        )
        if method == "mail":
            notify.queue(
                conn,
                case["phone_enc"],
                case["phone_masked"],
                "mailed",
                sms_text(
                    "mailed", case["lang"], center=cfg.name, case_no=case_no, tracking=tracking
                ),
                case_id=case["id"],
                case_no=case_no,
                at=at,
            )
    return get(db, case_no)


# --------------------------------------------------------------------------- identity


def view_identity(
    db: sqlite_utils.Database,
    pii: Pii,
    case_no: str,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """The full ID and phone number for checking at intake; the viewing is logged."""
    at = iso(now())
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        events.append(
            conn,
            "case.identity_viewed",
            "case",
            case_no,
            {
                "case_no": case_no,
                "id_masked": case["id_masked"],
                "by": user["username"],
                "role": user["role"],
            },
            at=at,
        )
    return {
        "case_no": case_no,
        "id_number": pii.decrypt(case["id_enc"]),
        "phone": pii.decrypt(case["phone_enc"]),
        "id_masked": case["id_masked"],
        "phone_masked": case["phone_masked"],
    }


# --------------------------------------------------------------------------- files


def attach_file(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    material: str,
    content: bytes,
    name: str,
    content_type: str,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Store a scan of a material by its SHA-256 under ``DATA/files/`` and attach it."""
    import hashlib
    import os

    if not content:
        raise Invalid("the file is empty", field="file")
    case = get(db, case_no)
    if (
        dbm.one(
            db,
            "SELECT 1 AS x FROM case_materials WHERE case_id = ? AND code = ?",
            [case["id"], material],
        )
        is None
    ):
        raise NotFound(
            f"material {material} is not on the checklist of case {case_no}", field="material"
        )
    sha = hashlib.sha256(content).hexdigest()
    path = file_path(cfg, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    name = (name or "file").replace("/", "_").replace("\\", "_")[:200]
    content_type = (content_type or "application/octet-stream")[:100]
    at = iso(now())
    with dbm.tx(db) as conn:
        cur = conn.execute(
            "INSERT INTO case_files (case_id, material, sha256, name, size, content_type, "
            "uploaded_at, uploaded_by) VALUES (?,?,?,?,?,?,?,?)",
            [case["id"], material, sha, name, len(content), content_type, at, user["username"]],
        )
        fid = int(cur.lastrowid or 0)
        events.append(
            conn,
            "case.file_attached",
            "case",
            case_no,
            {
                "case_no": case_no,
                "file_id": fid,
                "material": material,
                "sha256": sha,
                "size": len(content),
                "content_type": content_type,
                "by": user["username"],
            },
            at=at,
        )
    row = dbm.one(db, "SELECT * FROM case_files WHERE id = ?", [fid])
    assert row is not None
    row.pop("case_id")
    return row


def file_path(cfg: NodeConfig, sha: str) -> Any:
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise NotFound("no such file", field="sha256")
    return cfg.data_dir / "files" / sha[:2] / sha


# --------------------------------------------------------------------------- notices


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


# --------------------------------------------------------------------------- citizen status


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
    import hmac

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


# --------------------------------------------------------------------------- lists


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
    from node import ratings

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
        """SELECT c.id, (SELECT COUNT(*) FROM case_visits v
            WHERE v.case_id = c.id) AS n FROM cases c WHERE c.state = 'delivered'""",
    )
    completed = len(done)
    one_visit = sum(1 for d in done if d["n"] <= 1)
    total_visits = int(db.execute("SELECT COUNT(*) FROM case_visits").fetchone()[0])
    return {
        "date": today.isoformat(),
        "warn_workdays": workdays.WARN_WORKDAYS,
        "cases": {"total": sum(by_state.values()), "by_state": by_state},
        "deadlines": {**by_status, "open": sum(by_status.values()), "paused": paused},
        "overdue": overdue,
        "visits": {
            "total": total_visits,
            "completed_cases": completed,
            "at_most_one_visit": one_visit,
            "at_most_one_visit_share": round(one_visit / completed, 4) if completed else None,
            "average_per_completed_case": (
                round(sum(d["n"] for d in done) / completed, 2) if completed else None
            ),
        },
        "ratings": ratings.figures(db, cfg, now),
    }


# --------------------------------------------------------------------------- pre-applications


def preapply(
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
    items = _validate_items(db, _code_list(data, "items", errors), errors)
    provided = _code_list(data, "materials", errors)
    provided = _validate_materials(provided or [], items, "materials", errors)
    if errors:
        raise invalid_fields(errors)
    at = iso(t)
    with dbm.tx(db) as conn:
        ref = _ref("P")
        cur = conn.execute(
            """INSERT INTO preapplications (ref, items, materials, id_enc, id_hash, id_masked,
                 phone_enc, phone_masked, state, lang, created_at)
               VALUES (?,?,?,?,?,?,?,?, 'submitted', ?, ?)""",
            [
                ref,
                json.dumps([it["code"] for it in items]),
                json.dumps(provided),
                pii.encrypt(id_number),
                pii.keyed_hash(id_number),
                identity.mask_id(id_number),
                pii.encrypt(phone),
                identity.mask_phone(phone),
                lang,
                at,
            ],
        )
        pid = int(cur.lastrowid or 0)
        events.append(
            conn,
            "preapplication.submitted",
            "preapplication",
            pid,
            {
                "preapplication_id": pid,
                "items": [it["code"] for it in items],
                "materials": provided,
                "id_masked": identity.mask_id(id_number),
            },
            at=at,
        )
    return preapplication_public(db, ref)


def preapplication_public(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- appointments

#: Bookable slot start times (local time); each slot is half an hour.
SLOTS = (
    "09:00",
    "09:30",
    "10:00",
    "10:30",
    "11:00",
    "11:30",
    "13:30",
    "14:00",
    "14:30",
    "15:00",
    "15:30",
    "16:00",
    "16:30",
)
#: Appointments per queue and slot unless meta ``appointments.slot_capacity`` says otherwise.
SLOT_CAPACITY = 4
#: How many calendar days ahead one may book.
BOOK_AHEAD_DAYS = 14


def slot_capacity(db: sqlite_utils.Database) -> int:
    raw = dbm.get_meta(db, "appointments.slot_capacity")
    try:
        return int(raw) if raw is not None else SLOT_CAPACITY
    except ValueError:
        return SLOT_CAPACITY


def slots(
    db: sqlite_utils.Database, cfg: NodeConfig, queue: str, date: str, now: Now = system_now
) -> dict[str, Any]:
    if tk.get_queue(db, queue) is None:
        raise Invalid(f"no open queue with code {queue!r}", field="queue")
    day = _parse_date(date, "date")
    cap = slot_capacity(db)
    taken = {
        r["slot"]: r["n"]
        for r in dbm.rows(
            db,
            "SELECT slot, COUNT(*) AS n FROM appointments WHERE queue = ? AND date = ? "
            "AND state != 'cancelled' GROUP BY slot",
            [queue, day.isoformat()],
        )
    }
    bookable = _bookable_day(cfg, day, now) is None
    out = []
    for s in SLOTS:
        ok = bookable and _slot_error(cfg, day, s, now) is None
        out.append(
            {
                "slot": s,
                "capacity": cap,
                "booked": taken.get(s, 0),
                "available": max(0, cap - taken.get(s, 0)) if ok else 0,
            }
        )
    return {
        "queue": queue,
        "date": day.isoformat(),
        "workday": workdays.is_workday(day),
        "slots": out,
    }


def _bookable_day(cfg: NodeConfig, day: dt.date, now: Now) -> str | None:
    today = local_date(now(), cfg.timezone)
    if day < today:
        return f"{day} is in the past"
    if day > today + dt.timedelta(days=BOOK_AHEAD_DAYS):
        return f"appointments open at most {BOOK_AHEAD_DAYS} days ahead"
    if not workdays.is_workday(day):
        return f"{day} is not a working day"
    return None


def _slot_error(cfg: NodeConfig, day: dt.date, slot: str, now: Now) -> str | None:
    if slot not in SLOTS:
        return f"slot must be one of {', '.join(SLOTS)}"
    from zoneinfo import ZoneInfo

    local = now().astimezone(ZoneInfo(cfg.timezone))
    if day == local.date() and slot <= local.strftime("%H:%M"):
        return f"slot {slot} today has already begun"
    return None


def book(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Book an appointment (预约) in a queue's half-hour slot, within its capacity."""
    t = now()
    today = local_date(t, cfg.timezone)
    errors: dict[str, str] = {}
    queue = str(data.get("queue") or "").strip()
    if not queue:
        errors["queue"] = "queue is required"
    elif tk.get_queue(db, queue) is None:
        errors["queue"] = f"no open queue with code {queue!r}"
    day = None
    try:
        day = _parse_date(data.get("date"), "date")
        bad = _bookable_day(cfg, day, now)
        if bad:
            errors["date"] = bad
    except Invalid as exc:
        errors["date"] = exc.message
    slot = data.get("slot")
    if not isinstance(slot, str) or slot not in SLOTS:
        errors["slot"] = f"slot must be one of {', '.join(SLOTS)}"
    elif day is not None and "date" not in errors:
        bad = _slot_error(cfg, day, slot, now)
        if bad:
            errors["slot"] = bad
    id_number, phone, lang = identity.person_fields(data, today, errors, cfg.default_lang)
    if errors:
        raise invalid_fields(errors)
    assert day is not None and isinstance(slot, str)
    at = iso(t)
    id_hash = pii.keyed_hash(id_number)
    with dbm.tx(db) as conn:
        if conn.execute(
            "SELECT 1 FROM appointments WHERE queue = ? AND date = ? AND "
            "id_hash = ? AND state = 'booked'",
            [queue, day.isoformat(), id_hash],
        ).fetchone():
            raise Conflict(
                f"this person already has an appointment in {queue} on {day}", field="date"
            )
        n = conn.execute(
            "SELECT COUNT(*) FROM appointments WHERE queue = ? AND date = ? AND "
            "slot = ? AND state != 'cancelled'",
            [queue, day.isoformat(), slot],
        ).fetchone()[0]
        cap = slot_capacity(db)
        if n >= cap:
            raise Conflict(
                f"slot {slot} on {day} is full ({cap} appointments); pick another", field="slot"
            )
        ref = _ref("Y")
        phone_enc = pii.encrypt(phone)
        cur = conn.execute(
            """INSERT INTO appointments (ref, queue, date, slot, id_enc, id_hash, id_masked,
                 phone_enc, phone_masked, state, lang, created_at)
               VALUES (?,?,?,?,?,?,?,?,?, 'booked', ?, ?)""",
            [
                ref,
                queue,
                day.isoformat(),
                slot,
                pii.encrypt(id_number),
                id_hash,
                identity.mask_id(id_number),
                phone_enc,
                identity.mask_phone(phone),
                lang,
                at,
            ],
        )
        aid = int(cur.lastrowid or 0)
        events.append(
            conn,
            "appointment.booked",
            "appointment",
            aid,
            {
                "appointment_id": aid,
                "queue": queue,
                "date": day.isoformat(),
                "slot": slot,
                "id_masked": identity.mask_id(id_number),
            },
            at=at,
        )
        notify.queue(
            conn,
            phone_enc,
            identity.mask_phone(phone),
            "appointment",
            sms_text(
                "appointment", lang, center=cfg.name, date=day.isoformat(), slot=slot, ref=ref
            ),
            at=at,
        )
    return appointment_public(db, ref)


def _appointment(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM appointments WHERE ref = ?", [ref.strip().upper()])
    if row is None:
        raise NotFound("no appointment with this reference", field="ref")
    return row


def appointment_public(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
    a = _appointment(db, ref)
    ticket = None
    if a["ticket_id"]:
        ticket = dbm.one(db, "SELECT ticket_no, token FROM tickets WHERE id = ?", [a["ticket_id"]])
    return {
        "ref": a["ref"],
        "queue": a["queue"],
        "date": a["date"],
        "slot": a["slot"],
        "state": a["state"],
        "created_at": a["created_at"],
        "checked_in_at": a["checked_in_at"],
        "ticket_no": ticket["ticket_no"] if ticket else None,
        "token": ticket["token"] if ticket else None,
    }


def check_in(
    db: sqlite_utils.Database, cfg: NodeConfig, pii: Pii, ref: str, now: Now = system_now
) -> tk.Issued:
    """Check in at the kiosk on the day: issues a priority ticket in the booked queue."""
    t = now()
    today = local_date(t, cfg.timezone).isoformat()
    at = iso(t)
    with dbm.tx(db) as conn:
        a = _appointment(db, ref)
        if a["state"] != "booked":
            raise Conflict(f"appointment {a['ref']} is {a['state'].replace('_', ' ')}", field="ref")
        if a["date"] != today:
            raise Conflict(
                f"appointment {a['ref']} is for {a['date']}, not today ({today})", field="ref"
            )
        issued = tk.issue(
            db,
            cfg,
            pii,
            {
                "queue": a["queue"],
                "id_number": pii.decrypt(a["id_enc"]),
                "phone": pii.decrypt(a["phone_enc"]),
                "lang": a["lang"],
                "appointment": True,
            },
            now,
        )
        conn.execute(
            "UPDATE appointments SET state = 'checked_in', ticket_id = ?, "
            "checked_in_at = ? WHERE id = ?",
            [issued.ticket["id"], at, a["id"]],
        )
        events.append(
            conn,
            "appointment.checked_in",
            "appointment",
            a["id"],
            {
                "appointment_id": a["id"],
                "ticket_no": issued.ticket["ticket_no"],
                "queue": a["queue"],
            },
            at=at,
        )
    return issued


def cancel_appointment(
    db: sqlite_utils.Database, ref: str, now: Now = system_now
) -> dict[str, Any]:
    at = iso(now())
    with dbm.tx(db) as conn:
        a = _appointment(db, ref)
        if a["state"] != "booked":
            raise Conflict(f"appointment {a['ref']} is {a['state'].replace('_', ' ')}", field="ref")
        conn.execute(
            "UPDATE appointments SET state = 'cancelled', cancelled_at = ? WHERE id = ?",
            [at, a["id"]],
        )
        events.append(
            conn,
            "appointment.cancelled",
            "appointment",
            a["id"],
            {"appointment_id": a["id"]},
            at=at,
        )
    return appointment_public(db, ref)


def list_appointments(db: sqlite_utils.Database, date: str) -> list[dict[str, Any]]:
    rows = dbm.rows(
        db,
        "SELECT a.id, a.ref, a.queue, a.date, a.slot, a.state, a.id_masked, "
        "a.phone_masked, a.created_at, a.checked_in_at, t.ticket_no "
        "FROM appointments a LEFT JOIN tickets t ON t.id = a.ticket_id "
        "WHERE a.date = ? ORDER BY a.slot, a.id",
        [date],
    )
    return rows
