"""Sync routes of the node: status (API and ``/sync`` page) and the relay's ingest endpoints.

``node/routes.py`` calls :func:`setup_sync_routes`.  A county/city node answers the hub's
ingest protocol for the townships registered with ``onestop sync relay add`` (see
:mod:`node.replication.relay`); every node serves its sync status to staff.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from node import auth, views
from node.keys import CONFIG, DB
from node.replication import catalog_fetch, relay
from node.replication import status as statusm
from node.replication.service import SYNC, SyncHolder
from onestop import bodies, jsonbody
from onestop.errors import ApiError, NotFound
from onestop.openapi import operation
from sync.models import Envelope
from sync.requests import ReplayCache, body_sha256

# The nonces of the township requests this relay accepted lately.
RELAY_REPLAYS = web.AppKey("relay_replays", ReplayCache)


def _status(request: web.Request) -> dict[str, Any]:
    holder = request.app.get(SYNC)
    service = holder.service if holder is not None else None
    return statusm.status(request.app[CONFIG], request.app[DB], service)


@operation(
    "Replication to the hub: backlog, last success and error, hub position, receipts, "
    "rejections, catalog version",
    tag="sync",
)
async def sync_status(request: web.Request) -> web.Response:
    await auth.require(request)
    return web.json_response(_status(request))


async def sync_page(request: web.Request) -> web.Response:

    user = await auth.require(request)
    return await views.render(request, "sync.html", {"user": user, "s": _status(request)})


def _parse(content: bytes) -> Any:
    return jsonbody.parse(content)


def _poke(request: web.Request) -> None:
    holder = request.app.get(SYNC)
    if holder is not None and holder.service is not None:
        holder.service.poke()


@operation(
    "Relay: accept a township's signed records (docs/sync-protocol.md); the body may "
    "be gzip-encoded",
    tag="sync",
    public=True,
    body=Envelope,
    security=[{"nodeSignature": []}],
    errors=(400, 401, 403, 413, 422),
    description="Signed by the sending node: X-Onestop-Node, X-Onestop-Time, "
    "X-Onestop-Nonce, X-Onestop-Body-SHA256, X-Onestop-Sig (docs/sync-protocol.md)",
)
async def ingest(request: web.Request) -> web.Response:
    """Relay: accept a township's push (same protocol as the hub's)."""
    db = request.app[DB]
    # At most the node's body limit as sent and as inflated; inflating on a thread.  The
    # signature covers the body after undoing a declared Content-Encoding.
    limit, enc = bodies.limit_of(request), bodies.encoding(request.headers)
    raw = await bodies.read_raw(request, limit)
    content = await asyncio.to_thread(bodies.decode, raw, enc, limit)
    digest = body_sha256(content if enc == bodies.GZIP else raw)
    del raw
    sender = relay.verify_sender(db, request.headers, request.method, request.raw_path,
                                 digest, request.app[RELAY_REPLAYS])  # fmt: skip
    payload = await asyncio.to_thread(_parse, content)
    del content
    if not isinstance(payload, dict) or payload.get("node") != sender:
        raise ApiError(
            "node must name the node that signed the request",
            field="node",
            status=403,
            code="forbidden",
        )
    body = relay.ingest(db, sender, payload)
    _poke(request)
    return web.json_response(body)


@operation(
    "Relay: where this relay (and the hub, once known) stands for a township (request "
    "signed by that township)",
    tag="sync",
    public=True,
    security=[{"nodeSignature": []}],
    errors=(401, 403, 404),
)
async def position(request: web.Request) -> web.Response:
    db, code = request.app[DB], request.match_info["code"]
    sender = relay.verify_sender(db, request.headers, request.method, request.raw_path,
                                 body_sha256(await bodies.read(request)),
                                 request.app[RELAY_REPLAYS])  # fmt: skip
    if sender != code:
        raise ApiError(f"node {sender} may not read node {code}'s position", field="code",
                       status=403, code="forbidden")  # fmt: skip
    return web.json_response(relay.position(db, code))


@operation(
    "Relay: the last hub-signed service catalog, unchanged (ETag / If-None-Match)",
    tag="sync",
    public=True,
    errors=(404,),
    responses={"304": {"description": "Not modified (If-None-Match)"}},
)
async def catalog_latest(request: web.Request) -> web.StreamResponse:
    """Relay: the last good hub-signed catalog, unchanged (townships verify the hub's signature)."""
    env = catalog_fetch.last_envelope(request.app[DB])
    if env is None:
        raise NotFound("this node holds no catalog from the hub yet")
    etag = f'"{env["version"]}"'
    inm = request.headers.get("If-None-Match", "")
    if any(t.strip().removeprefix("W/") == etag for t in inm.split(",")):
        return web.Response(status=304, headers={"ETag": etag})
    return web.json_response(env, headers={"ETag": etag, "Cache-Control": "no-cache"})


def setup_sync_routes(app: web.Application) -> None:
    app[SYNC] = SyncHolder()
    app[RELAY_REPLAYS] = ReplayCache(relay.MAX_SKEW_SECONDS)
    r = app.router
    r.add_get("/sync", sync_page, name="sync")
    a = "/api/v1"
    r.add_get(f"{a}/sync/status", sync_status)
    r.add_post(f"{a}/ingest", ingest)
    r.add_get(f"{a}/ingest/{{code}}/position", position)
    r.add_get(f"{a}/catalog/latest", catalog_latest)
