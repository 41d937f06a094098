"""Service windows and what staff do at them: call next, recall, no-show, suspend, resume,
transfer, finish; and pausing a window.

Every action runs in one ``BEGIN IMMEDIATE`` transaction, so two windows clicking "call next"
at the same instant can never receive the same ticket.  An action decides and appends its
event; the event's projector (:mod:`node.projectors.tickets`) changes the ticket.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, numbers
from node import tickets as tk
from node.config import NodeConfig
from onestop.clock import Now, iso, local_date, system_now
from onestop.errors import Conflict, Invalid, NotFound
from onestop.i18n import lazy_gettext


def create(db: sqlite_utils.Database, number: int, name: str, queues: list[str]) -> dict[str, Any]:
    if number < 1:
        raise Invalid("window number must be 1 or more", field="number")
    if not queues:
        raise Invalid("a window serves at least one queue, or * for all", field="queues")
    known = {r["code"] for r in dbm.rows(db, "SELECT code FROM queues")}
    for q in queues:
        if q != "*" and q not in known:
            raise Invalid(f"no queue with code {q!r}", field="queues")
    with dbm.tx(db) as conn:
        if conn.execute("SELECT 1 FROM windows WHERE number = ?", [number]).fetchone():
            raise Conflict(f"window {number} already exists", field="number")
        wid = numbers.next_id(conn, "windows")
        events.append(
            conn,
            "window.created",
            "window",
            wid,
            {"number": number, "name": name, "queues": queues},
        )
    return get(db, wid)


def get(db: sqlite_utils.Database, window_id: int) -> dict[str, Any]:
    w = dbm.one(db, "SELECT * FROM windows WHERE id = ?", [window_id])
    if w is None:
        raise NotFound(f"no window with id {window_id}", field="window")
    w["queues"] = json.loads(w["queues"])
    return w


def all_windows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    out = dbm.rows(db, "SELECT * FROM windows ORDER BY number")
    for w in out:
        w["queues"] = json.loads(w["queues"])
    return out


def current(db: sqlite_utils.Database, window_id: int) -> dict[str, Any] | None:
    return dbm.one(
        db, "SELECT * FROM tickets WHERE window_id = ? AND state = 'called'", [window_id]
    )


def suspended(db: sqlite_utils.Database, window_id: int) -> list[dict[str, Any]]:
    return dbm.rows(
        db,
        "SELECT * FROM tickets WHERE window_id = ? AND state = 'suspended' ORDER BY called_at",
        [window_id],
    )


def call_next(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    window_id: int,
    actor: str,
    now: Now = system_now,
) -> dict[str, Any] | None:
    """Hand the next ticket to this window; None when nobody is waiting."""
    t = now()
    today = local_date(t, cfg.timezone).isoformat()
    with dbm.tx(db) as conn:
        w = get(db, window_id)
        if w["status"] != "open":
            raise Conflict(
                lazy_gettext(
                    "{n}号窗口已暂停服务，请先恢复服务再叫号", n=w["number"], status=w["status"]
                )
            )
        busy = current(db, window_id)
        if busy:
            raise Conflict(
                lazy_gettext(
                    "{n}号窗口正在办理 {ticket}，请先办结、过号或挂起",
                    n=w["number"],
                    ticket=busy["ticket_no"],
                ),
                field="window",
            )
        # Tickets transferred to this window first (index tickets_targeted: a handful),
        # then the line in call order (index tickets_line: the first match ends the scan).
        row = conn.execute(
            """SELECT id FROM tickets
                WHERE target_window = ? AND +state = 'waiting' AND +service_date = ?
                ORDER BY priority DESC, order_at, id LIMIT 1""",
            [window_id, today],
        ).fetchone()
        if row is None:
            params: dict[str, Any] = {"day": today}
            if "*" in w["queues"]:
                queue_filter = ""
            else:
                names = [f"q{i}" for i in range(len(w["queues"]))]
                params.update(zip(names, w["queues"], strict=True))
                queue_filter = "AND queue IN ({})".format(",".join(":" + n for n in names))
            row = conn.execute(
                f"""SELECT id FROM tickets
                     WHERE state = 'waiting' AND service_date = :day
                       AND target_window IS NULL {queue_filter}
                     ORDER BY priority DESC, order_at, id LIMIT 1""",
                params,
            ).fetchone()
        if row is None:
            return None
        ticket_id = row[0]
        ticket = tk.get(db, ticket_id)
        events.append(
            conn,
            "ticket.called",
            "ticket",
            ticket_id,
            {
                "ticket_no": ticket["ticket_no"],
                "queue": ticket["queue"],
                "window": w["number"],
                "by": actor,
            },
            at=iso(t),
        )
    return tk.get(db, ticket_id)


def _act(
    db: sqlite_utils.Database,
    window_id: int,
    ticket_id: int | None,
    allowed: tuple[str, ...],
    action: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    w = get(db, window_id)
    if ticket_id is None:
        t = current(db, window_id)
        if t is None:
            raise Conflict(
                lazy_gettext("{n}号窗口当前没有正在办理的号票", n=w["number"], action=action)
            )
    else:
        t = tk.get(db, ticket_id)
        if t["window_id"] != window_id:
            raise Conflict(
                lazy_gettext("{ticket} 号不在{n}号窗口", ticket=t["ticket_no"], n=w["number"])
            )
    if t["state"] not in allowed:
        raise Conflict(
            lazy_gettext(
                "{ticket} 号当前状态不允许此操作",
                ticket=t["ticket_no"],
                action=action,
                state=t["state"],
            )
        )
    return w, t


def recall(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    window_id: int,
    actor: str,
    now: Now = system_now,
) -> dict[str, Any]:
    with dbm.tx(db) as conn:
        w, t = _act(db, window_id, None, ("called",), "recall")
        if t["recalls"] >= cfg.recall_limit:
            raise Conflict(
                lazy_gettext(
                    "{ticket} 号已重呼 {recalls} 次（上限 {limit} 次），请作过号处理",
                    ticket=t["ticket_no"],
                    recalls=t["recalls"],
                    limit=cfg.recall_limit,
                ),
                field="recalls",
            )
        events.append(
            conn,
            "ticket.recalled",
            "ticket",
            t["id"],
            {
                "ticket_no": t["ticket_no"],
                "window": w["number"],
                "recalls": t["recalls"] + 1,
                "by": actor,
            },
            at=iso(now()),
        )
    return tk.get(db, t["id"])


def _finish_state(
    db: sqlite_utils.Database,
    window_id: int,
    kind: str,
    actor: str,
    now: Now,
) -> dict[str, Any]:
    with dbm.tx(db) as conn:
        w, t = _act(db, window_id, None, ("called",), kind.split(".")[1].replace("_", "-"))
        at = iso(now())
        events.append(
            conn,
            kind,
            "ticket",
            t["id"],
            {"ticket_no": t["ticket_no"], "queue": t["queue"], "window": w["number"], "by": actor},
            at=at,
        )
    return tk.get(db, t["id"])


def finish(
    db: sqlite_utils.Database, window_id: int, actor: str, now: Now = system_now
) -> dict[str, Any]:
    return _finish_state(db, window_id, "ticket.finished", actor, now)


def no_show(
    db: sqlite_utils.Database, window_id: int, actor: str, now: Now = system_now
) -> dict[str, Any]:
    return _finish_state(db, window_id, "ticket.no_show", actor, now)


def suspend(
    db: sqlite_utils.Database, window_id: int, actor: str, now: Now = system_now
) -> dict[str, Any]:
    """Put the current ticket aside (挂起), e.g. while the citizen fetches a document."""
    with dbm.tx(db) as conn:
        w, t = _act(db, window_id, None, ("called",), "suspend")
        events.append(
            conn,
            "ticket.suspended",
            "ticket",
            t["id"],
            {"ticket_no": t["ticket_no"], "window": w["number"], "by": actor},
            at=iso(now()),
        )
    return tk.get(db, t["id"])


def resume(
    db: sqlite_utils.Database, window_id: int, ticket_id: int, actor: str, now: Now = system_now
) -> dict[str, Any]:
    with dbm.tx(db) as conn:
        w, t = _act(db, window_id, ticket_id, ("suspended",), "resume")
        busy = current(db, window_id)
        if busy:
            raise Conflict(
                lazy_gettext(
                    "{n}号窗口正在办理 {ticket}，请先办结或挂起再恢复其他号票",
                    n=w["number"],
                    ticket=busy["ticket_no"],
                )
            )
        events.append(
            conn,
            "ticket.resumed",
            "ticket",
            t["id"],
            {"ticket_no": t["ticket_no"], "window": w["number"], "by": actor},
            at=iso(now()),
        )
    return tk.get(db, t["id"])


def transfer(
    db: sqlite_utils.Database,
    window_id: int,
    actor: str,
    *,
    queue: str | None = None,
    to_window: int | None = None,
    now: Now = system_now,
) -> dict[str, Any]:
    """Send the current ticket to another queue or window; it keeps its place and priority."""
    if (queue is None) == (to_window is None):
        raise Invalid("give exactly one of queue or window to transfer to", field="queue")
    with dbm.tx(db) as conn:
        w, t = _act(db, window_id, None, ("called",), "transfer")
        body: dict[str, Any] = {
            "ticket_no": t["ticket_no"],
            "from_window": w["number"],
            "by": actor,
        }
        if queue is not None:
            if tk.get_queue(db, queue) is None:
                raise Invalid(f"no open queue with code {queue!r}", field="queue")
            body["to_queue"] = queue
        else:
            assert to_window is not None
            target = dbm.one(db, "SELECT * FROM windows WHERE id = ?", [to_window])
            if target is None:
                raise Invalid(f"no window with id {to_window}", field="window")
            if to_window == window_id:
                raise Invalid("cannot transfer a ticket to its own window", field="window")
            body["to_window"] = target["number"]
        events.append(conn, "ticket.transferred", "ticket", t["id"], body, at=iso(now()))
    return tk.get(db, t["id"])


def set_status(
    db: sqlite_utils.Database, window_id: int, status: str, actor: str, now: Now = system_now
) -> dict[str, Any]:
    """Pause (暂停服务) or reopen a window."""
    if status not in ("open", "paused", "closed"):
        raise Invalid("status must be open, paused or closed", field="status")
    with dbm.tx(db) as conn:
        w = get(db, window_id)
        events.append(
            conn,
            f"window.{status}",
            "window",
            window_id,
            {"number": w["number"], "by": actor},
            at=iso(now()),
        )
    return get(db, window_id)


def last_calls(
    db: sqlite_utils.Database, cfg: NodeConfig, limit: int = 10, now: Now = system_now
) -> list[dict[str, Any]]:
    """Latest calls and recalls today, newest first, for the display board."""
    today = local_date(now(), cfg.timezone).isoformat()
    # Calls of today's tickets all come after the first of them was issued: scan the log
    # backwards by seq down to there (``+e.entity`` keeps SQLite off the entity index, which
    # would read every ticket event in the history and sort them).
    first = db.execute("SELECT MIN(id) FROM tickets WHERE service_date = ?", [today]).fetchone()
    if first is None or first[0] is None:
        return []
    lo = (
        db.execute(
            "SELECT MIN(seq) FROM events WHERE entity = 'ticket' AND entity_id = ?", [str(first[0])]
        ).fetchone()[0]
        or 0
    )
    return dbm.rows(
        db,
        """
        SELECT t.ticket_no, w.number AS window, w.name AS window_name, e.at, e.kind
          FROM events e JOIN tickets t ON t.id = CAST(e.entity_id AS INTEGER)
          JOIN windows w ON w.number = json_extract(e.body, '$.window')
         WHERE e.seq >= ? AND +e.entity = 'ticket'
           AND e.kind IN ('ticket.called', 'ticket.recalled')
           AND t.service_date = ?
         ORDER BY e.seq DESC LIMIT ?""",
        [lo, today, limit],
    )


def board_state(db: sqlite_utils.Database, cfg: NodeConfig, now: Now) -> dict[str, Any]:
    """Every window with its current ticket, and the last calls: the display's full state
    (sent to a new display client, and after window actions at most every 200 ms: see
    :class:`node.display.Board`)."""
    out = []
    for w in all_windows(db):
        cur = current(db, w["id"])
        out.append({"number": w["number"], "name": w["name"], "status": w["status"],
                    "ticket_no": cur["ticket_no"] if cur else None})  # fmt: skip
    return {"type": "state", "windows": out, "last_calls": last_calls(db, cfg, 10, now)}
