"""Node side of the signed log: signing in events.append, keys, rotation, checkpoints, verify,
the push client against an in-process hub, the relay, catalog fetch and the status API."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from node import config as cfgm
from node import db as dbm
from node import events
from node import signer as signerm
from sync.chain import GENESIS, ROTATION_KIND
from sync.keys import load_public, public_key_id
from sync.verify import verify_log
from tests.conftest import ADMIN, PHONE, ClosedPort, copy_hub, init_node, login, make_id, run_cli

CODE = "370102001"


def _db(data: Path) -> Any:
    return signerm.open_node_db(cfgm.load(data))


def _issue(db: Any, cfg: cfgm.NodeConfig, n: int = 1) -> None:
    from node import pii, tickets

    p = pii.load(cfg.data_dir)
    for _ in range(n):
        tickets.issue(db, cfg, p, {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE})


def _tamper(db_path: Path, seq: int, body: dict[str, Any]) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = ? WHERE seq = ?", [json.dumps(body), seq])
    conn.commit()
    conn.close()


# --------------------------------------------------------------------------- signing


def test_init_creates_keys_and_every_event_is_signed(node_dir: Path) -> None:
    key, pub = node_dir / "node.key", node_dir / "node.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and pub.exists()
    cfg = cfgm.load(node_dir)
    db = _db(node_dir)
    _issue(db, cfg, 3)
    records = signerm.load_records(db)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[0]["prev"] == GENESIS and records[0]["event"]["kind"] == "catalog.imported"
    assert all(r["key_id"] == public_key_id(load_public(pub)) for r in records)
    report = verify_log(CODE, records, [], load_public(pub))
    assert report.ok, report.problems
    # Bodies hold masks only.
    assert make_id()[6:14] not in json.dumps([r["event"] for r in records])


def test_append_needs_a_transaction_and_a_key(node_dir: Path, tmp_path: Path) -> None:
    db = _db(node_dir)
    with pytest.raises(RuntimeError, match="inside node.db.tx"):
        events.append(db.conn, "x.y", "x", 1, {})
    # A copy of the node's database without its key refuses to write events.
    other = tmp_path / "copy"
    other.mkdir()
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(node_dir / "node.db", other / "node.db")
    shutil.copy(node_dir / "node.toml", other / "node.toml")
    raw = dbm.connect(other / "node.db")
    n = signerm.log_size(raw)
    with pytest.raises(signerm.SignerError, match="no signing key"):
        with dbm.tx(raw) as conn:
            events.append(conn, "window.created", "window", 9, {"number": 9})
    assert signerm.log_size(raw) == n
    with pytest.raises(signerm.SignerError, match="continues with key"):
        signerm.open_node_db(dataclasses.replace(cfgm.load(node_dir), data_dir=other))


def test_bare_database_is_adopted_when_a_key_arrives(tmp_path: Path) -> None:
    from node.catalog import import_catalog
    from schemas.catalog import load_catalog, seed_path
    from sync.keys import Ed25519PrivateKey

    db = dbm.connect(tmp_path / "node.db")
    dbm.migrate(db)
    import_catalog(db, load_catalog(seed_path()))  # no node here: unsigned
    assert dbm.one(db, "SELECT hash FROM events")["hash"] is None  # type: ignore[index]
    key = Ed25519PrivateKey.generate()
    signerm.attach(db, CODE, key)
    with dbm.tx(db) as conn:
        body = {"number": 1, "name": "综合窗口", "queues": ["*"]}
        events.append(conn, "window.created", "window", 1, body)
    records = signerm.load_records(db)
    assert len(records) == 2
    assert verify_log(CODE, records, [], key.public_key()).ok


def test_passphrase_encrypted_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw = tmp_path / "pass.txt"
    pw.write_text("correct horse battery\n")
    data = tmp_path / "n"
    monkeypatch.delenv(signerm.PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv(signerm.PASSPHRASE_FILE_ENV, str(pw))  # for the commands after init
    init_node(data, windows=False, key_passphrase_file=str(pw))
    assert b"ENCRYPTED" in (data / "node.key").read_bytes()
    monkeypatch.delenv(signerm.PASSPHRASE_FILE_ENV)
    with pytest.raises(signerm.SignerError, match="encrypted") as info:
        signerm.open_node_db(cfgm.load(data))
    assert info.value.hint and "ONESTOP_KEY_PASSPHRASE" in info.value.hint
    monkeypatch.setenv(signerm.PASSPHRASE_ENV, pw.read_text().strip())
    db = signerm.open_node_db(cfgm.load(data))
    _issue(db, cfgm.load(data))
    assert signerm.log_size(db) >= 2


def test_hub_keys_are_copied_and_ids_sealed(tmp_path: Path) -> None:
    from sync import sealing

    hub = tmp_path / "hub"
    assert run_cli("hub", "init", "--data", str(hub)) == 0
    data = tmp_path / "n"
    init_node(
        data,
        windows=False,
        hub_url="http://127.0.0.1:9",
        hub_pubkey=str(hub / "hub.pub"),
        hub_seal_pubkey=str(hub / "hub-seal.pub"),
    )
    assert (data / "hub.pub").read_bytes() == (hub / "hub.pub").read_bytes()
    cfg = cfgm.load(data)
    sealed = signerm.seal_for_hub(cfg, make_id())
    assert sealed and make_id() not in sealed
    priv = sealing.load_seal_private(hub / "hub-seal.key")
    assert sealing.unseal(priv, sealed).decode() == make_id()
    assert (
        signerm.seal_for_hub(
            cfgm.load(init_node(tmp_path / "m", windows=False).data_dir), make_id()
        )
        is None
    )


def test_rotation_checkpoints_and_verify(node_dir: Path, capsys: Any) -> None:
    from node.replication.verify import verify_node

    cfg = cfgm.load(node_dir)
    db = _db(node_dir)
    _issue(db, cfg, 2)
    # A server process that still holds the old key in memory...
    server = dbm.connect(cfg.db_path)
    signerm.attach(server, cfg.code, signerm.load_node_key(node_dir))  # type: ignore[arg-type]
    old = public_key_id(load_public(node_dir / "node.pub"))
    assert run_cli("node", "rotate-key", "--data", str(node_dir)) == 0
    new = public_key_id(load_public(node_dir / "node.pub"))
    assert new != old and (node_dir / f"node-{old}.key").exists()
    # ... picks up the new key for its next event instead of breaking the chain.
    _issue(server, cfg, 1)
    _issue(db, cfg, 1)
    assert run_cli("node", "checkpoint", "--data", str(node_dir)) == 0
    rows = dbm.rows(db, "SELECT seq, kind, key_id FROM events ORDER BY seq")
    rot = next(r for r in rows if r["kind"] == ROTATION_KIND)
    assert rot["key_id"] == old and all(r["key_id"] == new for r in rows if r["seq"] > rot["seq"])
    cps = signerm.all_checkpoints(db)
    assert [c["key_id"] for c in cps] == [old, new]
    # A historical checkpoint (before the rotation) is signed with the kept old key.
    with dbm.tx(db) as conn:
        cp = signerm.checkpoint(conn, 2)
    assert cp and cp["key_id"] == old
    capsys.readouterr()
    assert verify_node(node_dir) == 0
    assert "OK" in capsys.readouterr().out
    # Tampering with a row (the trigger has to go first) is found.
    _tamper(cfg.db_path, 3, {"forged": True})
    assert verify_node(node_dir) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "seq 3: bad_hash" in out
    assert run_cli("verify", "--data", str(node_dir)) == 1


# --------------------------------------------------------------------------- relay


def _headers(data: Path, method: str, target: str) -> dict[str, str]:
    from sync.requests import sign_request

    key = signerm.load_node_key(data)
    assert key is not None
    return sign_request(key, cfgm.load(data).code, method, target)


def test_relay_stores_unchanged_and_answers_its_position(tmp_path: Path) -> None:
    from node.replication import relay
    from onestop.errors import ApiError

    county = init_node(tmp_path / "county", code="370102", name="历下区政务服务中心", windows=False)
    town = init_node(tmp_path / "town", windows=False)
    cdb, tdb = _db(county.data_dir), _db(town.data_dir)
    _issue(tdb, town, 4)
    records = signerm.load_records(tdb)
    from sync.requests import EMPTY_SHA256, ReplayCache

    hdrs = _headers(town.data_dir, "POST", "/api/v1/ingest")
    replays = ReplayCache(300)
    with pytest.raises(ApiError) as info:
        relay.verify_sender(cdb, hdrs, "POST", "/api/v1/ingest", EMPTY_SHA256, replays)
    assert info.value.code == "unknown_node"
    assert (
        run_cli(
            "sync",
            "relay",
            "add",
            "--data",
            str(county.data_dir),
            "--code",
            CODE,
            "--pubkey",
            str(town.data_dir / "node.pub"),
        )
        == 0
    )
    assert relay.verify_sender(cdb, hdrs, "POST", "/api/v1/ingest", EMPTY_SHA256, replays) == CODE
    bad = dict(hdrs, **{"X-Onestop-Sig": _headers(county.data_dir, "POST", "/x")["X-Onestop-Sig"]})
    with pytest.raises(ApiError):
        relay.verify_sender(cdb, bad, "POST", "/api/v1/ingest", EMPTY_SHA256, replays)

    def push(recs: list[dict[str, Any]]) -> dict[str, Any]:
        cp = None
        if recs:
            with dbm.tx(tdb) as conn:
                cp = signerm.checkpoint(conn, recs[-1]["seq"])
        out = relay.ingest(
            cdb,
            CODE,
            {"node": CODE, "batches": [{"node": CODE, "records": recs, "checkpoint": cp}]},
        )
        res: dict[str, Any] = out["results"][0]
        return res

    n = len(records)
    r = push(records[:3])
    assert (r["ack_seq"], r["ack_hash"], r["rejected"]) == (3, records[2]["hash"], [])
    assert push(records[:3])["ack_seq"] == 3  # a replay changes nothing
    assert push(records[2:])["ack_seq"] == n  # nor does an overlap
    held = [
        json.loads(x["record"])
        for x in dbm.rows(cdb, "SELECT record FROM relay_outbox ORDER BY seq")
    ]
    assert held == records  # unchanged
    assert relay.position(cdb, CODE)["ack_seq"] == n
    # A forged record is rejected with its reason; a different record at a held seq is a fork.
    _issue(tdb, town, 1)
    forged = copy.deepcopy(signerm.load_records(tdb, after=n))
    forged[0]["event"]["body"]["ticket_no"] = "Z999"
    r = push(forged)
    assert r["ack_seq"] == n and r["rejected"][0]["reason"] == "bad_hash"
    other = copy.deepcopy(records[1])
    other["hash"] = "f" * 64
    assert push([other])["alert"]["kind"] == "fork"
    assert relay.pending_count(cdb) == n
    batches = relay.pending_batches(cdb, 500, 2000)
    assert batches[0]["records"] == records and batches[0]["checkpoint"]["tree_size"] == n
    # The hub's verdicts on the township are kept at the relay and passed down; its position
    # for the township counts with its receipt for it.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync.receipts import make_receipt

    hub_key = Ed25519PrivateKey.generate()

    def receipt(seq: int) -> dict[str, Any]:
        return make_receipt(hub_key, CODE, seq, records[seq - 1]["hash"], "2026-11-29T10:00:00Z")

    with dbm.tx(cdb) as conn:
        moved, n_rej = relay.apply_hub_result(conn, {
            "node": CODE, "ack_seq": 2, "ack_hash": records[1]["hash"], "receipt": receipt(2),
            "rejected": [{"seq": 3, "reason": "bad_schema", "message": "ticket.issued schema"}],
            "alert": None}, hub_key.public_key())  # fmt: skip
    assert (moved, n_rej) == (2, 1) and relay.pending_count(cdb) == n - 2
    r = push([])
    assert r["hub_ack_seq"] == 2 and r["rejected"][0]["reason"] == "bad_schema"
    with dbm.tx(cdb) as conn:
        relay.apply_hub_result(conn, {"node": CODE, "ack_seq": n, "ack_hash": records[-1]["hash"],
                                      "receipt": receipt(n), "rejected": [], "alert": None},
                               hub_key.public_key())  # fmt: skip
    assert push([])["rejected"] == [] and relay.pending_count(cdb) == 0


# --------------------------------------------------------------------------- push (in-process hub)


@pytest.fixture
def hub_dir(tmp_path: Path, hub_template: Path) -> Path:
    return copy_hub(hub_template, tmp_path / "hub")


async def _hub(aiohttp_server: Any, hub: Path) -> Any:
    from hub import config as hubcfg
    from hub.app import create_app

    return await aiohttp_server(create_app(hubcfg.load(hub)))


def _node_for(hub: Path, data: Path, url: str, code: str = CODE, **kw: Any) -> cfgm.NodeConfig:
    cfg = init_node(data, code=code, windows=False, hub_pubkey=str(hub / "hub.pub"), **kw)
    assert (
        run_cli(
            "hub", "enroll", "--data", str(hub), "--code", code, "--pubkey", str(data / "node.pub")
        )
        == 0
    )
    return dataclasses.replace(cfg, hub_url=url)


async def test_push_resumes_and_keeps_receipts(
    aiohttp_server: Any, hub_dir: Path, tmp_path: Path
) -> None:
    from node.replication.client import PushClient
    from node.replication.state import state

    srv = await _hub(aiohttp_server, hub_dir)
    cfg = _node_for(hub_dir, tmp_path / "n", str(srv.make_url("")))
    db = _db(cfg.data_dir)
    _issue(db, cfg, 30)
    client = PushClient(cfg, db, batch_size=7)
    rep = await client.push_once()
    size = signerm.log_size(db)
    assert (rep.acked, rep.ack_seq, rep.backlog, rep.rejected) == (size, size, 0, 0)
    assert rep.requests == -(-size // 7)
    st = state(db)
    assert st["hub_ack_seq"] == size and st["last_error"] is None and st["last_success"]
    receipts = dbm.rows(db, "SELECT seq FROM receipts ORDER BY seq")
    assert receipts[-1]["seq"] == size
    assert dbm.one(db, "SELECT count(*) AS n FROM checkpoints")["n"] == rep.requests  # type: ignore[index]
    # Nothing new: a fresh client (a restart) asks the hub and sends nothing.
    await client.close()
    client = PushClient(cfg, db)
    rep = await client.push_once()
    assert (rep.sent, rep.requests) == (0, 0)
    # Forget the hub's position locally: it is learnt again, nothing re-sent.
    with dbm.tx(db) as conn:
        conn.execute("UPDATE sync_state SET hub_ack_seq = 0, hub_ack_hash = NULL")
    _issue(db, cfg, 2)
    client = PushClient(cfg, db)
    rep = await client.push_once()
    assert rep.sent == 2 and rep.ack_seq == size + 2
    await client.close()


async def test_rejected_records_are_shown_not_dropped(
    aiohttp_server: Any, hub_dir: Path, tmp_path: Path
) -> None:
    from node.replication.client import PushClient
    from node.replication.state import state

    srv = await _hub(aiohttp_server, hub_dir)
    cfg = _node_for(hub_dir, tmp_path / "n", str(srv.make_url("")))
    db = _db(cfg.data_dir)
    _issue(db, cfg, 5)
    _tamper(cfg.db_path, 4, {"forged": True})
    client = PushClient(cfg, db)
    rep = await client.push_once()
    await client.close()
    assert rep.ack_seq == 3 and rep.rejected == 1
    rej = dbm.rows(db, "SELECT seq, reason FROM sync_rejections WHERE resolved = 0")
    assert rej == [{"seq": 4, "reason": "bad_hash"}]
    assert "bad_hash" in state(db)["last_error"]


def test_unreachable_hub_is_reported(tmp_path: Path) -> None:
    import asyncio

    from node.replication.client import HubUnreachable, PushClient
    from node.replication.service import backoff_delay
    from node.replication.state import state

    data = tmp_path / "n"
    init_node(data, windows=False)
    with ClosedPort() as closed:  # nothing listens there, nothing can start to
        cfg = dataclasses.replace(cfgm.load(data), hub_url=f"http://127.0.0.1:{closed.port}")
        db = _db(data)

        async def run() -> None:
            client = PushClient(cfg, db)
            try:
                await client.push_once()
            finally:
                await client.close()

        with pytest.raises(HubUnreachable):
            asyncio.run(run())
        assert "unreachable" in state(db)["last_error"]
        # The CLI says so, with a hint, and exits non-zero.
        toml = data / "node.toml"
        toml.write_text(toml.read_text().replace('hub_url = ""', f'hub_url = "{cfg.hub_url}"'))
        assert run_cli("sync", "push", "--data", str(data)) == 1
    assert all(0.5 <= backoff_delay(1, 60) <= 1 for _ in range(20))
    assert all(backoff_delay(30, 60) <= 60 for _ in range(20))


# --------------------------------------------------------------------------- catalog down


def test_catalog_envelope_verified_and_imported(tmp_path: Path, hub_dir: Path) -> None:
    from hub import identity
    from node.replication import catalog_fetch
    from schemas.catalog import load_catalog, seed_path
    from sync import catalog as hubcat

    cfg = _node_for(hub_dir, tmp_path / "n", "http://127.0.0.1:9")
    db = _db(cfg.data_dir)
    cat = load_catalog(seed_path())
    cat["version"] = "2026.12-hub.1"
    cat["items"][0]["name_zh"] = "新名称"
    ident = identity.load(__import__("hub.config", fromlist=["load"]).load(hub_dir))
    env = hubcat.sign_catalog(ident.signing_key, "2026.12.01-1", "2026-12-01T00:00:00.000Z", cat)
    bad = copy.deepcopy(env)
    bad["catalog"]["items"][0]["promised_days"] = 0
    res = catalog_fetch.apply_envelope(cfg, db, bad)
    assert res.status == "refused" and "signature" in res.message
    assert dbm.get_meta(db, "catalog_version") != "2026.12-hub.1"
    assert "signature" in dbm.one(db, "SELECT catalog_error FROM sync_state")["catalog_error"]  # type: ignore[index]
    res = catalog_fetch.apply_envelope(cfg, db, env)
    assert res.status == "imported" and dbm.get_meta(db, "catalog_version") == "2026.12-hub.1"
    item = dbm.one(db, "SELECT name_zh FROM items WHERE code = ?", [cat["items"][0]["code"]])
    assert item and item["name_zh"] == "新名称"
    assert catalog_fetch.last_envelope(db) == env
    assert catalog_fetch.apply_envelope(cfg, db, env).status == "unchanged"
    assert verify_log(CODE, signerm.load_records(db), [], load_public(cfg.data_dir / "node.pub")).ok


# --------------------------------------------------------------------------- status API and page


async def test_status_api_and_page(client: Any) -> None:

    r = await client.get("/api/v1/sync/status")
    assert r.status == 401
    await login(client, ADMIN)
    r = await client.get("/api/v1/sync/status")
    s = await r.json()
    assert r.status == 200
    for k in (
        "backlog",
        "last_success",
        "last_error",
        "hub_ack_seq",
        "receipts",
        "rejections",
        "catalog",
    ):
        assert k in s
    assert s["backlog"] == s["log_size"] > 0 and s["catalog"]["version"]
    for lang, word in (("zh", "待上传"), ("en", "Waiting to send")):
        r = await client.get(f"/sync?lang={lang}")
        assert r.status == 200 and word in await r.text()
    paths = set((await (await client.get("/api/v1/openapi.json")).json())["paths"])
    assert {
        "/api/v1/sync/status",
        "/api/v1/ingest",
        "/api/v1/ingest/{code}/position",
        "/api/v1/catalog/latest",
    } <= paths


def test_env_passphrase_file_is_not_needed_for_plain_keys(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(signerm.PASSPHRASE_ENV, "unused")
    db = _db(node_dir)
    assert signerm.signer_for(db) is not None
    assert os.environ[signerm.PASSPHRASE_ENV] == "unused"


def test_event_bodies_never_carry_full_numbers(node_dir: Path) -> None:
    db = _db(node_dir)
    n = signerm.log_size(db)
    for body in ({"id": make_id()}, {"note": [f"call {PHONE}"]}):
        with pytest.raises(ValueError, match="full ID or phone"):
            with dbm.tx(db) as conn:
                events.append(conn, "case.identity_viewed", "case", "x", body)
    assert signerm.log_size(db) == n
    with dbm.tx(db) as conn:  # masks, hashes and sealed values are fine
        events.append(
            conn,
            "case.identity_viewed",
            "case",
            "x",
            {
                "id_masked": make_id()[:6] + "********" + make_id()[-4:],
                "h": "1" * 64,
                "phone_masked": "138****8000",
            },
        )
