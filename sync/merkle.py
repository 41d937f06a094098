"""RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and consistency proofs.

Leaves passed to :func:`root`, the proof functions and :class:`MerkleTree` are *leaf hashes*
(:func:`leaf_hash` of the leaf data).  For the signed log the leaf data of a record is
``bytes.fromhex(record["hash"])``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def record_leaf(record_hash_hex: str) -> bytes:
    """Leaf hash of a signed record, given its ``hash`` field."""
    return leaf_hash(bytes.fromhex(record_hash_hex))


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of a list of leaf hashes (an odd node is carried up unchanged,
    which yields exactly RFC 6962's split at the largest power of two below n)."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class MerkleTree:
    """Append-only tree keeping every complete power-of-two subtree hash.

    ``append`` is amortised O(1) hashes; ``root(n)`` for any n <= size is O(log n);
    proofs are O(log^2 n).
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        # _levels[k][i] = hash of the complete subtree over leaves [i * 2**k, (i + 1) * 2**k).
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaves)

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash; return its index."""
        if len(leaf) != 32:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0].append(leaf)
        k = 0
        while len(levels[k]) % 2 == 0:
            if len(levels) == k + 1:
                levels.append([])
            row = levels[k]
            levels[k + 1].append(node_hash(row[-2], row[-1]))
            k += 1
        return len(levels[0]) - 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def _size(self, n: int | None) -> int:
        size = len(self) if n is None else n
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} out of range 0..{len(self)}")
        return size

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi), where lo is aligned as in every RFC 6962 subtree."""
        if lo == hi:
            return EMPTY_ROOT
        parts: list[bytes] = []
        while lo < hi:
            size = 1 << ((hi - lo).bit_length() - 1)
            assert lo % size == 0, "unaligned subtree"
            parts.append(self._levels[size.bit_length() - 1][lo // size])
            lo += size
        acc = parts[-1]
        for h in reversed(parts[:-1]):
            acc = node_hash(h, acc)
        return acc

    def root(self, n: int | None = None) -> bytes:
        """Root of the first ``n`` leaves (default: all)."""
        return self._range(0, self._size(n))

    def inclusion_proof(self, index: int, n: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:n]), leaf-side first."""
        size = self._size(n)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} out of range for tree size {size}")
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(m, D[0:n]); empty when m is 0 or m == n."""
        size = self._size(n)
        if not 0 <= m <= size:
            raise ValueError(f"old size {m} out of range 0..{size}")
        if m in (0, size):
            return []
        proof: list[bytes] = []
        lo, hi, complete = 0, size, True
        while m != hi:
            k = _split(hi - lo)
            if m - lo <= k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo += k
                complete = False
        if not complete:
            proof.append(self._range(lo, hi))
        proof.reverse()
        return proof


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    return MerkleTree(leaves).inclusion_proof(index)


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return MerkleTree(leaves).consistency_proof(m)


HASH_SIZE = 32


def _hashes_ok(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """Root implied by an inclusion proof (RFC 9162 2.1.3.2), or None if the proof is malformed.

    Malformed: ``index`` outside ``0 <= index < tree_size``, a leaf or proof hash that is not
    32 bytes, or a proof of the wrong length for ``index`` and ``tree_size``.
    """
    if not 0 <= index < tree_size or not _hashes_ok(leaf, *proof):
        return None
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """True if ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree with ``root_hash``."""
    if not _hashes_ok(root_hash):
        return False
    return root_from_inclusion(index, tree_size, leaf, proof) == root_hash


def verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the size-``n`` tree an append-only extension of the size-``m`` one?

    Every hash must be 32 bytes.  For ``m == n`` the proof must be empty and the roots equal
    (both the empty-tree hash when ``m == n == 0``).  A proof from the empty tree (``m == 0 <
    n``) proves nothing and is refused, as RFC 9162 defines PROOF(m, D[n]) only for
    ``0 < m < n``: the empty tree is a prefix of every tree, so a caller has nothing to check.
    """
    if not 0 <= m <= n or not _hashes_ok(old_root, new_root, *proof):
        return False
    if m == n:
        return not proof and old_root == new_root and (m > 0 or old_root == EMPTY_ROOT)
    if m == 0 or not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# Signed checkpoints live in sync.checkpoint; re-exported here for convenience.
from sync.checkpoint import make_checkpoint, verify_checkpoint  # noqa: E402

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "make_checkpoint",
    "node_hash",
    "record_leaf",
    "root",
    "root_from_inclusion",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
