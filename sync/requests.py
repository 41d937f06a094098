"""Signed requests from nodes (``X-Onestop-Node``, ``X-Onestop-Time``, ``X-Onestop-Sig``).

The signature is Ed25519 with the node's current key over::

    b"onestop-request-v1\\n" + METHOD + TARGET + TIME

``METHOD`` is upper case, ``TARGET`` the request target as sent (path, plus ``?query`` when
there is one; a signature over the path alone is also accepted), ``TIME`` the
``X-Onestop-Time`` value verbatim (RFC 3339, e.g. ``2026-11-29T10:00:00.000Z``, or Unix
seconds), which must be within the receiver's allowed clock skew.  :func:`sign_request` builds
the headers (nodes); :func:`verify_signed` checks them (the hub, and a relay for its townships).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature

from onestop.clock import iso, system_now
from onestop.errors import Unauthorized
from sync.canonical import b64decode, b64encode
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey

REQUEST_SIG_CONTEXT = b"onestop-request-v1\n"
H_NODE, H_TIME, H_SIG = "X-Onestop-Node", "X-Onestop-Time", "X-Onestop-Sig"
HINT = "sign the request with the node key: headers X-Onestop-Node, X-Onestop-Time, X-Onestop-Sig"

KeyLookup = Callable[[str], Sequence[Ed25519PublicKey]]


def request_message(method: str, target: str, time: str) -> bytes:
    return REQUEST_SIG_CONTEXT + method.upper().encode() + target.encode() + time.encode()


def sign_request(
    private_key: Ed25519PrivateKey,
    node: str,
    method: str,
    target: str,
    time: str | dt.datetime | None = None,
) -> dict[str, str]:
    """Headers for a request signed by ``node``'s key (at ``time``, default now)."""
    if time is None:
        time = system_now()
    t = iso(time) if isinstance(time, dt.datetime) else time
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


def verify_signed(
    headers: Mapping[str, str],
    method: str,
    target: str,
    now: dt.datetime,
    max_skew_seconds: int,
    keys: KeyLookup,
    more_keys: KeyLookup | None = None,
    clock_of: str = "the hub's clock",
) -> str:
    """The node that signed this request; raise 401 (or what ``keys`` raises) otherwise.

    ``keys(node)`` gives the keys the receiver holds for the node and raises (403) when it
    does not know the node; ``more_keys(node)``, tried only when those fail, may give keys
    announced in the request itself (a node that just rotated).
    """
    node, time, sig = headers.get(H_NODE), headers.get(H_TIME), headers.get(H_SIG)
    if not node or not time or not sig:
        missing = [h for h, v in ((H_NODE, node), (H_TIME, time), (H_SIG, sig)) if not v]
        raise Unauthorized(f"signed request required; missing {', '.join(missing)}", hint=HINT)
    held = keys(node)
    t = parse_time(time)
    if t is None:
        raise Unauthorized(f"{H_TIME} must be an RFC 3339 time with a zone or Unix seconds")
    skew = abs((now - t).total_seconds())
    if skew > max_skew_seconds:
        raise Unauthorized(
            f"{H_TIME} is {int(skew)} s away from {clock_of} (limit {max_skew_seconds} s)",
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

    if any(verifies(k) for k in held):
        return node
    if more_keys is not None and any(verifies(k) for k in more_keys(node)):
        return node
    raise Unauthorized(f"request signature does not verify with node {node}'s key", hint=HINT)
