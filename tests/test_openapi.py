"""The OpenAPI document is valid and covers every /api/v1 route."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate


async def test_openapi_document_is_valid_and_complete(client: Any) -> None:
    r = await client.get("/api/v1/openapi.json")
    spec = await r.json()
    validate(spec)
    documented = {(p, m.upper()) for p, item in spec["paths"].items() for m in item}
    routes = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/api/v1") or route.method == "HEAD":
            continue
        routes.add((path, route.method))
    assert routes == documented, routes ^ documented
