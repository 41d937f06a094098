"""Bad input is a 4xx naming the field, never a 500: the inputs that broke the node and the hub
(ints too large for SQLite, thousands of digits, deep nesting, lone surrogates, non-finite
numbers, huge path ids, control characters in an upload's name)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from hub import config as hubcfg
from hub import db as hubdb
from hub.keys import DB as HUB_DB
from onestop import jsonbody
from onestop.errors import Invalid
from tests import test_cases_common as common
from tests import test_hub_support as support
from tests.conftest import PHONE, make_id
from tests.test_cases_common import SCHOOL_ITEM, Env
from tests.test_hub_support import HUB_NOW

env = common.env
clock = common.clock

BIG = 2**63
DEEP = "[" * 50_000 + "]" * 50_000


async def send(actor: common.Actor, method: str, path: str, raw: str | bytes) -> tuple[int, Any]:
    """``raw`` sent as the JSON body exactly (aiohttp's ``json=`` would refuse most of these)."""
    headers = {**actor.headers, "Content-Type": "application/json"}
    async with actor.session.request(method, actor.base + path, data=raw, headers=headers) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def refused(got: int, err: Any, field: str | None = None) -> None:
    assert 400 <= got < 500, (got, err)
    assert isinstance(err, dict) and err["status"] == got, err
    if field is not None:
        assert err["field"] == field, err


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ('{"a": ' + "9" * 5000 + "}", "body", "64"),
        (DEEP, "body", "64"),
        ('{"a": ' + "[" * 65 + "]" * 65 + "}", "body", "64"),
        ('{"a": "\\ud800"}', "body.a", "surrogate"),
        ('{"a": {"b": ["ok", "\\udfff"]}}', "body.a.b[1]", "surrogate"),
        ('{"a": Infinity}', "body", "Infinity"),
        ('{"a": -Infinity}', "body", "Infinity"),
        ('{"a": NaN}', "body", "NaN"),
        ('{"a": 1e400}', "body", "1e400"),
        ("{nope", "body", "JSON"),
    ],
)
def test_parse_refuses_what_json_loads_would_crash_on(raw: str, field: str, words: str) -> None:
    with pytest.raises(Invalid) as exc:
        jsonbody.parse(raw.encode())
    assert exc.value.field == field
    assert words in exc.value.text.text("en"), exc.value.text.text("en")


def test_parse_keeps_what_is_fine() -> None:
    assert jsonbody.parse('{"a": "\\ud83d\\ude00", "b": "😀"}'.encode()) == {"a": "😀", "b": "😀"}
    assert jsonbody.parse(b'{"n": -9223372036854775808, "x": 1.5e10}')["n"] == -(2**63)
    nested: Any = 1
    for _ in range(jsonbody.MAX_DEPTH - 1):
        nested = [nested]
    assert jsonbody.parse(json.dumps(nested).encode()) == nested


BODIES = [  # (path, raw body, the field the 422 names); each once gave a 500
    (
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE, "item": ["x"]},
        "item",
    ),  # fmt: skip
    (
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE, "item": {"a": 1}},
        "item",
    ),  # fmt: skip
    (
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE, "item": BIG},
        "item",
    ),  # fmt: skip
    ("/api/v1/tickets", '{"queue": "dept:edu", "phone": "\\ud800"}', "body.phone"),
    ("/api/v1/tickets", '{"queue": "dept:edu", "item": ' + "9" * 5000 + "}", "body"),
    ("/api/v1/tickets", DEEP, "body"),
    ("/api/v1/windows", {"number": BIG, "queues": ["*"]}, "number"),
    ("/api/v1/windows", '{"number": Infinity, "queues": ["*"]}', "body"),
    ("/api/v1/windows", '{"number": 1e400, "queues": ["*"]}', "body"),
    ("/api/v1/windows/1/resume", {"ticket_id": BIG}, "ticket_id"),
    ("/api/v1/windows/1/transfer", {"window": BIG}, "window"),
    ("/api/v1/ratings", {"case_no": "X", "rating_token": "A", "level": BIG}, "level"),
    ("/api/v1/ratings", {"case_no": "\ud800", "rating_token": "A", "level": 5}, None),
]


@pytest.mark.parametrize(("path", "body", "field"), BODIES)
async def test_bad_bodies_are_refused_naming_the_field(
    env: Env, path: str, body: Any, field: str | None
) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    got, err = await send(env.admin, "POST", path, raw)
    refused(got, err, field)
    assert got == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/windows/156562310377376055296/pause",
        "/api/v1/windows/156562310377376055296",
        "/api/v1/tickets/99999999999999999999999/priority",
        "/api/v1/followups/-99999999999999999999999/close",
    ],
)
async def test_huge_path_ids_are_refused(env: Env, path: str) -> None:
    method = "GET" if path.endswith("055296") else "POST"
    body = {"priority": True} if "priority" in path else {}
    got, err = await env.admin.call(method, path, body if method == "POST" else None)
    refused(got, err, "id")


async def test_upload_names_with_control_characters_are_refused(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = str((await e.intake(t, received=[]))["case_no"])
    form = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="scan\x00.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.4 scan\r\n--B--\r\n")  # fmt: skip
    got, err = await e.clerk.call(
        "POST",
        f"/api/v1/cases/{no}/materials/permit",
        data=form,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    refused(got, err, "file")
    got, err = await e.clerk.call(
        "POST",
        f"/api/v1/cases/{no}/materials/permit?name=a%0Ab.pdf",
        data=b"%PDF-1.4 scan",
        headers={"Content-Type": "application/pdf"},
    )
    refused(got, err, "name")
    # A good name still attaches, and the case is unchanged by the refusals.
    got, data = await e.clerk.call(
        "POST",
        f"/api/v1/cases/{no}/materials/permit?name=扫描件.pdf",
        data=b"%PDF-1.4 scan",
        headers={"Content-Type": "application/pdf"},
    )
    assert got == 201, data
    case = await e.clerk.ok("GET", f"/api/v1/cases/{no}")
    names = [f["name"] for m in case["case"]["materials"] for f in m.get("files", [])]
    assert names == ["扫描件.pdf"], case


async def test_the_node_keeps_serving_after_all_of_it(env: Env) -> None:
    for path, body, _field in BODIES:
        raw = body if isinstance(body, str) else json.dumps(body)
        await send(env.public, "POST", path, raw)
    got, data = await env.public.get("/api/v1/queues")
    assert got == 200 and data["queues"]
    issued = await env.public.ok("POST", "/api/v1/tickets", {"queue": "dept:edu",
                                 "id_number": make_id(), "phone": PHONE, "item": SCHOOL_ITEM},
                                 201)  # fmt: skip
    assert issued["ticket_no"]


hub_dir = support.hub_dir


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        '{"node": "370102001", "batches": [{"node": "370102001", "records": ['
        + "[" * 100
        + "]" * 100
        + "]}]}",
        '{"node": "370102001", "batches": [], "x": ' + "7" * 5000 + "}",
        '{"node": "\\ud800", "batches": []}',
        '{"node": "370102001", "batches": [], "x": NaN}',
    ],
)
async def test_the_hubs_ingest_refuses_bad_json_and_writes_nothing(
    aiohttp_client: Any, hub_dir: Path, raw: str
) -> None:
    from hub.app import create_app

    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    for data in (raw.encode(), gzip.compress(raw.encode())):
        headers = {"Content-Type": "application/json"}
        if data[:2] == b"\x1f\x8b":
            headers["Content-Encoding"] = "gzip"
        r = await client.post("/api/v1/ingest", data=data, headers=headers)
        err = await r.json()
        refused(r.status, err)
        assert r.status == 422 and err["field"].startswith("body"), err
    assert hubdb.rows(client.app[HUB_DB], "SELECT * FROM alerts") == []
    assert (await client.get("/api/v1/health")).status == 200


@pytest.mark.parametrize("last4", ["８０００", "٨٠٠٠", "80\x000", "\ud800000"])
async def test_phone_digits_other_than_ascii_are_refused(env: Env, last4: str) -> None:
    """Full-width, Arabic-Indic, NUL or surrogate "digits" in the status lookup are the 422
    naming ``phone_last4`` (they once reached hmac.compare_digest and were a 500)."""
    e = env
    no = str((await e.intake(await e.ticket()))["case_no"])
    got, err = await e.public.call("GET", f"/api/v1/cases/{no}/status",
                                   params={"phone_last4": last4})  # fmt: skip
    refused(got, err, "phone_last4")
