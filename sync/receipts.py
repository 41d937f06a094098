"""Ingest receipts: the hub's signed statement of where it stands for a node.

A receipt is ``{"hub": <hub key id>, "node", "seq", "hash", "at", "sig"}``; ``sig`` is the
hub's Ed25519 signature over ``b"onestop-receipt-v1\\n" + canonical(receipt without sig)``.
Nodes keep receipts as proof that the hub held their log up to ``seq``/``hash``, and move
their acknowledged position only on one (:func:`check_receipt`): an answer without a valid
receipt is not an acknowledgement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from sync.canonical import b64decode, b64encode, canonical, is_sha256_hex
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, public_key_id

RECEIPT_SIG_CONTEXT = b"onestop-receipt-v1\n"
RECEIPT_KEYS = frozenset({"hub", "node", "seq", "hash", "at", "sig"})


class ReceiptError(ValueError):
    """A receipt is malformed or not signed by the expected hub key."""


def make_receipt(
    hub_key: Ed25519PrivateKey, node: str, seq: int, hash_hex: str, at: str
) -> dict[str, Any]:
    unsigned = {
        "hub": public_key_id(hub_key.public_key()), "node": node, "seq": seq,
        "hash": hash_hex, "at": at,
    }  # fmt: skip
    sig = hub_key.sign(RECEIPT_SIG_CONTEXT + canonical(unsigned))
    return {**unsigned, "sig": b64encode(sig)}


def verify_receipt(receipt: Mapping[str, Any], hub_public: Ed25519PublicKey) -> None:
    """Raise :class:`ReceiptError` unless ``receipt`` is well formed and signed by ``hub_public``."""
    if not isinstance(receipt, Mapping) or set(receipt) != RECEIPT_KEYS:
        raise ReceiptError(f"a receipt has exactly the fields {sorted(RECEIPT_KEYS)}")
    if type(receipt["seq"]) is not int or receipt["seq"] < 0:
        raise ReceiptError("receipt seq must be an integer >= 0")
    if not is_sha256_hex(receipt["hash"]):
        raise ReceiptError("receipt hash must be 64 lowercase hex characters")
    kid = public_key_id(hub_public)
    if receipt["hub"] != kid:
        raise ReceiptError(f"receipt signed by hub key {receipt['hub']}, expected {kid}")
    unsigned = {k: v for k, v in receipt.items() if k != "sig"}
    try:
        hub_public.verify(b64decode(receipt["sig"]), RECEIPT_SIG_CONTEXT + canonical(unsigned))
    except (ValueError, InvalidSignature):
        raise ReceiptError("receipt signature does not verify") from None


def check_receipt(
    receipt: Any,
    hub_public: Ed25519PublicKey | None,
    node: str,
    seq: int | None = None,
    hash_hex: str | None = None,
) -> dict[str, Any]:
    """``receipt`` if the hub signed it for ``node`` (at ``seq``/``hash_hex`` when given).

    What a node advances its acknowledged position on: raise :class:`ReceiptError` for no
    receipt, no hub key to check it with, a forged one, or one for another node or position.
    """
    if not isinstance(receipt, Mapping):
        raise ReceiptError("no receipt")
    if hub_public is None:
        raise ReceiptError("no hub public key (DIR/hub.pub) to check the receipt with")
    verify_receipt(receipt, hub_public)
    if receipt["node"] != node:
        raise ReceiptError(f"the receipt is for node {receipt['node']}, not {node}")
    if seq is not None and receipt["seq"] != seq:
        raise ReceiptError(f"the receipt is for seq {receipt['seq']}, not {seq}")
    if hash_hex is not None and receipt["hash"] != hash_hex:
        raise ReceiptError(
            f"the receipt names hash {receipt['hash'][:12]}… for seq {receipt['seq']}, "
            f"not {hash_hex[:12]}…"
        )
    return dict(receipt)
