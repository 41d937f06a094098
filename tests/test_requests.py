"""Request models: parsing into the one error shape, and the OpenAPI document built from them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from pydantic import Field

from onestop import requests
from onestop.errors import error_middleware
from onestop.openapi import document, operation
from onestop.requests import Model
from tests.test_errors import check_shape


class Both:
    """A message in both languages, as a catalog message answers (tests have no catalog)."""

    def __init__(self, en: str, zh: str) -> None:
        self.en, self.zh = en, zh

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class Part(Model):
    code: str = Field(min_length=1)
    count: int = Field(ge=1)


class Order(Model):
    messages = {"pin": Both("pin must be 4 digits", "pin 必须是 4 位数字")}  # type: ignore[dict-item]

    name: str
    parts: list[Part]
    express: bool = False
    pin: str | None = Field(None, pattern="^[0-9]{4}$")
    lang: Literal["zh", "en"] | None = None


class Search(Model):
    from_: dt.date | None = Field(None, alias="from", description="first day")
    state: Literal["open", "all"] = "open"
    limit: int = 10


class Item(Model):
    id: int


@operation("Place an order", tag="t", public=True, body=Order, errors=(422,))
async def place(request: web.Request) -> web.Response:
    order = await requests.body(request, Order)
    return web.json_response(order.data())


@operation("Search", tag="t", query=Search, errors=(422,))
async def search(request: web.Request) -> web.Response:
    q = requests.query(request, Search)
    return web.json_response({"from": q.from_ and q.from_.isoformat(), "state": q.state,
                              "limit": q.limit})  # fmt: skip


@operation("One item", tag="t", public=True, path=Item, errors=(404, 422))
async def item(request: web.Request) -> web.Response:
    return web.json_response({"id": requests.path(request, Item).id})


@operation("Documents Order, parses Search", tag="t", public=True, body=Order)
async def drifted(request: web.Request) -> web.Response:
    await requests.body(request, Search)
    return web.json_response({})


async def undocumented(request: web.Request) -> web.Response:
    return web.json_response({})


def make_app(*extra: tuple[str, str, Any]) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/api/v1/orders", place)
    app.router.add_get("/api/v1/orders", search)
    app.router.add_get("/api/v1/items/{id}", item)
    app.router.add_post("/api/v1/drifted", drifted)
    app.router.add_get("/api/v1/openapi.json", serve)
    for method, path, handler in extra:
        app.router.add_route(method, path, handler)
    return app


def spec_of(app: web.Application) -> dict[str, Any]:
    return document(app, title="t", version="1", description="d",
                    security_schemes={"session": {"type": "apiKey", "in": "cookie",
                                                  "name": "s"}},
                    staff_security=[{"session": []}],
                    error_text={401: "login", 403: "role", 404: "nf", 422: "bad"})  # fmt: skip


@operation("This document", tag="meta", public=True)
async def serve(request: web.Request) -> web.Response:
    return web.json_response(spec_of(request.app))


async def test_a_bad_body_names_every_field_first_one_first(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    r = await client.post("/api/v1/orders", json={"parts": [{"code": "", "count": 0}, 5],
                                                  "express": "maybe"})  # fmt: skip
    assert r.status == 422
    err = await r.json()
    check_shape(err, 422)
    assert err["error"] == "invalid" and err["field"] == "name"
    assert err["message"] == "name is required"
    fields = [e["field"] for e in err["errors"]]
    assert fields == ["name", "parts.0.code", "parts.0.count", "parts.1", "express"]
    by = {e["field"]: e["message"] for e in err["errors"]}
    assert by["parts.0.count"] == "parts.0.count must be at least 1"
    assert by["parts.1"] == "parts.1 must be an object"
    assert by["express"] == "express must be true or false"


async def test_messages_follow_the_language_asked_for(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    body = {"name": "x", "parts": [], "pin": "12"}
    r = await client.post("/api/v1/orders", json=body, headers={"Accept-Language": "zh-CN"})
    err = await r.json()
    assert r.status == 422 and err["field"] == "pin" and err["message"] == "pin 必须是 4 位数字"
    r = await client.post("/api/v1/orders", json={**body, "lang": "zh"})
    assert (await r.json())["errors"] == [{"field": "pin", "message": "pin 必须是 4 位数字"}]
    r = await client.post("/api/v1/orders", json={**body, "lang": "en"},
                          headers={"Accept-Language": "zh-CN"})  # fmt: skip
    assert (await r.json())["message"] == "pin must be 4 digits"
    r = await client.post("/api/v1/orders?lang=zh", json={"parts": []})
    assert (await r.json())["message"] == "name 为必填项"


async def test_bodies_that_are_not_objects_and_good_bodies(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    for data, needle in (("{", "not valid JSON"), ("[1]", "JSON object")):
        r = await client.post("/api/v1/orders", data=data)
        err = await r.json()
        assert r.status == 422 and err["field"] == "body" and needle in err["message"]
    r = await client.post("/api/v1/orders", json={"name": "x", "parts": [{"code": "a",
                                                                          "count": 2}],
                                                  "unknown": 1})  # fmt: skip
    assert r.status == 200
    # only what was sent, unknown fields dropped
    assert await r.json() == {"name": "x", "parts": [{"code": "a", "count": 2}]}


async def test_query_and_path_parameters(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    r = await client.get("/api/v1/orders?from=2026-11-02&limit=5&state=")
    assert await r.json() == {"from": "2026-11-02", "state": "open", "limit": 5}
    r = await client.get("/api/v1/orders?from=soon&state=closed&limit=x")
    err = await r.json()
    assert r.status == 422 and err["field"] == "from"
    assert {e["field"]: e["message"] for e in err["errors"]} == {
        "from": "from must be a date like 2026-10-12",
        "state": "state must be one of open, all",
        "limit": "limit must be an integer",
    }
    assert (await (await client.get("/api/v1/items/7")).json()) == {"id": 7}
    r = await client.get("/api/v1/items/seven")
    err = await r.json()
    assert r.status == 422 and err["field"] == "id" and err["message"] == "id must be an integer"


async def test_a_handler_parsing_what_it_does_not_document_fails(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    r = await client.post("/api/v1/drifted", json={})
    assert r.status == 500
    check_shape(await r.json(), 500)


async def test_the_document_comes_from_routes_and_models(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    spec = await (await client.get("/api/v1/openapi.json")).json()
    validate(spec)
    assert set(spec["paths"]) == {"/api/v1/orders", "/api/v1/items/{id}", "/api/v1/drifted",
                                  "/api/v1/openapi.json"}  # fmt: skip
    post = spec["paths"]["/api/v1/orders"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    schemas = spec["components"]["schemas"]
    assert schemas["Order"]["required"] == ["name", "parts"]
    assert schemas["Order"]["properties"]["parts"]["items"] == {"$ref": "#/components/schemas/Part"}
    assert schemas["Part"]["properties"]["count"]["minimum"] == 1
    assert set(post["responses"]) == {"200", "422"} and post["security"] == []
    get = spec["paths"]["/api/v1/orders"]["get"]
    assert set(get["responses"]) == {"200", "401", "403", "422"}
    assert get["security"] == [{"session": []}]
    params = {p["name"]: p for p in get["parameters"]}
    assert params["from"] == {"name": "from", "in": "query", "required": False,
                              "description": "first day",
                              "schema": {"type": "string", "format": "date"}}  # fmt: skip
    assert params["state"]["schema"] == {"enum": ["open", "all"], "type": "string",
                                         "default": "open"}  # fmt: skip
    (pid,) = spec["paths"]["/api/v1/items/{id}"]["get"]["parameters"]
    assert pid == {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    err = schemas["Error"]
    assert set(err["required"]) == {"ok", "status", "error", "message", "field", "errors",
                                    "hint"}  # fmt: skip


def test_every_route_must_be_described() -> None:
    app = make_app(("GET", "/api/v1/secret", undocumented), ("GET", "/page", undocumented))
    with pytest.raises(LookupError, match="GET /api/v1/secret"):
        spec_of(app)
    wrong = make_app(("GET", "/api/v1/things/{code}", item))
    with pytest.raises(ValueError, match="path model Item"):
        spec_of(wrong)
