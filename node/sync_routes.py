"""Sync routes of the node: status (API and ``/sync`` page) and the relay's ingest endpoints.

``node/routes.py`` calls :func:`setup_sync_routes`.  A county/city node answers the hub's
ingest protocol for the townships registered with ``onestop sync relay add`` (see
:mod:`sync.relay`); every node serves its sync status to staff.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from aiohttp import web

from node import auth
from node.keys import CONFIG, DB
from onestop.errors import ApiError, Invalid, NotFound
from onestop.openapi import operation
from sync import catalog_fetch, relay
from sync import status as statusm
from sync.models import Envelope
from sync.push import SYNC, SyncHolder

LABELS = {
    "zh": {
        "title": "数据同步",
        "node": "本中心",
        "hub": "省级汇聚中心",
        "via": "经由",
        "none": "未配置",
        "log": "日志记录数",
        "ack": "汇聚中心已确认至",
        "backlog": "待上传",
        "success": "最近成功",
        "error": "最近错误",
        "alert": "告警",
        "receipts": "回执数",
        "rejections": "被拒记录",
        "checkpoint": "检查点",
        "catalog": "事项目录版本",
        "catalog_error": "目录被拒绝",
        "relay": "代为转发的中心",
        "held": "已接收",
        "never": "从未",
        "key": "签名密钥",
        "seq": "序号",
        "reason": "原因",
        "message": "说明",
        "count": "次数",
        "next": "下次重试",
        "seconds": "秒后",
        "ok": "正常",
    },
    "en": {
        "title": "Sync",
        "node": "This center",
        "hub": "Provincial hub",
        "via": "via",
        "none": "not configured",
        "log": "Log records",
        "ack": "Hub acknowledged up to",
        "backlog": "Waiting to send",
        "success": "Last success",
        "error": "Last error",
        "alert": "Alert",
        "receipts": "Receipts",
        "rejections": "Rejected records",
        "checkpoint": "Checkpoint",
        "catalog": "Catalog version",
        "catalog_error": "Catalog refused",
        "relay": "Relayed centers",
        "held": "Held",
        "never": "never",
        "key": "Signing key",
        "seq": "Seq",
        "reason": "Reason",
        "message": "Message",
        "count": "Count",
        "next": "Next try",
        "seconds": "s",
        "ok": "OK",
    },
}


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
    from node import views

    user = await auth.require(request)
    lang, _ = views.page_lang(request)
    return await views.render(
        request,
        "sync.html",
        {"user": user, "s": _status(request), "L": LABELS.get(lang, LABELS["zh"])},
    )


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
    "X-Onestop-Sig (docs/sync-protocol.md)",
)
async def ingest(request: web.Request) -> web.Response:
    """Relay: accept a township's push (same protocol as the hub's)."""
    db = request.app[DB]
    sender = relay.verify_sender(db, request.headers, request.method, request.raw_path)
    raw = await request.read()  # aiohttp undoes Content-Encoding: gzip
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise Invalid("request body is not valid gzip", field="body") from None
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("request body is not valid JSON", field="body") from None
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
    "Relay: where this relay (and the hub, once known) stands for a township",
    tag="sync",
    public=True,
    errors=(404,),
)
async def position(request: web.Request) -> web.Response:
    return web.json_response(relay.position(request.app[DB], request.match_info["code"]))


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
    r = app.router
    r.add_get("/sync", sync_page, name="sync")
    a = "/api/v1"
    r.add_get(f"{a}/sync/status", sync_status)
    r.add_post(f"{a}/ingest", ingest)
    r.add_get(f"{a}/ingest/{{code}}/position", position)
    r.add_get(f"{a}/catalog/latest", catalog_latest)
