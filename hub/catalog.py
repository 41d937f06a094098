"""Signed service catalog versions, published by the hub and fetched by nodes.

A version document is ``{"version", "published_at", "catalog", "key_id", "sig"}``; ``sig`` is
the hub's Ed25519 signature over ``b"onestop-catalog-v1\\n" + canonical({version,
published_at, catalog})`` (:mod:`sync.catalog`).  Versions are ``YYYY.MM.DD-N`` (the hub's
local date, N counting from 1 that day).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from hub import db as hubdb
from onestop.clock import iso, system_now
from schemas.catalog import seed_path
from sync.canonical import canonical, sha256_hex
from sync.catalog import sign_catalog
from sync.keys import Ed25519PrivateKey


def _doc(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": row["version"], "published_at": row["published_at"],
        "catalog": json.loads(row["catalog"]), "key_id": row["key_id"], "sig": row["sig"],
    }  # fmt: skip


def _latest_row(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest published version (the one read of "the latest catalog")."""
    return hubdb.one(db, "SELECT * FROM catalog_versions ORDER BY id DESC LIMIT 1")


def latest(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest published version document, or None."""
    row = _latest_row(db)
    return _doc(row) if row else None


def latest_version(db: sqlite_utils.Database) -> str | None:
    row = _latest_row(db)
    return str(row["version"]) if row else None


def latest_id(db: sqlite_utils.Database) -> int:
    """The id of the newest published version, 0 when none was published."""
    row = db.execute("SELECT max(id) FROM catalog_versions").fetchone()
    return int(row[0] or 0)


def catalog_at(db: sqlite_utils.Database, version_id: int) -> dict[str, Any]:
    """The catalog of published version ``version_id``; the shipped seed for 0."""
    if not version_id:
        return seed()
    row = hubdb.one(db, "SELECT catalog FROM catalog_versions WHERE id = ?", [version_id])
    return json.loads(row["catalog"]) if row else {}


@functools.cache
def _seed_text() -> str:
    return seed_path().read_text("utf-8")


def seed() -> dict[str, Any]:
    """The catalog shipped with onestop (:func:`schemas.catalog.seed_path`)."""
    data: dict[str, Any] = json.loads(_seed_text())
    return data


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
    now = now or system_now()
    text = canonical(catalog)
    digest = sha256_hex(text)
    with hubdb.tx(db):
        last = _latest_row(db)
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
        doc = sign_catalog(key, f"{day}-{n}", iso(now), json.loads(text))
        db.execute(
            "INSERT INTO catalog_versions (version, published_at, catalog, sha256, key_id, sig) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [doc["version"], doc["published_at"], text.decode("utf-8"), digest, doc["key_id"],
             doc["sig"]],
        )  # fmt: skip
    return doc, True
