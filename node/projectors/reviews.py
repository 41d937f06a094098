"""Projectors of the review events (see :mod:`node.projection`): table ``review_tasks``, one
row per department of an accepted case, named by ``task_id`` (the event's entity id)."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.projectors.cases import case_id
from node.projectors.common import Context, changed_one

#: The task state each decision leaves.
DECIDED = {"approve": "approved", "reject": "rejected", "supplement": "supplement"}


def _task_id(ev: dict[str, Any]) -> int:
    return int(ev["body"].get("task_id") or ev["entity_id"])


def _opened(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cid = case_id(conn, b["case_no"])
    position = b.get("position")
    if position is None:  # a record from before positions were carried: tasks open in order
        position = conn.execute(
            "SELECT COUNT(*) FROM review_tasks WHERE case_id = ?", [cid]
        ).fetchone()[0]
    conn.execute(
        "INSERT INTO review_tasks (id, case_id, department, position, state, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?)",
        [_task_id(ev), cid, b["department"], int(position), ev["at"]],
    )


def _decided(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE review_tasks SET state = ?, reason = ?, decided_by = ?, decided_at = ? "
        "WHERE id = ?",
        [DECIDED[b["decision"]], b.get("reason") or None, b["by"], ev["at"], _task_id(ev)],
    )
    changed_one(cur, f"review task {_task_id(ev)}")


def _cancelled(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute("UPDATE review_tasks SET state = 'cancelled' WHERE id = ?", [_task_id(ev)])
    changed_one(cur, f"review task {_task_id(ev)}")


def _reopened(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute(
        "UPDATE review_tasks SET state = 'pending', decided_by = NULL, decided_at = NULL "
        "WHERE id = ?",
        [_task_id(ev)],
    )
    changed_one(cur, f"review task {_task_id(ev)}")


PROJECTORS: dict[str, Any] = {
    "review.opened": _opened,
    "review.decided": _decided,
    "review.cancelled": _cancelled,
    "review.reopened": _reopened,
}
