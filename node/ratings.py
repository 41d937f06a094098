"""Ratings (好差评) after each visit and each case, and follow-ups of the bad ones.

Levels follow the national 好差评 scale, higher is better::

    5 非常满意  very satisfied      2 不满意     dissatisfied
    4 满意      satisfied           1 非常不满意 very dissatisfied
    3 基本满意  basically satisfied

A visit is rated with its ticket's token (printed on the ticket and in its QR code, so only
its holder has it), a case with its number and its rating code (:func:`case_code`: twelve
characters keyed with the node's secret, sent to the applicant in the result SMS).  The last
four digits of the phone rate nothing: ten thousand guesses would find them.  Each visit and
each case is rated once (一次一评, 一事一评).  A bad rating (levels 2 and 1) names its reason
(:data:`REASONS`) and opens a follow-up (差评回访整改): the citizen is called back (回访)
within ``followup_callback_workdays`` and the cause fixed (整改) within
``followup_fix_workdays`` working days (node settings, 1 and 5 by default).  The rated clerk
may appeal (申诉复核); an administrator upholds the appeal (the rating leaves the figures,
:func:`sync.figures.counts_in_figures`) or rejects it.  Once the fix is recorded the citizen
may rate the same service once more (追评), with the same ticket token or case code.

Where a rating comes from: the window's evaluator (``/rate/window/{n}``, which polls
:func:`prompt`), the QR code of a ticket or notice and the link in the result SMS
(:func:`rating_path_visit`, :func:`rating_path_case`), or the kiosk.

Every change is an event (``rating.given``, ``followup.opened``, ``followup.called_back``,
``followup.closed``, ``rating.appealed``, ``rating.appeal_decided``, ``rating.followed_up``;
:mod:`node.projectors.ratings`), so comments and notes are kept as the events carry them:
with any phone or ID number in them masked.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlite_utils

from node import db as dbm
from node import events, notify, numbers, workdays
from node.config import NodeConfig
from node.pii import Pii
from node.tickets import REF_ALPHABET
from onestop.clock import Now, iso, local_date, parse, system_now
from onestop.errors import Conflict, Forbidden, Invalid, NotFound
from onestop.i18n import LazyText, lazy_gettext
from sync import figures as rules

LEVELS: dict[int, LazyText] = {
    5: lazy_gettext("非常满意"),
    4: lazy_gettext("满意"),
    3: lazy_gettext("基本满意"),
    2: lazy_gettext("不满意"),
    1: lazy_gettext("非常不满意"),
}
#: Levels that open a follow-up.
BAD_LEVELS = rules.BAD_LEVELS
#: Reasons of a bad rating (GB/T 39734-2020's categories), code -> name.
REASONS: dict[str, LazyText] = {
    "attitude": lazy_gettext("服务态度"),
    "efficiency": lazy_gettext("办事效率"),
    "process": lazy_gettext("办事流程"),
    "materials": lazy_gettext("材料要求"),
    "information": lazy_gettext("信息公开/告知"),
    "system": lazy_gettext("系统/设备"),
    "other": lazy_gettext("其他"),
}
#: Where a rating came from, code -> name.
CHANNELS: dict[str, LazyText] = {
    "window": lazy_gettext("窗口评价器"),
    "qr": lazy_gettext("扫码评价"),
    "sms": lazy_gettext("短信评价"),
    "kiosk": lazy_gettext("自助终端"),
}
#: A follow-up's state as the export and the staff page name it.
FOLLOWUP_STATES: dict[str, LazyText] = {
    "none": lazy_gettext("无需回访"),
    "open": lazy_gettext("待回访"),
    "called_back": lazy_gettext("已回访，待整改"),
    "closed": lazy_gettext("已整改"),
}
APPEAL_STATES: dict[str, LazyText] = {
    "open": lazy_gettext("申诉待复核"),
    "upheld": lazy_gettext("申诉成立"),
    "rejected": lazy_gettext("申诉驳回"),
}
APPEAL_DECISIONS = ("upheld", "rejected")
#: Seconds a window's evaluator offers a service for rating (also ended by the next call).
PROMPT_SECONDS = 180
MAX_COMMENT = 500
MAX_NOTE = 2000
#: Characters of a case's rating code (60 bits), shown in groups of four: ``K7QM-2ZP4-XWHD``.
CODE_LENGTH = 12
_CODE_RE = re.compile(f"[{REF_ALPHABET}]{{{CODE_LENGTH}}}")
#: Where a case's rating code comes from, for the error that asks for it.
CODE_HINT = (
    "rate a case with case_no and rating_token, the rating code in the applicant's "
    "result SMS; rate a visit with token, the ticket's token"
)


def case_code(pii: Pii, case_no: str) -> str:
    """The rating code of a case: the node's keyed hash of its number, in twelve letters and
    digits (no 0/O, 1/I).  Nothing is stored: the code is derived again to check it."""
    n = int(pii.keyed_hash("case-rating:" + case_no)[:15], 16)
    return "".join(REF_ALPHABET[(n >> (5 * i)) & 31] for i in range(CODE_LENGTH))


def shown_code(code: str) -> str:
    """A rating code as printed and texted: groups of four (``K7QM-2ZP4-XWHD``), which also
    keeps any run of digits far from the length of a phone or ID number."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _given_code(value: Any) -> str:
    """A rating code as typed (any case, with or without the dashes and spaces), or the 422."""
    raw = value if isinstance(value, str) else ""
    code = re.sub(r"[\s-]", "", raw).upper()
    if not _CODE_RE.fullmatch(code):
        raise Invalid(
            f"rating_token must be the case's {CODE_LENGTH}-character rating code, "
            "e.g. K7QM-2ZP4-XWHD",
            field="rating_token",
            hint=CODE_HINT,
        )
    return code


def rating_path_visit(token: str) -> str:
    """The path of a visit's rating page (the ticket's QR code): ``/rate/t/{token}``."""
    return "/rate/t/" + quote(token, safe="")


def rating_path_case(case_no: str, code: str) -> str:
    """The path of a case's rating page (notices, the result SMS):
    ``/rate/c/{case_no}?code=K7QM-2ZP4-XWHD``."""
    return f"/rate/c/{quote(case_no, safe='')}?code={quote(shown_code(code), safe='-')}"


def rating_link(cfg: NodeConfig, path: str, base: str = "") -> str:
    """``path`` as a full link: under ``public_url``, else under ``base`` (the address of the
    request, ``http://host``); the bare path when there is neither."""
    return cfg.public_link(path) or (base.rstrip("/") + path)


def level_names(level: int) -> dict[str, Any]:
    name = LEVELS[level]
    return {"level": level, "level_name_zh": name.text("zh"), "level_name_en": name.text("en")}


def _note(value: Any, field: str, what: str, limit: int = MAX_NOTE) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required: {what}", field=field)
    text = value.strip()
    if len(text) > limit:
        raise Invalid(f"{field} is longer than {limit} characters", field=field)
    return text


def _level(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise Invalid("level must be 1 (非常不满意) to 5 (非常满意)", field="level")
    return value


def _comment(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise Invalid("comment must be text", field="comment")
    comment = (value or "").strip()
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment is longer than {MAX_COMMENT} characters", field="comment")
    return comment


def _reason(value: Any, level: int) -> str | None:
    """The reason of a bad rating (required), None for the others."""
    if level not in BAD_LEVELS:
        return None
    if value is None or value == "":
        raise Invalid(
            lazy_gettext("请选择不满意的原因"),
            field="reason",
            hint="a rating of 2 or 1 names its reason: " + ", ".join(REASONS),
        )
    if value not in REASONS:
        raise Invalid("reason must be one of " + ", ".join(REASONS), field="reason")
    return str(value)


def _channel(value: Any, default: str) -> str:
    if value is None:
        return default
    if value not in CHANNELS:
        raise Invalid("channel must be one of " + ", ".join(CHANNELS), field="channel")
    return str(value)


def _check_target(data: dict[str, Any]) -> tuple[Any, Any, str]:
    if data.get("phone_last4") is not None:
        raise Invalid(
            "phone_last4 no longer rates a case: send rating_token, the rating code in the "
            "result SMS, with case_no",
            field="phone_last4",
            hint=CODE_HINT,
        )
    case_no, token = data.get("case_no"), data.get("token")
    if (case_no is None) == (token is None):
        raise Invalid(
            "give exactly one of case_no (with rating_token) or token (a ticket)",
            field="case_no",
            hint=CODE_HINT,
        )
    code = _given_code(data.get("rating_token")) if case_no is not None else ""
    return case_no, token, code


def _given(data: dict[str, Any]) -> tuple[Any, Any, str, int, str, str]:
    """What a rating request names (case number, token, code) and gives (level, comment,
    channel: default qr for a visit, sms for a case), checked."""
    case_no, token, code = _check_target(data)
    level = _level(data.get("level"))
    comment = _comment(data.get("comment"))
    channel = _channel(data.get("channel"), "qr" if token is not None else "sms")
    return case_no, token, code, level, comment, channel


def find_case(db: sqlite_utils.Database, pii: Pii, case_no: str, code: str) -> dict[str, Any]:
    """The case with this number and rating code (as typed), or the 404."""
    code = _given_code(code)
    case = dbm.one(
        db,
        "SELECT id, case_no, items, created_at, created_by, decided_at, handed_over_at, state "
        "FROM cases WHERE case_no = ?",
        [str(case_no)],
    )
    expected = case_code(pii, case["case_no"]) if case else ""
    if case is None or not hmac.compare_digest(expected.encode(), code.encode()):
        raise NotFound(
            "no case with this number and rating code", field="rating_token", hint=CODE_HINT
        )
    return case


def find_ticket(db: sqlite_utils.Database, token: str) -> dict[str, Any]:
    ticket = dbm.one(
        db,
        "SELECT id, ticket_no, state, item_code, queue, window_id, created_at, finished_at "
        "FROM tickets WHERE token = ?",
        [str(token)],
    )
    if ticket is None:
        raise NotFound("no ticket with this code", field="token")
    return ticket


def rating_of(
    db: sqlite_utils.Database, case_id: int | None = None, ticket_id: int | None = None
) -> dict[str, Any] | None:
    """The rating of a case or a visit with its follow-up, or None."""
    col, value = ("case_id", case_id) if case_id is not None else ("ticket_id", ticket_id)
    row = dbm.one(db, f"SELECT id FROM ratings WHERE {col} = ?", [value])  # noqa: S608
    return get_rating(db, row["id"]) if row else None


def _clerk_of_ticket(db: sqlite_utils.Database, ticket_id: int) -> str | None:
    row = db.execute(
        "SELECT json_extract(body, '$.by') FROM events WHERE entity = 'ticket' "
        "AND entity_id = ? AND kind = 'ticket.finished' ORDER BY seq DESC LIMIT 1",
        [str(ticket_id)],
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def _window_no(db: sqlite_utils.Database, window_id: int | None) -> int | None:
    if window_id is None:
        return None
    row = db.execute("SELECT number FROM windows WHERE id = ?", [window_id]).fetchone()
    return int(row[0]) if row else None


def _case_window(db: sqlite_utils.Database, case_id: int) -> int | None:
    """The number of the window the case was taken in at (its first visit with a ticket)."""
    row = db.execute(
        "SELECT t.window_id FROM case_visits v JOIN tickets t ON t.id = v.ticket_id "
        "WHERE v.case_id = ? ORDER BY v.id LIMIT 1",
        [case_id],
    ).fetchone()
    return _window_no(db, row[0]) if row else None


def rate(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Record a rating; returns it with the follow-up it opened, if any."""
    case_no, token, code, level, comment, channel = _given(data)
    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    with dbm.tx(db) as conn:
        case = ticket = None
        if case_no is not None:
            case = find_case(db, pii, str(case_no), code)
            if conn.execute("SELECT 1 FROM ratings WHERE case_id = ?", [case["id"]]).fetchone():
                raise Conflict(f"case {case['case_no']} was already rated", field="case_no")
            clerk, window_no = case["created_by"], _case_window(db, case["id"])
        else:
            ticket = find_ticket(db, str(token))
            if ticket["state"] != "done":
                raise Conflict(
                    f"ticket {ticket['ticket_no']} is {ticket['state']}: a visit is "
                    "rated after it is finished",
                    field="token",
                )
            if conn.execute("SELECT 1 FROM ratings WHERE ticket_id = ?", [ticket["id"]]).fetchone():
                raise Conflict(
                    f"the visit of ticket {ticket['ticket_no']} was already rated", field="token"
                )
            clerk = _clerk_of_ticket(db, ticket["id"])
            window_no = _window_no(db, ticket["window_id"])
        reason = _reason(data.get("reason"), level)
        # Beyond the log's rating ids too: a restore leaves ratings in the log only.
        rid = numbers.next_rating_id(conn)
        ref = {
            "case_no": case["case_no"] if case else None,
            "ticket_no": ticket["ticket_no"] if ticket else None,
            "case_id": case["id"] if case else None,
            "ticket_id": ticket["id"] if ticket else None,
        }
        events.append(
            conn,
            "rating.given",
            "rating",
            rid,
            {
                "rating_id": rid,
                **ref,
                "level": level,
                "level_name": LEVELS[level].text("zh"),
                "comment": notify.redact(comment),
                "reason": reason,
                "channel": channel,
                "clerk": clerk,
                "window": window_no,
            },
            at=at,
        )
        fid = None
        if level in BAD_LEVELS:
            fid = numbers.next_id(conn, "followups")
            events.append(
                conn,
                "followup.opened",
                "followup",
                fid,
                {
                    "followup_id": fid,
                    "rating_id": rid,
                    **ref,
                    "level": level,
                    "callback_due": workdays.add_workdays(
                        today, cfg.followup_callback_workdays
                    ).isoformat(),
                    "due_date": workdays.add_workdays(today, cfg.followup_fix_workdays).isoformat(),
                },
                at=at,
            )
    out = get_rating(db, rid)
    out["followup"] = get_followup(db, cfg, fid, now) if fid else None
    return out


_RATING_SQL = """SELECT r.id, r.level, r.comment, r.reason, r.channel, r.clerk, r.window_no,
        r.created_at, r.appeal_state, r.appeal_reason, r.appeal_by, r.appeal_at, r.appeal_note,
        r.appeal_decided_by, r.appeal_decided_at, r.again_level, r.again_comment, r.again_at,
        c.case_no, t.ticket_no, f.id AS followup_id, f.state AS followup_state,
        f.called_back_at
   FROM ratings r LEFT JOIN cases c ON c.id = r.case_id
   LEFT JOIN tickets t ON t.id = r.ticket_id LEFT JOIN followups f ON f.rating_id = r.id"""


def followup_state(row: dict[str, Any]) -> str:
    """none, open (to call back), called_back (to fix) or closed (fixed)."""
    if row.get("followup_state") is None:
        return "none"
    if row["followup_state"] == "closed":
        return "closed"
    return "called_back" if row.get("called_back_at") else "open"


def get_rating(db: sqlite_utils.Database, rating_id: int) -> dict[str, Any]:
    row = dbm.one(db, _RATING_SQL + " WHERE r.id = ?", [rating_id])
    if row is None:
        raise NotFound(f"no rating {rating_id}", field="rating")
    row.update(level_names(row["level"]))
    row["followup_state"] = followup_state(row)
    row["counts_in_figures"] = rules.counts_in_figures(row["appeal_state"])
    row["follow_up_allowed"] = row["followup_state"] == "closed" and row["again_level"] is None
    return row


_FOLLOWUP_SQL = """SELECT f.id, f.rating_id, f.level, f.state, f.due_date, f.note, f.closed_by,
        f.closed_at, f.created_at, f.callback_due, f.called_back_at, f.called_back_by,
        f.callback_note, r.comment, r.reason, r.clerk, r.window_no, r.appeal_state,
        r.appeal_reason, r.appeal_by, r.again_level, c.case_no, t.ticket_no
   FROM followups f JOIN ratings r ON r.id = f.rating_id
   LEFT JOIN cases c ON c.id = f.case_id LEFT JOIN tickets t ON t.id = f.ticket_id"""


def _decorate(row: dict[str, Any], today: dt.date, tz: str) -> dict[str, Any]:
    row.update(level_names(row["level"]))
    due = dt.date.fromisoformat(row["due_date"])
    if row["state"] == "open":
        row["status"] = workdays.status(due, today)
    else:
        closed = local_date(parse(row["closed_at"]), tz) if row["closed_at"] else today
        row["status"] = None
        row["on_time"] = closed <= due
    row["overdue"] = row["state"] == "open" and today > due
    row["callback_overdue"] = bool(
        row["callback_due"]
        and not row["called_back_at"]
        and row["state"] == "open"
        and today > dt.date.fromisoformat(row["callback_due"])
    )
    row["stage"] = followup_state(
        {"followup_state": row["state"], "called_back_at": row["called_back_at"]}
    )
    return row


def get_followup(
    db: sqlite_utils.Database, cfg: NodeConfig, followup_id: int, now: Now = system_now
) -> dict[str, Any]:
    row = dbm.one(db, _FOLLOWUP_SQL + " WHERE f.id = ?", [followup_id])
    if row is None:
        raise NotFound(f"no follow-up {followup_id}", field="id")
    return _decorate(row, local_date(now(), cfg.timezone), cfg.timezone)


def list_followups(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    state: str | None = None,
    now: Now = system_now,
) -> list[dict[str, Any]]:
    if state not in (None, "", "open", "closed", "all"):
        raise Invalid("state must be open, closed or all", field="state")
    sql = _FOLLOWUP_SQL
    params: list[Any] = []
    if state in ("open", "closed"):
        sql += " WHERE f.state = ?"
        params.append(state)
    sql += " ORDER BY f.state DESC, f.due_date, f.id"
    today = local_date(now(), cfg.timezone)
    return [_decorate(r, today, cfg.timezone) for r in dbm.rows(db, sql, params)]


def _ref(row: dict[str, Any]) -> dict[str, Any]:
    return {"case_no": row["case_no"], "ticket_no": row["ticket_no"]}


def _log(
    conn: Any, kind: str, entity: str, eid: int, row: dict[str, Any], body: dict[str, Any], at: str
) -> None:
    """Append ``kind`` about a follow-up or rating, naming it and the case or visit rated."""
    events.append(conn, kind, entity, eid, {f"{entity}_id": eid, **_ref(row), **body}, at=at)


def _followup_step(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    followup_id: int,
    note: Any,
    user: dict[str, Any],
    now: Now,
    *,
    kind: str,
    hint: str,
    check: Callable[[dict[str, Any]], None],
    due: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Append ``kind`` for a step of a follow-up (its note, who, on time against ``due``) once
    ``check`` lets it; returns the follow-up as it is then."""
    note = _note(note, "note", hint)
    t = now()
    with dbm.tx(db) as conn:
        f = get_followup(db, cfg, followup_id, now)
        check(f)
        _log(conn, kind, "followup", followup_id, f, {
            "note": notify.redact(note),
            "by": user["username"],
            "on_time": local_date(t, cfg.timezone) <= dt.date.fromisoformat(due(f)),
        }, iso(t))  # fmt: skip
    return get_followup(db, cfg, followup_id, now)


def call_back(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    followup_id: int,
    note: Any,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Record the call back (回访) of a follow-up: what the citizen was told."""

    def check(f: dict[str, Any]) -> None:
        if f["state"] != "open":
            raise Conflict(f"follow-up {followup_id} is closed", field="id")
        if f["called_back_at"]:
            raise Conflict(
                f"follow-up {followup_id} was already called back by {f['called_back_by']}",
                field="id",
            )

    return _followup_step(db, cfg, followup_id, note, user, now, kind="followup.called_back",
                          hint="what the citizen was told when called back", check=check,
                          due=lambda f: f["callback_due"] or f["due_date"])  # fmt: skip


def close_followup(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    followup_id: int,
    note: Any,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Record the fix (整改) and close the follow-up; the citizen may then rate again once."""

    def check(f: dict[str, Any]) -> None:
        if f["state"] != "open":
            raise Conflict(
                f"follow-up {followup_id} was already closed by {f['closed_by']}", field="id"
            )

    return _followup_step(db, cfg, followup_id, note, user, now, kind="followup.closed",
                          hint="what was done about the rating", check=check,
                          due=lambda f: f["due_date"])  # fmt: skip


def appeal(
    db: sqlite_utils.Database,
    rating_id: int,
    reason: Any,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """The rated clerk appeals a bad rating (申诉复核), with the reason."""
    reason = _note(reason, "reason", "why the rating should not count")
    with dbm.tx(db) as conn:
        r = get_rating(db, rating_id)
        if r["level"] not in BAD_LEVELS:
            raise Conflict(
                f"rating {rating_id} is not a bad rating: only levels 1 and 2 are appealed",
                field="rating",
            )
        if not r["clerk"] or r["clerk"] != user["username"]:
            raise Forbidden(
                f"rating {rating_id} is not of your service: only the rated clerk appeals",
                field="rating",
            )
        if r["appeal_state"]:
            raise Conflict(f"rating {rating_id} was already appealed", field="rating")
        _log(conn, "rating.appealed", "rating", rating_id, r, {
            "reason": notify.redact(reason), "by": user["username"],
        }, iso(now()))  # fmt: skip
    return get_rating(db, rating_id)


def decide_appeal(
    db: sqlite_utils.Database,
    rating_id: int,
    decision: Any,
    note: Any,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """An administrator decides an appeal: ``upheld`` takes the rating out of the figures,
    ``rejected`` keeps it."""
    if decision not in APPEAL_DECISIONS:
        raise Invalid("decision must be upheld or rejected", field="decision")
    note = _note(note, "note", "why the appeal is upheld or rejected")
    with dbm.tx(db) as conn:
        r = get_rating(db, rating_id)
        if r["appeal_state"] != "open":
            raise Conflict(
                f"rating {rating_id} has no appeal waiting"
                + (f" (it was {r['appeal_state']})" if r["appeal_state"] else ""),
                field="rating",
            )
        _log(conn, "rating.appeal_decided", "rating", rating_id, r, {
            "decision": decision,
            "note": notify.redact(note),
            "by": user["username"],
            "level": r["level"],
            "rated_at": r["created_at"],
        }, iso(now()))  # fmt: skip
    return get_rating(db, rating_id)


def rate_again(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """The citizen's one follow-up rating (追评) after the fix, with the same token or code."""
    case_no, token, code, level, comment, channel = _given(data)
    with dbm.tx(db) as conn:
        if case_no is not None:
            case = find_case(db, pii, str(case_no), code)
            r = rating_of(db, case_id=case["id"])
        else:
            r = rating_of(db, ticket_id=find_ticket(db, str(token))["id"])
        if r is None:
            raise Conflict("this service was not rated yet: rate it first", field="level")
        if r["again_level"] is not None:
            raise Conflict(f"rating {r['id']} was already rated again", field="level")
        if r["followup_state"] != "closed":
            raise Conflict(
                f"rating {r['id']}: a follow-up rating comes after the fix is recorded",
                field="followup",
            )
        _log(conn, "rating.followed_up", "rating", r["id"], r, {
            "level": level,
            "level_name": LEVELS[level].text("zh"),
            "comment": notify.redact(comment),
            "channel": channel,
        }, iso(now()))  # fmt: skip
    return get_rating(db, r["id"])


# --------------------------------------------------------------------------- the evaluator


def window_by_number(db: sqlite_utils.Database, number: int) -> dict[str, Any]:
    w = dbm.one(db, "SELECT id, number, name FROM windows WHERE number = ?", [number])
    if w is None:
        raise NotFound(f"no window {number}", field="n")
    clerk = db.execute(
        "SELECT username FROM users WHERE window_id = ? AND disabled = 0 AND role = 'window' "
        "ORDER BY username LIMIT 1",
        [w["id"]],
    ).fetchone()
    w["clerk"] = clerk[0] if clerk else None
    return w


def prompt(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    number: int,
    now: Now = system_now,
) -> dict[str, Any]:
    """What window ``number``'s evaluator offers for rating now, if anything.

    The latest service moment at the window in the last :data:`PROMPT_SECONDS`: a ticket
    finished there (its case, when the visit was for one, else the visit) or a case taken in
    or handed over there (a visit of the case with the window's ticket).  A later call at the
    window ends it, and a service already rated is never offered again.
    """
    w = window_by_number(db, number)
    t = now()
    since = iso(t - dt.timedelta(seconds=PROMPT_SECONDS))
    out: dict[str, Any] = {"window": w, "prompt": None}
    finished = dbm.one(
        db,
        "SELECT id, token, ticket_no, finished_at AS at FROM tickets WHERE window_id = ? "
        "AND state = 'done' AND finished_at >= ? ORDER BY finished_at DESC LIMIT 1",
        [w["id"], since],
    )
    visit = dbm.one(
        db,
        "SELECT v.case_id, v.at, v.purpose, v.ticket_id AS id FROM case_visits v JOIN tickets t "
        "ON t.id = v.ticket_id JOIN cases c ON c.id = v.case_id WHERE t.window_id = ? "
        "AND v.at >= ? AND c.state != 'pending_materials' ORDER BY v.at DESC LIMIT 1",
        [w["id"], since],
    )
    moments = [m for m in (finished, visit) if m]
    if not moments:
        return out
    moment = max(moments, key=lambda m: str(m["at"]))
    called_later = db.execute(
        "SELECT 1 FROM tickets WHERE window_id = ? AND called_at >= ? AND id != ? AND "
        "state IN ('called', 'suspended') LIMIT 1",
        [w["id"], moment["at"], moment["id"]],
    ).fetchone()
    if called_later:
        return out
    case_id = moment.get("case_id")
    if moment is finished:
        linked = db.execute(
            "SELECT case_id FROM case_visits WHERE ticket_id = ? ORDER BY id DESC LIMIT 1",
            [finished["id"]],
        ).fetchone()
        case_id = linked[0] if linked else None
    expires = parse(moment["at"]) + dt.timedelta(seconds=PROMPT_SECONDS)
    base = {"since": moment["at"], "expires_at": iso(expires)}
    if case_id is not None:
        if rating_of(db, case_id=case_id):
            return out
        case = dbm.one(db, "SELECT case_no, items FROM cases WHERE id = ?", [case_id])
        assert case is not None
        out["prompt"] = {
            "kind": "case",
            "case_no": case["case_no"],
            "rating_code": shown_code(case_code(pii, case["case_no"])),
            "item": _item_name(db, case["items"]),
            **base,
        }
    else:
        assert finished is not None  # a visit of a case always names its case
        if rating_of(db, ticket_id=finished["id"]):
            return out
        out["prompt"] = {
            "kind": "visit",
            "token": finished["token"],
            "ticket_no": finished["ticket_no"],
            **base,
        }
    return out


def _item_name(db: sqlite_utils.Database, items: str) -> dict[str, Any] | None:
    codes = json.loads(items) if items else []
    if not codes:
        return None
    return dbm.one(db, "SELECT code, name_zh, name_en FROM items WHERE code = ?", [codes[0]])


# --------------------------------------------------------------------------- the export

#: The export's columns (the national 好差评 platform's fields), in order.
EXPORT_FIELDS = (
    "rating_id",
    "item_code",
    "case_no",
    "ticket_no",
    "department",
    "clerk",
    "window",
    "applied_at",
    "completed_at",
    "rated_at",
    "level",
    "level_name",
    "channel",
    "reason",
    "comment",
    "followup_state",
    "appeal_state",
    "counts_in_figures",
    "again_level",
)


def _local_iso(value: str | None, tz: ZoneInfo) -> str | None:
    return parse(value).astimezone(tz).isoformat(timespec="seconds") if value else None


def _day(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{field} must be a date, YYYY-MM-DD", field=field) from None


def export_rows(
    db: sqlite_utils.Database, cfg: NodeConfig, date_from: Any = None, date_to: Any = None
) -> list[dict[str, Any]]:
    """Ratings given on the local days ``date_from`` to ``date_to`` (both included; ISO
    dates, either may be open), oldest first, with the national platform's fields."""
    tz = ZoneInfo(cfg.timezone)
    lo, hi = _day(date_from, "from"), _day(date_to, "to")
    if lo and hi and lo > hi:
        raise Invalid("from must not be after to", field="from")
    sql = """SELECT r.id, r.level, r.comment, r.reason, r.channel, r.clerk, r.window_no,
            r.created_at, r.appeal_state, r.again_level, f.state AS followup_state,
            f.called_back_at, c.case_no, c.items, c.departments, c.created_at AS case_at,
            c.decided_at, t.ticket_no, t.item_code, t.queue, t.created_at AS ticket_at,
            t.finished_at, q.kind AS queue_kind, q.ref AS queue_ref
       FROM ratings r LEFT JOIN cases c ON c.id = r.case_id
       LEFT JOIN tickets t ON t.id = r.ticket_id LEFT JOIN queues q ON q.code = t.queue
       LEFT JOIN followups f ON f.rating_id = r.id"""
    where, params = [], []
    if lo:
        start = dt.datetime.combine(lo, dt.time(), tz).astimezone(dt.UTC)
        where.append("r.created_at >= ?")
        params.append(iso(start))
    if hi:
        end = dt.datetime.combine(hi + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
        where.append("r.created_at < ?")
        params.append(iso(end))
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.created_at, r.id"
    item_depts = {
        r["code"]: (json.loads(r["departments"]) or [None])[0]
        for r in dbm.rows(db, "SELECT code, departments FROM items")
    }
    out = []
    for r in dbm.rows(db, sql, params):
        if r["case_no"]:
            items = json.loads(r["items"] or "[]")
            item = items[0] if items else None
            dept = (json.loads(r["departments"] or "[]") or [None])[0]
            applied, completed = r["case_at"], r["decided_at"]
        else:
            item = r["item_code"]
            dept = r["queue_ref"] if r["queue_kind"] == "department" else item_depts.get(item)
            applied, completed = r["ticket_at"], r["finished_at"]
        out.append(
            {
                "rating_id": r["id"],
                "item_code": item,
                "case_no": r["case_no"],
                "ticket_no": r["ticket_no"],
                "department": dept,
                "clerk": r["clerk"],
                "window": r["window_no"],
                "applied_at": _local_iso(applied, tz),
                "completed_at": _local_iso(completed, tz),
                "rated_at": _local_iso(r["created_at"], tz),
                "level": r["level"],
                "level_name": LEVELS[r["level"]].text("zh"),
                "channel": r["channel"],
                "reason": r["reason"],
                "comment": r["comment"],
                "followup_state": followup_state(r),
                "appeal_state": r["appeal_state"],
                "counts_in_figures": rules.counts_in_figures(r["appeal_state"]),
                "again_level": r["again_level"],
            }
        )
    return out


def figures(db: sqlite_utils.Database, cfg: NodeConfig, now: Now = system_now) -> dict[str, Any]:
    """Rating figures for the overview (:func:`sync.figures.ratings`): ``satisfaction`` is
    满意率 (levels 4 and 5), ``satisfied_share`` the share of ratings that are not bad
    (levels 3 to 5).  A rating whose appeal was upheld counts in none of them
    (:func:`sync.figures.counts_in_figures`)."""
    counted = "(appeal_state IS NULL OR appeal_state != ?)"
    excluded = [rules.APPEAL_UPHELD]
    counts = {lv: 0 for lv in sorted(LEVELS)}
    for r in dbm.rows(
        db, f"SELECT level, COUNT(*) AS n FROM ratings WHERE {counted} GROUP BY level", excluded
    ):
        counts[int(r["level"])] = r["n"]
    got = rules.ratings(counts)
    today = local_date(now(), cfg.timezone).isoformat()
    open_f = dbm.rows(db, "SELECT due_date FROM followups WHERE state = 'open'")

    def n(where: str) -> int:
        sql = f"SELECT COUNT(*) FROM ratings WHERE {counted} AND {where}"  # noqa: S608
        return int(db.execute(sql, excluded).fetchone()[0])

    return {
        "total": got["total"],
        "by_level": {str(lv): n for lv, n in counts.items()},
        "average": got["average"],
        "satisfaction": got["satisfaction"],
        "satisfied_share": got["not_bad_share"],
        "bad": got["bad"],
        "visits_rated": n("ticket_id IS NOT NULL"),
        "cases_rated": n("case_id IS NOT NULL"),
        "excluded": int(
            db.execute("SELECT COUNT(*) FROM ratings WHERE appeal_state = ?", excluded).fetchone()[
                0
            ]
        ),
        "followups_open": len(open_f),
        "followups_overdue": sum(1 for f in open_f if f["due_date"] < today),
    }
