"""Signed requests from nodes (``X-Onestop-Node``, ``X-Onestop-Time``, ``X-Onestop-Sig``).

The signature is Ed25519 with the node's current key over::

    b"onestop-request-v1\\n" + METHOD + TARGET + TIME

``METHOD`` is upper case, ``TARGET`` the request target as sent (path, plus ``?query`` when
there is one; a signature over the path alone is also accepted), ``TIME`` the
``X-Onestop-Time`` value verbatim (RFC 3339, e.g. ``2026-11-29T10:00:00.000Z``, or Unix
seconds), which must be within ``request_max_skew_seconds`` of the hub's clock.
:func:`sign_request` builds the headers (nodes import it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import sqlite_utils
from cryptography.exceptions import InvalidSignature

from hub import db as hubdb
from onestop.errors import Forbidden, Unauthorized
from sync.canonical import b64decode, b64encode
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, public_from_raw_b64

REQUEST_SIG_CONTEXT = b"onestop-request-v1\n"
H_NODE, H_TIME, H_SIG = "X-Onestop-Node", "X-Onestop-Time", "X-Onestop-Sig"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_message(method: str, target: str, time: str) -> bytes:
    return REQUEST_SIG_CONTEXT + method.upper().encode() + target.encode() + time.encode()


def sign_request(
    private_key: Ed25519PrivateKey,
    node: str,
    method: str,
    target: str,
    time: str | dt.datetime | None = None,
) -> dict[str, str]:
    """Headers for a request to the hub signed by ``node``'s key."""
    if time is None:
        time = dt.datetime.now(dt.UTC)
    t = _iso(time) if isinstance(time, dt.datetime) else time
    sig = private_key.sign(request_message(method, target, t))
    return {H_NODE: node, H_TIME: t, H_SIG: b64encode(sig)}


def parse_time(value: str) -> dt.datetime | None:
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.UTC)
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return t if t.tzinfo is not None else None


HINT = "sign the request with the node key: headers X-Onestop-Node, X-Onestop-Time, X-Onestop-Sig"


def verify_request(
    db: sqlite_utils.Database,
    headers: Mapping[str, str],
    method: str,
    target: str,
    now: dt.datetime,
    max_skew_seconds: int,
    announced: Callable[[str], Sequence[Ed25519PublicKey]] | None = None,
) -> str:
    """The enrolled, active node that signed this request; raise 401/403 otherwise.

    ``announced(node)`` may give further keys of the node: new keys announced by
    ``key.rotated`` records in the request that verify from the hub's position.
    """
    node, time, sig = headers.get(H_NODE), headers.get(H_TIME), headers.get(H_SIG)
    if not node or not time or not sig:
        missing = [h for h, v in ((H_NODE, node), (H_TIME, time), (H_SIG, sig)) if not v]
        raise Unauthorized(f"signed request required; missing {', '.join(missing)}", hint=HINT)
    row = hubdb.one(db, "SELECT status, cur_key FROM nodes WHERE code = ?", [node])
    if row is None:
        raise Forbidden(f"node {node} is not enrolled at this hub", code="unknown_node",
                        hint=f"on the hub: onestop hub enroll --data DIR --code {node} "
                        "--pubkey node.pub")  # fmt: skip
    if row["status"] != "active":
        raise Forbidden(f"node {node}'s key was revoked", code="revoked_key")
    t = parse_time(time)
    if t is None:
        raise Unauthorized(f"{H_TIME} must be an RFC 3339 time with a zone or Unix seconds")
    skew = abs((now - t).total_seconds())
    if skew > max_skew_seconds:
        raise Unauthorized(
            f"{H_TIME} is {int(skew)} s away from the hub's clock (limit {max_skew_seconds} s)",
            hint="check the node's clock (NTP)",
        )
    try:
        raw = b64decode(sig)
    except ValueError:
        raise Unauthorized(f"{H_SIG} is not base64", hint=HINT) from None
    path = target.split("?", 1)[0]

    def verifies(key: Ed25519PublicKey) -> bool:
        for candidate in dict.fromkeys((target, path)):
            try:
                key.verify(raw, request_message(method, candidate, time))
                return True
            except InvalidSignature:
                continue
        return False

    if verifies(public_from_raw_b64(row["cur_key"])):
        return node
    # A node that just rotated signs with its new key before the hub has seen the key.rotated
    # record; the caller may offer keys announced by verified records of this very request.
    if announced is not None and any(verifies(k) for k in announced(node)):
        return node
    raise Unauthorized(f"request signature does not verify with node {node}'s key", hint=HINT)
