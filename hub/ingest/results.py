"""What the hub answers for one node's batch: the reason codes it adds to those of
``sync/errors.py``, a rejection, and :class:`BatchResult` (one entry of a push's
``results``, ``docs/sync-protocol.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reason codes the hub adds to those of sync/errors.py.
UNKNOWN_NODE = "unknown_node"
REVOKED_KEY = "revoked_key"
BAD_SCHEMA = "bad_schema"
NOT_RELAY = "not_relay"  # a batch relayed by another node than the one registered for it


@dataclass
class BatchResult:
    node: str
    ack_seq: int | None
    ack_hash: str | None
    receipt: dict[str, Any] | None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    alert: str | None = None
    stored: int = 0
    duplicates: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "node": self.node, "ack_seq": self.ack_seq, "ack_hash": self.ack_hash,
            "receipt": self.receipt, "rejected": self.rejected, "alert": self.alert,
            "stored": self.stored, "duplicates": self.duplicates,
        }  # fmt: skip


def rejection(seq: int | None, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of a batch's ``rejected``: the record (or checkpoint) and why."""
    return {"seq": seq, "reason": reason, "message": message, **extra}
