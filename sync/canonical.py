"""Canonical JSON (RFC 8785 JCS), SHA-256 and strict base64 helpers shared by the sync code."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, TypeGuard

import rfc8785

_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises ``ValueError`` (``rfc8785.CanonicalizationError``) for values JSON cannot carry
    exactly: non-string keys, NaN/infinity, integers beyond +/-2**53.
    """
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
