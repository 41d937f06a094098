"""JSON API handlers under ``/api/v1`` (described in :mod:`node.openapi`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node import auth, metrics, tickets, users, windows
from node import db as dbm
from node.keys import BOARD, CLOCK, CONFIG, DB, OPENAPI, PII
from node.speech import announce_en, announce_zh
from onestop.clock import local_date
from onestop.errors import Forbidden, Invalid


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("request body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object", field="body")
    return data


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field} must be an integer", field=field) from None


# -- public (kiosk, display, status) ---------------------------------------------------------


async def list_queues(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response({"queues": tickets.queue_overview(app[DB], app[CONFIG], app[CLOCK])})


async def catalog(request: web.Request) -> web.Response:
    db = request.app[DB]
    items = dbm.rows(db, "SELECT * FROM items ORDER BY sort, code")
    for it in items:
        it["departments"] = json.loads(it["departments"])
        it["materials"] = json.loads(it["materials"])
    return web.json_response(
        {
            "departments": dbm.rows(db, "SELECT * FROM departments ORDER BY sort, code"),
            "areas": dbm.rows(db, "SELECT * FROM areas ORDER BY sort, code"),
            "items": items,
        }
    )


async def create_ticket(request: web.Request) -> web.Response:
    app = request.app
    data = await json_body(request)
    issued = tickets.issue(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    t = issued.ticket
    metrics.ticket_issued(app, t)
    app[BOARD].publish({"type": "queues"})
    return web.json_response(
        {
            "ticket_no": t["ticket_no"],
            "token": t["token"],
            "queue": t["queue"],
            "waiting_ahead": issued.waiting_ahead,
            "estimated_wait_minutes": issued.estimated_wait_minutes,
            "priority": t["priority"],
            "priority_reason": t["priority_reason"],
            "service_date": t["service_date"],
            "created_at": t["created_at"],
            "status_url": f"/s/{t['token']}",
            "print_url": f"/t/{t['token']}/print",
        },
        status=201,
    )


async def ticket_status(request: web.Request) -> web.Response:
    t = tickets.by_token(request.app[DB], request.match_info["token"])
    out = tickets.anonymous(t)
    out["waiting_ahead"] = tickets.waiting_ahead(request.app[DB], t)
    if t["window_id"]:
        out["window"] = windows.get(request.app[DB], t["window_id"])["number"]
    return web.json_response(out)


async def display_state(request: web.Request) -> web.Response:
    return web.json_response(windows.board_state(request.app[DB], request.app[CONFIG], request.app[CLOCK]))


async def display_stream(request: web.Request) -> web.StreamResponse:
    return await request.app[BOARD].stream(request, windows.board_state(request.app[DB], request.app[CONFIG], request.app[CLOCK]))


# -- staff ------------------------------------------------------------------------------------


async def list_tickets(request: web.Request) -> web.Response:
    await auth.require(request, "admin", "window")
    app = request.app

    day = request.query.get("date") or local_date(app[CLOCK](), app[CONFIG].timezone).isoformat()
    state = request.query.get("state")
    sql = "SELECT * FROM tickets WHERE service_date = ?"
    params: list[Any] = [day]
    if state:
        if state not in tickets.TICKET_STATES:
            raise Invalid(f"state must be one of {', '.join(tickets.TICKET_STATES)}", field="state")
        sql += " AND state = ?"
        params.append(state)
    sql += " ORDER BY priority DESC, order_at, id"
    rows = [tickets.public(t) for t in dbm.rows(app[DB], sql, params)]
    return web.json_response({"date": day, "tickets": rows})


async def set_priority(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "window")
    data = await json_body(request)
    if not isinstance(data.get("priority"), bool):
        raise Invalid("priority must be true or false", field="priority")
    t = tickets.set_priority(
        request.app[DB],
        _int(request.match_info["id"], "id"),
        data["priority"],
        user["username"],
        request.app[CLOCK],
    )
    request.app[BOARD].publish({"type": "queues"})
    return web.json_response({"ticket": tickets.public(t)})


async def list_windows(request: web.Request) -> web.Response:
    await auth.require(request)
    db = request.app[DB]
    out = []
    for w in windows.all_windows(db):
        cur = windows.current(db, w["id"])
        w["current"] = tickets.public(cur) if cur else None
        out.append(w)
    return web.json_response({"windows": out})


async def create_window(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    data = await json_body(request)
    queues = data.get("queues")
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        raise Invalid('queues must be a list of queue codes, or ["*"]', field="queues")
    name = data.get("name")
    number = _int(data.get("number"), "number")
    w = windows.create(request.app[DB], number, str(name or f"{number}号窗口"), queues)
    return web.json_response({"window": w}, status=201)


async def window_detail(request: web.Request) -> web.Response:
    await auth.require(request)
    db = request.app[DB]
    wid = _int(request.match_info["id"], "id")
    w = windows.get(db, wid)
    cur = windows.current(db, wid)
    w["current"] = tickets.public(cur) if cur else None
    w["suspended"] = [tickets.public(t) for t in windows.suspended(db, wid)]
    return web.json_response({"window": w})


async def _window_user(request: web.Request) -> tuple[dict[str, Any], int]:
    user = await auth.require(request, "admin", "window")
    wid = _int(request.match_info["id"], "id")
    windows.get(request.app[DB], wid)
    if user["role"] == "window" and user["window_id"] not in (None, wid):
        raise Forbidden(f"user {user['username']} works at another window")
    return user, wid


def _announce(app: web.Application, t: dict[str, Any], wid: int, kind: str) -> None:
    w = windows.get(app[DB], wid)
    app[BOARD].publish(
        {
            "type": "call",
            "kind": kind,
            "ticket_no": t["ticket_no"],
            "window": w["number"],
            "window_name": w["name"],
            "at": t["called_at"],
            "speech_zh": announce_zh(t["ticket_no"], w["number"]),
            "speech_en": announce_en(t["ticket_no"], w["number"]),
        }
    )
    app[BOARD].publish_state()


async def call_next(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    app = request.app
    with metrics.call_next_timer(app):
        t = windows.call_next(app[DB], app[CONFIG], wid, user["username"], app[CLOCK])
    metrics.ticket_called(app, t)
    if t is None:
        return web.json_response({"ticket": None, "message": "nobody is waiting"})
    _announce(app, t, wid, "call")
    return web.json_response({"ticket": tickets.public(t)})


async def recall(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    app = request.app
    t = windows.recall(app[DB], app[CONFIG], wid, user["username"], app[CLOCK])
    _announce(app, t, wid, "recall")
    return web.json_response({"ticket": tickets.public(t)})


async def _simple(request: web.Request, action: str) -> web.Response:
    user, wid = await _window_user(request)
    app = request.app
    fn = {"finish": windows.finish, "no-show": windows.no_show, "suspend": windows.suspend}[action]
    t = fn(app[DB], wid, user["username"], app[CLOCK])
    app[BOARD].publish_state()
    return web.json_response({"ticket": tickets.public(t)})


async def finish(request: web.Request) -> web.Response:
    return await _simple(request, "finish")


async def no_show(request: web.Request) -> web.Response:
    return await _simple(request, "no-show")


async def suspend(request: web.Request) -> web.Response:
    return await _simple(request, "suspend")


async def resume(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    data = await json_body(request)
    app = request.app
    t = windows.resume(
        app[DB], wid, _int(data.get("ticket_id"), "ticket_id"), user["username"], app[CLOCK]
    )
    _announce(app, t, wid, "call")
    return web.json_response({"ticket": tickets.public(t)})


async def transfer(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    data = await json_body(request)
    to_window = None
    if data.get("window") is not None:
        number = _int(data["window"], "window")
        target = dbm.one(request.app[DB], "SELECT id FROM windows WHERE number = ?", [number])
        if target is None:
            raise Invalid(f"no window number {number}", field="window")
        to_window = target["id"]
    queue = data.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise Invalid("queue must be a queue code", field="queue")
    t = windows.transfer(
        request.app[DB],
        wid,
        user["username"],
        queue=queue,
        to_window=to_window,
        now=request.app[CLOCK],
    )
    request.app[BOARD].publish_state()
    return web.json_response({"ticket": tickets.public(t)})


async def set_window_status(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    action = request.path.rstrip("/").rsplit("/", 1)[1]
    status = {"pause": "paused", "open": "open", "close": "closed"}[action]
    w = windows.set_status(request.app[DB], wid, status, user["username"], request.app[CLOCK])
    request.app[BOARD].publish_state()
    return web.json_response({"window": w})


async def create_user(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    data = await json_body(request)
    for f in ("username", "password", "role"):
        if not isinstance(data.get(f), str):
            raise Invalid(f"{f} is required", field=f)
    window = data.get("window")
    u = users.add(
        request.app[DB],
        data["username"],
        data["password"],
        data["role"],
        _int(window, "window") if window is not None else None,
        data.get("department"),
    )
    return web.json_response({"user": u}, status=201)


async def list_users(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    return web.json_response({"users": users.all_users(request.app[DB])})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
