"""Hardening of the hub's ingest and of both services' request bodies: bounded bodies and
inflation (decompression bombs), bounded and aggregated alerts, division codes, relaying only
by a node's registered relay, alerts for signed pushes the hub refuses for their signer."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub import config as hubcfg
from hub import db as hubdb
from hub.ingest import alerts as alertsm
from hub.keys import DB
from onestop import bodies
from onestop.errors import Invalid
from sync.keys import Ed25519PrivateKey
from sync.requests import sign_request
from tests import test_hub_support as support
from tests.conftest import run_cli
from tests.test_hub_support import (
    COUNTY,
    HUB_NOW,
    TOWNSHIP,
    TOWNSHIP2,
    NodeLog,
    check_error_shape,
    enroll,
    envelope,
    push,
    push_ok,
)

hub_dir = support.hub_dir

MiB = 1024**2
OTHER_COUNTY = "370103"


def bomb(inflated_mib: int) -> bytes:
    """gzip of ``inflated_mib`` MiB of zeros, about 1 KiB per MiB, built without compressing
    it all: full-flushed blocks of the same MiB compress to the same bytes.  (Its trailer
    does not match: a server that inflates it all finds out only at the very end.)"""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert block == c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (inflated_mib - 1) + c.flush()


def rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """Sample the process's resident memory every 5 ms: ``out["growth"]`` is the peak above
    the start."""
    out = {"growth": 0}
    start = rss()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            out["growth"] = max(out["growth"], rss() - start)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        done.set()
        t.join()


async def while_in_flight(
    client: Any, probe: str, request: Any, *, bound: float = 3.0
) -> tuple[Any, list[float]]:
    """Run ``request`` (a coroutine) and meanwhile GET ``probe`` again and again; returns the
    request's response (read) and every probe's latency (each must answer 200)."""
    task = asyncio.ensure_future(request)
    latencies: list[float] = []
    while True:
        t0 = time.monotonic()
        r = await asyncio.wait_for(client.get(probe), timeout=30)
        assert r.status == 200, await r.text()
        await r.read()
        latencies.append(time.monotonic() - t0)
        if task.done():
            break
        await asyncio.sleep(0.01)
    resp = await asyncio.wait_for(task, timeout=60)
    return resp, latencies


# -- the bounded reader --------------------------------------------------------------------------


def test_inflate_is_bounded_and_strict() -> None:
    plain = json.dumps({"node": TOWNSHIP, "batches": []}).encode()
    assert bodies.inflate(gzip.compress(plain), 1000) == plain
    # Several members are one body; a body sent without the header is recognised.
    assert bodies.inflate(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    assert bodies.decode(gzip.compress(plain), None, 1000) == plain
    assert bodies.decode(plain, None, 1000) == plain
    with pytest.raises(bodies.TooLarge) as info:
        bodies.inflate(bomb(64), 8 * MiB)  # stops at the limit: it never inflates 64 MiB
    assert info.value.status == 413 and info.value.code == "too_large"
    with pytest.raises(bodies.TooLarge):
        bodies.decode(plain, None, 10)
    for broken in (gzip.compress(plain)[:-12], gzip.compress(plain) + b"junk", b"\x1f\x8bxx"):
        with pytest.raises(Invalid) as bad:
            bodies.inflate(broken, 1000)
        assert bad.value.field == "body"
    with pytest.raises(bodies.UnsupportedEncoding):
        bodies.encoding({"Content-Encoding": "br"})
    assert bodies.encoding({"Content-Encoding": "GZIP"}) == "gzip"
    assert bodies.encoding({}) is None


# -- decompression bombs against real servers --------------------------------------------------


async def test_hub_refuses_a_gzip_bomb_and_keeps_answering(
    aiohttp_client: Any, hub_dir: Path
) -> None:
    """4 MiB of gzip that inflates to 4 GiB: 413 in the one error shape, with the hub's health
    check answering all along and memory growing by about the body limit, not gigabytes."""
    from hub.app import create_app

    cfg = hubcfg.load(hub_dir)
    assert cfg.max_body_mb == 64
    client = await aiohttp_client(create_app(cfg, now=lambda: HUB_NOW))
    data = bomb(4096)
    assert len(data) < 5 * MiB
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with peak_rss() as mem:
        t0 = time.monotonic()
        resp, latencies = await while_in_flight(
            client, "/api/v1/health", client.post("/api/v1/ingest", data=data, headers=headers)
        )
        took = time.monotonic() - t0
    assert resp.status == 413, await resp.text()
    body = await resp.json()
    check_error_shape(body, 413)
    assert body["error"] == "too_large" and body["field"] == "body"
    assert took < 20, took
    assert max(latencies) < 3, latencies  # generous: the old hub stalled for 8-10 s
    assert mem["growth"] < 500 * MiB, mem
    # The same without the header (recognised by its magic bytes), and a plain body above the
    # limit (refused from its Content-Length, before reading it).
    r = await client.post("/api/v1/ingest", data=data, headers={"Content-Type": "application/json"})
    assert r.status == 413
    r = await client.post("/api/v1/ingest", data=b" " * (65 * MiB))
    assert r.status == 413
    check_error_shape(await r.json(), 413)
    # Nothing was written, and the hub still takes pushes.
    assert hubdb.rows(client.app[DB], "SELECT * FROM alerts") == []
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    [res] = await push_ok(client, envelope(TOWNSHIP, log.batch()), log)
    assert res["ack_seq"] == 2


async def test_node_kiosk_and_relay_refuse_gzip_bombs(aiohttp_client: Any, node_dir: Path) -> None:
    from node import config as cfgm
    from node.app import create_app

    client = await aiohttp_client(create_app(cfgm.load(node_dir)))
    data = bomb(2048)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    resp, latencies = await while_in_flight(
        client, "/api/v1/queues", client.post("/api/v1/tickets", data=data, headers=headers)
    )
    assert resp.status == 413, await resp.text()
    check_error_shape(await resp.json(), 413)
    assert max(latencies) < 3, latencies
    # A small gzip ticket request still works; other encodings, and compressed forms, don't.
    body = json.dumps({"queue": "dept:edu", "id_number": "", "phone": ""}).encode()
    r = await client.post("/api/v1/tickets", data=gzip.compress(body), headers=headers)
    assert r.status in (201, 422), await r.text()
    assert (await r.json()).get("error") != "too_large"
    r = await client.post(
        "/api/v1/tickets", data=body, headers={**headers, "Content-Encoding": "br"}
    )
    assert r.status == 415
    check_error_shape(await r.json(), 415)
    r = await client.post(
        "/api/v1/login", data=gzip.compress(b"username=a&password=b"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert r.status == 415
    # The relay's ingest (a township registered with this node) inflates within bounds too.
    key = Ed25519PrivateKey.generate()
    town = NodeLog(TOWNSHIP2, key=key)
    assert run_cli("sync", "relay", "add", "--data", str(node_dir), "--code", TOWNSHIP2,
                   "--pubkey", str(town.pub_file(node_dir.parent))) == 0  # fmt: skip
    signed = sign_request(key, TOWNSHIP2, "POST", "/api/v1/ingest")
    r = await client.post("/api/v1/ingest", data=data, headers={**headers, **signed})
    assert r.status == 413, await r.text()
    check_error_shape(await r.json(), 413)


# -- unauthenticated writes: codes, bounds, aggregation -----------------------------------------


async def test_a_huge_node_code_is_refused_and_writes_nothing(
    aiohttp_client: Any, hub_dir: Path
) -> None:
    from hub.app import create_app

    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    size = (hub_dir / "hub.db").stat().st_size
    for node in ("3" * 3_000_000, "3701x", "３７", ""):
        r = await push(client, {"node": node, "batches": []})
        assert r.status == 422, await r.text()
        assert (await r.json())["field"] == "node"
    r = await push(client, {"node": TOWNSHIP, "batches": [{"node": "9" * 100, "records": []}]})
    assert r.status == 422 and (await r.json())["field"] == "batches[0].node"
    assert hubdb.rows(client.app[DB], "SELECT * FROM alerts") == []
    assert (hub_dir / "hub.db").stat().st_size < size + MiB


async def test_unauthenticated_alerts_are_aggregated_and_capped(
    aiohttp_client: Any, hub_dir: Path
) -> None:
    from hub.app import create_app

    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    db = client.app[DB]
    # A flood of unsigned pushes naming unknown nodes from one address: counted, capped.
    codes = [f"3701{i:02d}" for i in range(30)]
    for code in codes + codes[:5]:
        r = await push(client, {"node": code, "batches": []})
        assert r.status == 403 and (await r.json())["error"] == "unknown_node"
    rows = hubdb.rows(db, "SELECT * FROM alerts ORDER BY id")
    assert len(rows) == alertsm.OPEN_PER_SOURCE
    assert sum(r["count"] for r in rows) == 35
    assert {r["source"] for r in rows} == {"addr:127.0.0.1"}
    assert {r["kind"] for r in rows} == {"unknown_node"}
    assert all("unverified request from 127.0.0.1" in r["message"] for r in rows)
    # Many addresses: bounded together; long messages are cut.
    now = "2026-11-29T10:05:00.000Z"
    for i in range(alertsm.OPEN_UNVERIFIED + 50):
        alertsm.raise_alert(db, "37", "unknown_node", "x" * 5000, now,
                            alertsm.unverified(f"10.0.{i // 250}.{i % 250}"))  # fmt: skip
    open_ = hubdb.rows(db, "SELECT message, count FROM alerts WHERE source LIKE 'addr:%'")
    assert len(open_) == alertsm.OPEN_UNVERIFIED
    assert sum(r["count"] for r in open_) == 35 + alertsm.OPEN_UNVERIFIED + 50
    assert max(len(r["message"]) for r in open_) <= alertsm.MESSAGE_MAX
    # IPv6 clients count by their /64.
    assert alertsm.unverified("2001:db8::1") == alertsm.unverified("2001:db8::ffff")
    assert alertsm.unverified("::ffff:10.1.2.3") == "addr:10.1.2.3"
    # Junk records of an enrolled node, unsigned: one alert per message, capped, messages cut.
    log = NodeLog(TOWNSHIP)
    log.extend(1)
    enroll(hub_dir, log)
    for i in range(alertsm.OPEN_PER_SOURCE + 10):
        junk = {"node": TOWNSHIP, "records": [{**log.records[0], "node": f"{i}" + "x" * 10_000}]}
        r = await push(client, envelope(TOWNSHIP, junk))
        assert r.status == 200
    rows = hubdb.rows(db, "SELECT * FROM alerts WHERE node = ? AND kind = 'rejected'", [TOWNSHIP])
    assert len(rows) == alertsm.OPEN_PER_SOURCE
    assert sum(r["count"] for r in rows) == alertsm.OPEN_PER_SOURCE + 10
    assert max(len(r["message"]) for r in rows) <= alertsm.MESSAGE_MAX
    node = hubdb.one(db, "SELECT last_error FROM nodes WHERE code = ?", [TOWNSHIP])
    assert node is not None and len(node["last_error"]) <= alertsm.MESSAGE_MAX


# -- relaying only by the registered relay --------------------------------------------------------


async def test_only_the_registered_relay_forwards_a_nodes_batches(
    aiohttp_client: Any, hub_dir: Path
) -> None:
    from hub.app import create_app

    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    db = client.app[DB]
    county, other, town, town2 = (NodeLog(c) for c in (COUNTY, OTHER_COUNTY, TOWNSHIP, TOWNSHIP2))
    for log in (county, other, town, town2):
        log.extend(2)
    enroll(hub_dir, county)
    enroll(hub_dir, other)
    enroll(hub_dir, town, parent=COUNTY)
    enroll(hub_dir, town2)  # no relay registered: it pushes itself
    # Another county, and a township, relay the township's batch: refused per batch, alerted.
    for relay in (other, town2):
        res = await push_ok(client, envelope(relay.code, relay.batch(), town.batch()), relay)
        assert [(x["node"], x["stored"]) for x in res] == [(relay.code, 2), (TOWNSHIP, 0)]
        [rej] = res[1]["rejected"]
        assert rej["reason"] == "not_relay" and relay.code in rej["message"]
        assert COUNTY in rej["message"] and res[1]["alert"] == "rejected"
        assert res[1]["receipt"] is None and res[1]["ack_seq"] is None
        relay.extend(1)
    assert hubdb.rows(db, "SELECT seq FROM records WHERE node = ?", [TOWNSHIP]) == []
    rows = hubdb.rows(db, "SELECT kind, source FROM alerts WHERE node = ? ORDER BY id", [TOWNSHIP])
    assert [(r["kind"], r["source"]) for r in rows] == [
        ("rejected", f"node:{OTHER_COUNTY}"), ("rejected", f"node:{TOWNSHIP2}")]  # fmt: skip
    # Nobody relays for a node with no relay registered, not even a county.
    res = await push_ok(client, envelope(COUNTY, county.batch(), town2.batch()), county)
    assert res[1]["rejected"][0]["reason"] == "not_relay"
    # Its registered relay does.
    res = await push_ok(client, envelope(COUNTY, county.batch(), town.batch()), county)
    assert [(x["node"], x["ack_seq"], x["rejected"]) for x in res] == [
        (COUNTY, 2, []), (TOWNSHIP, 2, [])]  # fmt: skip


# -- signed pushes refused for their signer ---------------------------------------------------


async def test_signed_pushes_of_unknown_or_revoked_nodes_raise_alerts(
    aiohttp_client: Any, hub_dir: Path
) -> None:
    from hub.app import create_app

    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    db = client.app[DB]
    stranger = NodeLog(TOWNSHIP2)
    stranger.extend(1)
    for _ in range(3):
        r = await push(client, envelope(TOWNSHIP2, stranger.batch()), stranger)
        assert r.status == 403 and (await r.json())["error"] == "unknown_node"
    [alert] = hubdb.rows(db, "SELECT * FROM alerts WHERE node = ?", [TOWNSHIP2])
    assert alert["kind"] == "unknown_node" and alert["count"] == 3
    assert alert["source"] == "addr:127.0.0.1" and "signed push" in alert["message"]
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    assert run_cli("hub", "revoke", "--data", str(hub_dir), "--code", TOWNSHIP) == 0
    r = await push(client, envelope(TOWNSHIP, log.batch()), log)
    assert r.status == 403 and (await r.json())["error"] == "revoked_key"
    [alert] = hubdb.rows(db, "SELECT * FROM alerts WHERE node = ?", [TOWNSHIP])
    assert alert["kind"] == "revoked_key" and "revoked" in alert["message"]
    # A signer header that is no division code is refused without a row.
    headers = sign_request(log.key, "x" * 200, "POST", "/api/v1/ingest", HUB_NOW)
    r = await client.post("/api/v1/ingest", json=envelope(TOWNSHIP, log.batch()), headers=headers)
    assert r.status in (401, 403)
    assert len(hubdb.rows(db, "SELECT * FROM alerts")) == 2
