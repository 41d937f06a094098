"""One JSON error shape for every error, on every service (datasette's error_body rule)."""

from __future__ import annotations

from typing import Any

from tests.conftest import login

KEYS = {"ok", "status", "error", "message", "field", "errors", "hint"}


def check_shape(body: dict[str, Any], status: int) -> None:
    assert set(body) == KEYS, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)


async def test_every_error_has_the_same_shape(client: Any) -> None:
    cases = [
        ("GET", "/api/v1/nothing-here", None, 404, {}),
        ("DELETE", "/api/v1/queues", None, 405, {}),
        ("POST", "/api/v1/tickets", "not json", 422, {"Content-Type": "application/json"}),
        ("POST", "/api/v1/tickets", [1, 2], 422, {}),
        ("POST", "/api/v1/tickets", {"queue": "x"}, 422, {}),
        ("GET", "/api/v1/tickets/status/nope", None, 404, {}),
        ("POST", "/api/v1/windows/1/call-next", None, 401, {}),
        ("POST", "/api/v1/login", {"username": "a", "password": "b"}, 401, {}),
    ]
    for method, path, body, status, headers in cases:
        kw: dict[str, Any] = {"headers": headers}
        if isinstance(body, str):
            kw["data"] = body
        elif body is not None:
            kw["json"] = body
        r = await client.request(method, path, **kw)
        assert r.status == status, (method, path, await r.text())
        assert r.content_type == "application/json"
        check_shape(await r.json(), status)
    h = await login(client)
    for method, path, status in [
        ("POST", "/api/v1/windows/1/finish", 409),
        ("GET", "/api/v1/windows/999", 404),
        ("GET", "/api/v1/windows/abc", 422),
    ]:
        r = await client.request(method, path, headers=h)
        assert r.status == status, (path, await r.text())
        check_shape(await r.json(), status)
    r = await client.post("/api/v1/windows/1/finish")
    check_shape(await r.json(), 403)


async def test_unexpected_errors_keep_the_shape_and_the_node_running(client: Any) -> None:
    from node.keys import DB

    h = await login(client)
    client.app[DB].execute("ALTER TABLE windows RENAME TO windows_gone")
    try:
        r = await client.get("/api/v1/windows", headers=h)
        assert r.status == 500
        check_shape(await r.json(), 500)
    finally:
        client.app[DB].execute("ALTER TABLE windows_gone RENAME TO windows")
    assert (await client.get("/api/v1/queues")).status == 200
