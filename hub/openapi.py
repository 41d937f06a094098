"""The OpenAPI 3.1 document of the hub's JSON API, served at ``/api/v1/openapi.json``.

Built from the hub's route table: every handler under ``/api/v1`` carries an ``@operation``
description and names its request models (:mod:`hub.models`); see :mod:`onestop.openapi`.
A test checks that every route appears and the document is valid.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from onestop import __version__
from onestop.openapi import document, operation

ERROR_TEXT = {
    400: "Bad request", 401: "Login required (or a bad node signature)",
    403: "Outside the user's scope, wrong role, missing CSRF token, or a node not allowed",
    404: "Not found", 413: "Body too large",
    422: "Invalid input; `field` names the offending field, `errors` lists every one",
}  # fmt: skip

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": "onestop_hub_session",
                "description": "From POST /api/v1/login; unsafe methods also need the "
                               "X-CSRF-Token header"},
    "nodeSignature": {"type": "apiKey", "in": "header", "name": "X-Onestop-Sig",
                      "description": "with X-Onestop-Node, X-Onestop-Time, X-Onestop-Nonce and "
                                     "X-Onestop-Body-SHA256 (docs/sync-protocol.md)"},
}  # fmt: skip


def spec(app: web.Application) -> dict[str, Any]:
    return document(
        app,
        title="onestop hub API",
        version=__version__,
        description="The provincial hub: sync endpoints for nodes, and dashboards for hub staff "
        "(login with a scope; 403 outside it).",
        security_schemes=SECURITY_SCHEMES,
        staff_security=[{"session": []}],
        error_text=ERROR_TEXT,
    )


@operation("This document", tag="meta", public=True)
async def serve(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app))
