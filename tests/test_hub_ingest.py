"""Hub ingest: verification of pushed batches, idempotence, forks, rollbacks, keys, relays."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from hub import db as hubdb
from hub.ingest import schemas as event_schemas
from hub.ingest.batch import ingest_batch
from hub.ingest.checkpoints import Frontier
from hub.ingest.envelope import ingest_envelope, parse_envelope
from hub.ingest.readback import position, stored_checkpoints, stored_records, verify_stored
from hub.keys import DB
from sync.chain import GENESIS
from sync.keys import Ed25519PrivateKey
from sync.receipts import check_receipt, verify_receipt
from tests import test_hub_support as support
from tests.conftest import run_cli
from tests.test_hub_support import (
    COUNTY,
    TOWNSHIP,
    TOWNSHIP2,
    NodeLog,
    check_error_shape,
    enroll,
    envelope,
    hub_public,
    push,
    push_ok,
    signed,
    ticket_body,
)

# Fixtures shared by the hub tests.
hub_client = support.hub_client
hub_dir = support.hub_dir


def stored(client: Any, code: str) -> list[tuple[int, str]]:
    return [
        (r["seq"], r["hash"])
        for r in hubdb.rows(
            client.app[DB], "SELECT seq, hash FROM records WHERE node = ? ORDER BY seq", [code]
        )  # fmt: skip
    ]


def alerts(client: Any, code: str) -> list[dict[str, Any]]:
    return hubdb.rows(client.app[DB], "SELECT * FROM alerts WHERE node = ? ORDER BY id", [code])


async def test_ingest_in_order_with_receipts_and_checkpoints(
    hub_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(5)
    enroll(hub_dir, log, name="解放路街道便民服务中心", level="township", parent=COUNTY)
    r = await hub_client.get(f"/api/v1/ingest/{TOWNSHIP}/position")  # a hub login in scope
    pos = await r.json()
    check_receipt(pos.pop("receipt"), hub_public(hub_dir), TOWNSHIP, 0, GENESIS)
    assert pos == {"node": TOWNSHIP, "ack_seq": 0, "ack_hash": GENESIS}

    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 5), backlog=7))
    assert res["ack_seq"] == 5 and res["ack_hash"] == log.records[4]["hash"]
    assert res["rejected"] == [] and res["alert"] is None and res["stored"] == 5
    verify_receipt(res["receipt"], hub_public(hub_dir))
    assert res["receipt"]["seq"] == 5 and res["receipt"]["node"] == TOWNSHIP

    log.extend(3)
    body = envelope(TOWNSHIP, log.batch(6, 8), backlog=7)
    [res] = await push_ok(hub_client, body, log, gzipped=False)  # signed: the backlog counts
    assert res["ack_seq"] == 8 and res["stored"] == 3
    assert stored(hub_client, TOWNSHIP) == [(r["seq"], r["hash"]) for r in log.records]
    cps = stored_checkpoints(hub_client.app[DB], TOWNSHIP)
    assert [c["tree_size"] for c in cps] == [5, 8]

    r = await hub_client.get(f"/api/v1/ingest/{TOWNSHIP}/position")
    pos = await r.json()
    check_receipt(pos.pop("receipt"), hub_public(hub_dir), TOWNSHIP, 8, log.records[7]["hash"])
    assert pos == {"node": TOWNSHIP, "ack_seq": 8, "ack_hash": log.records[7]["hash"]}
    r = await hub_client.get(f"/api/v1/nodes/{TOWNSHIP}")
    node = await r.json()
    assert node["ack_seq"] == 8 and node["reported_backlog"] == 7 and node["last_contact"]
    assert node["key_status"] == "active" and node["level"] == "township"
    assert node["parent"] == COUNTY and node["alerts"] == [] and node["records"] == 8
    assert node["checkpoint"]["tree_size"] == 8
    r = await hub_client.get("/api/v1/nodes")
    assert [n["code"] for n in (await r.json())["nodes"]] == [TOWNSHIP]
    r = await hub_client.get(f"/dash/{TOWNSHIP}")
    assert r.status == 200 and TOWNSHIP in await r.text()


async def test_duplicate_batch_is_idempotent(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(4)
    enroll(hub_dir, log)
    body = envelope(TOWNSHIP, log.batch())
    [first] = await push_ok(hub_client, body)
    [again] = await push_ok(hub_client, body)
    assert again["ack_seq"] == first["ack_seq"] == 4
    assert again["stored"] == 0 and again["duplicates"] == 4 and again["rejected"] == []
    assert again["alert"] is None
    # Overlap: 3..6 after 1..4 stores only 5 and 6.
    log.extend(2)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(3, 6)))
    assert res["ack_seq"] == 6 and res["stored"] == 2 and res["duplicates"] == 2
    assert alerts(hub_client, TOWNSHIP) == []


async def test_reordered_batch_is_rejected_then_accepted_in_order(
    hub_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    enroll(hub_dir, log)
    r1, r2, r3 = log.records
    [res] = await push_ok(
        hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [r1, r3, r2]})
    )
    assert res["ack_seq"] == 1 and res["stored"] == 1
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(3, "broken_chain")]
    assert stored(hub_client, TOWNSHIP) == [(1, r1["hash"])]
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [r2, r3]}))
    assert res["ack_seq"] == 3 and res["rejected"] == []
    # A gap is a broken chain too.
    log.extend(2)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(5, 5, checkpoint=False)))
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(5, "broken_chain")]
    assert res["ack_seq"] == 3


async def test_flipped_byte_is_bad_hash_and_later_records_are_not_stored(
    hub_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(5)
    enroll(hub_dir, log)
    batch = copy.deepcopy(log.batch())
    batch["records"][2]["event"]["body"]["ticket_no"] = "A999"
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, batch))
    assert res["ack_seq"] == 2
    [rej] = res["rejected"]
    assert rej["seq"] == 3 and rej["reason"] == "bad_hash" and "altered" in rej["message"]
    assert [s for s, _ in stored(hub_client, TOWNSHIP)] == [1, 2]
    [alert] = alerts(hub_client, TOWNSHIP)
    assert alert["kind"] == "rejected" and "seq 3: bad_hash" in alert["message"]
    node = await (await hub_client.get(f"/api/v1/nodes/{TOWNSHIP}")).json()
    assert "bad_hash" in node["last_error"] and node["open_alerts"] == 1
    # The checkpoint at 5 covers records the hub doesn't hold: not judged, not stored.
    assert stored_checkpoints(hub_client.app[DB], TOWNSHIP) == []
    # Same bad push again: the open alert is counted, not duplicated.
    await push_ok(hub_client, envelope(TOWNSHIP, batch))
    [alert] = alerts(hub_client, TOWNSHIP)
    assert alert["count"] == 2
    # The genuine records go through.
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(3, 5)))
    assert res["ack_seq"] == 5 and res["rejected"] == []


async def test_forged_signatures_are_rejected(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    # Signed by another key.
    mallory = Ed25519PrivateKey.generate()
    log.add(key=mallory)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(3, 3, checkpoint=False)))
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(3, "bad_signature")]
    # Right key id, signature of another record.
    forged = copy.deepcopy(log.records[2])
    forged["key_id"] = log.records[0]["key_id"]
    forged["sig"] = log.records[0]["sig"]
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [forged]}))
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(3, "bad_signature")]
    assert res["ack_seq"] == 2
    # A checkpoint signed by another key is named; the records still go in.
    good = NodeLog(TOWNSHIP2)
    good.extend(2)
    enroll(hub_dir, good)
    batch = good.batch()
    batch["checkpoint"] = good.checkpoint(key=mallory)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP2, batch))
    assert res["ack_seq"] == 2
    assert [(x["checkpoint"], x["reason"]) for x in res["rejected"]] == [(2, "bad_signature")]
    # A checkpoint whose root doesn't match the records: bad_root.
    good.extend(1)
    batch = good.batch(3, 3)
    batch["checkpoint"] = good.checkpoint(root="ab" * 32)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP2, batch))
    assert res["ack_seq"] == 3
    assert [(x["checkpoint"], x["reason"]) for x in res["rejected"]] == [(3, "bad_root")]


async def test_malformed_records_and_wrong_node(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    bad = {"node": TOWNSHIP, "records": [{"seq": 1, "junk": True}]}
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, bad))
    assert res["rejected"][0]["reason"] == "bad_shape" and res["ack_seq"] == 0
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": ["x"]}))
    assert res["rejected"][0]["reason"] == "bad_shape"
    other = NodeLog(TOWNSHIP2)
    other.extend(1)
    batch = {"node": TOWNSHIP, "records": other.records}
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, batch))
    assert res["rejected"][0]["reason"] == "wrong_node"


async def test_unknown_node(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(1)
    r = await push(hub_client, envelope(TOWNSHIP, log.batch()))
    assert r.status == 403
    body = await r.json()
    check_error_shape(body, 403)
    assert body["error"] == "unknown_node" and "onestop hub enroll" in body["hint"]
    [alert] = alerts(hub_client, TOWNSHIP)
    assert alert["kind"] == "unknown_node"
    # Relayed by an enrolled county node: named per batch.
    county = NodeLog(COUNTY)
    enroll(hub_dir, county)
    [res] = await push_ok(hub_client, envelope(COUNTY, log.batch()), signer=county)
    assert res["rejected"][0]["reason"] == "unknown_node" and res["receipt"] is None
    assert res["ack_seq"] is None and res["alert"] == "unknown_node"
    assert stored(hub_client, TOWNSHIP) == []


async def test_revoked_key_is_refused(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 2)))
    assert run_cli("hub", "revoke", "--data", str(hub_dir), "--code", TOWNSHIP) == 0
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(3, 3)))
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(3, "revoked_key")]
    assert res["ack_seq"] == 2 and res["alert"] == "revoked_key"
    assert [a["kind"] for a in alerts(hub_client, TOWNSHIP)] == ["revoked_key"]
    node = await (await hub_client.get(f"/api/v1/nodes/{TOWNSHIP}")).json()
    assert node["key_status"] == "revoked" and node["keys"][0]["revoked_at"]
    # A revoked node cannot sign requests (relay, records back) either.
    r = await push(hub_client, envelope(TOWNSHIP, log.batch(3, 3)), signer=log)
    assert r.status == 403 and (await r.json())["error"] == "revoked_key"
    # Re-enrolling is refused; revoking twice is harmless.
    assert run_cli("hub", "revoke", "--data", str(hub_dir), "--code", TOWNSHIP) == 0
    assert run_cli("hub", "enroll", "--data", str(hub_dir), "--code", TOWNSHIP, "--pubkey",
                   str(log.pub_file(hub_dir.parent))) == 1  # fmt: skip


async def test_fork_is_quarantined_and_not_merged(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    held = stored(hub_client, TOWNSHIP)
    # The node signs a different record 3 (and a 4 after it): same seq, different hash.
    fork = NodeLog(TOWNSHIP, key=log.key)
    fork.records = copy.deepcopy(log.records[:2])
    fork.add(body=ticket_body(3, "dept:civil", "B"))
    fork.add()
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, fork.batch(2, 4)))
    assert res["alert"] == "fork" and res["ack_seq"] == 3 and res["stored"] == 0
    assert stored(hub_client, TOWNSHIP) == held
    [q] = hubdb.rows(hub_client.app[DB], "SELECT * FROM quarantine")
    assert q["node"] == TOWNSHIP and q["reason"] == "fork"
    assert json.loads(q["batch"])["records"][1]["hash"] == fork.records[2]["hash"]
    [alert] = alerts(hub_client, TOWNSHIP)
    assert alert["kind"] == "fork" and "seq 3" in alert["message"]
    r = await hub_client.get("/api/v1/alerts", params={"node": TOWNSHIP})
    assert [a["kind"] for a in (await r.json())["alerts"]] == ["fork"]
    # Record 4 of the fork, pushed alone, links to the fork's 3: also a fork.
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, fork.batch(4, 4, checkpoint=False)))
    assert res["alert"] == "fork" and stored(hub_client, TOWNSHIP) == held
    # A forged "different record" is just a bad record, not a fork.
    junk = copy.deepcopy(fork.records[2])
    junk["hash"] = "0" * 63 + "1"
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [junk]}))
    assert res["alert"] is None and res["rejected"][0]["reason"] == "bad_hash"
    assert len(hubdb.rows(hub_client.app[DB], "SELECT id FROM quarantine")) == 2


async def test_rolled_back_log_raises_rollback(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(5)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    # The node's database was restored from an old copy and rebuilt differently from seq 1.
    redo = NodeLog(TOWNSHIP, key=log.key)
    redo.extend(3, body=ticket_body(1, "area:agri", "C"))
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, redo.batch()))
    assert res["alert"] == "rollback" and res["ack_seq"] == 5
    assert [a["kind"] for a in alerts(hub_client, TOWNSHIP)] == ["rollback"]
    assert [s for s, _ in stored(hub_client, TOWNSHIP)] == [1, 2, 3, 4, 5]
    # A checkpoint below one the hub holds, with a different root: rollback as well.
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {
        "node": TOWNSHIP, "records": [], "checkpoint": redo.checkpoint(3)}))  # fmt: skip
    assert res["alert"] == "rollback"
    q = hubdb.rows(hub_client.app[DB], "SELECT reason FROM quarantine ORDER BY id")
    assert [x["reason"] for x in q] == ["rollback", "rollback"]
    # An honest checkpoint below the held one is fine.
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {
        "node": TOWNSHIP, "records": [], "checkpoint": log.checkpoint(3)}))  # fmt: skip
    assert res["alert"] is None and res["rejected"] == []


async def test_key_rotation_is_followed(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    old = log.key
    new = log.rotate()  # seq 3, signed by the old key
    log.extend(2)  # 4, 5 signed by the new key
    # Signed with the new key, which the hub learns from the rotation record in this push.
    body = envelope(TOWNSHIP, log.batch(3, 5))
    stranger = Ed25519PrivateKey.generate()
    r = await push(hub_client, body, log, key=stranger)
    assert r.status == 401
    [res] = await push_ok(hub_client, body, log, key=new)
    assert res["ack_seq"] == 5 and res["rejected"] == []
    node = await (await hub_client.get(f"/api/v1/nodes/{TOWNSHIP}")).json()
    assert node["key_id"] == log.records[3]["key_id"] != log.records[0]["key_id"]
    assert [(k["from_seq"], k["source"]) for k in node["keys"]] == [(0, "enrolled"), (3, "rotated")]
    # The old key no longer signs records...
    log.add(key=old)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(6, 6, checkpoint=False)))
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(6, "revoked_key")]
    # ...nor requests; the new one does.
    r = await push(hub_client, envelope(TOWNSHIP, log.batch(1, 1, checkpoint=False)), log, key=old)
    assert r.status == 401
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 5)), log, key=new)
    assert res["duplicates"] == 5
    # The whole copy verifies offline from the enrolled key.
    _, report = verify_stored(hub_client.app[DB], TOWNSHIP)
    assert report.ok, report.problems


async def test_relay_needs_a_valid_sender_signature(hub_client: Any, hub_dir: Path) -> None:
    county, town = NodeLog(COUNTY), NodeLog(TOWNSHIP)
    county.extend(2)
    town.extend(3)
    enroll(hub_dir, county)
    enroll(hub_dir, town, parent=COUNTY)  # its registered relay
    body = envelope(COUNTY, county.batch(), town.batch())
    r = await push(hub_client, body)  # unsigned
    assert r.status == 401
    check_error_shape(await r.json(), 401)
    r = await push(hub_client, body, county, key=town.key)  # signed by the wrong key
    assert r.status == 401
    r = await push(hub_client, body, town)  # signed by another node than the sender
    assert r.status == 403
    assert stored(hub_client, TOWNSHIP) == []
    res = await push_ok(hub_client, body, county)
    assert [(x["node"], x["ack_seq"]) for x in res] == [(COUNTY, 2), (TOWNSHIP, 3)]
    verify_receipt(res[1]["receipt"], hub_public(hub_dir))
    # Inner batches are verified end to end with their own node's key: the relay can't forge.
    fake = NodeLog(TOWNSHIP, key=county.key)
    fake.records = copy.deepcopy(town.records)
    fake.add()
    [_, res2] = await push_ok(
        hub_client, envelope(COUNTY, county.batch(), fake.batch(4, 4)), county
    )
    assert [(x["seq"], x["reason"]) for x in res2["rejected"]] == [(4, "bad_signature")]
    assert res2["ack_seq"] == 3
    # A stale signature time is refused.
    from sync.requests import sign_request

    headers = sign_request(county.key, COUNTY, "POST", "/api/v1/ingest", "2020-01-01T00:00:00Z")
    r = await hub_client.post("/api/v1/ingest", json=body, headers=headers)
    assert r.status == 401 and "clock" in (await r.json())["hint"]


async def test_event_schemas(hub_client: Any, hub_dir: Path, monkeypatch: Any) -> None:
    log = NodeLog(TOWNSHIP)
    log.add()
    log.add(kind="Not A Kind")
    enroll(hub_dir, log)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    assert res["ack_seq"] == 1 and res["rejected"][0]["reason"] == "bad_schema"
    # A kind with a schema file is checked against it.
    schema = {"type": "object", "required": ["queue"], "properties": {"queue": {"type": "string"}}}
    real = event_schemas.event_validator

    def fake(kind: str) -> Any:
        return Draft202012Validator(schema) if kind == "case.opened" else real(kind)

    monkeypatch.setattr(event_schemas, "event_validator", fake)
    other = NodeLog(TOWNSHIP2)
    other.add(kind="case.opened", entity="case", body={"queue": 5})
    enroll(hub_dir, other)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP2, other.batch()))
    [rej] = res["rejected"]
    assert rej["reason"] == "bad_schema" and "queue" in rej["message"] and res["ack_seq"] == 0


async def test_records_back_for_restore(hub_client: Any, hub_dir: Path) -> None:
    log, other = NodeLog(TOWNSHIP), NodeLog(TOWNSHIP2)
    log.extend(7)
    enroll(hub_dir, log)
    enroll(hub_dir, other)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    path = f"/api/v1/nodes/{TOWNSHIP}/records?after=2&limit=3"
    r = await hub_client.get(path)
    assert r.status == 401
    check_error_shape(await r.json(), 401)
    r = await hub_client.get(path, headers=signed(other.key, TOWNSHIP2, "GET", path))
    assert r.status == 403
    r = await hub_client.get(path, headers=signed(log.key, TOWNSHIP, "GET", path))
    assert r.status == 200, await r.text()
    page = await r.json()
    assert page["records"] == log.records[2:5] and page["more"] is True
    assert page["ack_seq"] == 7 and page["checkpoint"]["tree_size"] == 7
    path = f"/api/v1/nodes/{TOWNSHIP}/records?after=5"
    r = await hub_client.get(path, headers=signed(log.key, TOWNSHIP, "GET", path))
    page = await r.json()
    assert page["records"] == log.records[5:] and page["more"] is False
    bad = f"/api/v1/nodes/{TOWNSHIP}/records?after=x"
    r = await hub_client.get(bad, headers=signed(log.key, TOWNSHIP, "GET", bad))
    assert r.status == 422 and (await r.json())["field"] == "after"


async def test_every_error_has_the_one_shape(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    enroll(hub_dir, log)
    cases: list[tuple[str, str, Any, int, dict[str, str]]] = [
        ("GET", "/api/v1/nothing-here", None, 404, {}),
        ("DELETE", "/api/v1/nodes", None, 405, {}),
        ("GET", "/api/v1/nodes/999999999", None, 404, {}),
        ("GET", "/api/v1/ingest/999999999/position", None, 404, {}),
        ("GET", "/api/v1/nodes/999999999/records", None, 404, {}),
        ("GET", "/api/v1/catalog/latest", None, 404, {}),
        ("GET", "/api/v1/alerts?state=maybe", None, 422, {}),
        ("POST", "/api/v1/ingest", "not json", 422, {"Content-Type": "application/json"}),
        ("POST", "/api/v1/ingest", [1, 2], 422, {}),
        ("POST", "/api/v1/ingest", {"node": TOWNSHIP}, 422, {}),
        ("POST", "/api/v1/ingest", {"node": TOWNSHIP, "batches": [{"node": TOWNSHIP}]}, 422, {}),
        ("POST", "/api/v1/ingest", {"node": "3799", "batches": []}, 403, {}),
        ("POST", "/api/v1/ingest", {"node": "1", "batches": []}, 422, {}),
        (
            "POST",
            "/api/v1/ingest",
            {"node": TOWNSHIP, "batches": []},
            401,
            {"X-Onestop-Node": TOWNSHIP},
        ),
        ("POST", "/api/v1/ingest", b"\x1f\x8bnot gzip", 422, {}),
    ]
    for method, path, body, status, headers in cases:
        kw: dict[str, Any] = {"headers": headers}
        if isinstance(body, str | bytes):
            kw["data"] = body
        elif body is not None:
            kw["json"] = body
        r = await hub_client.request(method, path, **kw)
        assert r.status == status, (method, path, await r.text())
        assert r.content_type == "application/json"
        check_error_shape(await r.json(), status)


async def test_ingest_functions_work_without_http(hub_dir: Path) -> None:
    from hub import config as hubcfg
    from hub import identity

    cfg = hubcfg.load(hub_dir)
    db = hubdb.open_db(cfg.db_path)
    ident = identity.load(cfg)
    log = NodeLog(TOWNSHIP)
    log.extend(3)
    enroll(hub_dir, log)
    res = ingest_batch(db, ident, log.batch(), sender=TOWNSHIP)
    assert res.ack_seq == 3 and res.stored == 3 and res.rejected == []
    assert position(db, TOWNSHIP) == {"node": TOWNSHIP, "ack_seq": 3,
                                      "ack_hash": log.records[2]["hash"]}  # fmt: skip
    assert stored_records(db, TOWNSHIP) == log.records
    env = parse_envelope(envelope(TOWNSHIP, log.batch()))
    out = ingest_envelope(db, ident, env, authenticated=None)
    assert out["results"][0]["duplicates"] == 3


def test_frontier_matches_the_full_merkle_tree() -> None:
    import os

    from sync.merkle import MerkleTree, leaf_hash

    leaves = [leaf_hash(os.urandom(8)) for _ in range(70)]
    f = Frontier()
    tree = MerkleTree()
    assert f.root() == tree.root()
    for leaf in leaves:
        f.append(leaf)
        tree.append(leaf)
        assert f.root() == tree.root() and f.size == len(tree)
        assert len(f.hashes) == bin(f.size).count("1")
    g = Frontier(f.size, [bytes.fromhex(h) for h in json.loads(f.dump())])
    assert g.root() == f.root()


async def test_checkpoint_below_the_position_is_checked_against_stored_leaves(
    hub_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(9)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 4)))
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch(5, 9)))
    # The frontier survives a lost value (rebuilt from the records).
    hub_client.app[DB].execute("UPDATE nodes SET frontier = NULL")
    for size in (2, 6, 9):
        body = envelope(
            TOWNSHIP, {"node": TOWNSHIP, "records": [], "checkpoint": log.checkpoint(size)}
        )
        [res] = await push_ok(hub_client, body)
        assert res["alert"] is None and res["rejected"] == [], (size, res)
    sizes = [c["tree_size"] for c in stored_checkpoints(hub_client.app[DB], TOWNSHIP)]
    assert sizes == [2, 4, 6, 9]
    # A different history at 6 (below the held 9): rollback.
    other = NodeLog(TOWNSHIP, key=log.key)
    other.extend(6, body=ticket_body(1, "area:agri", "C"))
    body = envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [], "checkpoint": other.checkpoint()})
    [res] = await push_ok(hub_client, body)
    assert res["alert"] == "rollback"
    # ...and at the position itself (nothing held above): fork.
    other.extend(3, body=ticket_body(1, "area:agri", "C"))
    body = envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [], "checkpoint": other.checkpoint()})
    [res] = await push_ok(hub_client, body)
    assert res["alert"] == "fork"


async def test_an_unsigned_push_changes_no_node_status(hub_dir: Path) -> None:
    """Only a verified request speaks for a node: an unsigned push naming an enrolled node
    with empty batches must not make an offline center look healthy."""
    from hub import config as hubcfg
    from hub import identity

    cfg = hubcfg.load(hub_dir)
    db = hubdb.open_db(cfg.db_path)
    ident = identity.load(cfg)
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    with hubdb.tx(db):
        db.execute(
            "UPDATE nodes SET last_contact = '2026-01-01T00:00:00.000Z', reported_backlog = 77, "
            "last_error = 'offline since January' WHERE code = ?",
            [TOWNSHIP],
        )
    status = "SELECT last_contact, reported_backlog, last_error FROM nodes WHERE code = ?"
    before = tuple(db.execute(status, [TOWNSHIP]).fetchone())
    forged = {"node": TOWNSHIP, "backlog": 0, "batches": [{"node": TOWNSHIP, "records": []}]}
    ingest_envelope(db, ident, parse_envelope(forged), authenticated=None)
    ingest_envelope(db, ident, parse_envelope({**forged, "batches": []}), authenticated=None)
    assert tuple(db.execute(status, [TOWNSHIP]).fetchone()) == before
    # The node's own signed push does, and new verified records clear the error.
    ingest_envelope(db, ident, parse_envelope({**forged, "batches": []}), authenticated=TOWNSHIP)
    assert db.execute(status, [TOWNSHIP]).fetchone()[1] == 0
    ingest_batch(db, ident, log.batch(), sender=TOWNSHIP)
    assert db.execute(status, [TOWNSHIP]).fetchone()[2] is None
