"""Signed service catalog versions: the hub signs them, nodes (and relays) check them.

A version document is ``{"version", "published_at", "catalog", "key_id", "sig"}``; ``sig`` is
the hub's Ed25519 signature over ``b"onestop-catalog-v1\\n" + canonical({version,
published_at, catalog})``.  The catalog inside is a document of :mod:`schemas.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from sync.canonical import b64decode, b64encode, canonical
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, public_key_id

CATALOG_SIG_CONTEXT = b"onestop-catalog-v1\n"
DOC_KEYS = frozenset({"version", "published_at", "catalog", "key_id", "sig"})


class CatalogSignatureError(ValueError):
    """A catalog version document is malformed or not signed by the expected hub key."""


def sign_catalog(
    key: Ed25519PrivateKey, version: str, published_at: str, catalog: Mapping[str, Any]
) -> dict[str, Any]:
    signed = {"version": version, "published_at": published_at, "catalog": catalog}
    sig = key.sign(CATALOG_SIG_CONTEXT + canonical(signed))
    return {**signed, "key_id": public_key_id(key.public_key()), "sig": b64encode(sig)}


def verify_catalog(doc: Mapping[str, Any], hub_public: Ed25519PublicKey) -> None:
    """Raise :class:`CatalogSignatureError` unless ``doc`` is signed by ``hub_public``."""
    if not isinstance(doc, Mapping) or set(doc) != DOC_KEYS:
        raise CatalogSignatureError(f"a catalog version has exactly the fields {sorted(DOC_KEYS)}")
    kid = public_key_id(hub_public)
    if doc["key_id"] != kid:
        raise CatalogSignatureError(f"signed by hub key {doc['key_id']}, expected {kid}")
    signed = {k: doc[k] for k in ("version", "published_at", "catalog")}
    try:
        hub_public.verify(b64decode(doc["sig"]), CATALOG_SIG_CONTEXT + canonical(signed))
    except (ValueError, InvalidSignature):
        raise CatalogSignatureError(
            f"catalog {doc['version']!r}: the hub's signature does not verify "
            "(altered in transit or not from the hub)"
        ) from None
