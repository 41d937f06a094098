"""Results at one window (统一出件) and the deadlines: where a case stands against its promised
deadline, the result reaching the window, and its handover -- picked up or mailed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify, ratings, workdays
from node.cases.common import OPEN_STATES, get, int_field, material_names, missing, sms_text
from node.cases.visits import link_visit, same_person, ticket_at_window, visit_count
from node.cases_db import CHANNELS, HANDOVER_CHANNELS, HANDOVER_METHODS
from node.config import NodeConfig
from onestop.clock import Now, iso, system_now
from onestop.errors import Conflict, Invalid
from sync import figures


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
                "on_time": figures.on_time(decided, promised),
                "statutory_overdue": decided > statutory,
            }
        )
    return out


def result_ready(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    user: dict[str, Any],
    now: Now = system_now,
    base: str = "",
) -> dict[str, Any]:
    """The result (licence or decision) has reached the results window (统一出件).  The SMS
    carries the case's rating code and its rating link (under ``public_url``, else ``base``,
    the address of the request)."""
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
                    f"(due {case['catch_up_date']}): {material_names(gaps)}",
                    field="materials",
                )
        events.append(
            conn,
            "case.result_ready",
            "case",
            case_no,
            {"case_no": case_no, "outcome": case["outcome"], "by": user["username"]},
            at=at,
        )
        code = ratings.case_code(notify.node_pii(conn), case_no)
        notify.queue(
            conn,
            case["phone_enc"],
            case["phone_masked"],
            "result_ready",
            sms_text(
                "result_ready",
                case["lang"],
                center=cfg.name,
                case_no=case_no,
                rating_code=ratings.shown_code(code),
                link=ratings.rating_link(cfg, ratings.rating_path_case(case_no, code), base),
            ),
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
    """Hand the result over: picked up at the window (``channel`` ``window``, method
    ``pickup``: a visit) or mailed (``post`` or ``courier``, method ``mail``: no visit)."""
    method = data.get("method")
    channel = data.get("channel")
    if channel is not None:
        if channel not in CHANNELS:
            raise Invalid("channel must be window, post, online or courier", field="channel")
        if channel not in HANDOVER_CHANNELS:
            raise Invalid(
                "a result is handed over at the window or sent by post or courier",
                field="channel",
            )
        if method is None:
            method = HANDOVER_CHANNELS[channel]
        elif method != HANDOVER_CHANNELS[channel]:
            raise Invalid(f"method {method} does not go with channel {channel}", field="channel")
    if method not in HANDOVER_METHODS:
        raise Invalid("method must be pickup or mail", field="method")
    if channel is None:
        channel = "window" if method == "pickup" else "post"
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
    tid = int_field(data["ticket_id"], "ticket_id") if data.get("ticket_id") is not None else None
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
        ticket = ticket_at_window(db, tid, user) if tid is not None else None
        if ticket is not None:
            same_person(case, ticket)
        if method == "pickup":
            link_visit(conn, db, case, ticket, "pickup", user["username"], at)
        events.append(
            conn,
            "case.handed_over",
            "case",
            case_no,
            {
                "case_no": case_no,
                "method": method,
                "channel": channel,
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
