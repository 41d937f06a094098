"""``GET /metrics`` of node and hub: exact counts after real requests, gauges read from the
database at scrape time, and who may read it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub import config as hubcfg
from node import config as cfgm
from node import signer as signerm
from onestop.config import ConfigError, networks
from onestop.metrics import allowed
from sync.keys import Ed25519PrivateKey
from tests import test_hub_support as support
from tests.conftest import CLERK, PHONE, ClosedPort, init_node, login, make_id, run_cli
from tests.test_hub_support import (
    TOWNSHIP,
    TOWNSHIP2,
    NodeLog,
    check_error_shape,
    enroll,
    envelope,
    push,
    push_ok,
)

hub_client = support.hub_client
hub_dir = support.hub_dir

# The node under test lives on this clock (09:00 in Jinan), whatever day the suite runs on.
T0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def scrape(client: Any) -> Samples:
    r = await client.get("/metrics")
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await r.text())


async def issue(client: Any, queue: str) -> dict[str, Any]:
    sent = {"queue": queue, "id_number": make_id(), "phone": PHONE}
    r = await client.post("/api/v1/tickets", json=sent)
    assert r.status == 201, await r.text()
    body: dict[str, Any] = await r.json()
    return body


# --------------------------------------------------------------------------- node


async def test_node_counts_tickets_waits_and_calls(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    from node.app import create_app

    clock = Clock(T0)
    client = await aiohttp_client(create_app(node_config, now=clock))
    first = await issue(client, "dept:edu")
    await issue(client, "dept:edu")
    await issue(client, "dept:civil")
    clock.advance(300)
    h = await login(client, CLERK)  # works at window 1, which serves every queue
    r = await client.post("/api/v1/windows/1/call-next", headers=h)
    assert (await r.json())["ticket"]["ticket_no"] == first["ticket_no"]

    m = await scrape(client)
    assert value(m, "onestop_node_tickets_issued_total", queue="dept:edu") == 2
    assert value(m, "onestop_node_tickets_issued_total", queue="dept:civil") == 1
    assert value(m, "onestop_node_tickets_waiting", queue="dept:edu") == 1
    assert value(m, "onestop_node_tickets_waiting", queue="dept:civil") == 1
    assert value(m, "onestop_node_tickets_waiting", queue="area:agri") == 0
    assert value(m, "onestop_node_ticket_wait_seconds_count") == 1
    assert value(m, "onestop_node_ticket_wait_seconds_sum") == 300
    assert value(m, "onestop_node_ticket_wait_seconds_bucket", le="120.0") == 0
    assert value(m, "onestop_node_ticket_wait_seconds_bucket", le="300.0") == 1
    assert value(m, "onestop_node_call_next_seconds_count") == 1
    assert value(m, "onestop_http_requests_total", method="POST", route="/api/v1/tickets",
                 status="201") == 3  # fmt: skip
    assert value(m, "onestop_http_requests_total", method="POST",
                 route="/api/v1/windows/{id}/call-next", status="200") == 1  # fmt: skip
    on_disk = node_config.db_path.stat().st_size
    wal = node_config.db_path.with_name("node.db-wal")
    on_disk += wal.stat().st_size if wal.exists() else 0
    assert value(m, "onestop_node_db_size_bytes") == on_disk
    assert not any(name.startswith("onestop_node_push") for name, _ in m)  # no hub configured

    # Transferred and called again: still one wait (issue to first call), two call-nexts.
    r = await client.post("/api/v1/windows/1/transfer", json={"queue": "area:agri"}, headers=h)
    assert r.status == 200, await r.text()
    clock.advance(600)
    r = await client.post("/api/v1/windows/1/call-next", headers=h)
    assert (await r.json())["ticket"]["ticket_no"] == first["ticket_no"]
    m = await scrape(client)
    assert value(m, "onestop_node_ticket_wait_seconds_count") == 1
    assert value(m, "onestop_node_call_next_seconds_count") == 2
    assert value(m, "onestop_node_tickets_waiting", queue="area:agri") == 0
    assert value(m, "onestop_node_tickets_issued_total", queue="dept:edu") == 2
    # The next day nobody is waiting any more.
    clock.advance(86400)
    m = await scrape(client)
    assert value(m, "onestop_node_tickets_waiting", queue="dept:edu") == 0


async def test_node_apps_keep_their_own_counts(
    aiohttp_client: Any, node_config: cfgm.NodeConfig, tmp_path: Path
) -> None:
    from node.app import create_app

    a = await aiohttp_client(create_app(node_config, now=Clock(T0)))
    other = init_node(tmp_path / "other", code="370102002", name="另一个便民服务中心")
    b = await aiohttp_client(create_app(other, now=Clock(T0)))
    await issue(a, "dept:edu")
    assert ("onestop_node_tickets_issued_total", (("queue", "dept:edu"),)) not in await scrape(b)
    assert value(await scrape(a), "onestop_node_tickets_issued_total", queue="dept:edu") == 1


async def test_node_push_backlog_and_lag(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """Backlog and lag while the hub is unreachable, then zero once the node has pushed."""
    from hub.app import create_app as create_hub
    from node.app import create_app

    hub = tmp_path / "hub"
    assert run_cli("hub", "init", "--data", str(hub)) == 0
    cfg = init_node(tmp_path / "n", windows=False, hub_pubkey=str(hub / "hub.pub"))
    assert run_cli("hub", "enroll", "--data", str(hub), "--code", cfg.code,
                   "--pubkey", str(cfg.data_dir / "node.pub")) == 0  # fmt: skip
    size = signerm.log_size(signerm.open_node_db(cfg))

    with ClosedPort() as closed:  # nothing listens there
        down = dataclasses.replace(cfg, hub_url=f"http://127.0.0.1:{closed.port}")
        client = await aiohttp_client(create_app(down))
        m = await scrape(client)
        assert value(m, "onestop_node_push_backlog_records") == size
        assert 0 <= value(m, "onestop_node_push_lag_seconds") < 600
        assert ("onestop_node_push_last_success_timestamp_seconds", ()) not in m
        await client.close()

    srv = await aiohttp_server(create_hub(hubcfg.load(hub)))
    client = await aiohttp_client(
        create_app(dataclasses.replace(cfg, hub_url=str(srv.make_url(""))))
    )
    for _ in range(200):  # the node pushes on its own at start
        m = await scrape(client)
        if value(m, "onestop_node_push_backlog_records") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(m, "onestop_node_push_backlog_records") == 0
    assert value(m, "onestop_node_push_lag_seconds") == 0
    assert value(m, "onestop_node_push_last_success_timestamp_seconds") > 0
    r = await client.session.get(srv.make_url("/metrics"))
    hub_m = parse(await r.text())
    assert value(hub_m, "onestop_hub_ingest_records_total", result="accepted") == size


# --------------------------------------------------------------------------- hub


async def test_hub_counts_accepted_rejected_and_reasons(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    log.add(key=Ed25519PrivateKey.generate())  # seq 4 signed by a key the hub does not know
    enroll(hub_dir, log)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 4, checkpoint=False)))
    assert res["stored"] == 3 and [x["reason"] for x in res["rejected"]] == ["bad_signature"]

    m = await scrape(hub_client)
    assert value(m, "onestop_hub_ingest_records_total", result="accepted") == 3
    assert value(m, "onestop_hub_ingest_records_total", result="rejected") == 1
    assert value(m, "onestop_hub_ingest_records_total", result="duplicate") == 0
    assert value(m, "onestop_hub_verification_failures_total", reason="bad_signature") == 1
    assert value(m, "onestop_hub_verification_failures_total", reason="broken_chain") == 0
    assert value(m, "onestop_hub_verification_failures_total", reason="fork") == 0
    assert value(m, "onestop_hub_ingest_verify_seconds_count") == 1
    assert value(m, "onestop_hub_alerts_open", kind="rejected") == 1
    assert value(m, "onestop_hub_alerts_open", kind="fork") == 0
    assert value(m, "onestop_hub_nodes", status="active") == 1
    assert value(m, "onestop_hub_nodes_online") == 1
    assert value(m, "onestop_hub_db_size_bytes") > 0

    # The same push again: three duplicates, the bad record refused again.
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 4, checkpoint=False)))
    # A push from a node the hub does not know is refused as a whole.
    stranger = NodeLog(TOWNSHIP2)
    stranger.extend(2)
    r = await push(hub_client, envelope(TOWNSHIP2, stranger.batch()))
    assert r.status == 403
    m = await scrape(hub_client)
    assert value(m, "onestop_hub_ingest_records_total", result="accepted") == 3
    assert value(m, "onestop_hub_ingest_records_total", result="duplicate") == 3
    assert value(m, "onestop_hub_ingest_records_total", result="rejected") == 1 + 1 + 2
    assert value(m, "onestop_hub_verification_failures_total", reason="bad_signature") == 2
    assert value(m, "onestop_hub_verification_failures_total", reason="unknown_node") == 1
    assert value(m, "onestop_hub_ingest_verify_seconds_count") == 2
    assert value(m, "onestop_hub_alerts_open", kind="unknown_node") == 1


async def test_hub_counts_a_fork(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    fork = NodeLog(TOWNSHIP, key=log.key)
    fork.records = log.records[:1]
    fork.add(body={**support.ticket_body(2), "ticket_no": "B002"})
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, fork.batch(2, 2)))
    assert res["alert"] == "fork"
    m = await scrape(hub_client)
    assert value(m, "onestop_hub_verification_failures_total", reason="fork") == 1
    assert value(m, "onestop_hub_ingest_records_total", result="rejected") == 1
    assert value(m, "onestop_hub_alerts_open", kind="fork") == 1


# --------------------------------------------------------------------------- who may read


def test_allowed_addresses() -> None:
    allow = networks("10.20.0.5, 10.20.1.0/24")
    assert allowed("127.0.0.1", []) and allowed("::1", []) and allowed("::ffff:127.0.0.1", [])
    assert allowed("10.20.0.5", allow) and allowed("10.20.1.77", allow)
    assert not allowed("10.20.0.6", allow) and not allowed("192.168.1.5", [])
    assert not allowed(None, allow) and not allowed("", allow) and not allowed("x", allow)


@pytest.mark.parametrize("module", [cfgm, hubcfg])
@pytest.mark.parametrize("field,bad", [
    ("log_level", "loud"), ("log_format", "xml"), ("metrics_allow", "10.0.0.300"),
])  # fmt: skip
def test_settings_are_validated(tmp_path: Path, module: Any, field: str, bad: str) -> None:
    cls = module.NodeConfig if module is cfgm else module.HubConfig
    extra = {"code": "370102001", "name": "x"} if module is cfgm else {}
    with pytest.raises(ConfigError) as exc:
        cls(data_dir=tmp_path, **extra, **{field: bad}).validate()
    assert exc.value.field == field


def _lan_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


async def test_metrics_are_refused_to_other_addresses(
    aiohttp_server: Any, node_config: cfgm.NodeConfig, hub_dir: Path
) -> None:
    from hub.app import create_app as create_hub
    from node.app import create_app

    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no address but loopback")
    hub = hubcfg.load(hub_dir)
    for app in (create_app(node_config), create_hub(hub)):
        srv = await aiohttp_server(app, host=lan)
        async with aiohttp.ClientSession() as http:
            r = await http.get(srv.make_url("/metrics"))
            assert r.status == 403
            check_error_shape(await r.json(), 403)
            assert r.headers["X-Request-Id"]
        await srv.close()
    for app in (create_app(dataclasses.replace(node_config, metrics_allow=f"{lan}/32")),
                create_hub(dataclasses.replace(hub, metrics_allow=lan))):  # fmt: skip
        srv = await aiohttp_server(app, host=lan)
        async with aiohttp.ClientSession() as http:
            r = await http.get(srv.make_url("/metrics"))
            assert r.status == 200 and "onestop_http_requests_total" in await r.text()
        await srv.close()
