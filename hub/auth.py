"""Which node signed a request to the hub (:mod:`sync.requests`), against the node registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlite_utils
from aiohttp import web

from hub import db as hubdb
from hub import rekeys
from onestop.errors import Forbidden
from sync.keys import Ed25519PublicKey
from sync.requests import KeyLookup, ReplayCache, verify_signed

# The nonces of the signed requests this hub accepted lately (set by ``hub.app``).
REPLAYS = web.AppKey("replays", ReplayCache)


def not_enrolled(node: str) -> Forbidden:
    return Forbidden(f"node {node} is not enrolled at this hub", code="unknown_node",
                     hint=f"on the hub: onestop hub enroll --data DIR --code {node} "
                     "--pubkey node.pub")  # fmt: skip


def verify_request(
    db: sqlite_utils.Database,
    headers: Mapping[str, str],
    method: str,
    target: str,
    body_hash: str,
    now: dt.datetime,
    max_skew_seconds: int,
    replays: ReplayCache,
    announced: KeyLookup | None = None,
) -> str:
    """The enrolled, active node that signed this request; raise 401/403 otherwise.

    ``target`` is the request target as received (``request.raw_path``: path and query),
    ``body_hash`` the SHA-256 of the body as read (:func:`sync.requests.body_sha256`).
    ``announced(node)`` may give further keys of the node: new keys announced by
    ``key.rotated`` records in the request that verify from the hub's position.  A node with
    a pending re-key (:mod:`hub.rekeys`) signs with its new key; the replaced one is refused.
    """

    def enrolled(node: str) -> list[Ed25519PublicKey]:
        row = hubdb.one(db, "SELECT status, cur_key FROM nodes WHERE code = ?", [node])
        if row is None:
            raise not_enrolled(node)
        if row["status"] != "active":
            raise Forbidden(f"node {node}'s key was revoked", code="revoked_key")
        return rekeys.request_keys(db, node, row["cur_key"])

    return verify_signed(headers, method, target, body_hash, now, max_skew_seconds, enrolled,
                         replays, announced)  # fmt: skip
