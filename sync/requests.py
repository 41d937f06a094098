"""Signed requests from nodes (``X-Onestop-Node``, ``-Time``, ``-Nonce``, ``-Body-SHA256``, ``-Sig``).

The signature is Ed25519 with the node's current key over the lines::

    b"onestop-request-v2\\n" + METHOD \\n NODE \\n TARGET \\n TIME \\n NONCE \\n BODY_SHA256

``METHOD`` is upper case; ``NODE`` the ``X-Onestop-Node`` value; ``TARGET`` the request
target exactly as the receiver sees it (path, plus ``?query`` when there is one: the query
is always covered); ``TIME`` the ``X-Onestop-Time`` value verbatim (RFC 3339, e.g.
``2026-11-29T10:00:00.000Z``, or Unix seconds), within the receiver's allowed clock skew;
``NONCE`` the ``X-Onestop-Nonce`` value (16-64 characters of ``A-Za-z0-9_-``, fresh for every
request); ``BODY_SHA256`` the lowercase hex SHA-256 of the request body once any HTTP
``Content-Encoding`` is undone (the JSON a node gzips; of no bytes for a GET), also sent as
``X-Onestop-Body-SHA256``.  The receiver hashes the body it got itself, and keeps every
``(node, nonce)`` it accepted for twice the skew (:class:`ReplayCache`): captured headers
work neither with another body, another query, nor a second time.

:func:`sign_request` builds the headers (nodes); :func:`verify_signed` checks them (the hub,
and a relay for its townships).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence

from cachetools import TTLCache
from cryptography.exceptions import InvalidSignature

from onestop.clock import iso, system_now
from onestop.errors import Unauthorized
from sync.canonical import b64decode, b64encode
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey

REQUEST_SIG_CONTEXT = b"onestop-request-v2\n"
H_NODE, H_TIME, H_SIG = "X-Onestop-Node", "X-Onestop-Time", "X-Onestop-Sig"
H_NONCE, H_BODY = "X-Onestop-Nonce", "X-Onestop-Body-SHA256"
SIGNED_HEADERS = (H_NODE, H_TIME, H_NONCE, H_BODY, H_SIG)
HINT = (
    "sign the request with the node key: headers X-Onestop-Node, X-Onestop-Time, "
    "X-Onestop-Nonce, X-Onestop-Body-SHA256, X-Onestop-Sig (docs/sync-protocol.md)"
)
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
REPLAY_CACHE_SIZE = 200_000

KeyLookup = Callable[[str], Sequence[Ed25519PublicKey]]


def body_sha256(body: bytes) -> str:
    """The lowercase hex SHA-256 a signature covers for ``body`` (decoded content bytes)."""
    return hashlib.sha256(body).hexdigest()


def request_message(
    method: str, node: str, target: str, time: str, nonce: str, body_hash: str
) -> bytes:
    lines = (method.upper(), node, target, time, nonce, body_hash)
    return REQUEST_SIG_CONTEXT + "\n".join(lines).encode()


def sign_request(
    private_key: Ed25519PrivateKey,
    node: str,
    method: str,
    target: str,
    time: str | dt.datetime | None = None,
    *,
    body: bytes = b"",
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers for a request signed by ``node``'s key (at ``time``, default now).

    ``target`` is the path and query as the receiver will see them; ``body`` the request's
    content before any ``Content-Encoding`` (gzip) is applied."""
    if time is None:
        time = system_now()
    t = iso(time) if isinstance(time, dt.datetime) else time
    n = nonce if nonce is not None else secrets.token_urlsafe(16)
    digest = body_sha256(body)
    sig = private_key.sign(request_message(method, node, target, t, n, digest))
    return {H_NODE: node, H_TIME: t, H_NONCE: n, H_BODY: digest, H_SIG: b64encode(sig)}


def parse_time(value: str) -> dt.datetime | None:
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.UTC)
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return t if t.tzinfo is not None else None


class ReplayCache:
    """The ``(node, nonce)`` pairs of the signed requests a receiver accepted lately.

    A request is accepted while its time is within ``max_skew_seconds`` of the receiver's
    clock, so a pair is kept for twice that (from when it was first seen).  At most
    ``maxsize`` pairs are held (only requests whose signature verified are added); the
    oldest go first when it is full."""

    def __init__(self, max_skew_seconds: int, maxsize: int = REPLAY_CACHE_SIZE) -> None:
        self._seen: TTLCache[tuple[str, str], bool] = TTLCache(
            maxsize=maxsize, ttl=2 * max_skew_seconds + 1
        )

    def seen(self, node: str, nonce: str) -> bool:
        return (node, nonce) in self._seen

    def add(self, node: str, nonce: str) -> None:
        self._seen[(node, nonce)] = True

    def __len__(self) -> int:
        return len(self._seen)


def verify_signed(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body_hash: str,
    now: dt.datetime,
    max_skew_seconds: int,
    keys: KeyLookup,
    replays: ReplayCache,
    more_keys: KeyLookup | None = None,
    clock_of: str = "the hub's clock",
) -> str:
    """The node that signed this request; raise 401 (or what ``keys`` raises) otherwise.

    ``target`` is the request target as received (path and query), ``body_hash`` the
    :func:`body_sha256` of the body as received (after undoing ``Content-Encoding``).
    ``keys(node)`` gives the keys the receiver holds for the node and raises (403) when it
    does not know the node; ``more_keys(node)``, tried only when those fail, may give keys
    announced in the request itself (a node that just rotated).  A verified request's nonce
    goes into ``replays``; the same nonce again is refused.
    """
    values = {h: headers.get(h) or "" for h in SIGNED_HEADERS}
    missing = [h for h, v in values.items() if not v]
    if missing:
        raise Unauthorized(f"signed request required; missing {', '.join(missing)}", hint=HINT)
    node, time, nonce, claimed, sig = (values[h] for h in SIGNED_HEADERS)
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
    if not NONCE_RE.fullmatch(nonce):
        raise Unauthorized(f"{H_NONCE} must be 16-64 characters of A-Z a-z 0-9 _ -", hint=HINT)
    if claimed != body_hash:
        raise Unauthorized(
            f"the request body does not match {H_BODY} (its SHA-256 is {body_hash})",
            hint="sign the body as sent, before gzip (docs/sync-protocol.md)",
        )
    try:
        raw = b64decode(sig)
    except ValueError:
        raise Unauthorized(f"{H_SIG} is not base64", hint=HINT) from None
    message = request_message(method, node, target, time, nonce, body_hash)

    def verifies(key: Ed25519PublicKey) -> bool:
        try:
            key.verify(raw, message)
        except InvalidSignature:
            return False
        return True

    if not any(verifies(k) for k in held) and not (
        more_keys is not None and any(verifies(k) for k in more_keys(node))
    ):
        raise Unauthorized(
            f"request signature does not verify with node {node}'s key (it covers the method, "
            "the path and query, the time, the nonce and the body)",
            hint=HINT,
        )
    if replays.seen(node, nonce):
        raise Unauthorized(
            f"this request was already received ({H_NONCE} {nonce} used before)",
            hint="send every request with a fresh nonce (sign it again)",
        )
    replays.add(node, nonce)
    return node
