"""Tickets in a real hall: where to wait, opening hours and cut-off, the per-person cap, and
QR links phones can open (never a loopback address)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node import config as cfgm
from node import hall, links
from tests.conftest import PHONE, LiveServer, make_id, start_server
from tests.test_cases_common import Clock, local, make_env

EDU_HALL = {
    "dept:edu": {
        "where_zh": "二楼东侧 3、4 号窗口",
        "where_en": "2nd floor east, windows 3 and 4",
        "hours": "08:30-12:00,13:30-17:00",
        "cutoff": "16:30",
    }
}


def ticket(queue: str = "dept:edu", id_number: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"queue": queue, "id_number": id_number or make_id(), "phone": PHONE, **kw}


async def env_with(aiohttp_client: Any, cfg: cfgm.NodeConfig, when: Any, **settings: Any) -> Any:
    return await make_env(
        aiohttp_client, dataclasses.replace(cfg, **settings).validate(), Clock(when)
    )


async def close(e: Any) -> None:
    for a in e.actors:
        await a.session.close()


# -------------------------------------------------------------------- settings are checked


@pytest.mark.parametrize(
    "queues,field",
    [
        ({"edu": {}}, "queues.edu"),
        ({"dept:edu": {"hours": "8:30-12:00"}}, "queues.dept:edu.hours"),
        ({"dept:edu": {"hours": "12:00-08:30"}}, "queues.dept:edu.hours"),
        ({"dept:edu": {"hours": "13:30-17:00,08:30-12:00"}}, "queues.dept:edu.hours"),
        ({"dept:edu": {"cutoff": "25:00"}}, "queues.dept:edu.cutoff"),
        ({"dept:edu": {"colour": "red"}}, "queues.dept:edu.colour"),
        ({"dept:edu": {"where_zh": 3}}, "queues.dept:edu.where_zh"),
    ],
)
def test_queue_settings_are_checked_naming_the_entry(
    tmp_path: Path, queues: dict[str, Any], field: str
) -> None:
    cfg = cfgm.NodeConfig(data_dir=tmp_path, code="370102001", name="x", queues=queues)
    with pytest.raises(cfgm.ConfigError) as exc:
        cfg.validate()
    assert exc.value.field == field


@pytest.mark.parametrize("field,value", [("max_live_tickets_per_id", 0),
                                         ("center_phone", "call us")])  # fmt: skip
def test_hall_settings_are_checked(tmp_path: Path, field: str, value: Any) -> None:
    cfg = cfgm.NodeConfig(data_dir=tmp_path, code="370102001", name="x", **{field: value})
    with pytest.raises(cfgm.ConfigError) as exc:
        cfg.validate()
    assert exc.value.field == field


def test_queue_tables_round_trip_through_node_toml(tmp_path: Path) -> None:
    cfg = cfgm.NodeConfig(data_dir=tmp_path, code="370102001", name="x", queues=EDU_HALL)
    (tmp_path / "node.toml").write_text(cfgm.dump(cfg))
    assert cfgm.load(tmp_path).hall["dept:edu"].hours_text == "08:30-12:00,13:30-17:00"


# ------------------------------------------------------------------------- where to wait


async def test_the_slip_and_the_kiosk_say_where_to_wait(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    e = await env_with(aiohttp_client, node_config, local(2026, 9, 28, 9, 30), queues=EDU_HALL)
    try:
        t = await e.public.ok("POST", "/api/v1/tickets", ticket(), 201)
        assert t["where_zh"] == "二楼东侧 3、4 号窗口"
        assert t["where_en"] == "2nd floor east, windows 3 and 4"
        _, page = await e.public.get(t["print_url"], params={"lang": "en"})
        assert "2nd floor east, windows 3 and 4" in page
        # No setting: the windows serving the queue (window 1 serves every queue).
        t = await e.public.ok("POST", "/api/v1/tickets", ticket("area:agri"), 201)
        assert t["where_zh"] == "请到 1、3 号窗口附近等候"
        assert t["where_en"] == "Please wait near windows 1, 3"
        queues = {q["code"]: q for q in (await e.public.ok("GET", "/api/v1/queues"))["queues"]}
        assert queues["dept:civil"]["where_zh"] == "请到 1、2 号窗口附近等候"
    finally:
        await close(e)


# -------------------------------------------------------------------- hours and cut-off


@pytest.mark.parametrize(
    "when,reason",
    [
        (local(2026, 9, 28, 8, 29), "before_hours"),
        (local(2026, 9, 28, 8, 30), None),
        (local(2026, 9, 28, 12, 15), "between_hours"),
        (local(2026, 9, 28, 16, 29), None),
        (local(2026, 9, 28, 16, 30), "after_cutoff"),
        (local(2026, 10, 1, 10, 0), "not_workday"),  # National Day
        (local(2026, 10, 3, 10, 0), "not_workday"),  # a Saturday of the holiday
    ],
)
def test_closed_reason_follows_hours_cutoff_and_working_days(when: Any, reason: str) -> None:
    halls = hall.parse(EDU_HALL)
    assert hall.closed_reason(halls["dept:edu"], when, "Asia/Shanghai") == reason
    assert hall.closed_reason(halls.get("dept:civil"), when, "Asia/Shanghai") is None


async def test_a_closed_queue_refuses_tickets_with_a_clear_error(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    e = await env_with(aiohttp_client, node_config, local(2026, 9, 28, 16, 45), queues=EDU_HALL)
    try:
        status, body = await e.public.post("/api/v1/tickets", ticket(lang="zh"))
        assert status == 409, body
        assert body["error"] == "queue_closed" and body["field"] == "queue"
        assert body["message"].startswith("今日已停止取号")
        assert "08:30-12:00、13:30-17:00" in body["message"] and "16:30" in body["message"]
        status, body = await e.public.post("/api/v1/tickets", ticket(lang="en"))
        assert status == 409 and "No more tickets today" in body["message"]
        queues = {q["code"]: q for q in (await e.public.ok("GET", "/api/v1/queues"))["queues"]}
        assert queues["dept:edu"]["open"] is False
        assert queues["dept:edu"]["closed_reason"] == "after_cutoff"
        assert queues["dept:edu"]["hours"] == "08:30-12:00,13:30-17:00"
        assert queues["dept:civil"]["open"] is True
        await e.public.ok("POST", "/api/v1/tickets", ticket("dept:civil"), 201)
        # The next working morning it opens again.
        e.clock.set(local(2026, 9, 29, 8, 30))
        await e.public.ok("POST", "/api/v1/tickets", ticket(), 201)
    finally:
        await close(e)


# ---------------------------------------------------------------------- per-person cap


async def test_one_id_holds_at_most_the_cap_of_live_tickets(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    e = await env_with(
        aiohttp_client, node_config, local(2026, 9, 28, 9, 30), max_live_tickets_per_id=2
    )
    try:
        me = make_id("19850612")
        await e.public.ok("POST", "/api/v1/tickets", ticket("dept:edu", me), 201)
        await e.public.ok("POST", "/api/v1/tickets", ticket("dept:civil", me), 201)
        status, body = await e.public.post("/api/v1/tickets", ticket("area:agri", me, lang="zh"))
        assert status == 409, body
        assert body["error"] == "ticket_limit" and body["field"] == "id_number"
        assert "2 张未办结的号票" in body["message"]
        status, body = await e.public.post("/api/v1/tickets", ticket("area:agri", me, lang="en"))
        assert status == 409 and "2 tickets not yet served" in body["message"]
        # Someone else is not affected; once one of mine is served I may take another.
        await e.public.ok("POST", "/api/v1/tickets", ticket("area:agri", make_id(seq="456")), 201)
        await e.clerk.ok("POST", "/api/v1/windows/1/call-next", {})
        await e.clerk.ok("POST", "/api/v1/windows/1/finish", {})
        await e.public.ok("POST", "/api/v1/tickets", ticket("area:agri", me), 201)
    finally:
        await close(e)


@pytest.fixture
def capped_node(node_dir: Path) -> Iterator[LiveServer]:
    toml = node_dir / "node.toml"
    toml.write_text(toml.read_text().replace("max_live_tickets_per_id = 50",
                                             "max_live_tickets_per_id = 2"))  # fmt: skip
    srv = start_server(["node", "serve", "--data", str(node_dir), "--port", "0"],
                       node_dir, node_dir / "serve.log")  # fmt: skip
    yield srv
    srv.stop()


async def test_the_cap_holds_under_concurrent_requests(capped_node: LiveServer) -> None:
    me = make_id("19900101")
    async with aiohttp.ClientSession() as s:

        async def take(i: int) -> tuple[int, dict[str, Any]]:
            queue = ("dept:edu", "dept:civil", "area:agri")[i % 3]
            async with s.post(capped_node.url + "/api/v1/tickets", json=ticket(queue, me)) as r:
                return r.status, await r.json()

        got = await asyncio.gather(*(take(i) for i in range(30)))
    statuses = sorted(status for status, _ in got)
    assert statuses == [201] * 2 + [409] * 28
    assert {b["error"] for status, b in got if status == 409} == {"ticket_limit"}


# ------------------------------------------------------------------- QR links for phones


async def test_without_public_url_a_loopback_kiosk_gets_no_qr_but_a_reference(
    aiohttp_client: Any, node_config: cfgm.NodeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    links._warned.clear()
    e = await env_with(aiohttp_client, node_config, local(2026, 9, 28, 9, 30))
    try:
        with caplog.at_level(logging.WARNING, logger="onestop.node"):
            t = await e.public.ok("POST", "/api/v1/tickets", ticket(), 201)
            assert t["status_link"] is None
            _, page = await e.public.get(t["print_url"])
            assert "<svg" not in page and 'id="ticket-ref"' in page
            assert f"{t['ticket_no']}-20260928" in page
            status, _ = await e.public.get(f"/t/{t['token']}/qr.svg")
            assert status == 404
        warnings = [r for r in caplog.records if "public_url is not set" in r.getMessage()]
        assert len(warnings) == 1
        # A LAN address the kiosk used is fine for phones on the same network.
        _, page = await e.public.get(t["print_url"], headers={"Host": "10.20.0.7:8080"})
        assert "<svg" in page
    finally:
        await close(e)


async def test_with_public_url_the_answer_carries_the_full_link(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    e = await env_with(aiohttp_client, node_config, local(2026, 9, 28, 9, 30),
                       public_url="https://zwfw.example.gov.cn/hall/")  # fmt: skip
    try:
        t = await e.public.ok("POST", "/api/v1/tickets", ticket(), 201)
        assert t["status_link"] == f"https://zwfw.example.gov.cn/hall/s/{t['token']}"
    finally:
        await close(e)


@pytest.mark.parametrize(
    "host,loopback",
    [("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("kiosk.localhost", True), ("10.20.0.7", False),
     ("zwfw.example.gov.cn", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert links.is_loopback(host) is loopback
