"""Appointments (预约): a half-hour slot in a queue, within its capacity, up to two weeks
ahead; checking in at the kiosk on the day issues a priority ticket in that queue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from node import db as dbm
from node import events, notify, numbers, workdays
from node import tickets as tk
from node.config import NodeConfig
from node.pii import Pii
from node.projection import Personal
from onestop import identity
from onestop.clock import Now, iso, local_date, system_now
from onestop.errors import Conflict, Invalid, NotFound, invalid_fields
from onestop.requests import date_field

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
#: The SMS confirming a booking (Chinese, English).
SMS_TEXT = (
    "【{center}】您已预约{date} {slot}办理业务，预约号{ref}，请按时到自助机签到取号。",
    "[{center}] Appointment on {date} at {slot}, reference {ref}: check in at the kiosk.",
)


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
    day = date_field(date, "date")
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
        day = date_field(data.get("date"), "date")
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
        ref = tk.reference("Y")
        phone_enc = pii.encrypt(phone)
        aid = numbers.next_id(conn, "appointments")
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
                "ref": ref,
                "lang": lang,
                **tk.person_body(conn, pii, id_number, phone),
            },
            at=at,
            personal=Personal(pii, {"id": id_number, "phone": phone}),
        )
        notify.queue(
            conn,
            phone_enc,
            identity.mask_phone(phone),
            "appointment",
            (SMS_TEXT[1] if lang == "en" else SMS_TEXT[0]).format(
                center=cfg.name, date=day.isoformat(), slot=slot, ref=ref
            ),
            at=at,
        )
    return public(db, ref)


def _appointment(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM appointments WHERE ref = ?", [ref.strip().upper()])
    if row is None:
        raise NotFound("no appointment with this reference", field="ref")
    return row


def public(db: sqlite_utils.Database, ref: str) -> dict[str, Any]:
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
            },
            now,
            appointment=a["ref"],
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
                "ticket_id": issued.ticket["id"],
            },
            at=at,
        )
    return issued


def cancel(db: sqlite_utils.Database, ref: str, now: Now = system_now) -> dict[str, Any]:
    at = iso(now())
    with dbm.tx(db) as conn:
        a = _appointment(db, ref)
        if a["state"] != "booked":
            raise Conflict(f"appointment {a['ref']} is {a['state'].replace('_', ' ')}", field="ref")
        events.append(
            conn,
            "appointment.cancelled",
            "appointment",
            a["id"],
            {"appointment_id": a["id"]},
            at=at,
        )
    return public(db, ref)


def on_day(db: sqlite_utils.Database, date: str) -> list[dict[str, Any]]:
    rows = dbm.rows(
        db,
        "SELECT a.id, a.ref, a.queue, a.date, a.slot, a.state, a.id_masked, "
        "a.phone_masked, a.created_at, a.checked_in_at, t.ticket_no "
        "FROM appointments a LEFT JOIN tickets t ON t.id = a.ticket_id "
        "WHERE a.date = ? ORDER BY a.slot, a.id",
        [date],
    )
    return rows
