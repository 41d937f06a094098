"""JSON API handlers under ``/api/v1``.

Each handler's ``@operation`` describes it for the OpenAPI document (:mod:`node.openapi`); the
request models are in :mod:`node.models`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node import auth, links, metrics, tickets, users, windows
from node import db as dbm
from node import models as m
from node.keys import BOARD, CLOCK, CONFIG, DB, PII, SPEECH
from node.openapi import spec
from node.speech import announce_en, announce_zh
from onestop import requests
from onestop.clock import local_date
from onestop.errors import Forbidden, Invalid
from onestop.openapi import operation

#: The JSON object body of a request ({} without one); kept for callers that take a dict.
json_body = requests.json_object

WIN_ERRORS = (404, 409, 422)


# -- public (kiosk, display, status) ---------------------------------------------------------


@operation("Open queues with waiting counts and wait estimates", tag="kiosk", public=True)
async def list_queues(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response({"queues": tickets.queue_overview(app[DB], app[CONFIG], app[CLOCK])})


@operation("Departments, functional areas and service items", tag="kiosk", public=True)
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


@operation(
    "Issue a queue ticket (kiosk)",
    tag="kiosk",
    public=True,
    ok=201,
    body=m.TicketRequest,
    returns=m.IssuedTicket,
    errors=(409, 422),
)
async def create_ticket(request: web.Request) -> web.Response:
    """409 ``queue_closed`` outside the queue's hours or after its cut-off, 409
    ``ticket_limit`` when the ID number holds ``max_live_tickets_per_id`` live tickets."""
    app = request.app
    data = (await requests.body(request, m.TicketRequest)).data()
    issued = tickets.issue(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    t = issued.ticket
    metrics.ticket_issued(app, t)
    app[BOARD].publish({"type": "queues"})
    return web.json_response(links.issued_answer(app[CONFIG], request, issued), status=201)


@operation("Public status of a ticket (no personal data)", tag="kiosk", public=True, errors=(404,))
async def ticket_status(request: web.Request) -> web.Response:
    t = tickets.by_token(request.app[DB], request.match_info["token"])
    out = tickets.anonymous(t)
    out["waiting_ahead"] = tickets.waiting_ahead(request.app[DB], t)
    if t["window_id"]:
        out["window"] = windows.get(request.app[DB], t["window_id"])["number"]
    return web.json_response(out)


@operation("Display board state", tag="display", public=True)
async def display_state(request: web.Request) -> web.Response:
    return web.json_response(
        windows.board_state(request.app[DB], request.app[CONFIG], request.app[CLOCK])
    )


@operation(
    "Display board live feed (server-sent events: state, call, queues)",
    tag="display",
    public=True,
    content={"text/event-stream": {"schema": {"type": "string"}}},
)
async def display_stream(request: web.Request) -> web.StreamResponse:
    return await request.app[BOARD].stream(
        request, windows.board_state(request.app[DB], request.app[CONFIG], request.app[CLOCK])
    )


@operation(
    "A call spoken by the node (WAV), for a board whose browser has no voice",
    tag="display",
    public=True,
    query=m.SpeechQuery,
    content={"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
    errors=(404, 422, 503),
)
async def display_speech(request: web.Request) -> web.Response:
    q = requests.query(request, m.SpeechQuery)
    wav = await request.app[SPEECH].wav(q.ticket, q.window, q.lang)
    return web.Response(body=wav, content_type="audio/wav",
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


# -- staff ------------------------------------------------------------------------------------


@operation(
    "Today's tickets (masked personal data)", tag="window", query=m.TicketsQuery, errors=(422,)
)
async def list_tickets(request: web.Request) -> web.Response:
    await auth.require(request, "admin", "window")
    app = request.app

    q = requests.query(request, m.TicketsQuery)
    day = (q.date or local_date(app[CLOCK](), app[CONFIG].timezone)).isoformat()
    sql = "SELECT * FROM tickets WHERE service_date = ?"
    params: list[Any] = [day]
    if q.state:
        sql += " AND state = ?"
        params.append(q.state)
    sql += " ORDER BY priority DESC, order_at, id"
    rows = [tickets.public(t) for t in dbm.rows(app[DB], sql, params)]
    return web.json_response({"date": day, "tickets": rows})


@operation(
    "Set or clear the staff priority flag (绿色通道)",
    tag="window",
    path=m.IdPath,
    body=m.PriorityRequest,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def set_priority(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "window")
    tid = requests.path(request, m.IdPath).id
    data = await requests.body(request, m.PriorityRequest)
    t = tickets.set_priority(
        request.app[DB],
        tid,
        data.priority,
        user["username"],
        request.app[CLOCK],
    )
    request.app[BOARD].publish({"type": "queues"})
    return web.json_response({"ticket": tickets.public(t)})


@operation("Windows with their current ticket", tag="window")
async def list_windows(request: web.Request) -> web.Response:
    await auth.require(request)
    db = request.app[DB]
    out = []
    for w in windows.all_windows(db):
        cur = windows.current(db, w["id"])
        w["current"] = tickets.public(cur) if cur else None
        out.append(w)
    return web.json_response({"windows": out})


@operation("Add a window", tag="admin", ok=201, body=m.NewWindow, errors=(409, 422))
async def create_window(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    data = await requests.body(request, m.NewWindow)
    number = data.number
    w = windows.create(request.app[DB], number, data.name or f"{number}号窗口", data.queues)
    return web.json_response({"window": w}, status=201)


@operation(
    "One window: current and suspended tickets", tag="window", path=m.IdPath, errors=(404, 422)
)
async def window_detail(request: web.Request) -> web.Response:
    await auth.require(request)
    db = request.app[DB]
    wid = requests.path(request, m.IdPath).id
    w = windows.get(db, wid)
    cur = windows.current(db, wid)
    w["current"] = tickets.public(cur) if cur else None
    w["suspended"] = [tickets.public(t) for t in windows.suspended(db, wid)]
    return web.json_response({"window": w})


async def _window_user(request: web.Request) -> tuple[dict[str, Any], int]:
    user = await auth.require(request, "admin", "window")
    wid = requests.path(request, m.IdPath).id
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


@operation(
    "Call the next ticket (atomic across windows)",
    tag="window",
    path=m.IdPath,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
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


@operation(
    "Recall the current ticket (limited count)",
    tag="window",
    path=m.IdPath,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
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


@operation(
    "Finish the current ticket",
    tag="window",
    path=m.IdPath,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def finish(request: web.Request) -> web.Response:
    return await _simple(request, "finish")


@operation(
    "Mark the current ticket no-show (过号)",
    tag="window",
    path=m.IdPath,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def no_show(request: web.Request) -> web.Response:
    return await _simple(request, "no-show")


@operation(
    "Suspend the current ticket (挂起)",
    tag="window",
    path=m.IdPath,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def suspend(request: web.Request) -> web.Response:
    return await _simple(request, "suspend")


@operation(
    "Resume a suspended ticket",
    tag="window",
    path=m.IdPath,
    body=m.ResumeRequest,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def resume(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    data = await requests.body(request, m.ResumeRequest)
    app = request.app
    t = windows.resume(app[DB], wid, data.ticket_id, user["username"], app[CLOCK])
    _announce(app, t, wid, "call")
    return web.json_response({"ticket": tickets.public(t)})


@operation(
    "Transfer the current ticket to a queue or a window; it keeps its place",
    tag="window",
    path=m.IdPath,
    body=m.TransferRequest,
    returns=m.TicketResult,
    errors=WIN_ERRORS,
)
async def transfer(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    data = await requests.body(request, m.TransferRequest)
    to_window = None
    if data.window is not None:
        number = data.window
        target = dbm.one(request.app[DB], "SELECT id FROM windows WHERE number = ?", [number])
        if target is None:
            raise Invalid(f"no window number {number}", field="window")
        to_window = target["id"]
    t = windows.transfer(
        request.app[DB],
        wid,
        user["username"],
        queue=data.queue,
        to_window=to_window,
        now=request.app[CLOCK],
    )
    request.app[BOARD].publish_state()
    return web.json_response({"ticket": tickets.public(t)})


@operation(
    "Pause (暂停服务), reopen or close the window for the day",
    tag="window",
    path=m.IdPath,
    errors=WIN_ERRORS,
)
async def set_window_status(request: web.Request) -> web.Response:
    user, wid = await _window_user(request)
    action = request.path.rstrip("/").rsplit("/", 1)[1]
    status = {"pause": "paused", "open": "open", "close": "closed"}[action]
    w = windows.set_status(request.app[DB], wid, status, user["username"], request.app[CLOCK])
    request.app[BOARD].publish_state()
    return web.json_response({"window": w})


@operation("Add a staff account", tag="admin", ok=201, body=m.NewUser, errors=(409, 422))
async def create_user(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    data = await requests.body(request, m.NewUser)
    u = users.add(
        request.app[DB], data.username, data.password, data.role, data.window, data.department
    )
    return web.json_response({"user": u}, status=201)


@operation("Staff accounts", tag="admin")
async def list_users(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    return web.json_response({"users": users.all_users(request.app[DB])})


@operation("This document", tag="meta", public=True)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app))
