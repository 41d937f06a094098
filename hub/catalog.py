"""Signed service catalog versions, published by the hub and fetched by nodes.

A version document is ``{"version", "published_at", "catalog", "key_id", "sig"}``; ``sig`` is
the hub's Ed25519 signature over ``b"onestop-catalog-v1\\n" + canonical({version,
published_at, catalog})``.  Versions are ``YYYY.MM.DD-N`` (the hub's local date, N counting
from 1 that day).  Nodes check a document with :func:`verify_catalog`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils
from cryptography.exceptions import InvalidSignature

from hub import db as hubdb
from sync.canonical import b64decode, b64encode, canonical, sha256_hex
from sync.keys import Ed25519PrivateKey, Ed25519PublicKey, public_key_id

CATALOG_SIG_CONTEXT = b"onestop-catalog-v1\n"
DOC_KEYS = frozenset({"version", "published_at", "catalog", "key_id", "sig"})


class CatalogSignatureError(ValueError):
    """A catalog version document is malformed or not signed by the expected hub key."""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        raise CatalogSignatureError("catalog signature does not verify") from None


def _doc(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": row["version"], "published_at": row["published_at"],
        "catalog": json.loads(row["catalog"]), "key_id": row["key_id"], "sig": row["sig"],
    }  # fmt: skip


def latest(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest published version document, or None."""
    row = hubdb.one(db, "SELECT * FROM catalog_versions ORDER BY id DESC LIMIT 1")
    return _doc(row) if row else None


def latest_version(db: sqlite_utils.Database) -> str | None:
    row = hubdb.one(db, "SELECT version FROM catalog_versions ORDER BY id DESC LIMIT 1")
    return str(row["version"]) if row else None


def versions(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return hubdb.rows(
        db, "SELECT version, published_at, sha256, key_id FROM catalog_versions ORDER BY id"
    )


def publish(
    db: sqlite_utils.Database,
    key: Ed25519PrivateKey,
    catalog: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    timezone: str = "Asia/Shanghai",
) -> tuple[dict[str, Any], bool]:
    """Sign and store ``catalog`` (already validated) as a new version.

    Returns ``(document, created)``; a catalog identical to the latest version is not
    published again (``created`` is False and the latest document is returned).
    """
    now = now or dt.datetime.now(dt.UTC)
    text = canonical(catalog)
    digest = sha256_hex(text)
    with hubdb.tx(db):
        last = hubdb.one(db, "SELECT * FROM catalog_versions ORDER BY id DESC LIMIT 1")
        if last and last["sha256"] == digest:
            return _doc(last), False
        day = now.astimezone(ZoneInfo(timezone)).strftime("%Y.%m.%d")
        taken = {
            r["version"]
            for r in hubdb.rows(
                db, "SELECT version FROM catalog_versions WHERE version LIKE ?", [f"{day}-%"]
            )
        }
        n = 1
        while f"{day}-{n}" in taken:
            n += 1
        doc = sign_catalog(key, f"{day}-{n}", _iso(now), json.loads(text))
        db.execute(
            "INSERT INTO catalog_versions (version, published_at, catalog, sha256, key_id, sig) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [doc["version"], doc["published_at"], text.decode("utf-8"), digest, doc["key_id"],
             doc["sig"]],
        )  # fmt: skip
    return doc, True
