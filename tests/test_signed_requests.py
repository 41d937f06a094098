"""Signed node requests cover the method, the path and query, the body and a nonce.

Captured headers do not work with another body, another query, a second time, or as a
signature over the path alone — at the hub (ingest, read-back, position) and at a relay.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from hub import config as hubcfg
from hub.db import open_db
from onestop.errors import ApiError
from sync.canonical import b64encode
from sync.chain import GENESIS
from sync.receipts import check_receipt
from sync.requests import (
    EMPTY_SHA256,
    REQUEST_SIG_CONTEXT,
    ReplayCache,
    body_sha256,
    sign_request,
)
from tests import test_hub_support as support
from tests.test_hub_support import (
    HUB_NOW,
    TOWNSHIP,
    TOWNSHIP2,
    NodeLog,
    add_hub_user,
    check_error_shape,
    enroll,
    envelope,
    hub_public,
    signed,
)

INGEST = "/api/v1/ingest"
hub_dir = support.hub_dir


@pytest.fixture
async def anon_client(aiohttp_client: Any, hub_dir: Path) -> Any:
    """A test client of the hub with no login."""
    from hub.app import create_app

    return await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))


def _gz_push(body: dict[str, Any]) -> tuple[bytes, bytes]:
    content = json.dumps(body).encode()
    return content, gzip.compress(content)


def _backlog(hub_dir: Path, code: str) -> Any:
    db = open_db(hubcfg.load(hub_dir).db_path)
    try:
        return db.execute("SELECT reported_backlog FROM nodes WHERE code = ?", [code]).fetchone()[0]
    finally:
        db.conn.close()


async def test_captured_ingest_headers_do_not_carry_another_body(
    anon_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    enroll(hub_dir, log)
    content, data = _gz_push(envelope(TOWNSHIP, log.batch(), backlog=3))
    headers = signed(log.key, TOWNSHIP, "POST", INGEST, content)
    gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    # Another body under the captured headers: refused, and the node's status is unchanged.
    forged, forged_gz = _gz_push(envelope(TOWNSHIP, log.batch(), backlog=424242))
    r = await anon_client.post(INGEST, data=forged_gz, headers={**gz, **headers})
    assert r.status == 401, await r.text()
    body = await r.json()
    check_error_shape(body, 401)
    assert "X-Onestop-Body-SHA256" in body["message"]
    assert _backlog(hub_dir, TOWNSHIP) is None
    # A body hash header made to match the other body: the signature no longer verifies.
    r = await anon_client.post(
        INGEST, data=forged_gz,
        headers={**gz, **headers, "X-Onestop-Body-SHA256": body_sha256(forged)},
    )  # fmt: skip
    assert r.status == 401 and "does not verify" in (await r.json())["message"]
    assert _backlog(hub_dir, TOWNSHIP) is None
    # The body it was signed for (gzip-encoded on the wire, hashed as JSON): accepted, once.
    r = await anon_client.post(INGEST, data=data, headers={**gz, **headers})
    assert r.status == 200, await r.text()
    assert _backlog(hub_dir, TOWNSHIP) == 3
    r = await anon_client.post(INGEST, data=data, headers={**gz, **headers})
    assert r.status == 401 and "already received" in (await r.json())["message"]
    # Sent gzipped without Content-Encoding, the hashed bytes are the gzip bytes themselves.
    content, data = _gz_push(envelope(TOWNSHIP, log.batch(), backlog=5))
    h = signed(log.key, TOWNSHIP, "POST", INGEST, data)
    r = await anon_client.post(INGEST, data=data, headers={"Content-Type": "application/json", **h})
    assert r.status == 200, await r.text()
    assert _backlog(hub_dir, TOWNSHIP) == 5


async def test_read_back_signature_covers_the_query_and_is_used_once(
    anon_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(4)
    enroll(hub_dir, log)
    path = f"/api/v1/nodes/{TOWNSHIP}/records"
    target = path + "?after=0&limit=2"
    headers = signed(log.key, TOWNSHIP, "GET", target)
    # A query parameter added (or changed) under the captured headers: 401.
    for other in (target + "&limit=5000", path + "?after=0&limit=5000", path):
        r = await anon_client.get(other, headers=headers)
        assert r.status == 401, (other, await r.text())
    r = await anon_client.get(target, headers=headers)
    assert r.status == 200, await r.text()
    # The same headers again: a replay, refused.
    r = await anon_client.get(target, headers=headers)
    assert r.status == 401
    body = await r.json()
    check_error_shape(body, 401)
    assert "already received" in body["message"] and body["hint"]
    # A signature over the path alone does not stand for a request with a query.
    path_only = signed(log.key, TOWNSHIP, "GET", path)
    r = await anon_client.get(target, headers=path_only)
    assert r.status == 401


async def test_old_style_and_malformed_signatures_are_refused(
    anon_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(1)
    enroll(hub_dir, log)
    target = f"/api/v1/nodes/{TOWNSHIP}/records"
    t = "2026-11-29T10:05:00.000Z"
    # The former signature (method + target + time, no nonce, no body): missing headers.
    old = log.key.sign(b"onestop-request-v1\nGET" + target.encode() + t.encode())
    v1 = {"X-Onestop-Node": TOWNSHIP, "X-Onestop-Time": t, "X-Onestop-Sig": b64encode(old)}
    r = await anon_client.get(target, headers=v1)
    body = await r.json()
    assert r.status == 401 and "X-Onestop-Nonce" in body["message"]
    # A short nonce.
    h = sign_request(log.key, TOWNSHIP, "GET", target, HUB_NOW, nonce="abc")
    r = await anon_client.get(target, headers=h)
    assert r.status == 401 and "X-Onestop-Nonce" in (await r.json())["message"]
    # The lines of the message are separated: the context is v2.
    assert REQUEST_SIG_CONTEXT == b"onestop-request-v2\n"


async def test_position_needs_the_nodes_signature_or_a_hub_login(
    anon_client: Any, aiohttp_client: Any, hub_dir: Path
) -> None:
    from hub.app import create_app

    log, other = NodeLog(TOWNSHIP), NodeLog(TOWNSHIP2)
    log.extend(2)
    enroll(hub_dir, log)
    enroll(hub_dir, other)
    await anon_client.post(INGEST, json=envelope(TOWNSHIP, log.batch()))
    path = f"/api/v1/ingest/{TOWNSHIP}/position"
    r = await anon_client.get(path)
    assert r.status == 401
    check_error_shape(await r.json(), 401)
    r = await anon_client.get(path, headers=signed(other.key, TOWNSHIP2, "GET", path))
    assert r.status == 403
    r = await anon_client.get(path, headers=signed(log.key, TOWNSHIP, "GET", path))
    assert r.status == 200, await r.text()
    pos = await r.json()
    assert (pos["ack_seq"], pos["ack_hash"]) == (2, log.records[1]["hash"])
    check_receipt(pos["receipt"], hub_public(hub_dir), TOWNSHIP, 2, log.records[1]["hash"])
    # An unenrolled node's signed request: 403 with the command that enrolls it.
    stranger = NodeLog("370102009")
    path9 = "/api/v1/ingest/370102009/position"
    r = await anon_client.get(path9, headers=signed(stranger.key, "370102009", "GET", path9))
    body = await r.json()
    assert r.status == 403 and body["error"] == "unknown_node"
    assert "onestop hub enroll --data DIR --code 370102009" in body["hint"]
    # Hub staff: within their scope only.
    add_hub_user(hub_dir, "county", "county-pass-123", "official", "370103")
    staff = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    r = await staff.post("/api/v1/login", json={"username": "county",
                                                "password": "county-pass-123"})  # fmt: skip
    assert r.status == 200, await r.text()
    r = await staff.get(path)
    assert r.status == 403
    add_hub_user(hub_dir, "lixia", "lixia-pass-1234", "official", "370102")
    r = await staff.post("/api/v1/login", json={"username": "lixia",
                                                "password": "lixia-pass-1234"})  # fmt: skip
    r = await staff.get(path)
    assert r.status == 200 and (await r.json())["ack_seq"] == 2
    r = await anon_client.get("/api/v1/ingest/370102002/position",
                              headers=signed(other.key, TOWNSHIP2, "GET",
                                             "/api/v1/ingest/370102002/position"))  # fmt: skip
    assert (await r.json())["ack_hash"] == GENESIS


def test_relay_checks_body_query_and_replays(tmp_path: Path) -> None:
    from node import signer as signerm
    from node.replication import relay
    from tests.conftest import init_node

    county = init_node(tmp_path / "county", code="370102", name="历下区政务服务中心", windows=False)
    town = init_node(tmp_path / "town", windows=False)
    cdb = signerm.open_node_db(county)
    key = signerm.load_node_key(town.data_dir)
    assert key is not None
    relay.add_node(cdb, TOWNSHIP, key.public_key())
    replays = ReplayCache(300)
    content = b'{"node": "370102001", "batches": []}'
    h = sign_request(key, TOWNSHIP, "POST", INGEST, body=content)

    def verify(headers: dict[str, str], target: str = INGEST, body: bytes = content) -> str:
        return relay.verify_sender(cdb, headers, "POST", target, body_sha256(body), replays)

    with pytest.raises(ApiError) as info:
        verify(h, body=b'{"node": "370102001", "batches": [], "backlog": 424242}')
    assert info.value.status == 401
    with pytest.raises(ApiError):
        verify(h, target=INGEST + "?x=1")
    assert verify(h) == TOWNSHIP
    with pytest.raises(ApiError) as info:
        verify(h)
    assert info.value.status == 401 and "already received" in info.value.message
    get = sign_request(key, TOWNSHIP, "GET", f"{INGEST}/{TOWNSHIP}/position")
    assert relay.verify_sender(cdb, get, "GET", f"{INGEST}/{TOWNSHIP}/position", EMPTY_SHA256,
                               replays) == TOWNSHIP  # fmt: skip


def test_the_replay_cache_is_bounded_and_forgets_after_twice_the_skew() -> None:
    cache = ReplayCache(10, maxsize=3)
    for i in range(5):
        cache.add("n", f"nonce-{i:012d}")
    assert len(cache) == 3 and cache.seen("n", "nonce-000000000004")
    assert not cache.seen("n", "nonce-000000000000")
    assert cache._seen.ttl == 21
