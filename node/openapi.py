"""The OpenAPI 3.1 document of the node's JSON API, served at ``/api/v1/openapi.json``.

Built from the node's route table: every handler under ``/api/v1`` carries an
``@operation`` description and names its request models (:mod:`node.models`); see
:mod:`onestop.openapi`.  A test checks that every route appears and the document is valid.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from onestop import __version__
from onestop.openapi import document

ERROR_TEXT = {
    400: "Bad request", 401: "Login required (or a bad node signature)",
    403: "Role or CSRF token not allowed", 404: "Not found",
    409: "Not allowed in the current state", 413: "Body too large",
    422: "Invalid input; `field` names the offending field, `errors` lists every one",
    429: "Too many attempts", 503: "Unavailable just now; try again later",
}  # fmt: skip

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": "onestop_session",
                "description": "From POST /api/v1/login"},
    "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
             "description": "The session's CSRF token (POST /api/v1/login, GET /api/v1/me)"},
    "nodeSignature": {"type": "apiKey", "in": "header", "name": "X-Onestop-Sig",
                      "description": "with X-Onestop-Node, X-Onestop-Time, X-Onestop-Nonce and "
                                     "X-Onestop-Body-SHA256 (docs/sync-protocol.md)"},
}  # fmt: skip


def spec(app: web.Application) -> dict[str, Any]:
    return document(
        app,
        title="onestop node API",
        version=__version__,
        description="Kiosk, queue, window and case API of a service center node. "
        "Every error has the Error shape.",
        security_schemes=SECURITY_SCHEMES,
        staff_security=[{"session": [], "csrf": []}],
        error_text=ERROR_TEXT,
    )
