"""The OpenAPI 3.1 document of the hub's JSON API, served at ``/api/v1/openapi.json``.

A test checks that every route under ``/api/v1`` appears here and vice versa.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from onestop import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
TEXT = {400: "Bad request", 401: "Login required (or a bad node signature)",
        403: "Outside the user's scope, wrong role, missing CSRF token, or a node not allowed",
        404: "Not found", 413: "Body too large",
        422: "Invalid input; `field` names the offending field"}  # fmt: skip


def _err(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": TEXT[c], "content": {"application/json": {"schema": ERROR}}}
            for c in codes}  # fmt: skip


def _op(summary: str, *, tag: str, staff: bool = True, ok_schema: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (), params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, csv: bool = False,
        security: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    content: dict[str, Any] = {"application/json": {"schema": ok_schema or {"type": "object"}}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "responses": {"200": {"description": "OK", "content": content},
                                        **_err(*errors)}}  # fmt: skip
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if staff:
        op["security"] = [{"session": []}]
        op["responses"].update(_err(401, 403))
    else:
        op["security"] = security or []
    if params:
        op["parameters"] = params
    return op


def _path(name: str, desc: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": "string"}}  # fmt: skip


def _query(name: str, desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc,
            "schema": schema or {"type": "string"}}  # fmt: skip


CODE = _path("code", "division code (37 province, 3701 city, 370102 county, 370102001 township)")
PERIOD = [
    _query("preset", "today (default), 7d or 30d", {"type": "string",
                                                    "enum": ["today", "7d", "30d"]}),
    _query("from", "first local date of the period", {"type": "string", "format": "date"}),
    _query("to", "last local date of the period", {"type": "string", "format": "date"}),
    _query("lang", "zh (default) or en: names and CSV headers", {"type": "string",
                                                                  "enum": ["zh", "en"]}),
]  # fmt: skip
FORMAT = _query("format", "json (default) or csv (UTF-8 with BOM)",
                {"type": "string", "enum": ["json", "csv"]})  # fmt: skip
SIGNED: list[dict[str, Any]] = [{"nodeSignature": []}]

TABLE_DOCS = {
    "children": "Child divisions (and the center at this level): status dot, centers online, "
                "lag, backlog, alerts and service figures of each subtree",
    "departments": "Service figures per department over the period",
    "items": "Service figures per service item over the period",
    "series": "Daily service figures over the period (time series)",
    "nodes": "Every enrolled center of the subtree: online/offline, last contact, lag, newest "
             "record, backlog, key status, open alerts",
    "alerts": "Alerts of the subtree's centers (state=open|resolved|all)",
}  # fmt: skip


def spec() -> dict[str, Any]:
    a = "/api/v1"
    paths: dict[str, Any] = {
        f"{a}/openapi.json": {"get": _op("This document", tag="meta", staff=False)},
        f"{a}/health": {"get": _op("Liveness: the hub answers and its database opens",
                                   tag="meta", staff=False)},  # fmt: skip
        f"{a}/ingest": {"post": _op(
            "Push signed records and checkpoints (docs/sync-protocol.md)", tag="sync",
            staff=False, security=[{}, *SIGNED], body={"$ref": "#/components/schemas/Envelope"},
            errors=(401, 403, 413, 422))},
        f"{a}/ingest/{{code}}/position": {"get": _op(
            "Where the hub stands for a node", tag="sync", staff=False, params=[CODE],
            errors=(404,))},
        f"{a}/nodes/{{code}}/records": {"get": _op(
            "The hub's verified copy of a node's records (request signed by that node)",
            tag="sync", staff=False, security=SIGNED, errors=(401, 403, 404, 422),
            params=[CODE, _query("after", "seq to start after", {"type": "integer"}),
                    _query("limit", "records per page", {"type": "integer"})])},
        f"{a}/catalog/latest": {"get": _op("The latest signed service catalog", tag="sync",
                                           staff=False, errors=(404,))},
        f"{a}/hub/pubkey": {"get": _op("The hub's Ed25519 and X25519 public keys", tag="sync",
                                       staff=False)},
        f"{a}/login": {"post": _op(
            "Log in: sets the session cookie, returns the CSRF token", tag="staff", staff=False,
            body={"type": "object", "required": ["username", "password"],
                  "properties": {"username": {"type": "string"},
                                 "password": {"type": "string"}}},
            errors=(401, 422))},
        f"{a}/logout": {"post": _op("Log out (X-CSRF-Token header)", tag="staff")},
        f"{a}/me": {"get": _op("The logged-in user and the session's CSRF token", tag="staff")},
        f"{a}/users": {"get": _op("Hub accounts within the admin's scope (admin only)",
                                  tag="staff")},
        f"{a}/nodes": {"get": _op("Enrolled nodes in the user's scope", tag="status")},
        f"{a}/nodes/{{code}}": {"get": _op(
            "One node: position, keys, open alerts, latest checkpoint", tag="status",
            params=[CODE], errors=(404,))},
        f"{a}/alerts": {"get": _op(
            "Alerts of nodes in the user's scope", tag="status", errors=(422,),
            params=[_query("node", "one node's code"),
                    _query("state", "open (default), resolved or all"),
                    _query("limit", "at most this many", {"type": "integer"})])},
        f"{a}/dash": {"get": _op("Dashboard of the user's scope (same as /dash/{scope})",
                                 tag="dashboard", params=PERIOD, errors=(422,),
                                 ok_schema={"$ref": "#/components/schemas/Dashboard"})},
        f"{a}/dash/{{code}}": {"get": _op(
            "Dashboard of a division: center status, service figures, children, daily "
            "series, departments, items, centers needing attention", tag="dashboard",
            params=[CODE, *PERIOD], errors=(404, 422),
            ok_schema={"$ref": "#/components/schemas/Dashboard"})},
    }  # fmt: skip
    for table, doc in TABLE_DOCS.items():
        params = [CODE, *PERIOD, FORMAT]
        if table == "alerts":
            params.append(_query("state", "open (default), resolved or all"))
        paths[f"{a}/dash/{{code}}/{table}"] = {
            "get": _op(doc, tag="dashboard", params=params, errors=(404, 422), csv=True)
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "onestop hub API", "version": __version__,
                 "description": "The provincial hub: sync endpoints for nodes, and dashboards "
                                "for hub staff (login with a scope; 403 outside it)."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "onestop_hub_session",
                            "description": "From POST /api/v1/login; unsafe methods also need "
                                           "the X-CSRF-Token header"},
                "nodeSignature": {"type": "apiKey", "in": "header", "name": "X-Onestop-Sig",
                                  "description": "with X-Onestop-Node and X-Onestop-Time "
                                                 "(docs/sync-protocol.md)"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["ok", "status", "error", "message"],
                          "properties": {"ok": {"const": False}, "status": {"type": "integer"},
                                         "error": {"type": "string"},
                                         "message": {"type": "string"},
                                         "field": {"type": ["string", "null"]},
                                         "errors": {"type": "array"},
                                         "hint": {"type": ["string", "null"]}}},
                "Envelope": {"type": "object", "required": ["node", "batches"],
                             "properties": {"node": {"type": "string"},
                                            "batches": {"type": "array"},
                                            "backlog": {"type": "integer"},
                                            "sent_at": {"type": "string"}}},
                "Dashboard": {"type": "object", "properties": {
                    "division": {"type": "object"}, "path": {"type": "array"},
                    "period": {"type": "object"}, "status": {"type": "object"},
                    "figures": {"type": "object"}, "children": {"type": "array"},
                    "series": {"type": "array"}, "departments": {"type": "array"},
                    "items": {"type": "array"}, "attention": {"type": "array"}}},
            },
        },
    }  # fmt: skip


async def serve(request: web.Request) -> web.Response:
    return web.json_response(spec())
