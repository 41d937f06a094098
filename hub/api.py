"""JSON API handlers under ``/api/v1`` (the wire contract is ``docs/sync-protocol.md``).

Each handler's ``@operation`` describes it for the OpenAPI document (:mod:`hub.openapi`).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils
from aiohttp import web

from hub import auth, rekeys, staff
from hub import catalog as catalogm
from hub import db as hubdb
from hub import models as m
from hub import tree as treem
from hub.ingest import envelope as envelopem
from hub.ingest import readback
from hub.ingest.results import REVOKED_KEY, UNKNOWN_NODE
from hub.ingest.signatures import signature_items
from hub.keys import CLOCK, CONFIG, DB, IDENTITY, WORKER
from hub.metrics import PushObserver
from onestop import bodies, requests
from onestop.clock import iso
from onestop.errors import Forbidden, Invalid, NotFound
from onestop.openapi import operation
from sync.models import Envelope
from sync.requests import H_NODE, SIGNED_HEADERS, body_sha256

SIGNED: list[dict[str, list[str]]] = [{"nodeSignature": []}]

NODE_FIELDS = (
    "code", "name", "level", "parent", "status", "key_id", "enrolled_at", "revoked_at",
    "last_contact", "ack_seq", "ack_hash", "reported_backlog", "last_error",
)  # fmt: skip
DEFAULT_PAGE = 500


def _node_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in NODE_FIELDS}
    out["key_status"] = "active" if row["status"] == "active" else "revoked"
    out["open_alerts"] = row.get("open_alerts", 0)
    return out


def _get_node(db: sqlite_utils.Database, code: str) -> dict[str, Any]:
    row = hubdb.one(
        db,
        "SELECT n.*, (SELECT count(*) FROM alerts a WHERE a.node = n.code AND a.resolved = 0) "
        "AS open_alerts FROM nodes n WHERE n.code = ?",
        [code],
    )
    if row is None:
        raise NotFound(f"node {code} is not enrolled at this hub", field="code")
    return row


# -- ingest ------------------------------------------------------------------------------------


@operation(
    "Push signed records and checkpoints (docs/sync-protocol.md)",
    tag="sync",
    public=True,
    security=[{}, *SIGNED],
    body=Envelope,
    errors=(401, 403, 413, 422),
)
async def ingest(request: web.Request) -> web.Response:
    with PushObserver(request.app) as seen:  # /metrics: records by result, failures by reason
        try:
            return await _ingest(request, seen)
        except Forbidden as exc:
            if exc.code in (UNKNOWN_NODE, REVOKED_KEY) and H_NODE in request.headers:
                # A signed push refused for its signer (unknown or revoked): alert, bounded.
                await request.app[WORKER].run(
                    envelopem.refused_signer, request.headers[H_NODE], exc.code,
                    request.remote, iso(request.app[CLOCK]()),
                )  # fmt: skip
            raise


async def _ingest(request: web.Request, seen: PushObserver) -> web.Response:
    app = request.app
    cfg = app[CONFIG]
    worker = app[WORKER]
    # The body as sent, at most max_body_mb; inflating it (to at most max_body_mb too), hashing
    # it (what a request signature covers: after undoing Content-Encoding) and parsing it on
    # the parser thread.
    max_body = cfg.max_body_mb * 1024**2
    raw = await bodies.read_raw(request, max_body)
    body_hash, envelope = await worker.parse(envelopem.read_push, raw, max_body,
                                             cfg.max_batch_records,
                                             bodies.encoding(request.headers))  # fmt: skip
    del raw
    seen.parsed(envelope)
    now = app[CLOCK]()
    authenticated = None
    signatures = None
    if any(h in request.headers for h in SIGNED_HEADERS):
        db = app[DB]
        authenticated = auth.verify_request(
            db, request.headers, request.method, request.raw_path, body_hash, now,
            cfg.request_max_skew_seconds, app[auth.REPLAYS],
            announced=lambda node: envelopem.announced_keys(
                db, envelope, node, app[IDENTITY].signing_key.public_key()),
        )  # fmt: skip
        # A signed push from an enrolled node: check its records' signatures on the pool
        # while it waits for (and goes through) the ingest thread.
        signatures = worker.check_signatures(signature_items(db, envelope))
    try:
        body = await worker.run(
            envelopem.ingest_envelope, app[IDENTITY], envelope, authenticated=authenticated,
            now=iso(now), signatures=signatures, client=request.remote,
        )  # fmt: skip
    finally:
        if signatures is not None:
            signatures.cancel()
    seen.answered(body)
    return web.json_response(body)


@operation(
    "Where the hub stands for a node, with its signed receipt (request signed by that node, "
    "or a hub login whose scope covers it)",
    tag="sync",
    public=True,
    security=[*SIGNED, {"session": []}],
    errors=(401, 403, 404),
)
async def position(request: web.Request) -> web.Response:
    app = request.app
    db = app[DB]
    code = request.match_info["code"]
    now = app[CLOCK]()
    if any(h in request.headers for h in SIGNED_HEADERS):
        signer = auth.verify_request(
            db, request.headers, request.method, request.raw_path,
            body_sha256(await bodies.read(request)), now, app[CONFIG].request_max_skew_seconds,
            app[auth.REPLAYS],
        )  # fmt: skip
        if signer != code:
            raise Forbidden(f"node {signer} may not read node {code}'s position", field="code")
    else:
        await staff.require(request, code=code)
    pos = readback.signed_position(db, app[IDENTITY].signing_key, code, iso(now))
    if pos is None:
        raise NotFound(f"node {code} is not enrolled at this hub", field="code")
    return web.json_response(pos)


# -- node registry -------------------------------------------------------------------------------


@operation("Enrolled nodes in the user's scope", tag="status")
async def list_nodes(request: web.Request) -> web.Response:
    """Enrolled nodes in the user's scope (login required)."""
    user = await staff.require(request)
    tree = treem.get()
    rows = hubdb.rows(
        request.app[DB],
        "SELECT n.*, (SELECT count(*) FROM alerts a WHERE a.node = n.code AND a.resolved = 0) "
        "AS open_alerts FROM nodes n ORDER BY n.code",
    )
    rows = [r for r in rows if tree.in_scope(user["scope"], r["code"])]
    return web.json_response({"nodes": [_node_out(r) for r in rows]})


@operation("One node: position, keys, open alerts, latest checkpoint", tag="status", errors=(404,))
async def node_detail(request: web.Request) -> web.Response:
    db = request.app[DB]
    await staff.require(request, code=request.match_info["code"])
    row = _get_node(db, request.match_info["code"])
    out = _node_out(row)
    out["alerts"] = hubdb.rows(
        db,
        "SELECT id, kind, message, at, last_at, count, resolved FROM alerts "
        "WHERE node = ? AND resolved = 0 ORDER BY last_at DESC LIMIT 100",
        [row["code"]],
    )
    out["keys"] = hubdb.rows(
        db,
        "SELECT key_id, from_seq, source, added_at, revoked_at FROM node_keys WHERE node = ? "
        "ORDER BY from_seq, rowid",
        [row["code"]],
    )
    out["checkpoint"] = hubdb.one(
        db,
        "SELECT node, tree_size, root, at, key_id, sig FROM checkpoints WHERE node = ? "
        "ORDER BY tree_size DESC LIMIT 1",
        [row["code"]],
    )
    out["records"] = (
        hubdb.one(db, "SELECT count(*) AS n FROM records WHERE node = ?", [row["code"]]) or {"n": 0}
    )["n"]
    return web.json_response(out)


@operation(
    "The hub's verified copy of a node's records (request signed by that node)",
    tag="sync",
    public=True,
    security=SIGNED,
    query=m.RecordsQuery,
    errors=(401, 403, 404, 422),
)
async def node_records(request: web.Request) -> web.Response:
    """The hub's verified copy of a node's records, for that node only (signed request)."""
    app = request.app
    cfg = app[CONFIG]
    code = request.match_info["code"]
    db = app[DB]
    if hubdb.one(db, "SELECT 1 FROM nodes WHERE code = ?", [code]) is None:
        raise NotFound(f"node {code} is not enrolled at this hub", field="code")
    signer = auth.verify_request(
        db, request.headers, request.method, request.raw_path,
        body_sha256(await bodies.read(request)), app[CLOCK](), cfg.request_max_skew_seconds,
        app[auth.REPLAYS],
    )  # fmt: skip
    if signer != code:
        raise Forbidden(f"node {signer} may not read node {code}'s records")
    q = requests.query(request, m.RecordsQuery)
    after = q.after
    limit = q.limit if q.limit is not None else min(DEFAULT_PAGE, cfg.max_records_page)
    if limit > cfg.max_records_page:
        raise Invalid(f"limit must be between 1 and {cfg.max_records_page}", field="limit")
    records = readback.stored_records(db, code, after, limit + 1)
    more = len(records) > limit
    records = records[:limit]
    pos = readback.position(db, code) or {}
    checkpoints = readback.stored_checkpoints(db, code)
    return web.json_response({
        "node": code, "after": after, "records": records, "more": more,
        "ack_seq": pos.get("ack_seq"), "ack_hash": pos.get("ack_hash"),
        "checkpoint": checkpoints[-1] if checkpoints else None,
        "keys": rekeys.key_history(db, code), "rekey": rekeys.latest(db, code),
    })  # fmt: skip


# -- catalog, keys, alerts -----------------------------------------------------------------------


def _etag_matches(header: str, version: str) -> bool:
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == version:
            return True
    return False


@operation(
    "The latest signed service catalog",
    tag="sync",
    public=True,
    errors=(404,),
    responses={"304": {"description": "Not modified (If-None-Match)"}},
)
async def catalog_latest(request: web.Request) -> web.StreamResponse:
    db = request.app[DB]
    version = catalogm.latest_version(db)
    if version is None:
        raise NotFound(
            "no catalog has been published yet",
            hint="on the hub: onestop hub catalog publish --data DIR catalog.json",
        )
    etag = f'"{version}"'
    inm = request.headers.get("If-None-Match")
    if inm and _etag_matches(inm, version):
        return web.Response(status=304, headers={"ETag": etag})
    doc = catalogm.latest(db)
    return web.json_response(doc, headers={"ETag": etag, "Cache-Control": "no-cache"})


@operation("The hub's Ed25519 and X25519 public keys", tag="sync", public=True)
async def hub_pubkey(request: web.Request) -> web.Response:
    ident = request.app[IDENTITY]
    return web.json_response({
        "key_id": ident.key_id,
        "ed25519_pem": ident.public_pem(),
        "x25519_pem": ident.seal_public_pem(),
    })  # fmt: skip


ALERT_STATES = {"open": " AND resolved = 0", "resolved": " AND resolved = 1", "all": ""}


@operation("Alerts of nodes in the user's scope", tag="status", query=m.AlertsQuery, errors=(422,))
async def list_alerts(request: web.Request) -> web.Response:
    """Alerts of nodes in the user's scope (login required)."""
    user = await staff.require(request)
    q = requests.query(request, m.AlertsQuery)
    if q.node:
        staff.check_scope(user, q.node)
    tree = treem.get()
    sql = "SELECT id, node, kind, message, at, last_at, count, resolved FROM alerts WHERE 1=1"
    params: list[Any] = []
    if q.node:
        sql += " AND node = ?"
        params.append(q.node)
    sql += ALERT_STATES[q.state] + " ORDER BY last_at DESC, id DESC LIMIT ?"
    params.append(q.limit)
    if user["scope"] != tree.root:
        sql = sql.replace(" WHERE 1=1", " WHERE node >= ? AND node < ?")
        params = [user["scope"], user["scope"] + ":", *params]
    alerts = hubdb.rows(request.app[DB], sql, params)
    for a in alerts:
        a["resolved"] = bool(a["resolved"])
    return web.json_response({"alerts": alerts})
