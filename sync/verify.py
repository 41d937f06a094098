"""Whole-log audit: records, chain, key rotations and checkpoints against the Merkle tree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.canonical import is_sha256_hex
from sync.chain import ChainVerifier, KeySource
from sync.checkpoint import check_checkpoint_shape, verify_checkpoint
from sync.errors import BAD_ROOT, BAD_SIGNATURE, MISSING_RECORDS, CheckpointError, VerifyError
from sync.keys import Ed25519PublicKey
from sync.merkle import MerkleTree, leaf_hash, record_leaf


@dataclass
class VerifyReport:
    ok: bool
    records: int
    checkpoints: int
    problems: list[str] = field(default_factory=list)


def _leaf(record: object) -> bytes:
    h = record.get("hash") if isinstance(record, Mapping) else None
    # A malformed hash is already reported; a placeholder keeps later indexes aligned.
    return record_leaf(h) if is_sha256_hex(h) else leaf_hash(b"malformed")


def _check_checkpoint(
    cp: Mapping[str, Any], node_code: str, chain: ChainVerifier, tree: MerkleTree
) -> None:
    size = check_checkpoint_shape(cp)
    if size > len(tree):
        raise CheckpointError(
            MISSING_RECORDS, f"log holds only {len(tree)} records (truncated?)", size
        )
    key = chain.key_for_size(size) or chain.lookup(cp["key_id"])
    if key is None:
        raise CheckpointError(BAD_SIGNATURE, f"unknown key {cp['key_id']}", size)
    verify_checkpoint(cp, key, node=node_code)
    actual = tree.root(size).hex()
    if cp["root"] != actual:
        raise CheckpointError(BAD_ROOT, f"root {cp['root']} but the log gives {actual}", size)


def verify_log(
    node_code: str,
    records: Sequence[Mapping[str, Any]],
    checkpoints: Sequence[Mapping[str, Any]],
    public_key: KeySource,
    *,
    max_problems: int = 100,
    hub_key: Ed25519PublicKey | None = None,
) -> VerifyReport:
    """Audit a node's full log (from seq 1) and its checkpoints; never raises for bad input.

    ``public_key`` is the node's initial key (or a key-id lookup); rotations found in the log
    are followed, and re-keys whose authorisation verifies with ``hub_key`` (without it a
    ``node.rekeyed`` record is a problem).  A checkpoint must be signed by the key current after its ``tree_size``-th
    record, and its root must equal the Merkle root of the first ``tree_size`` record hashes.
    """
    problems: list[str] = []
    chain = ChainVerifier(public_key, node=node_code, hub_key=hub_key)
    tree = MerkleTree()
    for index, record in enumerate(records):
        try:
            chain.check(record)
        except VerifyError as e:  # a record too malformed to have a seq is named by position
            problems.append(str(e) if e.where else f"record #{index + 1}: {e}")
            chain.skip(record)
        tree.append(_leaf(record))
    for cp in checkpoints:
        try:
            _check_checkpoint(cp, node_code, chain, tree)
        except VerifyError as e:
            problems.append(str(e))
    if len(problems) > max_problems:
        extra = len(problems) - max_problems
        problems = problems[:max_problems] + [f"... and {extra} more problems"]
    return VerifyReport(not problems, len(records), len(checkpoints), problems)
