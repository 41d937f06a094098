"""Hub commands: init (key files 0600), enroll, verify --hub, and a live `onestop hub serve`."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hub import config as hubcfg
from hub import db as hubdb
from hub import identity
from onestop.cli import verify as verify_cli
from sync.keys import load_private, load_public
from sync.receipts import verify_receipt
from sync.requests import sign_request
from tests import test_hub_support as support
from tests.conftest import run_cli, start_server
from tests.test_hub_support import (
    TOWNSHIP,
    NodeLog,
    enroll,
    envelope,
    hub_public,
)

# Fixtures shared by the hub tests.
hub_dir = support.hub_dir

ROOT = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@posix_only
def test_init_writes_config_database_and_private_keys_0600(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    assert run_cli("hub", "init", "--data", str(data), "--port", "9100") == 0
    for name in ("hub.key", "hub-seal.key", "hub-link.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    for name in ("hub.pub", "hub-seal.pub"):
        assert (data / name).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    cfg = hubcfg.load(data)
    assert cfg.port == 9100 and cfg.db_path.exists()
    ident = identity.load(cfg)
    assert load_private(data / "hub.key").public_key() == load_public(data / "hub.pub")
    assert ident.seal_public_pem() == (data / "hub-seal.pub").read_text()
    db = hubdb.open_db(cfg.db_path)
    assert hubdb.get_meta(db, "hub.key_id") == ident.key_id
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Never over an existing hub; an unsafe key file is refused.
    assert run_cli("hub", "init", "--data", str(data)) == 1
    os.chmod(data / "hub-seal.key", 0o644)
    with pytest.raises(identity.IdentityError, match="chmod 600"):
        identity.load(cfg)


def test_enroll_checks_its_input(hub_dir: Path, tmp_path: Path) -> None:
    log = NodeLog(TOWNSHIP)
    pub = log.pub_file(tmp_path)
    base = ["hub", "enroll", "--data", str(hub_dir)]
    assert run_cli(*base, "--code", "12ab", "--pubkey", str(pub)) == 1
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(tmp_path / "none.pub")) == 1
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(hub_dir / "hub-seal.pub")) == 1
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(pub), "--parent", "x") == 1
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(pub)) == 0
    # Again with the same key updates the details; another key is refused.
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(pub), "--name", "解放路") == 0
    db = hubdb.open_db(hub_dir / "hub.db")
    assert (hubdb.one(db, "SELECT name FROM nodes") or {})["name"] == "解放路"
    (tmp_path / "other").mkdir()
    other = NodeLog(TOWNSHIP).pub_file(tmp_path / "other")
    assert run_cli(*base, "--code", TOWNSHIP, "--pubkey", str(other)) == 1
    assert run_cli("hub", "revoke", "--data", str(hub_dir), "--code", "999999999") == 1
    assert run_cli("hub", "enroll", "--data", str(tmp_path / "nohub"), "--code", TOWNSHIP,
                   "--pubkey", str(pub)) == 1  # fmt: skip


def _ingest(hub_dir: Path, log: NodeLog) -> None:
    from hub.ingest.batch import ingest_batch

    cfg = hubcfg.load(hub_dir)
    db = hubdb.open_db(cfg.db_path)
    res = ingest_batch(db, identity.load(cfg), log.batch(), sender=log.code)
    assert res.rejected == [] and res.ack_seq == len(log.records)
    db.conn.close()


def test_verify_hub_copy_passes_then_fails_after_tampering(hub_dir: Path, capsys: Any) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    log.rotate()
    log.extend(3)
    enroll(hub_dir, log)
    _ingest(hub_dir, log)
    capsys.readouterr()
    assert run_cli("verify", "--hub", str(hub_dir), "--code", TOWNSHIP) == 0
    out = capsys.readouterr().out
    assert "7 records, 1 checkpoints" in out and "OK" in out

    # Records are append-only in the hub database; an attacker with raw SQL drops the guard.
    db = hubdb.connect(hub_dir / "hub.db")
    with pytest.raises(Exception, match="append-only"):
        db.execute("UPDATE records SET body = '{}' WHERE seq = 2")
    db.execute("DROP TRIGGER records_no_update")
    db.execute(
        "UPDATE records SET body = json_set(body, '$.ticket_no', 'Z999') WHERE node = ? AND seq = 2",
        [TOWNSHIP],
    )
    db.conn.close()
    assert run_cli("verify", "--hub", str(hub_dir), "--code", TOWNSHIP) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "seq 2: bad_hash" in out


def test_verify_arguments_and_node_delegation(hub_dir: Path, monkeypatch: Any,
                                              capsys: Any) -> None:  # fmt: skip
    assert run_cli("verify") == 1
    assert run_cli("verify", "--hub", str(hub_dir)) == 1
    assert run_cli("verify", "--hub", str(hub_dir), "--code", "999999999") == 1
    assert run_cli("verify", "--hub", str(hub_dir), "--data", str(hub_dir)) == 1
    assert "not enrolled" in capsys.readouterr().err
    calls: list[Path] = []

    def verify_node(data_dir: Path) -> int:
        calls.append(Path(data_dir))
        return 1

    monkeypatch.setattr(verify_cli, "verify_node", verify_node)
    assert run_cli("verify", "--data", "some/node") == 1
    assert calls == [Path("some/node")]


def test_sample_config_documents_every_setting(tmp_path: Path) -> None:
    sample = (ROOT / "etc" / "hub.toml").read_text()
    keys = set(re.findall(r"^(\w+) =", sample, re.M))
    fields = {f.name for f in dataclasses.fields(hubcfg.HubConfig)} - {"data_dir"}
    assert keys == fields
    for key in fields:
        assert re.search(rf"#.*\n(\w+ = .*\n)*{key} =", sample), key
    (tmp_path / "hub.toml").write_text(sample)
    assert hubcfg.load(tmp_path) == hubcfg.HubConfig(data_dir=tmp_path)


@pytest.mark.parametrize("field,value", [
    ("name", " "), ("host", ""), ("port", 70000), ("max_body_mb", 0), ("max_batch_records", 0),
    ("max_records_page", 10**6), ("request_max_skew_seconds", 1), ("timezone", "Mars/Olympus"),
])  # fmt: skip
def test_config_validation_names_the_field(tmp_path: Path, field: str, value: object) -> None:
    cfg = hubcfg.HubConfig(data_dir=tmp_path, **{field: value})  # type: ignore[arg-type]
    with pytest.raises(hubcfg.ConfigError) as exc:
        cfg.validate()
    assert exc.value.field == field


def test_config_load_rejects_unknown_and_mistyped(tmp_path: Path) -> None:
    with pytest.raises(hubcfg.ConfigError, match="onestop hub init"):
        hubcfg.load(tmp_path)
    (tmp_path / "hub.toml").write_text('colour = "red"\n')
    with pytest.raises(hubcfg.ConfigError) as exc:
        hubcfg.load(tmp_path)
    assert exc.value.field == "colour"
    (tmp_path / "hub.toml").write_text('port = "80"\n')
    with pytest.raises(hubcfg.ConfigError) as exc:
        hubcfg.load(tmp_path)
    assert exc.value.field == "port"


def test_live_hub_serve(hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(4)
    enroll(hub_dir, log)
    # --port 0: the hub binds a free port and its first line names it.
    srv = start_server(["hub", "serve", "--data", str(hub_dir), "--port", "0"], hub_dir,
                       hub_dir / "serve.log", "/api/v1/hub/pubkey")  # fmt: skip
    url = srv.url
    assert srv.port > 0
    assert f"onestop hub serving on {url}/" in (hub_dir / "serve.log").read_text()
    try:
        keys = json.loads(urllib.request.urlopen(url + "/api/v1/hub/pubkey").read())
        assert keys["ed25519_pem"] == (hub_dir / "hub.pub").read_text()
        assert keys["x25519_pem"] == (hub_dir / "hub-seal.pub").read_text()
        content = json.dumps(envelope(TOWNSHIP, log.batch())).encode()
        body = gzip.compress(content)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   **sign_request(log.key, TOWNSHIP, "POST", "/api/v1/ingest", body=content)}  # fmt: skip
        req = urllib.request.Request(url + "/api/v1/ingest", data=body, headers=headers)
        [res] = json.loads(urllib.request.urlopen(req).read())["results"]
        assert res["ack_seq"] == 4
        verify_receipt(res["receipt"], hub_public(hub_dir))
        health = json.loads(urllib.request.urlopen(url + "/api/v1/health").read())
        assert health["ok"] is True
        with pytest.raises(urllib.error.HTTPError) as exc:  # node status needs a hub login
            urllib.request.urlopen(url + "/api/v1/nodes/1")
        assert exc.value.code == 401 and json.loads(exc.value.read())["ok"] is False
    finally:
        srv.stop()
    assert run_cli("verify", "--hub", str(hub_dir), "--code", TOWNSHIP) == 0
