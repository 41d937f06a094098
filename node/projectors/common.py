"""Helpers shared by the projector modules."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from node.pii import Pii
from sync import sealing


class ProjectionError(ValueError):
    """An event that cannot be applied to the tables (it names what is missing)."""


def window_id(conn: sqlite3.Connection, number: Any) -> int | None:
    """The id of the window numbered ``number`` (events name windows by number)."""
    if number is None:
        return None
    row = conn.execute("SELECT id FROM windows WHERE number = ?", [number]).fetchone()
    return int(row[0]) if row else None


def changed_one(cur: sqlite3.Cursor, what: str) -> None:
    if cur.rowcount != 1:
        raise ProjectionError(f"{what} is not in the tables")


@dataclass(frozen=True)
class Personal:
    """What the writer knows in the clear for one event: ``values`` by field (``id``,
    ``phone``, ``to``), encrypted into the tables with ``pii``."""

    pii: Pii | None
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """What a projector may use besides the event and the tables."""

    pii: Pii | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    recovery: sealing.X25519PrivateKey | None = None
    replay: bool = False

    @classmethod
    def live(cls, personal: Personal | None) -> Context:
        if personal is None:
            return cls()
        return cls(pii=personal.pii, values=personal.values)

    def plain(self, body: Mapping[str, Any], name: str) -> str | None:
        """The clear value of ``name`` (``id``, ``phone``, ``to``): the writer's, else the
        event's ``<name>_recovery`` opened with the recovery key, else None."""
        if name in self.values:
            return self.values[name]
        sealed = body.get(f"{name}_recovery")
        if sealed and self.recovery is not None:
            try:
                return sealing.unseal(self.recovery, str(sealed)).decode("utf-8")
            except (sealing.SealError, ValueError):
                return None
        return None

    def encrypted(self, body: Mapping[str, Any], name: str) -> str:
        """``name`` encrypted for the ``*_enc`` column, or '' when unknown."""
        value = self.plain(body, name)
        if value is None or self.pii is None:
            return ""
        return self.pii.encrypt(value)
