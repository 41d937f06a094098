"""End to end: a node whose key is lost with it comes back under a new key the hub authorised.

A real hub process and real node processes on 127.0.0.1 (the helpers of test_sync_e2e): the
node pushes tickets, its data directory is deleted, the hub's administrator re-keys it, a new
node under the same code adopts the hub's log (node/replication/rekey.py), has its tickets
back, issues a new number, pushes, and both audits pass.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser

from node.replication import rekey as rekeym
from node.replication.rekey import RekeyError, adopt_hub_log
from sync.keys import Ed25519PrivateKey, load_private, load_public, public_key_id, public_raw_b64
from sync.rekey import make_authorisation
from tests import test_sync_e2e as e2e
from tests.conftest import run_cli
from tests.test_hub_support import AT, NodeLog
from tests.test_sync_e2e import TOWN, Hub, make_node, node_hashes, serve, tickets, wait_synced

hub = e2e.hub
servers = e2e.servers


@pytest.fixture(autouse=True)
def _fast_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONESTOP_SYNC_BACKOFF_MAX", "1")
    monkeypatch.setenv("ONESTOP_SYNC_CATALOG_SECONDS", "1")


def ticket_rows(data: Path) -> dict[str, tuple[str, str]]:
    """ticket id -> (queue, number) in the node's tables."""
    conn = sqlite3.connect(f"{(data / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {
            str(i): (str(q), str(n))
            for i, q, n in conn.execute("SELECT id, issued_queue, ticket_no FROM tickets")
        }
    finally:
        conn.close()


def key_id(data: Path) -> str:
    return public_key_id(load_public(data / "node.pub"))


def fresh_node(data: Path, hub_url: str, hub_pub: Path, hub_seal_pub: Path | None = None) -> Path:
    """``onestop node init`` under the lost node's code, and nothing more (it gets its windows
    and everything else back from the hub's log)."""
    args = ["node", "init", "--data", str(data), "--code", TOWN, "--name", "解放路街道便民服务中心",
            "--level", "township", "--hub-url", hub_url, "--hub-pubkey", str(hub_pub)]  # fmt: skip
    if hub_seal_pub is not None:
        args += ["--hub-seal-pubkey", str(hub_seal_pub)]
    assert run_cli(*args) == 0
    toml = data / "node.toml"
    toml.write_text(
        toml.read_text().replace("sync_interval_seconds = 30", "sync_interval_seconds = 1")
    )
    return data


def test_lost_node_is_rekeyed_and_adopts_the_hubs_log(
    tmp_path: Path, hub: Hub, servers: list[Any], capsys: Any
) -> None:
    hub.start()
    old = make_node(tmp_path / "old", hub)
    srv = serve(old)
    servers.append(srv)
    tickets(srv, 6)
    pushed = wait_synced(hub, old, TOWN)
    issued = ticket_rows(old)
    assert len(issued) == 6
    old_key = key_id(old)
    srv.stop()
    shutil.rmtree(old)  # the machine is lost, its key with it

    new = fresh_node(tmp_path / "new", hub.url, hub.data / "hub.pub", hub.data / "hub-seal.pub")
    assert key_id(new) != old_key
    # Without the hub's authorisation the new key reads nothing.
    with pytest.raises(RekeyError) as e:
        adopt_hub_log(new)
    assert "401" in str(e.value) and "onestop hub rekey" in (e.value.hint or "")
    assert run_cli("hub", "rekey", "--data", str(hub.data), "--node", TOWN, "--pubkey",
                   str(new / "node.pub"), "--by", "省中心 张工", "--reason", "disk lost") == 0  # fmt: skip
    assert f"from seq {len(pushed) + 1}" in capsys.readouterr().out

    report = adopt_hub_log(new)
    assert report.fetched == len(pushed) and report.rekey_seq == len(pushed) + 1
    assert report.last_seq == len(pushed) + 1 and report.set_aside == 1
    assert (report.old_key_id, report.new_key_id) == (old_key, key_id(new))
    assert report.hub_ack_seq == len(pushed) and not report.failures, report
    assert report.applied["ticket.issued"] == 6
    mine = node_hashes(new)
    assert mine[: len(pushed)] == pushed  # the old records, unchanged
    assert ticket_rows(new) == issued  # the tickets are back in the tables
    assert (new / f"node-{old_key}.pub").exists()
    assert run_cli("verify", "--data", str(new)) == 0
    # Adopting twice is refused: the log is no longer a fresh node's.
    with pytest.raises(RekeyError):
        adopt_hub_log(new)

    srv = serve(new)
    servers.append(srv)
    tickets(srv, 3)  # one per queue
    synced = wait_synced(hub, new, TOWN)
    assert len(synced) == len(pushed) + 1 + 3
    rows = ticket_rows(new)
    fresh = {i: v for i, v in rows.items() if i not in issued}
    assert len(fresh) == 3
    for queue, number in fresh.values():  # no number given twice
        assert number not in {n for q, n in issued.values() if q == queue}, (queue, number)
    assert not set(fresh) & set(issued)
    assert [a["kind"] for a in hub.alerts(TOWN)] == []
    srv.stop()
    assert run_cli("verify", "--hub", str(hub.data), "--code", TOWN) == 0
    assert run_cli("verify", "--data", str(new)) == 0


# ---- the node's checks of what the hub sends (the hub simulated) ------------------------------


def test_the_node_checks_the_hubs_records_and_authorisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_key = Ed25519PrivateKey.generate()
    hub_pub = tmp_path / "hub.pub"
    hub_pub.write_bytes(hub_key.public_key().public_bytes(
        ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    new = fresh_node(tmp_path / "new", "http://127.0.0.1:9", hub_pub)
    new_key = load_private(new / "node.key")
    old = NodeLog(TOWN)
    old.extend(3)
    old.rotate()  # seq 4, then two records of the rotated key
    old.extend(2)
    keys = [{"key_id": public_key_id(k.public_key()), "public_key": public_raw_b64(k.public_key()),
             "from_seq": s, "source": src}
            for k, s, src in ((old.first_key, 0, "enrolled"), (old.key, 4, "rotated"))]  # fmt: skip

    def auth(**over: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "node": TOWN, "old_key_id": public_key_id(old.key.public_key()),
            "new_public_key": new_key.public_key(), "from_seq": 7, "prev": old.head,
            "at": AT, "by": "admin", "reason": "",
        }  # fmt: skip
        args.update(over)
        return make_authorisation(hub_key, **args)

    def hub_answers(records: list[dict[str, Any]], rekey: dict[str, Any] | None) -> None:
        page = {"node": TOWN, "after": 0, "records": records, "more": False, "ack_seq": 6,
                "ack_hash": old.head, "checkpoint": None, "keys": keys, "rekey": rekey}  # fmt: skip
        monkeypatch.setattr(rekeym, "fetch_records", lambda cfg, after, limit=1000: page)

    tampered = copy.deepcopy(old.records)
    tampered[1]["event"]["body"]["ticket_no"] = "A999"
    stranger = Ed25519PrivateKey.generate()
    refused = {
        "no authorisation": (old.records, None),
        "a tampered record": (tampered, auth()),
        "a record missing": (old.records[:2] + old.records[3:], auth()),
        "signed by another hub key": (old.records, make_authorisation(
            stranger, TOWN, public_key_id(old.key.public_key()), new_key.public_key(), 7,
            old.head, AT, "admin")),
        "for another key": (old.records, auth(new_public_key=stranger.public_key())),
        "for another node": (old.records, auth(node="370102002")),
        "after another head": (old.records, auth(prev=old.records[4]["hash"])),
        "replacing another key": (old.records,
                                  auth(old_key_id=public_key_id(old.first_key.public_key()))),
        "at another seq": (old.records[:5], auth()),
    }  # fmt: skip
    before = node_hashes(new)
    for what, (records, rekey) in refused.items():
        hub_answers(records, rekey)
        with pytest.raises(RekeyError):
            adopt_hub_log(new)
        assert node_hashes(new) == before, what  # nothing adopted
    hub_answers(old.records, auth())
    report = adopt_hub_log(new)
    assert (report.fetched, report.rekey_seq, report.last_seq) == (6, 7, 7)
    assert [h for _, h in node_hashes(new)][:6] == [r["hash"] for r in old.records]
    # Both old keys are kept (public halves) for the audit, which follows the re-key.
    assert {p.name for p in new.glob("node-*.pub")} == {f"node-{k['key_id']}.pub" for k in keys}
    assert run_cli("verify", "--data", str(new)) == 0
