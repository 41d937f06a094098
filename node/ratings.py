"""Ratings (好差评) after each visit and each case, and follow-ups of the bad ones.

Levels follow the national 好差评 scale, higher is better::

    5 非常满意  very satisfied      2 不满意     dissatisfied
    4 满意      satisfied           1 非常不满意 very dissatisfied
    3 基本满意  basically satisfied

A visit is rated with its ticket's token (printed on the ticket and in its QR code, so only
its holder has it), a case with its number and its rating code (:func:`case_code`: twelve
characters keyed with the node's secret, sent to the applicant in the result SMS).  The last
four digits of the phone rate nothing: ten thousand guesses would find them.  Each visit and
each case is rated once.  The two bad levels open a follow-up (差评回访整改) due within
:data:`FOLLOWUP_WORKDAYS` working days.

Ratings and follow-ups are written by their events (``rating.given``, ``followup.opened``,
``followup.closed``; :mod:`node.projectors.ratings`), so comments and notes are kept as the
events carry them: with any phone or ID number in them masked.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify, numbers, workdays
from node.config import NodeConfig
from node.pii import Pii
from node.tickets import REF_ALPHABET
from onestop.clock import Now, iso, local_date, parse, system_now
from onestop.errors import Conflict, Invalid, NotFound
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
#: Working days to follow a bad rating up.
FOLLOWUP_WORKDAYS = 3
MAX_COMMENT = 500
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


def level_names(level: int) -> dict[str, Any]:
    name = LEVELS[level]
    return {"level": level, "level_name_zh": name.text("zh"), "level_name_en": name.text("en")}


def rate(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Record a rating; returns it with the follow-up it opened, if any."""
    if data.get("phone_last4") is not None:
        raise Invalid(
            "phone_last4 no longer rates a case: send rating_token, the rating code in the "
            "result SMS, with case_no",
            field="phone_last4",
            hint=CODE_HINT,
        )
    level = data.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise Invalid("level must be 1 (非常不满意) to 5 (非常满意)", field="level")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise Invalid("comment must be text", field="comment")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment is longer than {MAX_COMMENT} characters", field="comment")
    case_no, token = data.get("case_no"), data.get("token")
    if (case_no is None) == (token is None):
        raise Invalid(
            "give exactly one of case_no (with rating_token) or token (a ticket)",
            field="case_no",
            hint=CODE_HINT,
        )
    code = _given_code(data.get("rating_token")) if case_no is not None else ""
    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    with dbm.tx(db) as conn:
        case = ticket = None
        if case_no is not None:
            case = dbm.one(db, "SELECT id, case_no FROM cases WHERE case_no = ?", [str(case_no)])
            expected = case_code(pii, case["case_no"]) if case else ""
            if case is None or not hmac.compare_digest(expected.encode(), code.encode()):
                raise NotFound(
                    "no case with this number and rating code",
                    field="rating_token",
                    hint=CODE_HINT,
                )
            if conn.execute("SELECT 1 FROM ratings WHERE case_id = ?", [case["id"]]).fetchone():
                raise Conflict(f"case {case['case_no']} was already rated", field="case_no")
        else:
            ticket = dbm.one(
                db, "SELECT id, ticket_no, state FROM tickets WHERE token = ?", [str(token)]
            )
            if ticket is None:
                raise NotFound("no ticket with this code", field="token")
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
            },
            at=at,
        )
        fid = None
        if level in BAD_LEVELS:
            due = workdays.add_workdays(today, FOLLOWUP_WORKDAYS)
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
                    "due_date": due.isoformat(),
                },
                at=at,
            )
    out = get_rating(db, rid)
    out["followup"] = get_followup(db, cfg, fid, now) if fid else None
    return out


def get_rating(db: sqlite_utils.Database, rating_id: int) -> dict[str, Any]:
    row = dbm.one(
        db,
        """SELECT r.id, r.level, r.comment, r.created_at, c.case_no, t.ticket_no
          FROM ratings r LEFT JOIN cases c ON c.id = r.case_id
          LEFT JOIN tickets t ON t.id = r.ticket_id WHERE r.id = ?""",
        [rating_id],
    )
    if row is None:
        raise NotFound(f"no rating {rating_id}", field="rating")
    row.update(level_names(row["level"]))
    return row


_FOLLOWUP_SQL = """SELECT f.id, f.rating_id, f.level, f.state, f.due_date, f.note, f.closed_by,
        f.closed_at, f.created_at, r.comment, c.case_no, t.ticket_no
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


def close_followup(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    followup_id: int,
    note: Any,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    if not isinstance(note, str) or not note.strip():
        raise Invalid("note is required: what was done about the rating", field="note")
    note = note.strip()
    if len(note) > 2000:
        raise Invalid("note is longer than 2000 characters", field="note")
    t = now()
    at = iso(t)
    with dbm.tx(db) as conn:
        f = get_followup(db, cfg, followup_id, now)
        if f["state"] != "open":
            raise Conflict(
                f"follow-up {followup_id} was already closed by {f['closed_by']}", field="id"
            )
        today = local_date(t, cfg.timezone)
        events.append(
            conn,
            "followup.closed",
            "followup",
            followup_id,
            {
                "followup_id": followup_id,
                "case_no": f["case_no"],
                "ticket_no": f["ticket_no"],
                "note": notify.redact(note),
                "by": user["username"],
                "on_time": today <= dt.date.fromisoformat(f["due_date"]),
            },
            at=at,
        )
    return get_followup(db, cfg, followup_id, now)


def figures(db: sqlite_utils.Database, cfg: NodeConfig, now: Now = system_now) -> dict[str, Any]:
    """Rating figures for the overview (:func:`sync.figures.ratings`): ``satisfaction`` is
    满意率 (levels 4 and 5), ``satisfied_share`` the share of ratings that are not bad
    (levels 3 to 5)."""
    counts = {lv: 0 for lv in sorted(LEVELS)}
    for r in dbm.rows(db, "SELECT level, COUNT(*) AS n FROM ratings GROUP BY level"):
        counts[int(r["level"])] = r["n"]
    got = rules.ratings(counts)
    today = local_date(now(), cfg.timezone).isoformat()
    open_f = dbm.rows(db, "SELECT due_date FROM followups WHERE state = 'open'")
    return {
        "total": got["total"],
        "by_level": {str(lv): n for lv, n in counts.items()},
        "average": got["average"],
        "satisfaction": got["satisfaction"],
        "satisfied_share": got["not_bad_share"],
        "bad": got["bad"],
        "visits_rated": int(
            db.execute("SELECT COUNT(*) FROM ratings WHERE ticket_id IS NOT NULL").fetchone()[0]
        ),
        "cases_rated": int(
            db.execute("SELECT COUNT(*) FROM ratings WHERE case_id IS NOT NULL").fetchone()[0]
        ),
        "followups_open": len(open_f),
        "followups_overdue": sum(1 for f in open_f if f["due_date"] < today),
    }
