"""Re-keying a node whose key is lost: the hub-signed authorisation (sync/rekey.py), the chain
verifier's rule for ``node.rekeyed``, and the hub's side (``onestop hub rekey``, ingest,
read-back, audit)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser

from hub import db as hubdb
from hub.ingest.readback import verify_stored
from hub.keys import DB
from sync.chain import GENESIS, ChainVerifier, make_record, verify_chain
from sync.errors import BAD_SHAPE, BAD_SIGNATURE, BROKEN_CHAIN, WRONG_NODE, RecordError
from sync.keys import Ed25519PrivateKey, load_private, public_key_id
from sync.rekey import (
    REKEY_KIND,
    make_authorisation,
    parse_authorisation,
    rekey_event,
    verify_authorisation,
)
from sync.verify import verify_log
from tests import test_hub_support as support
from tests.conftest import run_cli
from tests.test_hub_support import (
    AT,
    TOWNSHIP,
    TOWNSHIP2,
    NodeLog,
    enroll,
    envelope,
    push,
    push_ok,
    signed,
)

hub_client = support.hub_client
hub_dir = support.hub_dir


def authorise(
    hub: Ed25519PrivateKey, log: NodeLog, new: Ed25519PrivateKey, **over: Any
) -> dict[str, Any]:
    """A hub-signed authorisation of ``new`` for ``log``'s node after its current head."""
    args: dict[str, Any] = {
        "node": log.code, "old_key_id": public_key_id(log.key.public_key()),
        "new_public_key": new.public_key(), "from_seq": len(log.records) + 1,
        "prev": log.head, "at": AT, "by": "admin", "reason": "key lost",
    }  # fmt: skip
    args.update(over)
    return make_authorisation(hub, **args)


def rekey_record(log: NodeLog, signed_auth: dict[str, Any], key: Ed25519PrivateKey,
                 seq: int | None = None, prev: str | None = None) -> dict[str, Any]:  # fmt: skip
    event = {**rekey_event(signed_auth, AT), "seq": seq or len(log.records) + 1}
    return make_record(log.code, event, prev or log.head, key)


def chain_of(n: int = 3) -> tuple[NodeLog, Ed25519PrivateKey, Ed25519PrivateKey]:
    log = NodeLog(TOWNSHIP)
    log.extend(n)
    return log, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


# ---- the authorisation and the chain verifier -------------------------------------------------


def test_authorisation_signs_and_verifies() -> None:
    log, hub, new = chain_of()
    auth = authorise(hub, log, new)
    parsed = verify_authorisation(auth, hub.public_key())
    assert parsed.from_seq == 4 and parsed.prev == log.head and parsed.node == TOWNSHIP
    assert parsed.new_key_id == public_key_id(new.public_key())
    assert parsed.hub == public_key_id(hub.public_key())
    with pytest.raises(RecordError) as e:
        verify_authorisation(auth, Ed25519PrivateKey.generate().public_key())
    assert e.value.reason == BAD_SIGNATURE
    changed = copy.deepcopy(auth)
    changed["authorisation"]["reason"] = "something else"
    with pytest.raises(RecordError) as e:
        verify_authorisation(changed, hub.public_key())
    assert e.value.reason == BAD_SIGNATURE
    for bad in ({}, {"authorisation": {}, "sig": auth["sig"]}, {**auth, "extra": 1},
                {"authorisation": {**auth["authorisation"], "new_key_id": "0" * 16},
                 "sig": auth["sig"]}):  # fmt: skip
        with pytest.raises(RecordError) as e:
            parse_authorisation(bad)
        assert e.value.reason == BAD_SHAPE
    with pytest.raises(ValueError):
        authorise(hub, log, new, old_key_id=public_key_id(new.public_key()))


def test_a_valid_rekey_moves_the_chain_to_the_new_key() -> None:
    log, hub, new = chain_of()
    old = log.key
    log.records.append(rekey_record(log, authorise(hub, log, new), new))
    log.key = new
    log.extend(2)
    state = verify_chain(log.records, old.public_key(), node=TOWNSHIP, hub_key=hub.public_key())
    assert state.seq == 6 and public_key_id(state.key) == public_key_id(new.public_key())  # type: ignore[arg-type]
    # Checkpoints: the old key signs up to seq 3, the new one from the re-key record on.
    v = ChainVerifier(old.public_key(), node=TOWNSHIP, hub_key=hub.public_key())
    for r in log.records:
        v.check(r)
    ids = [public_key_id(v.key_for_size(n)) for n in (3, 4)]  # type: ignore[arg-type]
    assert ids == [public_key_id(old.public_key()), public_key_id(new.public_key())]
    cps = [log.checkpoint(3, key=old), log.checkpoint(6)]
    report = verify_log(TOWNSHIP, log.records, cps, old.public_key(), hub_key=hub.public_key())
    assert report.ok, report.problems
    # Without the hub's key the re-key record is a problem, like any unverifiable record.
    report = verify_log(TOWNSHIP, log.records, cps, old.public_key())
    assert not report.ok and any("no hub key" in p for p in report.problems)
    # From a key lookup (a node's DIR): the old key is found by the id the authorisation names.
    keys = {public_key_id(k.public_key()): k.public_key() for k in (old, new)}
    report = verify_log(TOWNSHIP, log.records, cps, keys, hub_key=hub.public_key())
    assert report.ok, report.problems
    # The replaced key signs nothing after the re-key.
    log.key = old
    log.add()
    with pytest.raises(RecordError) as e:
        verify_chain(log.records, old.public_key(), node=TOWNSHIP, hub_key=hub.public_key())
    assert e.value.reason == BAD_SIGNATURE and e.value.seq == 7


def test_a_rekey_of_an_empty_log_starts_at_seq_1() -> None:
    log, hub, new = chain_of(0)
    record = rekey_record(log, authorise(hub, log, new), new)
    assert record["seq"] == 1 and record["prev"] == GENESIS
    state = verify_chain([record], log.key.public_key(), node=TOWNSHIP, hub_key=hub.public_key())
    assert state.seq == 1 and public_key_id(state.key) == public_key_id(new.public_key())  # type: ignore[arg-type]


def _refused(records: list[dict[str, Any]], log: NodeLog, hub: Ed25519PrivateKey) -> RecordError:
    with pytest.raises(RecordError) as e:
        verify_chain(records, log.first_key.public_key(), node=TOWNSHIP, hub_key=hub.public_key())
    return e.value


def test_forged_and_misplaced_authorisations_are_refused() -> None:
    log, hub, new = chain_of()
    base = log.records
    stranger = Ed25519PrivateKey.generate()
    cases = {
        # Signed by another key than the hub's.
        "forged": (rekey_record(log, authorise(stranger, log, new), new), BAD_SIGNATURE),
        # For another node.
        "other node": (rekey_record(log, authorise(hub, log, new, node=TOWNSHIP2), new),
                       WRONG_NODE),
        # Replacing a key the chain does not hold.
        "other old key": (rekey_record(log, authorise(
            hub, log, new, old_key_id=public_key_id(stranger.public_key())), new), BAD_SIGNATURE),
        # Authorising one key, signed with another.
        "other new key": (rekey_record(log, authorise(hub, log, new), stranger), BAD_SIGNATURE),
        # For a later seq (the record is where the chain goes on, seq 4).
        "later seq": (rekey_record(log, authorise(hub, log, new, from_seq=9), new), BROKEN_CHAIN),
        # After another head.
        "other prev": (rekey_record(log, authorise(hub, log, new, prev="ab" * 32), new),
                       BROKEN_CHAIN),
    }  # fmt: skip
    for name, (record, reason) in cases.items():
        err = _refused([*base, record], log, hub)
        assert (err.reason, err.seq) == (reason, 4), (name, err)
    # A record whose body is no authorisation cannot even be made.
    with pytest.raises(RecordError) as e:
        make_record(TOWNSHIP, {"seq": 4, "at": AT, "kind": REKEY_KIND, "entity": "node",
                               "entity_id": TOWNSHIP, "body": {"key": "x"}}, log.head, new)  # fmt: skip
    assert e.value.reason == BAD_SHAPE
    # ...and one made by hand is refused as malformed.
    good = rekey_record(log, authorise(hub, log, new), new)
    hand = copy.deepcopy(good)
    hand["event"]["body"] = {"key": "x"}
    assert _refused([*base, hand], log, hub).reason == BAD_SHAPE
    # The right authorisation at the wrong place: a record at seq 5 after seq 3.
    moved = rekey_record(log, authorise(hub, log, new, from_seq=5), new, seq=5)
    assert _refused([*base, moved], log, hub).reason == BROKEN_CHAIN
    # And no hub key given to the verifier at all.
    with pytest.raises(RecordError) as e:
        verify_chain([*base, good], log.first_key.public_key(), node=TOWNSHIP)
    assert e.value.reason == BAD_SIGNATURE and "no hub key" in e.value.message
    # The good one passes.
    assert verify_chain([*base, good], log.first_key.public_key(), node=TOWNSHIP,
                        hub_key=hub.public_key()).seq == 4  # fmt: skip


# ---- the hub ------------------------------------------------------------------------------


def rekey_cli(hub_dir: Path, code: str, pub: Path, *extra: str) -> int:
    return run_cli("hub", "rekey", "--data", str(hub_dir), "--node", code, "--pubkey", str(pub),
                   "--by", "省中心 张工", *extra)  # fmt: skip


def new_pub(tmp: Path, key: Ed25519PrivateKey, name: str = "new.pub") -> Path:
    path = tmp / name
    path.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM,
                                                   ser.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return path


def pending_auth(hub_dir: Path, code: str) -> dict[str, Any]:
    db = hubdb.open_db(hub_dir / "hub.db")
    try:
        row = hubdb.one(db, "SELECT signed FROM rekeys WHERE node = ? AND state = 'pending'",
                        [code])  # fmt: skip
        assert row is not None
        signed_auth: dict[str, Any] = json.loads(row["signed"])
        return signed_auth
    finally:
        db.conn.close()


async def test_hub_rekey_read_back_push_and_audit(
    hub_client: Any, hub_dir: Path, tmp_path: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(4)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    old = log.key
    new = Ed25519PrivateKey.generate()
    assert rekey_cli(hub_dir, "370102999", new_pub(tmp_path, new)) == 1  # not enrolled
    assert rekey_cli(hub_dir, TOWNSHIP, log.pub_file(tmp_path)) == 1  # a key it already had
    assert rekey_cli(hub_dir, TOWNSHIP, new_pub(tmp_path, new), "--reason", "disk lost") == 0
    auth = parse_authorisation(pending_auth(hub_dir, TOWNSHIP))
    hub_key = load_private(hub_dir / "hub.key")
    verify_authorisation(auth.signed, hub_key.public_key())
    assert (auth.from_seq, auth.prev, auth.reason) == (5, log.head, "disk lost")
    assert auth.old_key_id == public_key_id(old.public_key())

    # Read-back: the new key is accepted, the replaced one no longer.
    path = f"/api/v1/nodes/{TOWNSHIP}/records?after=0"
    r = await hub_client.get(path, headers=signed(old, TOWNSHIP, "GET", path))
    assert r.status == 401
    r = await hub_client.get(path, headers=signed(new, TOWNSHIP, "GET", path))
    assert r.status == 200, await r.text()
    page = await r.json()
    assert page["records"] == log.records and page["rekey"] == auth.signed
    assert [(k["source"], k["from_seq"]) for k in page["keys"]] == [("enrolled", 0)]

    # The replaced key signs no more records, even with a push signed by the new key...
    stale = copy.deepcopy(log)
    stale.add()
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, stale.batch(5, 5, checkpoint=False)),
                          log, key=new)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(5, "revoked_key")]
    # ...nor signs requests.
    r = await push(hub_client, envelope(TOWNSHIP, log.batch(1, 1, checkpoint=False)), log, key=old)
    assert r.status == 401
    # A forged authorisation, signed by another key than the hub's, is refused.
    forged = rekey_record(log, authorise(Ed25519PrivateKey.generate(), log, new), new)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [forged]}),
                          log, key=new)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(5, "bad_signature")]
    # A genuine hub signature on another authorisation than the pending one is refused too.
    other = rekey_record(log, authorise(hub_key, log, new, reason="not issued"), new)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [other]}),
                          log, key=new)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(5, "revoked_key")]
    # The right authorisation at the wrong seq.
    moved = rekey_record(log, auth.signed, new, seq=6)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [moved]}),
                          log, key=new)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(6, "broken_chain")]
    assert hubdb.one(hub_client.app[DB], "SELECT ack_seq FROM nodes WHERE code = ?",
                     [TOWNSHIP])["ack_seq"] == 4  # type: ignore[index]  # fmt: skip

    # The node.rekeyed record carrying the pending authorisation, then records of the new key.
    log.records.append(rekey_record(log, auth.signed, new))
    log.key = new
    log.extend(2)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(5, 7)), log, key=new)
    assert res["ack_seq"] == 7 and res["rejected"] == [] and res["alert"] is None, res
    node = await (await hub_client.get(f"/api/v1/nodes/{TOWNSHIP}")).json()
    assert node["key_id"] == public_key_id(new.public_key())
    assert [(k["from_seq"], k["source"]) for k in node["keys"]] == [(0, "enrolled"), (5, "rekeyed")]
    state = hubdb.one(hub_client.app[DB], "SELECT state FROM rekeys WHERE node = ?", [TOWNSHIP])
    assert state == {"state": "applied"}
    # No pending re-key any more: another node.rekeyed record is refused.
    third = Ed25519PrivateKey.generate()
    again = rekey_record(log, authorise(hub_key, log, third), third)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [again]}),
                          log, key=new)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(8, "revoked_key")]
    # The whole copy verifies offline, across the re-key, with the hub's key.
    _, report = verify_stored(hub_client.app[DB], TOWNSHIP, hub_key.public_key())
    assert report.ok, report.problems
    _, report = verify_stored(hub_client.app[DB], TOWNSHIP)
    assert not report.ok
    assert run_cli("verify", "--hub", str(hub_dir), "--code", TOWNSHIP) == 0
    # Read-back with the new key lists both keys and the applied authorisation.
    r = await hub_client.get(path, headers=signed(new, TOWNSHIP, "GET", path))
    page = await r.json()
    assert len(page["records"]) == 7 and page["rekey"] == auth.signed
    assert [k["source"] for k in page["keys"]] == ["enrolled", "rekeyed"]


async def test_a_second_rekey_supersedes_and_a_revoked_node_comes_back(
    hub_client: Any, hub_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(2)
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    assert run_cli("hub", "revoke", "--data", str(hub_dir), "--code", TOWNSHIP) == 0
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert rekey_cli(hub_dir, TOWNSHIP, new_pub(tmp_path, first, "a.pub")) == 0
    assert "active again" in capsys.readouterr().out
    first_auth = pending_auth(hub_dir, TOWNSHIP)
    assert rekey_cli(hub_dir, TOWNSHIP, new_pub(tmp_path, second, "b.pub")) == 0
    assert "superseded" in capsys.readouterr().out
    second_auth = pending_auth(hub_dir, TOWNSHIP)
    # The first key no longer signs requests; the superseded authorisation is refused.
    path = f"/api/v1/nodes/{TOWNSHIP}/records"
    r = await hub_client.get(path, headers=signed(first, TOWNSHIP, "GET", path))
    assert r.status == 401
    stale = rekey_record(log, first_auth, first)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, {"node": TOWNSHIP, "records": [stale]}),
                          log, key=second)  # fmt: skip
    assert [(x["seq"], x["reason"]) for x in res["rejected"]] == [(3, "revoked_key")]
    assert "pending authorisation" in res["rejected"][0]["message"]
    record = rekey_record(log, second_auth, second)
    log.records.append(record)
    log.key = second
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(3, 3)), log, key=second)
    assert res["ack_seq"] == 3 and res["rejected"] == [], res
    # A repeat of the re-key record is a harmless duplicate.
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 3)), log, key=second)
    assert res["duplicates"] == 3 and res["alert"] is None
