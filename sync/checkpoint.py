"""Signed checkpoints: a node's commitment to the Merkle root of its first ``tree_size`` records.

Format: ``{"node", "tree_size", "root" (64 hex), "at", "key_id", "sig"}``; ``sig`` is Ed25519
over ``CHECKPOINT_SIG_CONTEXT + canonical(<all fields but sig>)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from onestop.clock import utcnow
from sync.canonical import b64decode, b64encode, canonical, is_sha256_hex
from sync.errors import BAD_SHAPE, BAD_SIGNATURE, WRONG_NODE, CheckpointError
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, public_key_id

CHECKPOINT_SIG_CONTEXT = b"onestop-checkpoint-v1\n"
CHECKPOINT_KEYS = frozenset({"node", "tree_size", "root", "at", "key_id", "sig"})


def make_checkpoint(
    node_code: str,
    tree_size: int,
    root_hex: str | bytes,
    private_key: Ed25519PrivateKey,
    at: str | None = None,
) -> dict[str, Any]:
    """Sign a checkpoint (``root_hex`` may also be the raw 32-byte root)."""
    root = root_hex.hex() if isinstance(root_hex, bytes) else root_hex
    if type(tree_size) is not int or tree_size < 0 or not is_sha256_hex(root):
        raise CheckpointError(BAD_SHAPE, "need tree_size >= 0 and a 64-hex root", None)
    unsigned = {
        "node": node_code, "tree_size": tree_size, "root": root, "at": at or utcnow(),
        "key_id": public_key_id(private_key.public_key()),
    }  # fmt: skip
    sig = private_key.sign(CHECKPOINT_SIG_CONTEXT + canonical(unsigned))
    return {**unsigned, "sig": b64encode(sig)}


def check_checkpoint_shape(cp: object) -> int:
    """Check field names and types; return tree_size or raise ``bad_shape``."""
    if not isinstance(cp, Mapping):
        raise CheckpointError(BAD_SHAPE, "checkpoint must be a JSON object")
    size = cp.get("tree_size")
    if type(size) is not int or size < 0:
        raise CheckpointError(BAD_SHAPE, f"tree_size must be an integer >= 0, got {size!r}")
    if set(cp) != CHECKPOINT_KEYS:
        raise CheckpointError(BAD_SHAPE, f"fields must be exactly {sorted(CHECKPOINT_KEYS)}", size)
    if not is_sha256_hex(cp["root"]):
        raise CheckpointError(BAD_SHAPE, "root must be 64 lowercase hex characters", size)
    for k in ("node", "at", "key_id", "sig"):
        if not isinstance(cp[k], str) or not cp[k]:
            raise CheckpointError(BAD_SHAPE, f"{k} must be a non-empty string", size)
    return size


def verify_checkpoint(
    cp: Mapping[str, Any], public_key: Ed25519PublicKey, *, node: str | None = None
) -> None:
    """Raise :class:`CheckpointError` unless ``cp`` is well formed and signed by ``public_key``."""
    size = check_checkpoint_shape(cp)
    if node is not None and cp["node"] != node:
        raise CheckpointError(
            WRONG_NODE, f"checkpoint is from node {cp['node']!r}, expected {node!r}", size
        )
    kid = public_key_id(public_key)
    if cp["key_id"] != kid:
        raise CheckpointError(
            BAD_SIGNATURE, f"signed with key {cp['key_id']}, expected key {kid}", size
        )
    unsigned = {k: v for k, v in cp.items() if k != "sig"}
    try:
        public_key.verify(b64decode(cp["sig"]), CHECKPOINT_SIG_CONTEXT + canonical(unsigned))
    except (ValueError, InvalidSignature):
        raise CheckpointError(
            BAD_SIGNATURE, f"signature does not verify with key {kid}", size
        ) from None
