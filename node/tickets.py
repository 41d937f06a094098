"""Queue tickets: issuing at the kiosk, people ahead, wait estimates.

A ticket number is the queue's prefix and a sequence that restarts every local day
(``A023``).  Priority (绿色通道) goes only where the node can check it: to the elderly, by the
age in the ID number (``elderly_age``); to a booked appointment checked in on its day
(:func:`node.appointments.check_in`); and to tickets a logged-in window clerk or admin flags
(:func:`set_priority`).  Nothing a kiosk request claims gives priority: a request saying
``"appointment": true`` is refused.  Priority tickets are called first within their queue.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from node import db as dbm
from node import events, hall, numbers, recovery
from node.config import NodeConfig
from node.pii import Pii
from node.projection import Personal
from onestop import identity
from onestop.clock import Now, iso, local_date, parse, system_now
from onestop.errors import Conflict, Invalid, NotFound, invalid_fields
from onestop.i18n import _
from sync import figures

#: ``expired``: the day closed on a ticket still waiting, called or suspended (node/daybreak.py).
TICKET_STATES = ("waiting", "called", "suspended", "done", "no_show", "expired")
#: Letters and digits of the references handed to citizens (no 0/O, 1/I): appointments
#: ``Y...``, pre-applications ``P...``.
REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PUBLIC_FIELDS = (
    "id",
    "token",
    "ticket_no",
    "queue",
    "service_date",
    "state",
    "priority",
    "priority_reason",
    "item_code",
    "window_id",
    "target_window",
    "created_at",
    "called_at",
    "finished_at",
    "recalls",
)


@dataclass
class Issued:
    ticket: dict[str, Any]
    waiting_ahead: int
    estimated_wait_minutes: int
    where: dict[str, str]

    def answer(self) -> dict[str, Any]:
        """What the kiosk gets back for a new ticket (no personal data)."""
        t = self.ticket
        return {
            "ticket_no": t["ticket_no"], "token": t["token"], "queue": t["queue"],
            "waiting_ahead": self.waiting_ahead,
            "estimated_wait_minutes": self.estimated_wait_minutes,
            "priority": t["priority"], "priority_reason": t["priority_reason"],
            "service_date": t["service_date"], "created_at": t["created_at"],
            "status_url": f"/s/{t['token']}", "print_url": f"/t/{t['token']}/print",
            "where_zh": self.where["zh"], "where_en": self.where["en"],
        }  # fmt: skip


def reference(prefix: str) -> str:
    """A random reference for a citizen to bring along, e.g. ``Y7KQ2MZ4P``."""
    return prefix + "".join(secrets.choice(REF_ALPHABET) for _ in range(8))


def get_queue(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    return dbm.one(db, "SELECT * FROM queues WHERE code = ? AND active = 1", [code])


def issue(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    pii: Pii,
    data: dict[str, Any],
    now: Now = system_now,
    *,
    appointment: str | None = None,
) -> Issued:
    """Validate the kiosk's request and issue a ticket; nothing is stored on any error.

    ``appointment`` is the reference of a booked appointment the caller has checked (today,
    this queue): only then does the ticket get the appointment's priority.
    """
    if data.get("appointment"):
        raise Invalid(
            "appointment cannot be claimed when taking a ticket: an appointment gives "
            "priority when its reference is checked in",
            field="appointment",
            hint="check in with the reference from the booking SMS: "
            "POST /api/v1/appointments/{ref}/check-in",
        )
    errors: dict[str, str] = {}
    queue_code = str(data.get("queue") or "").strip()
    queue = get_queue(db, queue_code) if queue_code else None
    if not queue_code:
        errors["queue"] = "queue is required"
    elif queue is None:
        errors["queue"] = f"no open queue with code {queue_code!r}"
    item_code = data.get("item") or None
    if item_code is not None:
        item = dbm.one(db, "SELECT code, area, departments FROM items WHERE code = ?", [item_code])
        if item is None:
            errors["item"] = f"no service item with code {item_code!r}"
        elif queue is not None and not _item_in_queue(item, queue):
            errors["item"] = f"item {item_code} is not handled by queue {queue_code}"
    t = now()
    today = local_date(t, cfg.timezone)
    id_number, phone, lang = identity.person_fields(data, today, errors, cfg.default_lang)
    if errors:
        raise invalid_fields(errors)
    assert queue is not None
    hall.check_open(cfg.hall, queue["code"], t, cfg.timezone, lang)

    priority, reason = 0, None
    if identity.age_on(id_number, today) >= cfg.elderly_age:
        priority, reason = 1, "elderly"
    if appointment is not None:
        priority, reason = 1, reason or "appointment"
    service_date = today.isoformat()
    at = iso(t)
    id_hash = pii.keyed_hash(id_number)
    with dbm.tx(db) as conn:
        # Counted under the write lock: two kiosks (or processes) cannot both pass it.
        _check_live_limit(conn, cfg, id_hash, service_date, lang)
        # Beyond the log's numbers too: a restore may leave tickets in the log only.
        seq = numbers.next_ticket_seq(conn, queue["code"], service_date)
        ticket_no = f"{queue['prefix']}{seq:0{cfg.ticket_digits}d}"
        ticket_id = numbers.next_ticket_id(conn)
        token = numbers.new_token()
        body: dict[str, Any] = {
            "ticket_no": ticket_no,
            "queue": queue["code"],
            "service_date": service_date,
            "item": item_code,
            "priority": priority,
            "priority_reason": reason,
            "token": token,  # public: a restore gives the ticket back its status page
            "seq": seq,
            "lang": lang,
            **person_body(conn, pii, id_number, phone),
        }
        events.append(
            conn,
            "ticket.issued",
            "ticket",
            ticket_id,
            body,
            at=at,
            personal=Personal(pii, {"id": id_number, "phone": phone}),
        )
    ticket = get(db, ticket_id)
    ahead = waiting_ahead(db, ticket)
    wins = hall.hall_windows(db)
    where = {lg: hall.where_text(cfg.hall, wins, ticket["queue"], lg) for lg in ("zh", "en")}
    est = estimate_minutes(db, cfg, ticket["queue"], ahead, service_date)
    return Issued(ticket, ahead, est, where)


LIVE_STATES = ("waiting", "called", "suspended")


def live_tickets(conn: sqlite3.Connection, id_hash: str, service_date: str) -> int:
    """How many live tickets (waiting, called, suspended) the person holds on the day."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM tickets INDEXED BY tickets_person WHERE id_hash = ? "
            "AND service_date = ? AND state IN ('waiting', 'called', 'suspended')",
            [id_hash, service_date],
        ).fetchone()[0]
    )


def _check_live_limit(
    conn: sqlite3.Connection, cfg: NodeConfig, id_hash: str, service_date: str, lang: str
) -> None:
    limit = cfg.max_live_tickets_per_id
    if live_tickets(conn, id_hash, service_date) >= limit:
        raise Conflict(
            _("该证件今日已有 {n} 张未办结的号票，请办理完毕后再取号", lang, n=limit),
            field="id_number",
            code="ticket_limit",
            hint=f"max_live_tickets_per_id = {limit}: a ticket counts until it is finished, "
            "marked no-show or expired",
        )


def person_body(conn: sqlite3.Connection, pii: Pii, id_number: str, phone: str) -> dict[str, str]:
    """What an event that takes a citizen in carries of them: the masks, the keyed hash of
    the ID number, and both numbers sealed to the node's recovery key (when it has one)."""
    out = {
        "id_masked": identity.mask_id(id_number),
        "id_hash": pii.keyed_hash(id_number),
        "phone_masked": identity.mask_phone(phone),
    }
    for name, value in (("id", id_number), ("phone", phone)):
        sealed = recovery.seal_in(conn, value)
        if sealed is not None:
            out[f"{name}_recovery"] = sealed
    return out


def _item_in_queue(item: dict[str, Any], queue: dict[str, Any]) -> bool:
    if queue["kind"] == "area":
        return bool(item["area"] == queue["ref"])
    return queue["ref"] in json.loads(item["departments"])


def get(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM tickets WHERE id = ?", [ticket_id])
    if row is None:
        raise NotFound(f"no ticket with id {ticket_id}", field="ticket")
    return row


def by_token(db: sqlite_utils.Database, token: str) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM tickets WHERE token = ?", [token])
    if row is None:
        raise NotFound("no ticket with this code", field="token")
    return row


def public(ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket without encrypted or hashed personal data (masks only)."""
    out = {k: ticket[k] for k in PUBLIC_FIELDS}
    out["id_masked"] = ticket["id_masked"]
    out["phone_masked"] = ticket["phone_masked"]
    return out


def anonymous(ticket: dict[str, Any]) -> dict[str, Any]:
    """What the public status page may show: no personal data at all."""
    keep = ("ticket_no", "queue", "service_date", "state", "created_at", "called_at")
    return {k: ticket[k] for k in keep}


# ``+service_date``: walk the queue's own waiting tickets (index tickets_waiting), not the
# whole day's line.
_AHEAD_SQL = """
SELECT COUNT(*) FROM tickets
 WHERE state = 'waiting' AND queue = :queue AND +service_date = :date AND id != :id
   AND COALESCE(target_window, 0) = COALESCE(:target, 0)
   AND (priority > :priority
        OR (priority = :priority AND (order_at < :order_at
            OR (order_at = :order_at AND id < :id))))
"""


def waiting_ahead(db: sqlite_utils.Database, ticket: dict[str, Any]) -> int:
    if ticket["state"] != "waiting":
        return 0
    return int(
        db.execute(
            _AHEAD_SQL,
            {
                "queue": ticket["queue"],
                "date": ticket["service_date"],
                "id": ticket["id"],
                "target": ticket["target_window"],
                "priority": ticket["priority"],
                "order_at": ticket["order_at"],
            },
        ).fetchone()[0]
    )


_LAST_SERVICES_SQL = """
SELECT called_at, finished_at FROM tickets
 WHERE queue = ? AND service_date = ? AND state = 'done' AND called_at IS NOT NULL
 ORDER BY finished_at DESC LIMIT 20
"""


def average_service_minutes(
    db: sqlite_utils.Database, cfg: NodeConfig, queue: str, service_date: str
) -> float:
    """Mean service time (:func:`sync.figures.service_seconds`) of the queue's last 20
    finished tickets today (index ``tickets_done``: 20 rows read, however long the
    history)."""
    times = [
        s
        for called, finished in db.execute(_LAST_SERVICES_SQL, [queue, service_date]).fetchall()
        if (s := figures.service_seconds(called, finished)) is not None
    ]
    if not times:
        return cfg.default_service_minutes
    return max(1.0, sum(times) / len(times) / 60)


#: Ticket event kinds the day's figures read.
_FIGURE_KINDS = ("ticket.issued", "ticket.called", "ticket.finished", "ticket.no_show",
                 "ticket.expired")  # fmt: skip


def day_figures(db: sqlite_utils.Database, cfg: NodeConfig, day: str) -> dict[str, Any]:
    """The queue's figures of one local day, read from the signed log by the rules of
    :mod:`sync.figures` (as the hub counts them): tickets issued, first called, finished, no
    show and expired that day; waits counted on the day of the first call, service times on
    the day of the finish."""
    ids = [
        str(r[0])
        for r in db.execute(
            "SELECT id FROM tickets WHERE service_date = ? OR finished_at >= ? "
            "OR state IN ('waiting', 'called', 'suspended')",
            [day, day_start(day, cfg.timezone)],
        ).fetchall()
    ]
    out: dict[str, Any] = {"issued": 0, "called": 0, "finished": 0, "no_show": 0,
                           "expired": 0, "wait_sum": 0, "wait_n": 0, "service_sum": 0,
                           "service_n": 0}  # fmt: skip
    marks = ",".join("?" * len(_FIGURE_KINDS))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        issued: dict[str, str] = {}
        first: dict[str, str] = {}
        latest: dict[str, str] = {}
        for eid, kind, at in db.execute(
            f"SELECT entity_id, kind, at FROM events WHERE entity = 'ticket' AND entity_id IN "
            f"({','.join('?' * len(chunk))}) AND kind IN ({marks}) ORDER BY seq",
            [*chunk, *_FIGURE_KINDS],
        ).fetchall():
            today = local_date(parse(at), cfg.timezone).isoformat() == day
            if kind == "ticket.issued":
                issued[eid] = at
                out["issued"] += today
            elif kind == "ticket.called":
                if eid not in first:
                    first[eid] = at
                    if today:
                        out["called"] += 1
                        wait = figures.wait_seconds(issued.get(eid), at)
                        if wait is not None:
                            out["wait_sum"] += wait
                            out["wait_n"] += 1
                latest[eid] = at
            elif kind == "ticket.finished":
                if today:
                    out["finished"] += 1
                    service = figures.service_seconds(latest.get(eid), at)
                    if service is not None:
                        out["service_sum"] += service
                        out["service_n"] += 1
            else:
                out[kind.split(".")[1]] += today
    out["avg_wait_s"] = figures.mean_seconds(out["wait_sum"], out["wait_n"])
    out["avg_service_s"] = figures.mean_seconds(out["service_sum"], out["service_n"])
    return out


def day_start(day: str, tz: str) -> str:
    """The first instant of local ``day`` as a stamp (``...Z``)."""
    return iso(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), ZoneInfo(tz)))


def open_window_queues(db: sqlite_utils.Database) -> list[list[str]]:
    """The queue lists of the open windows (``["*"]`` for a 综合窗口)."""
    return [
        json.loads(r[0])
        for r in db.execute("SELECT queues FROM windows WHERE status = 'open'").fetchall()
    ]


def _serving(window_queues: list[list[str]], queue: str) -> int:
    return sum(1 for qs in window_queues if "*" in qs or queue in qs)


def estimate_minutes(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    queue: str,
    ahead: int,
    service_date: str,
    window_queues: list[list[str]] | None = None,
) -> int:
    if ahead <= 0:  # nobody ahead: no wait, whatever the service time
        return 0
    per = average_service_minutes(db, cfg, queue, service_date)
    if window_queues is None:
        window_queues = open_window_queues(db)
    windows = max(1, _serving(window_queues, queue))
    return int(round(ahead * per / windows))


def set_priority(
    db: sqlite_utils.Database, ticket_id: int, priority: bool, actor: str, now: Now = system_now
) -> dict[str, Any]:
    with dbm.tx(db) as conn:
        t = get(db, ticket_id)
        if t["state"] not in ("waiting", "suspended"):
            raise Conflict(
                f"ticket {t['ticket_no']} is {t['state']}; only a waiting ticket can change priority"
            )
        events.append(
            conn,
            "ticket.priority_set",
            "ticket",
            ticket_id,
            {
                "ticket_no": t["ticket_no"],
                "priority": 1 if priority else 0,
                "by": actor,
            },
            at=iso(now()),
        )
    return get(db, ticket_id)


def queue_overview(
    db: sqlite_utils.Database, cfg: NodeConfig, now: Now = system_now
) -> list[dict[str, Any]]:
    """Every open queue with its waiting count and estimated wait, for kiosk and admin."""
    today = local_date(now(), cfg.timezone).isoformat()
    counts = dict(
        db.execute(
            """SELECT queue, COUNT(*) FROM tickets INDEXED BY tickets_line
        WHERE state = 'waiting' AND service_date = ? GROUP BY queue""",
            [today],
        ).fetchall()
    )
    window_queues = open_window_queues(db)
    halls, t, wins = cfg.hall, now(), hall.hall_windows(db)
    out = []
    for q in dbm.rows(db, "SELECT * FROM queues WHERE active = 1 ORDER BY kind DESC, sort, code"):
        n = counts.get(q["code"], 0)
        out.append(
            {
                "code": q["code"],
                "kind": q["kind"],
                "ref": q["ref"],
                "prefix": q["prefix"],
                "name_zh": q["name_zh"],
                "name_en": q["name_en"],
                "waiting": n,
                "estimated_wait_minutes": estimate_minutes(
                    db, cfg, q["code"], n, today, window_queues
                ),
                **hall.kiosk_state(halls, q["code"], t, cfg.timezone),
                "where_zh": hall.where_text(halls, wins, q["code"], "zh"),
                "where_en": hall.where_text(halls, wins, q["code"], "en"),
            }
        )
    return out
