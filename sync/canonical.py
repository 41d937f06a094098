"""Canonical JSON (RFC 8785 JCS), SHA-256 and strict base64 helpers shared by the sync code."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, TypeGuard

import rfc8785

_HEX64 = re.compile(r"[0-9a-f]{64}")

# The integers JCS (and rfc8785) accept: exactly representable as IEEE 754 doubles.
INT_MAX = 2**53 - 1
# Containers a value may hold before the fast path gives up (a cycle never ends otherwise;
# rfc8785 then reports it as it always did).
_MAX_CONTAINERS = 100_000

# For the values the fast path accepts (str, int within +/-INT_MAX, bool, None, list, dict
# with BMP-only string keys) Python's C encoder writes exactly RFC 8785: keys sorted (by code
# point, which equals UTF-16 code unit order for BMP strings), no whitespace, UTF-8 text, and
# only '"', '\\' and U+0000-U+001F escaped, the short forms \b \t \n \f \r and \u00xx (lower
# case hex) otherwise -- the escaping of ECMAScript's JSON.stringify.  Anything else (floats,
# big integers, tuples, subclasses, astral-plane keys, lone surrogates) goes to rfc8785.
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False,
    check_circular=False,
).encode  # fmt: skip
encode_str = json.encoder.encode_basestring  # a JSON string literal, as _encode writes it


def is_plain(obj: Any) -> bool:
    """True when ``obj`` holds only what the C encoder writes in RFC 8785 form: str, bool,
    None, int within +/-``INT_MAX``, list, dict with BMP-only str keys (exact types)."""
    t = type(obj)
    if t is str or t is bool or obj is None:
        return True
    if t is int:
        return -INT_MAX <= obj <= INT_MAX
    if t is not dict and t is not list:
        return False
    stack = [obj]
    budget = _MAX_CONTAINERS
    while stack:
        budget -= 1
        if budget < 0:
            return False
        o = stack.pop()
        if type(o) is dict:
            for k in o:
                # Astral-plane keys sort differently by UTF-16 code units than by code point.
                if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                    return False
            values = o.values()
        else:
            values = o
        for v in values:
            tv = type(v)
            if tv is str or tv is bool or v is None:
                continue
            if tv is int:
                if -INT_MAX <= v <= INT_MAX:
                    continue
                return False
            if tv is dict or tv is list:
                stack.append(v)
                continue
            return False
    return True


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises ``ValueError`` (``rfc8785.CanonicalizationError``) for values JSON cannot carry
    exactly: non-string keys, NaN/infinity, integers beyond +/-2**53.
    """
    if is_plain(obj):
        try:
            return _encode(obj).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: rfc8785 raises its own error
            pass
    return rfc8785.dumps(obj)


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def is_sha256_hex(s: object) -> TypeGuard[str]:
    """True for a 64-character lowercase hex string."""
    return isinstance(s, str) and _HEX64.fullmatch(s) is not None


def b64encode(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def b64decode(s: object) -> bytes:
    """Strict standard base64: padding required, and only the canonical encoding is accepted."""
    if not isinstance(s, str):
        raise ValueError("base64 value must be a string")
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"invalid base64: {e}") from None
    if b64encode(raw) != s:
        raise ValueError("non-canonical base64 encoding")
    return raw
