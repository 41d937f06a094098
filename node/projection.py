"""Every node table is a projection of the signed log.

A state change is an event (:func:`node.events.append`); the tables follow from the events
alone.  :data:`PROJECTORS` holds one projector per event kind, ``fn(conn, event, ctx)``, and
the same projector runs when the event is written (inside the writer's transaction, right
after the signed record) and when it is replayed: by ``onestop node rebuild``
(:mod:`node.rebuild`) into a fresh database, and by ``onestop node restore`` for the records
the hub sends back (:mod:`node.restore`).  A projector reads only the event and the tables
the earlier events made, so replaying a log gives the same rows as living it.

Personal data is the one thing an event cannot carry in the clear: the projector gets it from
its :class:`Context`.  The writer passes the numbers it was given (:class:`Personal`); a
replay opens the event's ``*_recovery`` values with the node's recovery key
(:mod:`node.recovery`) when it has it.  Either way the table stores them Fernet-encrypted
with the node's local secret, as before; without either, the ``*_enc`` column stays empty
and the masks and keyed hashes (carried by the event) still show and link the person.

Tables outside the projection, by design: ``meta`` (settings and key registry), the log
itself (``events``, ``checkpoints``) and replication state (``sync_state``, ``receipts``,
``sync_rejections``, ``relay_*``), which describe the log rather than the service.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from node.projectors import (
    appointments,
    cases,
    catalog,
    ratings,
    reviews,
    sms,
    tickets,
    users,
    windows,
)
from node.projectors.common import Context, Personal, ProjectionError

#: The tables the log projects, in an order that satisfies their foreign keys.
TABLES = (
    "departments",
    "areas",
    "items",
    "queues",
    "windows",
    "users",
    "preapplications",
    "tickets",
    "appointments",
    "cases",
    "case_materials",
    "case_files",
    "case_visits",
    "review_tasks",
    "sms_outbox",
    "ratings",
    "followups",
)


__all__ = ["LOG_ONLY", "PROJECTORS", "TABLES", "Context", "Personal", "ProjectionError", "apply"]

Projector = Callable[[sqlite3.Connection, dict[str, Any], Context], None]


PROJECTORS: dict[str, Projector] = {
    **catalog.PROJECTORS,
    **windows.PROJECTORS,
    **users.PROJECTORS,
    **tickets.PROJECTORS,
    **appointments.PROJECTORS,
    **cases.PROJECTORS,
    **reviews.PROJECTORS,
    **sms.PROJECTORS,
    **ratings.PROJECTORS,
}

#: Kinds that change no table (they are the record of something seen or done outside).
LOG_ONLY = frozenset(
    {
        "case.identity_viewed",
        "case.notice_issued",
        "node.restored",
        "key.rotated",
        "node.rekeyed",
    }
)


def apply(conn: sqlite3.Connection, event: dict[str, Any], ctx: Context) -> bool:
    """Apply one event to the tables; False if its kind changes none."""
    fn = PROJECTORS.get(str(event["kind"]))
    if fn is None:
        return False
    fn(conn, event, ctx)
    return True
