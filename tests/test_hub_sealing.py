"""Sealed ID numbers: node seals to the hub's X25519 key, the hub keeps only hash and mask."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from hub import db as hubdb
from hub.keys import DB, IDENTITY
from sync.canonical import b64decode, b64encode
from sync.sealing import SealError, X25519PrivateKey, load_seal_private, seal, unseal
from tests import test_hub_support as support
from tests.conftest import make_id
from tests.test_hub_support import (
    TOWNSHIP,
    NodeLog,
    enroll,
    envelope,
    push_ok,
)

# Fixtures shared by the hub tests.
hub_client = support.hub_client
hub_dir = support.hub_dir


def case_body(id_number: str, sealed: str | None) -> dict[str, Any]:
    """A body matching schemas/events/case.opened.schema.json, plus ``id_sealed``."""
    body: dict[str, Any] = {
        "by": "clerk1", "case_no": f"{TOWNSHIP}-20261129-0001", "departments": ["edu"],
        "id_hash": "ab" * 32, "id_masked": id_number[:6] + "********" + id_number[-4:],
        "items": ["370100-edu-001"], "kind": "acceptance", "missing": [],
        "phone_masked": "138****8000", "preapplication_id": None, "received": [],
        "ticket_no": "A001",
    }  # fmt: skip
    if sealed is not None:
        body["id_sealed"] = sealed
    return body


def test_seal_round_trip_and_tampering(hub_dir: Path) -> None:
    key = load_seal_private(hub_dir / "hub-seal.key")
    pem = (hub_dir / "hub-seal.pub").read_bytes()
    sealed = seal(pem, "37010219850612123X")
    assert unseal(key, sealed) == b"37010219850612123X"
    # Fresh ephemeral key and nonce every time.
    assert seal(key.public_key(), "x") != seal(key.public_key(), "x")
    # Also from the PEM text and from a path.
    assert unseal(key, seal(pem.decode(), b"y")) == b"y"
    assert unseal(key, seal(str(hub_dir / "hub-seal.pub"), "z")) == b"z"
    raw = bytearray(b64decode(sealed))
    raw[-1] ^= 1
    with pytest.raises(SealError, match="does not open"):
        unseal(key, b64encode(bytes(raw)))
    with pytest.raises(SealError):
        unseal(X25519PrivateKey.generate(), sealed)
    for junk in ("", "not base64!", b64encode(b"\x01short"), 42):
        with pytest.raises(SealError):
            unseal(key, junk)
    with pytest.raises(SealError, match="X25519"):
        seal((hub_dir / "hub.pub").read_bytes(), "x")  # an Ed25519 key is refused


async def test_sealed_id_is_linked_and_never_stored_in_plain(
    hub_client: Any, hub_dir: Path
) -> None:
    id_number = make_id("19850612", seq="123")
    other_id = make_id("19900101", seq="456")
    pub = (hub_dir / "hub-seal.pub").read_bytes()
    log = NodeLog(TOWNSHIP)
    log.add(
        kind="case.opened",
        entity="case",
        entity_id="1",
        body=case_body(id_number, seal(pub, id_number)),
    )
    log.add(
        kind="case.opened",
        entity="case",
        entity_id="2",
        body=case_body(id_number, seal(pub, id_number)),
    )
    log.add(
        kind="case.opened",
        entity="case",
        entity_id="3",
        body=case_body(other_id, seal(pub, other_id)),
    )
    log.add(kind="case.opened", entity="case", entity_id="4", body=case_body(other_id, None))
    enroll(hub_dir, log)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    assert res["ack_seq"] == 4 and res["rejected"] == [], res
    db = hub_client.app[DB]
    links = hubdb.rows(db, "SELECT * FROM person_links ORDER BY entity_id")
    assert [x["entity_id"] for x in links] == ["1", "2", "3"]
    link_key = (hub_dir / "hub-link.key").read_bytes()
    expect = hmac.new(link_key, id_number.encode(), hashlib.sha256).hexdigest()
    assert links[0]["id_hash"] == links[1]["id_hash"] == expect != links[2]["id_hash"]
    assert hub_client.app[IDENTITY].link_hash(id_number) == expect
    assert links[0]["id_masked"] == id_number[:6] + "********" + id_number[-4:]
    # The stored body keeps id_sealed as signed (the copy still verifies).
    body = hubdb.one(db, "SELECT body FROM records WHERE seq = 1")
    assert body is not None and '"id_sealed"' in body["body"]
    # A sealed value the hub can't open: record kept, no link, an alert.
    log.add(kind="case.opened", entity="case", entity_id="5",
            body=case_body(id_number, seal(X25519PrivateKey.generate().public_key(), id_number)))  # fmt: skip
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(5, 5)))
    assert res["ack_seq"] == 5
    assert len(hubdb.rows(db, "SELECT 1 FROM person_links")) == 3
    [alert] = hubdb.rows(db, "SELECT * FROM alerts")
    assert alert["kind"] == "rejected" and "id_sealed" in alert["message"]
    # The plain ID numbers appear in no byte of the hub's database files.
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    files = [p for p in hub_dir.iterdir() if p.name.startswith("hub.db")]
    assert files
    for p in files:
        data = p.read_bytes()
        for plain in (id_number, other_id):
            assert plain.encode() not in data, p.name
            assert plain.encode("utf-16-le") not in data, p.name
