"""URL map of the hub: login, dashboards and the JSON API under ``/api/v1``.

Nodes talk to the hub without a session: ingest (signed records), position, records back
(a request signed by the node), the catalog and the hub's public keys; ``/api/v1/health`` is
open for health checks.  Everything else needs a hub login and answers only for divisions in
the user's scope.  Writes (enroll, revoke, catalog publish, users) are CLI-only.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hub import api, dash_api, openapi, staff, views

STATIC = Path(__file__).parent / "static"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", views.index, name="index")
    r.add_get("/login", views.login_page, name="login")
    r.add_post("/login", views.login_post)
    r.add_post("/logout", views.logout)
    r.add_get("/dash", views.dash_home, name="dash_home")
    r.add_get("/dash/{code}", views.dash_page, name="dash")
    r.add_get("/dash/{code}/export/{table}.csv", views.dash_export, name="dash_export")
    r.add_static("/static/", STATIC, name="static")

    a = "/api/v1"
    # Used by nodes (no session; signed where it matters) and health checks.
    r.add_post(f"{a}/ingest", api.ingest)
    r.add_get(f"{a}/ingest/{{code}}/position", api.position)
    r.add_get(f"{a}/nodes/{{code}}/records", api.node_records)
    r.add_get(f"{a}/catalog/latest", api.catalog_latest)
    r.add_get(f"{a}/hub/pubkey", api.hub_pubkey)
    r.add_get(f"{a}/health", dash_api.health)
    r.add_get(f"{a}/openapi.json", openapi.serve)
    # Hub staff.
    r.add_post(f"{a}/login", staff.STAFF.api_login)
    r.add_post(f"{a}/logout", staff.STAFF.api_logout)
    r.add_get(f"{a}/me", staff.STAFF.api_me)
    r.add_get(f"{a}/users", dash_api.list_users)
    r.add_get(f"{a}/nodes", api.list_nodes)
    r.add_get(f"{a}/nodes/{{code}}", api.node_detail)
    r.add_get(f"{a}/alerts", api.list_alerts)
    r.add_get(f"{a}/dash", dash_api.dash_root)
    r.add_get(f"{a}/dash/{{code}}", dash_api.dash_summary)
    for table, handler in dash_api.TABLE_HANDLERS.items():
        r.add_get(f"{a}/dash/{{code}}/{table}", handler)
