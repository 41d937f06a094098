"""The Merkle side of a batch: a node's RFC 6962 frontier (:class:`Frontier`, kept in
``nodes.frontier``), the tree of its stored records, and judging a batch's checkpoint
against the hub's copy (:func:`check_checkpoint`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlite_utils

from hub import db as hubdb
from hub.ingest.results import rejection
from sync.chain import ROTATION_KIND, parse_rotation
from sync.checkpoint import check_checkpoint_shape, verify_checkpoint
from sync.errors import BAD_ROOT, BAD_SIGNATURE, CheckpointError
from sync.keys import Ed25519PublicKey
from sync.merkle import EMPTY_ROOT, MerkleTree, node_hash, record_leaf, verify_consistency
from sync.rekey import REKEY_KIND, parse_authorisation


class Frontier:
    """The right edge of a node's RFC 6962 tree: one hash per complete subtree, largest
    first (sizes are the binary digits of the leaf count).  Enough to append leaves and to
    get the root, in O(log n) memory; stored per node in ``nodes.frontier``."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)

    @staticmethod
    def _sizes(n: int) -> list[int]:
        return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]

    def append(self, leaf: bytes) -> None:
        self.hashes.append(leaf)
        self.size += 1
        # Merge equal-sized subtrees: as many as trailing one bits of the old size.
        n = self.size
        while n % 2 == 0:
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            n //= 2

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def dump(self) -> str:
        return json.dumps([h.hex() for h in self.hashes])

    @classmethod
    def load(cls, db: sqlite_utils.Database, node: str, size: int, text: str | None) -> Frontier:
        """The stored frontier if it fits ``size`` records, else rebuilt from the records."""
        try:
            hashes = [bytes.fromhex(h) for h in json.loads(text or "null")]
            if len(hashes) == len(cls._sizes(size)) and all(len(h) == 32 for h in hashes):
                return cls(size, hashes)
        except (ValueError, TypeError):
            pass
        f = cls()
        for (h,) in db.execute(
            "SELECT hash FROM records WHERE node = ? AND seq <= ? ORDER BY seq", [node, size]
        ).fetchall():
            f.append(record_leaf(h))
        if f.size != size:
            raise RuntimeError(f"the hub's copy of node {node} lacks records below seq {size}")
        return f


def stored_tree(db: sqlite_utils.Database, node: str, size: int) -> MerkleTree:
    """The full Merkle tree of the first ``size`` stored records (the slow path)."""
    return MerkleTree(
        record_leaf(h)
        for (h,) in db.execute(
            "SELECT hash FROM records WHERE node = ? AND seq <= ? ORDER BY seq", [node, size]
        ).fetchall()
    )


def check_checkpoint(
    db: sqlite_utils.Database,
    code: str,
    cp: Mapping[str, Any],
    key_for_size: Callable[[int], Ed25519PublicKey | None],
    accepted: Sequence[Mapping[str, Any]],
    ack_seq: int,
    frontier: Frontier,
) -> tuple[str, Any]:
    """Judge a batch's checkpoint: ``("ok", cp)``, ``("ahead", None)``,
    ``("rejected", rejection)`` or ``("fork"|"rollback", message)``.

    ``key_for_size``: the node's key once a number of records are in its log, as the hub
    held it before the batch (:meth:`hub.ingest.batch.NodeKeys.for_size`); the batch's
    ``accepted`` records add their rotations and re-keys."""
    size: int | None = None
    try:
        size = check_checkpoint_shape(cp)
        new_pos = accepted[-1]["seq"] if accepted else ack_seq
        if size > new_pos:  # covers records the hub doesn't hold yet: not judged
            return "ahead", None
        rotations = [
            (int(r["seq"]), parse_rotation(r["event"]))
            if r["event"]["kind"] == ROTATION_KIND
            else (int(r["seq"]), parse_authorisation(r["event"]["body"]).new_key)
            for r in accepted
            if r["event"]["kind"] in (ROTATION_KIND, REKEY_KIND)
        ]
        key = key_for_size(size)
        for from_seq, k in rotations:
            if from_seq <= size:
                key = k
        if key is None:
            raise CheckpointError(BAD_SIGNATURE, "no key known for this tree size", size)
        verify_checkpoint(cp, key, node=code)
    except CheckpointError as e:
        return "rejected", rejection(None, e.reason, e.message, checkpoint=size)
    max_held = (hubdb.one(db, "SELECT max(tree_size) AS m FROM checkpoints WHERE node = ?",
                          [code]) or {}).get("m") or 0  # fmt: skip
    new_root = bytes.fromhex(cp["root"])
    if size >= ack_seq:
        # The usual case: a checkpoint at or after the hub's position; the stored frontier
        # plus this batch's leaves give the root at ``size``.
        f = frontier.copy()
        for r in accepted:
            if r["seq"] > size:
                break
            f.append(record_leaf(r["hash"]))
        actual = f.root()
    else:
        # Below the position: compute from the stored leaves and prove the checkpoint
        # consistent (RFC 9162) with the nearest checkpoints the hub holds.
        tree = stored_tree(db, code, ack_seq)
        actual = tree.root(size)
        if actual == new_root:
            for h in hubdb.rows(
                db,
                "SELECT tree_size, root FROM (SELECT * FROM checkpoints WHERE node = ? AND "
                "tree_size < ? ORDER BY tree_size DESC LIMIT 1) UNION ALL SELECT tree_size, "
                "root FROM (SELECT * FROM checkpoints WHERE node = ? AND tree_size > ? "
                "ORDER BY tree_size LIMIT 1)",
                [code, size, code, size],
            ):
                m, old = int(h["tree_size"]), bytes.fromhex(h["root"])
                if min(m, size) == 0:  # the empty tree is a prefix of every tree
                    continue
                lo, hi, lo_root, hi_root = (m, size, old, new_root) if m < size else (
                    size, m, new_root, old)  # fmt: skip
                if not verify_consistency(lo, hi, lo_root, hi_root,
                                          tree.consistency_proof(lo, hi)):  # fmt: skip
                    kind = "rollback" if size < m else "fork"
                    return kind, (f"checkpoint tree_size {size} is not consistent with the "
                                  f"hub's checkpoint at {m}")  # fmt: skip
    if actual != new_root:
        if size <= ack_seq:
            kind = "rollback" if size < max_held else "fork"
            return kind, (
                f"checkpoint tree_size {size} has root {cp['root'][:16]}… but the hub's copy "
                f"gives {actual.hex()[:16]}…" + (f" (the hub holds a checkpoint at {max_held})"
                                                if kind == "rollback" else "")
            )  # fmt: skip
        return "rejected", rejection(
            None, BAD_ROOT, f"root {cp['root']} but the records give {actual.hex()}",
            checkpoint=size,
        )  # fmt: skip
    return "ok", cp
