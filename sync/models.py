"""Models of the sync protocol's request bodies, for the node's and the hub's OpenAPI documents.

The push body is parsed by the ingest fast path (``hub.ingest.parse_push``, ``node.replication.relay``),
not by these models: they only describe the wire shape of ``docs/sync-protocol.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Batch(BaseModel):
    node: str = Field(description="the node whose records these are", examples=["370102001"])
    records: list[dict[str, Any]] = Field(description="signed records in seq order")
    checkpoint: dict[str, Any] | None = Field(None, description="a signed checkpoint")


class Envelope(BaseModel):
    """A push: the sender's own batch, and the batches of the nodes it relays for."""

    node: str = Field(description="the node that sends (and signs) the push")
    batches: list[Batch]
    backlog: int | None = Field(None, description="records the sender still has to send")
    sent_at: str | None = None
