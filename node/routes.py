"""URL map of the node: public pages, staff pages and the JSON API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from node import api, auth, views
from node.cases.routes import setup_case_routes
from node.rating_pages import setup_rating_routes
from node.replication.routes import setup_sync_routes

STATIC = Path(__file__).parent / "static"


def setup_routes(app: web.Application) -> None:
    r = app.router
    # Public on the LAN: kiosk, ticket print and status, display board.
    r.add_get("/", views.index, name="index")
    r.add_get("/kiosk", views.kiosk, name="kiosk")
    r.add_get("/t/{token}/print", views.ticket_print, name="ticket_print")
    r.add_get("/t/{token}/qr.svg", views.ticket_qr, name="ticket_qr")
    r.add_get("/s/{token}", views.ticket_status, name="ticket_status")
    r.add_get("/display", views.display, name="display")
    # Staff pages.
    r.add_get("/login", views.login_page, name="login")
    r.add_post("/login", views.login_post)
    r.add_post("/logout", views.logout)
    r.add_get("/window", views.window_select, name="window_select")
    r.add_get("/window/{id}", views.window_page, name="window")
    r.add_get("/admin", views.admin, name="admin")
    r.add_static("/static/", STATIC, name="static")

    a = "/api/v1"
    r.add_get(f"{a}/openapi.json", api.openapi)
    r.add_get(f"{a}/queues", api.list_queues)
    r.add_get(f"{a}/catalog", api.catalog)
    r.add_post(f"{a}/tickets", api.create_ticket)
    r.add_get(f"{a}/tickets", api.list_tickets)
    r.add_get(f"{a}/tickets/status/{{token}}", api.ticket_status)
    r.add_post(f"{a}/tickets/{{id}}/priority", api.set_priority)
    r.add_get(f"{a}/display", api.display_state)
    r.add_get(f"{a}/display/stream", api.display_stream)
    r.add_get(f"{a}/display/speech", api.display_speech)
    r.add_post(f"{a}/login", auth.STAFF.api_login)
    r.add_post(f"{a}/logout", auth.STAFF.api_logout)
    r.add_get(f"{a}/me", auth.STAFF.api_me)
    r.add_get(f"{a}/users", api.list_users)
    r.add_post(f"{a}/users", api.create_user)
    r.add_get(f"{a}/windows", api.list_windows)
    r.add_post(f"{a}/windows", api.create_window)
    r.add_get(f"{a}/windows/{{id}}", api.window_detail)
    r.add_post(f"{a}/windows/{{id}}/call-next", api.call_next)
    r.add_post(f"{a}/windows/{{id}}/recall", api.recall)
    r.add_post(f"{a}/windows/{{id}}/no-show", api.no_show)
    r.add_post(f"{a}/windows/{{id}}/suspend", api.suspend)
    r.add_post(f"{a}/windows/{{id}}/resume", api.resume)
    r.add_post(f"{a}/windows/{{id}}/transfer", api.transfer)
    r.add_post(f"{a}/windows/{{id}}/finish", api.finish)
    for action in ("pause", "open", "close"):
        r.add_post(f"{a}/windows/{{id}}/{action}", api.set_window_status)

    # The case part (intake, back office, results, ratings, appointments) and replication;
    # the OpenAPI document is built from this table (node.openapi).
    setup_case_routes(app)
    setup_rating_routes(app)
    setup_sync_routes(app)
