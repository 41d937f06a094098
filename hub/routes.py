"""URL map of the hub: one status page and the JSON API under ``/api/v1``.

Reads are open on the network for now (hub staff login is a later issue); every write
(enroll, revoke, catalog publish) is CLI-only.  Ingest is verified record by record and
relaying needs a request signed by the sender; records back need a request signed by the node.
"""

from __future__ import annotations

from aiohttp import web

from hub import api, views


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", views.index, name="index")

    a = "/api/v1"
    r.add_post(f"{a}/ingest", api.ingest)
    r.add_get(f"{a}/ingest/{{code}}/position", api.position)
    r.add_get(f"{a}/nodes", api.list_nodes)
    r.add_get(f"{a}/nodes/{{code}}", api.node_detail)
    r.add_get(f"{a}/nodes/{{code}}/records", api.node_records)
    r.add_get(f"{a}/catalog/latest", api.catalog_latest)
    r.add_get(f"{a}/hub/pubkey", api.hub_pubkey)
    r.add_get(f"{a}/alerts", api.list_alerts)
