"""The servers' log: text and JSON lines, the access line with its request id, no personal
numbers, and sync progress from a real ``node serve`` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onestop import logs
from tests.conftest import PHONE, LiveServer, init_node, make_id, run_cli, start_server

TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after a test that calls :func:`logs.configure`."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    if logs._installed is not None:
        root.removeHandler(logs._installed)
        logs._installed = None
    root.setLevel(level)
    assert root.handlers == handlers
    logging.getLogger("apscheduler").setLevel(logging.NOTSET)
    logging.captureWarnings(False)


def test_text_and_json_lines(root_logging: None) -> None:
    out = io.StringIO()
    logs.configure("info", "text", stream=out)
    sync = logging.getLogger("onestop.sync")
    sync.info("sync: sent %d, hub at seq %d", 5, 12)
    sync.debug("not at info")
    [line] = out.getvalue().splitlines()
    assert TEXT_LINE.match(line) and line.endswith("INFO onestop.sync: sync: sent 5, hub at seq 12")

    out = io.StringIO()
    logs.configure("debug", "json", stream=out)  # replaces the text setup: no doubled lines
    sync.debug("checking %s", "中心", extra={"node": "370102001", "backlog": 3})
    try:
        raise ValueError("boom")
    except ValueError:
        sync.exception("push failed")
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first.pop("time").endswith("Z")
    assert first == {"level": "debug", "logger": "onestop.sync", "message": "checking 中心",
                     "node": "370102001", "backlog": 3}  # fmt: skip
    t = dt.datetime.fromisoformat(second["time"].replace("Z", "+00:00"))
    assert t.utcoffset() == dt.timedelta(0)
    assert second["level"] == "error" and "Traceback" in second["exc"] and "boom" in second["exc"]


def test_full_id_and_phone_numbers_are_masked() -> None:
    id_number = make_id()
    line = logs.redact(f"id {id_number} tel {PHONE} / +86{PHONE}, hash a{id_number}b, seq 12345")
    assert f"id {id_number[:6]}********{id_number[-4:]} " in line
    assert "tel 138****8000 / +86138****8000," in line and PHONE not in line
    # Digits inside a longer token (a hex hash) are not a number of a person: kept.
    assert f"hash a{id_number}b, seq 12345" in line and line.count(id_number) == 1


def test_request_ids() -> None:
    assert logs.request_id("kiosk-7.a:b_1") == "kiosk-7.a:b_1"
    new = {logs.request_id(x) for x in (None, "", "two words", "x" * 65, make_id(), PHONE)}
    assert len(new) == 6 and all(re.fullmatch(r"[0-9a-f]{16}", x) for x in new)


async def test_one_access_line_per_request(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onestop.access")

    def last() -> Any:  # a LogRecord with the access line's extra fields
        return [r for r in caplog.records if r.name == "onestop.access"][-1]

    r = await client.get("/api/v1/queues", headers={"X-Request-Id": "kiosk-7.a:b"})
    assert r.status == 200 and r.headers["X-Request-Id"] == "kiosk-7.a:b"
    rec = last()
    assert (rec.method, rec.path, rec.status, rec.request_id) == (
        "GET",
        "/api/v1/queues",
        200,
        "kiosk-7.a:b",
    )
    assert rec.duration_ms >= 0
    assert re.fullmatch(r"GET /api/v1/queues 200 \d+\.\d ms id=kiosk-7\.a:b", rec.getMessage())

    r = await client.get("/no/such/page", headers={"X-Request-Id": "has space"})
    rid = r.headers["X-Request-Id"]
    assert r.status == 404 and rid != "has space"
    assert (last().status, last().request_id) == (404, rid)

    # Query values of anything but a few harmless parameters are never logged.
    r = await client.get(f"/api/v1/tickets?date=2026-11-30&id_number={make_id()}&phone={PHONE}")
    assert r.status == 401
    assert last().path == "/api/v1/tickets?date=2026-11-30&id_number=*&phone=*"

    # A stream (the display board) answers with its id too; its line comes when it ends.
    async with client.get("/api/v1/display/stream") as r:
        assert r.status == 200 and re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-Id"])


# --------------------------------------------------------------------------- real servers


def _serve(data: Path, fmt: str) -> LiveServer:
    toml = data / "node.toml"
    toml.write_text(toml.read_text().replace('log_format = "text"', f'log_format = "{fmt}"'))
    return start_server(["node", "serve", "--data", str(data), "--port", "0"], data,
                        data / "serve.log")  # fmt: skip


def _post(url: str, body: dict[str, Any], rid: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"} | ({"X-Request-Id": rid} if rid else {})
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers["X-Request-Id"]


def test_json_log_of_a_served_node_and_no_personal_numbers(node_dir: Path) -> None:
    srv = _serve(node_dir, "json")
    id_number = make_id("19500101")  # elderly: a priority ticket
    try:
        body = {"queue": "dept:edu", "id_number": id_number, "phone": PHONE}
        status, rid = _post(srv.url + "/api/v1/tickets", body)
        assert status == 201
        for url in (f"/s/{id_number}", f"/api/v1/tickets?id_number={id_number}&phone={PHONE}"):
            try:
                urllib.request.urlopen(srv.url + url, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code in (401, 404)
    finally:
        srv.stop()
    text = (node_dir / "serve.log").read_text()
    assert id_number not in text and PHONE not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    assert any(x["logger"] == "onestop.node" and "serving on" in x["message"] for x in lines)
    [issued] = [x for x in lines if x["logger"] == "onestop.access" and x["request_id"] == rid]
    assert (issued["method"], issued["path"], issued["status"]) == ("POST", "/api/v1/tickets", 201)
    assert isinstance(issued["duration_ms"], float)
    paths = [x["path"] for x in lines if x["logger"] == "onestop.access"]
    assert f"/s/{id_number[:6]}********{id_number[-4:]}" in paths
    assert "/api/v1/tickets?id_number=*&phone=*" in paths


async def test_text_log_of_a_served_node_shows_sync_progress(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    from hub import config as hubcfg
    from hub.app import create_app as create_hub

    hub = tmp_path / "hub"
    assert run_cli("hub", "init", "--data", str(hub)) == 0
    srv = await aiohttp_server(create_hub(hubcfg.load(hub)))
    data = tmp_path / "node"
    cfg = init_node(data, windows=False, hub_url=str(srv.make_url("")).rstrip("/"),
                    hub_pubkey=str(hub / "hub.pub"))  # fmt: skip
    assert run_cli("hub", "enroll", "--data", str(hub), "--code", cfg.code,
                   "--pubkey", str(data / "node.pub")) == 0  # fmt: skip
    node = _serve(data, "text")
    log = data / "serve.log"
    try:
        for _ in range(400):  # the node pushes its log (written by init) as it starts
            if "sync: sent" in log.read_text():
                break
            await asyncio.sleep(0.05)
        req = urllib.request.Request(
            node.url + "/api/v1/queues", headers={"X-Request-Id": "probe-42"}
        )
        assert (
            await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).status) == 200
        )
    finally:
        node.stop()
    lines = log.read_text().splitlines()
    assert "Traceback" not in "\n".join(lines)
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert any("INFO onestop.sync: sync: pushing to" in line for line in lines)
    assert any(re.search(r"INFO onestop\.sync: sync: sent \d+, hub at seq \d+, backlog 0", line)
               for line in lines)  # fmt: skip
    assert any(re.search(r"INFO onestop\.access: GET /api/v1/queues 200 [\d.]+ ms id=probe-42$",
                         line) for line in lines)  # fmt: skip
