"""Verification errors: each carries a machine-readable reason code and a readable message."""

from __future__ import annotations

# Reason codes for records.
BAD_HASH = "bad_hash"
BAD_SIGNATURE = "bad_signature"
BROKEN_CHAIN = "broken_chain"
BAD_SHAPE = "bad_shape"
WRONG_NODE = "wrong_node"
# Extra reason codes for checkpoints.
BAD_ROOT = "bad_root"
MISSING_RECORDS = "missing_records"

REASONS = frozenset(
    {BAD_HASH, BAD_SIGNATURE, BROKEN_CHAIN, BAD_SHAPE, WRONG_NODE, BAD_ROOT, MISSING_RECORDS}
)


class VerifyError(ValueError):
    """Base class: ``reason`` is one of :data:`REASONS`; ``str(e)`` is ``"<where>: <reason>: <message>"``."""

    def __init__(self, reason: str, message: str, where: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        self.reason = reason
        self.message = message
        self.where = where
        super().__init__(f"{where}: {reason}: {message}" if where else f"{reason}: {message}")


class RecordError(VerifyError):
    """A signed log record failed verification."""

    def __init__(self, reason: str, message: str, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(reason, message, f"seq {seq}" if seq is not None else None)


class CheckpointError(VerifyError):
    """A signed checkpoint failed verification."""

    def __init__(self, reason: str, message: str, tree_size: int | None = None) -> None:
        self.tree_size = tree_size
        where = f"checkpoint tree_size {tree_size}" if tree_size is not None else "checkpoint"
        super().__init__(reason, message, where)
