"""A node moves its acknowledged position only on a receipt signed by its hub's key.

A fake hub (a real aiohttp server on 127.0.0.1) answers pushes and position reads with no
receipt, a receipt signed by another key, one for another node or for a lower seq; the node
keeps its backlog, ``onestop sync push`` exits non-zero and the sync status shows the error.
The real hub's receipts move it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub import config as hubcfg
from hub import identity
from node import config as cfgm
from node import db as dbm
from node import signer as signerm
from node.replication.client import HubError, PushClient, backlog
from node.replication.service import PushService
from node.replication.state import state
from sync.chain import GENESIS
from sync.receipts import make_receipt
from tests.conftest import PHONE, copy_hub, init_node, make_id, run_cli

CODE = "370102001"
AT = "2026-11-29T10:00:00.000Z"


@pytest.fixture
def hub_dir(tmp_path: Path, hub_template: Path) -> Path:
    return copy_hub(hub_template, tmp_path / "hub")


def _node(hub: Path, data: Path, url: str, n: int = 5) -> cfgm.NodeConfig:
    from node import pii, tickets

    cfg = init_node(data, code=CODE, windows=False, hub_pubkey=str(hub / "hub.pub"))
    toml = data / "node.toml"
    toml.write_text(toml.read_text().replace('hub_url = ""', f'hub_url = "{url}"'))
    cfg = cfgm.load(data)
    db = signerm.open_node_db(cfg)
    p = pii.load(cfg.data_dir)
    for i in range(n):  # one person each: max_live_tickets_per_id
        body = {"queue": "dept:edu", "id_number": make_id(seq=f"{i:03d}"), "phone": PHONE}
        tickets.issue(db, cfg, p, body)
    return cfg


class FakeHub:
    """Answers like a hub would, except for the receipts (``mode``)."""

    def __init__(self, hub_key: Ed25519PrivateKey, mode: str, position_mode: str = "valid"):
        self.hub_key, self.mode, self.position_mode = hub_key, mode, position_mode
        self.other_key = Ed25519PrivateKey.generate()
        self.positions = 0
        self.pushes = 0

    def receipt(self, mode: str, seq: int, hash_hex: str, prev: tuple[int, str]) -> Any:
        if mode == "none":
            return None
        if mode == "other_key":
            return make_receipt(self.other_key, CODE, seq, hash_hex, AT)
        if mode == "other_node":
            return make_receipt(self.hub_key, "370102999", seq, hash_hex, AT)
        if mode == "lower_seq":
            return make_receipt(self.hub_key, CODE, prev[0], prev[1], AT)
        return make_receipt(self.hub_key, CODE, seq, hash_hex, AT)

    async def position(self, request: web.Request) -> web.Response:
        self.positions += 1
        return web.json_response({"node": CODE, "ack_seq": 0, "ack_hash": GENESIS,
                                  "receipt": self.receipt(self.position_mode, 0, GENESIS,
                                                          (0, GENESIS))})  # fmt: skip

    async def ingest(self, request: web.Request) -> web.Response:
        self.pushes += 1
        body = json.loads(await request.read())
        [batch] = body["batches"]
        records = batch["records"]
        last, before = records[-1], records[-2]
        return web.json_response({"results": [{
            "node": CODE, "ack_seq": last["seq"], "ack_hash": last["hash"],
            "receipt": self.receipt(self.mode, last["seq"], last["hash"],
                                    (before["seq"], before["hash"])),
            "rejected": [], "alert": None, "stored": len(records), "duplicates": 0,
        }]})  # fmt: skip

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/ingest/{code}/position", self.position)
        app.router.add_post("/api/v1/ingest", self.ingest)
        return app


class ThreadServer:
    """An aiohttp application served on 127.0.0.1 (port 0) from a thread of its own, for
    commands that run their own event loop (``onestop sync push``)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._runner = runner
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


@pytest.fixture
def hub_key(hub_dir: Path) -> Ed25519PrivateKey:
    return identity.load(hubcfg.load(hub_dir)).signing_key


@pytest.mark.parametrize("mode", ["none", "other_key", "other_node", "lower_seq"])
def test_a_push_without_a_valid_receipt_fails_and_keeps_the_backlog(
    mode: str, hub_dir: Path, hub_key: Ed25519PrivateKey, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    fake = FakeHub(hub_key, mode)
    with ThreadServer(fake.app()) as srv:
        cfg = _node(hub_dir, tmp_path / "n", srv.url)
        db = signerm.open_node_db(cfg)
        size = signerm.log_size(db)
        capsys.readouterr()
        assert run_cli("sync", "push", "--data", str(cfg.data_dir)) == 1
    assert fake.pushes >= 1
    err = capsys.readouterr().err
    assert "without a valid receipt" in err, err
    st = state(db)
    assert st["hub_ack_seq"] == 0 and st["hub_ack_hash"] is None
    assert "without a valid receipt" in st["last_error"]
    assert backlog(db) == size
    assert dbm.one(db, "SELECT count(*) AS n FROM receipts WHERE seq > 0")["n"] == 0  # type: ignore[index]
    assert run_cli("sync", "status", "--data", str(cfg.data_dir), "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert "without a valid receipt" in json.dumps(status, ensure_ascii=False)


@pytest.mark.parametrize("mode", ["none", "other_key", "other_node"])
async def test_a_position_without_a_valid_receipt_is_not_believed(
    mode: str, aiohttp_server: Any, hub_dir: Path, hub_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    fake = FakeHub(hub_key, "valid", position_mode=mode)
    srv = await aiohttp_server(fake.app())
    cfg = _node(hub_dir, tmp_path / "n", str(srv.make_url("")).rstrip("/"))
    db = signerm.open_node_db(cfg)
    client = PushClient(cfg, db)
    with pytest.raises(HubError, match="no valid receipt"):
        await client.push_once()
    await client.close()
    assert fake.pushes == 0 and backlog(db) == signerm.log_size(db)
    assert "no valid receipt" in state(db)["last_error"]


async def test_the_service_asks_the_hub_again_and_checks_what_it_says(
    aiohttp_server: Any, hub_dir: Path, hub_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    fake = FakeHub(hub_key, "valid")
    srv = await aiohttp_server(fake.app())
    cfg = _node(hub_dir, tmp_path / "n", str(srv.make_url("")).rstrip("/"))
    db = signerm.open_node_db(cfg)
    size = signerm.log_size(db)
    service = PushService(cfg, db)
    try:
        report = await service.run()  # a nudge: asks once, then pushes
        assert report is not None and report.ack_seq == size and fake.positions == 1
        assert await service.run() is not None and fake.positions == 1  # nudges don't ask again
        # The interval job asks again; the hub now claims everything without a valid receipt.
        fake.position_mode = "other_key"
        with dbm.tx(db) as conn:
            conn.execute("UPDATE sync_state SET hub_ack_seq = 0, hub_ack_hash = NULL")
        await service._tick()
        await asyncio.gather(*service._tasks)
        assert fake.positions == 2
        assert state(db)["hub_ack_seq"] == 0 and "no valid receipt" in state(db)["last_error"]
        assert service.failures == 1
        # With a valid receipt the position is taken again.
        fake.position_mode = "valid"
        service.next_try = 0.0
        await service._tick()
        await asyncio.gather(*service._tasks)
        assert fake.positions == 3 and state(db)["last_error"] is None
    finally:
        await service.client.close()


def test_the_real_hubs_receipts_move_the_position(hub_dir: Path, tmp_path: Path) -> None:
    from hub.app import create_app

    with ThreadServer(create_app(hubcfg.load(hub_dir))) as srv:
        cfg = _node(hub_dir, tmp_path / "n", srv.url)
        assert run_cli("hub", "enroll", "--data", str(hub_dir), "--code", CODE,
                       "--pubkey", str(cfg.data_dir / "node.pub")) == 0  # fmt: skip
        assert run_cli("sync", "push", "--data", str(cfg.data_dir)) == 0
    db = signerm.open_node_db(cfg)
    size = signerm.log_size(db)
    st = state(db)
    assert st["hub_ack_seq"] == size and st["last_error"] is None and backlog(db) == 0
    last = dbm.one(db, "SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1")
    assert last == {"seq": size, "hash": signerm.hash_at(db, size)}


def test_an_unenrolled_node_is_told_to_enroll(
    hub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.app import create_app

    with ThreadServer(create_app(hubcfg.load(hub_dir))) as srv:
        cfg = _node(hub_dir, tmp_path / "n", srv.url, n=1)
        capsys.readouterr()
        assert run_cli("sync", "push", "--data", str(cfg.data_dir)) == 1
    err = capsys.readouterr().err
    assert f"node {CODE} is not enrolled" in err, err
    assert f"onestop hub enroll --data DIR --code {CODE} --pubkey" in err, err


def test_a_relay_moves_a_townships_hub_position_only_on_a_receipt(tmp_path: Path) -> None:
    from node.replication import relay

    county = init_node(tmp_path / "county", code="370102", name="历下区政务服务中心", windows=False)
    town = init_node(tmp_path / "town", code=CODE, windows=False)
    tdb = signerm.open_node_db(town)
    from node import pii, tickets

    for i in range(3):
        tickets.issue(tdb, town, pii.load(town.data_dir),
                      {"queue": "dept:edu", "id_number": make_id(seq=f"{i:03d}"),
                       "phone": PHONE})  # fmt: skip
    cdb = signerm.open_node_db(county)
    relay.add_node(cdb, CODE, signerm.load_node_key(town.data_dir).public_key())  # type: ignore[union-attr]
    records = signerm.load_records(tdb)
    relay.ingest(cdb, CODE, {"node": CODE, "batches": [
        {"node": CODE, "records": records, "checkpoint": None}]})  # fmt: skip
    n = len(records)
    hub_key, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    res = {"node": CODE, "ack_seq": n, "ack_hash": records[-1]["hash"], "rejected": [],
           "alert": None}  # fmt: skip
    for receipt in (None, make_receipt(forger, CODE, n, records[-1]["hash"], AT),
                    make_receipt(hub_key, "370102999", n, records[-1]["hash"], AT),
                    make_receipt(hub_key, CODE, n - 1, records[-2]["hash"], AT)):  # fmt: skip
        with dbm.tx(cdb) as conn:
            moved, _ = relay.apply_hub_result(conn, {**res, "receipt": receipt},
                                              hub_key.public_key())  # fmt: skip
        assert moved == 0 and relay.pending_count(cdb) == n
    with dbm.tx(cdb) as conn:
        good = make_receipt(hub_key, CODE, n, records[-1]["hash"], AT)
        moved, _ = relay.apply_hub_result(conn, {**res, "receipt": good}, hub_key.public_key())
    assert moved == n and relay.pending_count(cdb) == 0
    assert relay.position(cdb, CODE)["receipt"] == good
