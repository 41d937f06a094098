"""Every inclusion and consistency probe of the transparency-dev/merkle reference test data
(``tests/vectors/transparency-dev-merkle``), valid and invalid, through ``sync.merkle``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from hub.ingest.readback import stored_checkpoints
from hub.keys import DB
from sync import merkle
from tests import test_hub_support as support

VECTORS = Path(__file__).parent / "vectors" / "transparency-dev-merkle" / "testdata"

# Probes refused here although upstream accepts them, with the reason.
STRICTER = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "its roots are 12 bytes; every hash must be 32"
    ),
}


def _probes(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _name(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _hash(value: str | None) -> bytes:
    return base64.b64decode(value) if value is not None else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [base64.b64decode(h) for h in value or []]


def _want_valid(path: Path, probe: dict[str, Any]) -> bool:
    return not probe["wantErr"] and _name(path) not in STRICTER


def test_vector_set_is_complete() -> None:
    inclusion, consistency = _probes("inclusion"), _probes("consistency")
    assert len(inclusion) == 98 and len(consistency) == 98
    assert all(_name(VECTORS / n) in {_name(p) for p in consistency} for n in STRICTER)
    happy = [p for p in inclusion + consistency if not json.loads(p.read_text())["wantErr"]]
    assert len(happy) == 12  # 5 + 1 single-entry inclusion, 5 + 1 additional consistency


@pytest.mark.parametrize("path", _probes("inclusion"), ids=_name)
def test_inclusion_vector(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (probe["leafIdx"], probe["treeSize"], _hash(probe["leafHash"]), _proof(probe["proof"]))
    got = merkle.verify_inclusion(*args, _hash(probe["root"]))
    assert got is _want_valid(path, probe), probe["desc"]
    if got:
        assert merkle.root_from_inclusion(*args) == _hash(probe["root"])


@pytest.mark.parametrize("path", _probes("consistency"), ids=_name)
def test_consistency_vector(path: Path) -> None:
    probe = json.loads(path.read_text())
    got = merkle.verify_consistency(
        probe["size1"], probe["size2"], _hash(probe["root1"]), _hash(probe["root2"]),
        _proof(probe["proof"]),
    )  # fmt: skip
    assert got is _want_valid(path, probe), probe["desc"]


def test_happy_paths_match_the_proofs_this_library_builds() -> None:
    """The reference's valid proofs are the ones ``MerkleTree`` computes for the same leaves
    (the six RFC 6962 test leaves), so both sides agree on the proof layout, not only on
    accept/refuse."""
    leaves = [
        merkle.leaf_hash(bytes.fromhex(h))
        for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                  "606162636465666768696a6b6c6d6e6f"]
    ]  # fmt: skip
    tree = merkle.MerkleTree(leaves)
    for path in _probes("inclusion"):
        probe = json.loads(path.read_text())
        if probe["wantErr"] or path.parent.name == "single-entry":
            continue
        idx, size = probe["leafIdx"], probe["treeSize"]
        assert tree.inclusion_proof(idx, size) == _proof(probe["proof"])
        assert tree.root(size) == _hash(probe["root"])
    for path in _probes("consistency"):
        probe = json.loads(path.read_text())
        if probe["wantErr"] or path.parent.name == "additional":
            continue
        m, n = probe["size1"], probe["size2"]
        assert tree.consistency_proof(m, n) == _proof(probe["proof"])
        assert (tree.root(m), tree.root(n)) == (_hash(probe["root1"]), _hash(probe["root2"]))


# Edge cases of the issue, spelled out.


def test_consistency_from_the_empty_tree_is_refused() -> None:
    some = merkle.leaf_hash(b"x")
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, some, [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, some, [some])


def test_equal_sizes_need_equal_32_byte_roots_and_no_proof() -> None:
    e, x = merkle.EMPTY_ROOT, merkle.leaf_hash(b"x")
    assert merkle.verify_consistency(0, 0, e, e, [])
    assert not merkle.verify_consistency(0, 0, e, x, [])
    assert not merkle.verify_consistency(0, 0, x, x, [])  # the empty tree's root is fixed
    assert not merkle.verify_consistency(0, 0, e, e, [e])
    assert merkle.verify_consistency(3, 3, x, x, [])
    assert not merkle.verify_consistency(3, 3, x, e, [])
    assert not merkle.verify_consistency(3, 3, x, x, [x])
    assert not merkle.verify_consistency(3, 3, b"", b"", [])
    assert not merkle.verify_consistency(3, 3, b"short", b"short", [])


def test_hashes_must_be_32_bytes() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(0, 1, leaf, [], leaf)
    assert not merkle.verify_inclusion(0, 1, b"", [], b"")
    assert not merkle.verify_inclusion(0, 1, leaf + b"\0", [], leaf + b"\0")
    assert merkle.root_from_inclusion(0, 1, b"", []) is None
    tree = merkle.MerkleTree([merkle.leaf_hash(bytes([i])) for i in range(5)])
    proof = tree.inclusion_proof(2)
    assert merkle.verify_inclusion(2, 5, tree._levels[0][2], proof, tree.root())
    assert not merkle.verify_inclusion(2, 5, tree._levels[0][2], [*proof[:-1], b""], tree.root())
    cons = tree.consistency_proof(3)
    assert merkle.verify_consistency(3, 5, tree.root(3), tree.root(), cons)
    assert not merkle.verify_consistency(3, 5, tree.root(3), tree.root(), [*cons, b""])


def test_negative_sizes_and_indices_are_refused() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert not merkle.verify_inclusion(-1, 1, leaf, [], leaf)
    assert not merkle.verify_inclusion(0, -1, leaf, [], leaf)
    assert not merkle.verify_inclusion(1, 1, leaf, [], leaf)
    assert not merkle.verify_consistency(-1, -1, leaf, leaf, [])
    assert not merkle.verify_consistency(-2, 1, leaf, leaf, [leaf])


# The hub judges a checkpoint below its position against the nearest checkpoints it holds;
# one it holds at size 0 says nothing about any later tree and must not raise an alarm.

hub_client = support.hub_client
hub_dir = support.hub_dir


async def test_hub_holding_a_size_zero_checkpoint_judges_later_ones(
    hub_client: Any, hub_dir: Path
) -> None:
    log = support.NodeLog(support.TOWNSHIP)
    log.extend(6)
    support.enroll(hub_dir, log)
    code = support.TOWNSHIP
    empty = {"node": code, "records": [], "checkpoint": log.checkpoint(0)}
    [res] = await support.push_ok(hub_client, support.envelope(code, empty))
    assert res["alert"] is None and res["rejected"] == [], res
    await support.push_ok(hub_client, support.envelope(code, log.batch(1, 6)))
    for size in (0, 3):
        below = {"node": code, "records": [], "checkpoint": log.checkpoint(size)}
        [res] = await support.push_ok(hub_client, support.envelope(code, below))
        assert res["alert"] is None and res["rejected"] == [], (size, res)
    held = [c["tree_size"] for c in stored_checkpoints(hub_client.app[DB], code)]
    assert held == [0, 3, 6]
    # A different history at 3 is still caught, against the checkpoint held at 6.
    other = support.NodeLog(code, key=log.key)
    other.extend(3, body=support.ticket_body(1, "area:agri", "C"))
    fork = {"node": code, "records": [], "checkpoint": other.checkpoint()}
    [res] = await support.push_ok(hub_client, support.envelope(code, fork))
    assert res["alert"] == "rollback"
