"""Cryptographic core of the signed log: canonical JSON, keys, hash chain, Merkle tree, checkpoints."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec

from sync import merkle
from sync.canonical import b64decode, b64encode, canonical, is_sha256_hex, sha256_hex
from sync.chain import (
    GENESIS,
    ROTATION_KIND,
    ChainVerifier,
    RecordError,
    make_record,
    rotation_body,
    verify_chain,
    verify_record,
)
from sync.checkpoint import make_checkpoint, verify_checkpoint
from sync.errors import CheckpointError
from sync.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyFileError,
    generate_keypair,
    load_private,
    load_public,
    public_from_raw_b64,
    public_key_fingerprint,
    public_key_id,
    public_raw_b64,
)
from sync.merkle import MerkleTree, leaf_hash
from sync.verify import verify_log

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

NODE = "370102-01"
AT = "2024-05-06T08:30:00.000Z"


def event(seq: int, **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "seq": seq,
        "at": AT,
        "kind": "ticket.issued",
        "entity": "ticket",
        "entity_id": str(seq),
        "body": {"number": f"A{seq:03d}", "service": "户籍办理", "score": 4.5, "tags": ["x"]},
    }
    ev.update(over)
    return ev


def build_log(
    n: int,
    key: Ed25519PrivateKey,
    *,
    rotate_at: int | None = None,
    new_key: Ed25519PrivateKey | None = None,
    node: str = NODE,
) -> list[dict[str, Any]]:
    """n records; if rotate_at, that seq is a key.rotated event (signed by `key`) to `new_key`."""
    records: list[dict[str, Any]] = []
    prev, signer = GENESIS, key
    for seq in range(1, n + 1):
        if seq == rotate_at:
            assert new_key is not None
            ev = event(seq, kind=ROTATION_KIND, entity="node", entity_id=node,
                       body=rotation_body(new_key.public_key()))  # fmt: skip
            rec = make_record(node, ev, prev, signer)
            signer = new_key
        else:
            rec = make_record(node, event(seq), prev, signer)
        records.append(rec)
        prev = rec["hash"]
    return records


def reason(exc: pytest.ExceptionInfo[RecordError] | pytest.ExceptionInfo[CheckpointError]) -> str:
    return exc.value.reason


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def key2() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


# --- canonical ----------------------------------------------------------------------------


def test_canonical_sorts_keys_and_keeps_utf8() -> None:
    assert canonical({"b": 1, "a": [True, None, "中"], "c": 1.0}) == (
        '{"a":[true,null,"中"],"b":1,"c":1}'.encode()
    )
    assert sha256_hex(b"") == hashlib.sha256(b"").hexdigest()
    assert is_sha256_hex(sha256_hex(b"x")) and not is_sha256_hex("AB" * 32)
    with pytest.raises(ValueError):
        canonical({"n": 2**60})


def test_b64_strict() -> None:
    assert b64decode(b64encode(b"\x00\xff")) == b"\x00\xff"
    for bad in ("AA", "A*==", "AB==", 5):  # no padding, bad char, non-canonical trailing bits
        with pytest.raises(ValueError):
            b64decode(bad)


# --- keys ---------------------------------------------------------------------------------


@posix_only
def test_generate_keypair_modes_and_roundtrip(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask the private key is 0600
    try:
        priv_path, pub_path = generate_keypair(tmp_path / "keys", "node")
    finally:
        os.umask(old)
    assert priv_path.name == "node.key" and pub_path.name == "node.pub"
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in priv_path.read_bytes()
    assert b"BEGIN PUBLIC KEY" in pub_path.read_bytes()
    priv, pub = load_private(priv_path), load_public(pub_path)
    pub.verify(priv.sign(b"msg"), b"msg")
    assert load_public(pub_path.read_bytes()) == pub
    assert load_public(pub_path.read_text()) == pub
    assert load_public(str(pub_path)) == pub
    with pytest.raises(KeyFileError, match="already exists"):
        generate_keypair(tmp_path / "keys", "node")


@posix_only
def test_private_key_with_open_mode_refused(tmp_path: Path) -> None:
    priv_path, _ = generate_keypair(tmp_path, "node")
    os.chmod(priv_path, 0o644)
    with pytest.raises(KeyFileError, match=r"chmod 600 .*node\.key"):
        load_private(priv_path)
    os.chmod(priv_path, 0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private(priv_path)
    os.chmod(priv_path, 0o400)
    load_private(priv_path)


def test_passphrase_encrypted_key(tmp_path: Path) -> None:
    priv_path, pub_path = generate_keypair(tmp_path, "enc", passphrase=b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in priv_path.read_bytes()
    with pytest.raises(KeyFileError, match="encrypted: supply its passphrase"):
        load_private(priv_path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_private(priv_path, b"wrong")
    key = load_private(priv_path, b"correct horse")
    assert key.public_key() == load_public(pub_path)
    plain, _ = generate_keypair(tmp_path, "plain")
    with pytest.raises(KeyFileError, match="not encrypted"):
        load_private(plain, b"pw")
    with pytest.raises(ValueError):
        generate_keypair(tmp_path, "empty", passphrase=b"")


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_private(tmp_path / "missing.key")
    with pytest.raises(KeyFileError, match="not found"):
        load_public(tmp_path / "missing.pub")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    p = tmp_path / "ec.key"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(ec_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    with pytest.raises(KeyFileError, match="Ed25519"):
        load_private(p)
    ec_pub = ec_key.public_key().public_bytes(
        ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFileError, match="Ed25519"):
        load_public(ec_pub)
    with pytest.raises(KeyFileError, match="not a valid PEM"):
        load_public(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValueError):
        generate_keypair(tmp_path, "../escape")


def test_key_ids_and_raw_encoding(key: Ed25519PrivateKey) -> None:
    pub = key.public_key()
    raw = pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    assert public_key_fingerprint(pub) == hashlib.sha256(raw).hexdigest()
    assert public_key_id(pub) == public_key_fingerprint(pub)[:16]
    assert public_from_raw_b64(public_raw_b64(pub)) == pub
    with pytest.raises(ValueError):
        public_from_raw_b64(b64encode(raw[:31]))


# --- chain --------------------------------------------------------------------------------


def test_record_format_and_roundtrip(key: Ed25519PrivateKey) -> None:
    records = build_log(5, key)
    first = records[0]
    assert set(first) == {"node", "seq", "prev", "event", "hash", "sig", "key_id"}
    assert first["prev"] == GENESIS == "0" * 64
    assert set(first["event"]) == {"at", "kind", "entity", "entity_id", "body"}
    unsigned = {k: first[k] for k in ("node", "seq", "prev", "event")}
    assert first["hash"] == hashlib.sha256(canonical(unsigned)).hexdigest()
    assert first["key_id"] == public_key_id(key.public_key())
    assert len(b64decode(first["sig"])) == 64
    for a, b in zip(records, records[1:], strict=False):
        assert b["prev"] == a["hash"]
    # survives a JSON round trip (what the hub receives)
    wire = json.loads(json.dumps(records, ensure_ascii=False))
    state = verify_chain(wire, key.public_key())
    assert (state.node, state.seq, state.head) == (NODE, 5, records[-1]["hash"])
    assert state.key == key.public_key()


def test_make_record_normalises_event(key: Ed25519PrivateKey) -> None:
    rec = make_record(NODE, event(1, entity_id=7, body={"n": 1.0, "t": (1, 2)}), GENESIS, key)
    assert rec["event"]["entity_id"] == "7"
    assert rec["event"]["body"] == {"n": 1, "t": [1, 2]}
    verify_record(rec, key.public_key(), GENESIS)
    for bad in ({"big": 2**60}, {"nan": float("nan")}, {1: "int key"}):
        with pytest.raises(RecordError) as e:
            make_record(NODE, event(1, body=bad), GENESIS, key)
        assert reason(e) == "bad_shape"
    with pytest.raises(RecordError):
        make_record(NODE, event(0), GENESIS, key)
    with pytest.raises(RecordError):
        make_record(NODE, event(1), "xyz", key)


def test_flipped_byte_in_body_is_bad_hash(key: Ed25519PrivateKey) -> None:
    records = build_log(3, key)
    bad = copy.deepcopy(records)
    bad[1]["event"]["body"]["number"] = "A003"
    with pytest.raises(RecordError) as e:
        verify_chain(bad, key.public_key())
    assert reason(e) == "bad_hash" and e.value.seq == 2
    assert "seq 2" in str(e.value)
    for field, value in (("at", AT.replace("08", "09")), ("kind", "x"), ("entity_id", "9")):
        bad = copy.deepcopy(records)
        bad[0]["event"][field] = value
        with pytest.raises(RecordError) as e:
            verify_record(bad[0], key.public_key(), GENESIS)
        assert reason(e) == "bad_hash"
    bad = copy.deepcopy(records)
    bad[2]["node"] = "other"  # node is part of the hash too
    with pytest.raises(RecordError) as e:
        verify_chain(bad, key.public_key())
    assert reason(e) == "wrong_node"
    with pytest.raises(RecordError) as e:
        verify_record(bad[2], key.public_key(), None)
    assert reason(e) == "bad_hash"


def test_rehashed_tamper_is_bad_signature(key: Ed25519PrivateKey) -> None:
    records = build_log(3, key)
    bad = copy.deepcopy(records)
    rec = bad[1]
    rec["event"]["body"]["number"] = "Z999"
    rec["hash"] = sha256_hex(canonical({k: rec[k] for k in ("node", "seq", "prev", "event")}))
    with pytest.raises(RecordError) as e:
        verify_chain(bad, key.public_key())
    assert reason(e) == "bad_signature" and e.value.seq == 2


def test_forged_signature_other_key(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    good = make_record(NODE, event(1), GENESIS, key)
    forged = make_record(NODE, event(1), GENESIS, key2)
    # signed by another key, honest key_id
    with pytest.raises(RecordError) as e:
        verify_record(forged, key.public_key(), GENESIS)
    assert reason(e) == "bad_signature"
    # signed by another key, claiming the right key_id
    forged["key_id"] = good["key_id"]
    with pytest.raises(RecordError) as e:
        verify_record(forged, key.public_key(), GENESIS)
    assert reason(e) == "bad_signature"
    # garbage signature bytes
    junk = dict(good, sig=b64encode(bytes(64)))
    with pytest.raises(RecordError) as e:
        verify_record(junk, key.public_key(), GENESIS)
    assert reason(e) == "bad_signature"
    # the signature is not a plain signature over the hash bytes (domain separated)
    raw = dict(good, sig=b64encode(key.sign(bytes.fromhex(good["hash"]))))
    with pytest.raises(RecordError) as e:
        verify_record(raw, key.public_key(), GENESIS)
    assert reason(e) == "bad_signature"


def test_reordered_missing_duplicated_records_break_chain(key: Ed25519PrivateKey) -> None:
    records = build_log(5, key)
    pub = key.public_key()
    cases = {
        "reordered": [records[0], records[2], records[1], records[3], records[4]],
        "missing": records[:2] + records[3:],
        "duplicated": records[:3] + records[2:],
        "missing first": records[1:],
    }
    for name, recs in cases.items():
        with pytest.raises(RecordError) as e:
            verify_chain(recs, pub)
        assert reason(e) == "broken_chain", name
    with pytest.raises(RecordError) as e:
        verify_record(records[1], pub, GENESIS)
    assert reason(e) == "broken_chain"
    verify_record(records[1], pub, None)  # link check skipped
    verify_record(records[1], pub, records[0]["hash"], node=NODE, expected_seq=2)


def test_wrong_node(key: Ed25519PrivateKey) -> None:
    records = build_log(2, key)
    with pytest.raises(RecordError) as e:
        verify_chain(records, key.public_key(), node="370102-02")
    assert reason(e) == "wrong_node"
    mixed = [records[0], build_log(2, key, node="other")[1]]
    mixed[1]["prev"] = records[0]["hash"]
    with pytest.raises(RecordError) as e:
        verify_chain(mixed, key.public_key())
    assert reason(e) == "wrong_node"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("sig"),
        lambda r: r.update(extra=1),
        lambda r: r.update(seq=True),
        lambda r: r.update(seq="1"),
        lambda r: r.update(prev="0" * 63),
        lambda r: r.update(hash=r["hash"].upper()),
        lambda r: r.update(sig="***"),
        lambda r: r["event"].pop("body"),
        lambda r: r["event"].update(body=[1]),
        lambda r: r["event"].update(entity_id=1),
        lambda r: r["event"].update(extra="x"),
    ],
)
def test_bad_shape(key: Ed25519PrivateKey, mutate: Any) -> None:
    rec = make_record(NODE, event(1), GENESIS, key)
    mutate(rec)
    with pytest.raises(RecordError) as e:
        verify_record(rec, key.public_key(), GENESIS)
    assert reason(e) in ("bad_shape", "bad_signature")  # undecodable sig -> bad_signature
    if rec.get("sig") != "***":
        assert reason(e) == "bad_shape"
    with pytest.raises(RecordError):
        verify_record("not a record", key.public_key(), GENESIS)  # type: ignore[arg-type]


def test_key_rotation(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(6, key, rotate_at=3, new_key=key2)
    assert records[2]["event"]["kind"] == "key.rotated"
    assert records[2]["key_id"] == public_key_id(key.public_key())  # signed with the OLD key
    assert records[3]["key_id"] == public_key_id(key2.public_key())
    state = verify_chain(records, key.public_key())
    assert state.key == key2.public_key() and state.seq == 6
    # resume from the middle with the current key
    verify_chain(records[4:], key2.public_key(), prev=records[3]["hash"], seq=4)
    # the verifier must be given the initial key: the new key alone cannot start the chain
    with pytest.raises(RecordError) as e:
        verify_chain(records, key2.public_key())
    assert reason(e) == "bad_signature"


def test_old_key_rejected_after_rotation(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(4, key, rotate_at=2, new_key=key2)
    bad = records[:2] + [make_record(NODE, event(3), records[1]["hash"], key)]
    with pytest.raises(RecordError) as e:
        verify_chain(bad, key.public_key())
    assert reason(e) == "bad_signature" and e.value.seq == 3
    # ... even when the verifier trusts both keys by id
    both = {public_key_id(k.public_key()): k.public_key() for k in (key, key2)}
    verify_chain(records, both)
    with pytest.raises(RecordError) as e:
        verify_chain(bad, both)
    assert reason(e) == "bad_signature"
    with pytest.raises(RecordError) as e:
        verify_chain(bad, both.get)
    assert reason(e) == "bad_signature"


def test_rotation_must_be_signed_by_old_key_and_well_formed(
    key: Ed25519PrivateKey, key2: Ed25519PrivateKey
) -> None:
    r1 = make_record(NODE, event(1), GENESIS, key)
    rot = event(2, kind=ROTATION_KIND, entity="node", entity_id=NODE,
                body=rotation_body(key2.public_key()))  # fmt: skip
    self_signed = make_record(NODE, rot, r1["hash"], key2)
    with pytest.raises(RecordError) as e:
        verify_chain([r1, self_signed], key.public_key())
    assert reason(e) == "bad_signature"
    body = rotation_body(key2.public_key())
    body["key_id"] = public_key_id(key.public_key())
    with pytest.raises(RecordError) as e:
        make_record(NODE, dict(rot, body=body), r1["hash"], key)
    assert reason(e) == "bad_shape"
    # a signed but malformed rotation is rejected at verification too
    rec = make_record(NODE, dict(rot, kind="other"), r1["hash"], key)
    rec["event"]["kind"] = ROTATION_KIND
    rec["event"]["body"] = {"public_key": "nope", "key_id": "x"}
    rec["hash"] = sha256_hex(canonical({k: rec[k] for k in ("node", "seq", "prev", "event")}))
    rec["sig"] = b64encode(key.sign(b"onestop-record-v1\n" + bytes.fromhex(rec["hash"])))
    with pytest.raises(RecordError) as e:
        verify_chain([r1, rec], key.public_key())
    assert reason(e) == "bad_shape"


def test_unknown_key_id(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(2, key)
    with pytest.raises(RecordError) as e:
        verify_chain(records, {public_key_id(key2.public_key()): key2.public_key()})
    assert reason(e) == "bad_signature" and "unknown key" in e.value.message
    with pytest.raises(RecordError):
        verify_chain(records, lambda kid: None)


def test_chain_verifier_history(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(5, key, rotate_at=3, new_key=key2)
    v = ChainVerifier(key.public_key())
    for r in records:
        v.check(r)
    assert v.key_for_size(0) == key.public_key()
    assert v.key_for_size(2) == key.public_key()
    assert v.key_for_size(3) == key2.public_key()
    assert v.key_for_size(5) == key2.public_key()


# --- Merkle -------------------------------------------------------------------------------

# RFC 6962 test leaves (certificate-transparency merkle_tree_test) and their roots.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(data: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, straight from the definition (over leaf data)."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + naive_mth(data[:k]) + naive_mth(data[k:])).digest()


def naive_path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return naive_path(m, data[:k]) + [naive_mth(data[k:])]
    return naive_path(m - k, data[k:]) + [naive_mth(data[:k])]


def naive_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [naive_mth(data)]
    k = _k(n)
    if m <= k:
        return naive_subproof(m, data[:k], b) + [naive_mth(data[k:])]
    return naive_subproof(m - k, data[k:], False) + [naive_mth(data[:k])]


def flips(proof: list[bytes]) -> list[list[bytes]]:
    """Tampered variants: each element with a flipped bit, one dropped, one extra, reversed."""
    out = []
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        out.append(bad)
    if proof:
        out.append(proof[:-1])
        if len(proof) > 1 and proof[0] != proof[-1]:
            out.append(proof[::-1])
    out.append(proof + [bytes(32)])
    return out


def test_empty_root_and_hash_prefixes() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert MerkleTree().root() == merkle.EMPTY_ROOT
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert merkle.node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


def test_ct_test_vectors() -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    tree = MerkleTree(leaves)
    for n in range(1, 9):
        assert merkle.root(leaves[:n]).hex() == CT_ROOTS[n - 1]
        assert tree.root(n).hex() == CT_ROOTS[n - 1]
        assert naive_mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    for index, size, path in CT_INCLUSION:
        assert [h.hex() for h in tree.inclusion_proof(index, size)] == path
    for m, n, path in CT_CONSISTENCY:
        assert [h.hex() for h in tree.consistency_proof(m, n)] == path


def test_root_matches_naive() -> None:
    rng = random.Random(6962)
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(70)]
    leaves = [leaf_hash(d) for d in data]
    tree = MerkleTree()
    assert tree.root() == naive_mth([])
    for n in range(1, 71):
        tree.append(leaves[n - 1])
        expected = naive_mth(data[:n])
        assert merkle.root(leaves[:n]) == expected
        assert tree.root() == expected
        assert all(tree.root(m) == naive_mth(data[:m]) for m in range(0, n + 1, 7))
    with pytest.raises(ValueError):
        tree.root(71)
    with pytest.raises(ValueError):
        tree.append(b"short")


def test_inclusion_proofs_up_to_20() -> None:
    data = [i.to_bytes(2, "big") for i in range(20)]
    leaves = [leaf_hash(d) for d in data]
    tree = MerkleTree(leaves)
    for n in range(1, 21):
        root_n = tree.root(n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == naive_path(i, data[:n])
            assert proof == merkle.inclusion_proof(i, leaves[:n])
            assert merkle.verify_inclusion(i, n, leaves[i], proof, root_n)
            assert not merkle.verify_inclusion(i, n, leaf_hash(b"other"), proof, root_n)
            assert not merkle.verify_inclusion(i, n, leaves[i], proof, leaf_hash(b"x"))
            assert not merkle.verify_inclusion(n, n, leaves[i], proof, root_n)
            if n > 1:
                other = (i + 1) % n
                assert not merkle.verify_inclusion(other, n, leaves[i], proof, root_n)
            for bad in flips(proof):
                assert not merkle.verify_inclusion(i, n, leaves[i], bad, root_n)
    with pytest.raises(ValueError):
        tree.inclusion_proof(20, 20)


def test_consistency_proofs_up_to_20() -> None:
    data = [bytes([i]) * i for i in range(20)]
    leaves = [leaf_hash(d) for d in data]
    tree = MerkleTree(leaves)
    for n in range(0, 21):
        new_root = tree.root(n)
        for m in range(0, n + 1):
            old_root = tree.root(m)
            proof = tree.consistency_proof(m, n)
            assert proof == merkle.consistency_proof(m, leaves[:n])
            if 0 < m < n:
                assert proof == naive_subproof(m, data[:n], True)
            else:
                assert proof == []
            # A proof from the empty tree proves nothing (RFC 9162 defines it for 0 < m).
            assert merkle.verify_consistency(m, n, old_root, new_root, proof) is (m > 0 or n == 0)
            if m > 0:
                assert not merkle.verify_consistency(m, n, leaf_hash(b"x"), new_root, proof)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, old_root, leaf_hash(b"x"), proof)
                assert not merkle.verify_consistency(n, m, new_root, old_root, proof)
                if m > 1:
                    assert not merkle.verify_consistency(m - 1, n, old_root, new_root, proof)
                for bad in flips(proof):
                    assert not merkle.verify_consistency(m, n, old_root, new_root, bad)
    with pytest.raises(ValueError):
        tree.consistency_proof(5, 4)


def test_merkle_tree_is_fast() -> None:
    rng = random.Random(1)
    leaves = [rng.randbytes(32) for _ in range(100_000)]
    start = time.perf_counter()
    tree = MerkleTree(leaves)
    r = tree.root()
    assert time.perf_counter() - start < 2.0
    start = time.perf_counter()
    for n in range(1, 100_001, 97):
        tree.root(n)
    proof = tree.inclusion_proof(54_321)
    cons = tree.consistency_proof(20_000)
    assert time.perf_counter() - start < 2.0
    assert merkle.root(leaves) == r
    assert merkle.verify_inclusion(54_321, 100_000, leaves[54_321], proof, r)
    assert merkle.verify_consistency(20_000, 100_000, tree.root(20_000), r, cons)


# --- checkpoints and full-log audit --------------------------------------------------------


def log_root(records: list[dict[str, Any]], n: int) -> str:
    return merkle.root([merkle.record_leaf(r["hash"]) for r in records[:n]]).hex()


def test_checkpoint_sign_verify(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(4, key)
    cp = make_checkpoint(NODE, 4, log_root(records, 4), key, AT)
    assert set(cp) == {"node", "tree_size", "root", "at", "key_id", "sig"}
    verify_checkpoint(cp, key.public_key(), node=NODE)
    verify_checkpoint(json.loads(json.dumps(cp)), key.public_key())
    raw_root = make_checkpoint(NODE, 4, bytes.fromhex(cp["root"]), key, AT)
    assert raw_root == cp  # Ed25519 is deterministic
    for field, value in (("tree_size", 3), ("root", "0" * 64), ("at", "2025"), ("node", "x")):
        with pytest.raises(CheckpointError) as e:
            verify_checkpoint(dict(cp, **{field: value}), key.public_key())
        assert reason(e) == "bad_signature", field
    with pytest.raises(CheckpointError) as e:
        verify_checkpoint(cp, key2.public_key())
    assert reason(e) == "bad_signature"
    forged = make_checkpoint(NODE, 4, cp["root"], key2, AT)
    forged["key_id"] = cp["key_id"]
    with pytest.raises(CheckpointError) as e:
        verify_checkpoint(forged, key.public_key())
    assert reason(e) == "bad_signature"
    with pytest.raises(CheckpointError) as e:
        verify_checkpoint(cp, key.public_key(), node="other")
    assert reason(e) == "wrong_node"
    for bad in (dict(cp, extra=1), dict(cp, tree_size=-1), dict(cp, root="AB"), {"x": 1}):
        with pytest.raises(CheckpointError) as e:
            verify_checkpoint(bad, key.public_key())
        assert reason(e) == "bad_shape"
    # a record signature cannot pass as a checkpoint signature and vice versa
    rec = records[0]
    assert b64decode(rec["sig"]) != b64decode(cp["sig"])


def test_verify_log_ok_with_rotation(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(12, key, rotate_at=5, new_key=key2)
    cps = [
        make_checkpoint(NODE, 0, merkle.EMPTY_ROOT.hex(), key, AT),
        make_checkpoint(NODE, 4, log_root(records, 4), key, AT),
        make_checkpoint(NODE, 5, log_root(records, 5), key2, AT),
        make_checkpoint(NODE, 12, log_root(records, 12), key2, AT),
    ]
    report = verify_log(NODE, records, cps, key.public_key())
    assert report.ok, report.problems
    assert (report.records, report.checkpoints, report.problems) == (12, 4, [])
    wire = json.loads(json.dumps({"r": records, "c": cps}))
    assert verify_log(NODE, wire["r"], wire["c"], key.public_key()).ok


def test_verify_log_reports_problems(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    records = build_log(10, key, rotate_at=6, new_key=key2)
    good_cp = make_checkpoint(NODE, 10, log_root(records, 10), key2, AT)
    tampered = copy.deepcopy(records)
    tampered[2]["event"]["body"]["number"] = "B000"
    report = verify_log(NODE, tampered, [good_cp], key.public_key())
    assert not report.ok
    assert report.problems == ["seq 3: bad_hash: content does not match its hash (record altered)"]

    # a record dropped from the middle: broken chain, and the checkpoint root no longer matches
    report = verify_log(NODE, records[:4] + records[5:], [good_cp], key.public_key())
    assert any(p.startswith("seq 6: broken_chain") for p in report.problems)
    assert any("checkpoint tree_size 10: missing_records" in p for p in report.problems)

    # truncation detected by a checkpoint
    report = verify_log(NODE, records[:8], [good_cp], key.public_key())
    assert report.problems == [
        "checkpoint tree_size 10: missing_records: log holds only 8 records (truncated?)"
    ]

    # a checkpoint whose root disagrees with the log
    wrong = make_checkpoint(NODE, 7, log_root(records, 6), key2, AT)
    report = verify_log(NODE, records, [wrong], key.public_key())
    assert len(report.problems) == 1 and report.problems[0].startswith(
        "checkpoint tree_size 7: bad_root"
    )

    # a checkpoint signed with the retired key after rotation
    stale = make_checkpoint(NODE, 8, log_root(records, 8), key, AT)
    report = verify_log(NODE, records, [stale], key.public_key())
    assert report.problems[0].startswith("checkpoint tree_size 8: bad_signature")

    # record signed by the old key after the rotation, and another node's checkpoint
    bad = records[:7] + [make_record(NODE, event(8), records[6]["hash"], key)]
    other = make_checkpoint("other", 7, log_root(records, 7), key2, AT)
    report = verify_log(NODE, bad, [other], key.public_key())
    assert report.problems[0].startswith("seq 8: bad_signature")
    assert report.problems[1].startswith("checkpoint tree_size 7: wrong_node")

    # wrong initial key: every record fails, the list is capped
    report = verify_log(NODE, records, [], key2.public_key(), max_problems=3)
    assert len(report.problems) == 4 and report.problems[-1].startswith("... and")


def test_verify_log_wrong_node_and_garbage(key: Ed25519PrivateKey) -> None:
    records = build_log(3, key)
    report = verify_log("370102-99", records, [], key.public_key())
    assert not report.ok and all("wrong_node" in p for p in report.problems)
    report = verify_log(NODE, [records[0], {"junk": True}, records[2]], [], key.public_key())  # type: ignore[list-item]
    assert report.problems[0].startswith("record #2: bad_shape")
    assert report.problems[1].startswith("seq 3: broken_chain")


def test_public_key_types_exported() -> None:
    assert isinstance(Ed25519PrivateKey.generate().public_key(), Ed25519PublicKey)
