"""Alerts: what an operator must look at, raised by ingest, bounded however many arrive.

Every alert has a *source*: who is behind what it says.

- ``node:CODE``: a node proved it, by a request signed with its key or by records it signed
  (a fork is proven by the node's own signature, whoever carried the records).
- ``addr:ADDRESS``: an unverified request (unsigned, or signed by a node the hub cannot check:
  unknown or revoked), from that client address (an IPv6 address by its /64).

An open alert with the same node, kind, source and message is counted again (``count``,
``last_at``) instead of repeated; a source has at most :data:`OPEN_PER_SOURCE` open alerts of
a kind, and unverified sources together at most :data:`OPEN_UNVERIFIED` of a kind: past
these, repeats are counted on the newest open alert of the group.  Messages are cut to
:data:`MESSAGE_MAX` characters.  So a flood of bad pushes costs a bounded number of rows.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlite_utils

from hub import db as hubdb

MESSAGE_MAX = 500  # characters of an alert message (and of a node's last_error)
OPEN_PER_SOURCE = 20  # open alerts of one kind from one source
OPEN_UNVERIFIED = 200  # open alerts of one kind from all unverified sources together
UNVERIFIED = "addr:"


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verified(node: str) -> str:
    """The source of what node ``node`` proved (its signed request or records)."""
    return f"node:{node}"


def unverified(remote: str | None) -> str:
    """The source of an unverified request from client address ``remote``."""
    try:
        ip = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return UNVERIFIED + "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return UNVERIFIED + str(ip.ipv4_mapped)
        return UNVERIFIED + str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return UNVERIFIED + str(ip)


def raise_alert(
    db: sqlite_utils.Database, node: str, kind: str, message: str, now: str, source: str = ""
) -> None:
    """Open an alert, or count a repeat on an open one (see the module's bounds)."""
    if kind not in hubdb.ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    source = clip(source, 80)
    if source.startswith(UNVERIFIED):
        message = f"{message} (unverified request from {source.removeprefix(UNVERIFIED)})"
    message = clip(message)
    node = clip(node, 12)
    with hubdb.tx(db):
        row = hubdb.one(
            db,
            "SELECT id FROM alerts WHERE resolved = 0 AND node = ? AND kind = ? AND source = ? "
            "AND message = ?",
            [node, kind, source, message],
        )
        if row is None:
            row = _over_cap(db, kind, source)
        if row is not None:
            db.execute(
                "UPDATE alerts SET count = count + 1, last_at = ? WHERE id = ?", [now, row["id"]]
            )
        else:
            db.execute(
                "INSERT INTO alerts (node, kind, message, at, last_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [node, kind, message, now, now, source],
            )


def _over_cap(db: sqlite_utils.Database, kind: str, source: str) -> dict[str, Any] | None:
    """The open alert to count a new one on when its group is full, else None."""
    groups: list[tuple[str, list[str], int]] = [("source = ?", [source], OPEN_PER_SOURCE)]
    if source.startswith(UNVERIFIED):
        groups.append(("source >= ? AND source < ?", [UNVERIFIED, "addr;"], OPEN_UNVERIFIED))
    for where, params, cap in groups:
        n = hubdb.one(
            db,
            f"SELECT count(*) AS n FROM alerts WHERE resolved = 0 AND kind = ? AND {where}",
            [kind, *params],
        )
        if n is not None and n["n"] >= cap:
            return hubdb.one(
                db,
                f"SELECT id FROM alerts WHERE resolved = 0 AND kind = ? AND {where} "
                "ORDER BY last_at DESC, id DESC LIMIT 1",
                [kind, *params],
            )
    return None
