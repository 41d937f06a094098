"""Catalog down: fetch the hub's signed service catalog and import it.

``GET {hub}/api/v1/catalog/latest`` (with ``If-None-Match``) answers
``{"version", "published_at", "catalog", "key_id", "sig"}``, signed by the hub key over
``b"onestop-catalog-v1\\n" + canonical({version, published_at, catalog})``.  A catalog whose
signature does not verify with ``DIR/hub.pub`` is refused (and shown in the sync status); the
node keeps serving its last good catalog, also while offline.  The last good signed envelope
is kept so a relay can hand it on to its townships unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from node import db as dbm
from node import signer as signerm
from node.catalog import import_catalog
from node.replication.client import HubError, PushClient
from onestop.clock import utcnow
from schemas.catalog import CatalogError, load_catalog
from sync.catalog import CatalogSignatureError, verify_catalog
from sync.keys import Ed25519PublicKey

log = logging.getLogger("onestop.sync")

PATH = "/api/v1/catalog/latest"


class CatalogRefused(ValueError):
    """A catalog from the hub failed verification or validation."""


@dataclass
class FetchResult:
    status: str  # "imported", "unchanged", "refused", "none"
    version: str | None = None
    message: str = ""


def verify_envelope(env: Any, hub_pub: Ed25519PublicKey) -> None:
    """Raise :class:`CatalogRefused` unless ``env`` is a catalog signed by ``hub_pub``."""
    try:
        verify_catalog(env, hub_pub)
    except CatalogSignatureError as exc:
        raise CatalogRefused(f"catalog from the hub refused: {exc}") from None


def _set(db: sqlite_utils.Database, **values: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in values)
    with dbm.tx(db) as conn:
        conn.execute(f"UPDATE sync_state SET {cols} WHERE id = 1", list(values.values()))


def apply_envelope(
    cfg: Any, db: sqlite_utils.Database, env: Any, etag: str | None = None
) -> FetchResult:
    """Verify and import a signed catalog envelope (refusing it leaves everything as it was)."""

    hub_pub = signerm.hub_public_key(cfg)
    now = utcnow()
    try:
        if hub_pub is None:
            raise CatalogRefused("no hub public key (DIR/hub.pub): catalogs cannot be checked")
        verify_envelope(env, hub_pub)
        try:
            catalog = load_catalog(dict(env["catalog"]))
        except (CatalogError, TypeError, ValueError) as exc:
            raise CatalogRefused(f"catalog {env.get('version')!r} is invalid: {exc}") from None
    except CatalogRefused as exc:
        log.warning("sync: catalog refused: %s", exc)
        _set(db, catalog_error=str(exc), catalog_checked_at=now)
        return FetchResult(
            "refused", env.get("version") if isinstance(env, Mapping) else None, str(exc)
        )
    version = str(env["version"])
    status = "unchanged"
    if dbm.get_meta(db, "catalog_version") != catalog["version"]:
        import_catalog(db, catalog)
        log.info("sync: catalog %s imported from the hub", version)
        status = "imported"
    _set(
        db,
        catalog_version=version,
        catalog_etag=etag or version,
        catalog_error=None,
        catalog_checked_at=now,
        catalog_envelope=json.dumps(dict(env), ensure_ascii=False),
    )
    return FetchResult(status, version)


async def fetch(cfg: Any, db: sqlite_utils.Database, client: Any = None) -> FetchResult:
    """Ask the hub for its latest catalog; import it when new and correctly signed."""

    own = client is None
    client = client or PushClient(cfg, db)
    try:
        st = dbm.one(db, "SELECT catalog_etag, catalog_version FROM sync_state WHERE id = 1") or {}
        headers = {"If-None-Match": f'"{st["catalog_etag"]}"'} if st.get("catalog_etag") else {}
        status, body, resp_headers = await client.request("GET", PATH, headers=headers)
    finally:
        if own:
            await client.close()
    if status == 304:
        _set(db, catalog_checked_at=utcnow())
        return FetchResult("unchanged", st.get("catalog_version"))
    if status == 404:
        _set(db, catalog_checked_at=utcnow())
        return FetchResult("none", None, "the hub has not published a catalog")
    if status != 200:
        raise (
            PushClient._error(status, body)
            if isinstance(body, dict)
            else HubError(f"catalog: hub answered HTTP {status}", status)
        )
    etag = (resp_headers.get("ETag") or "").strip('"').removeprefix("W/").strip('"') or None
    return apply_envelope(cfg, db, body, etag)


def last_envelope(db: sqlite_utils.Database) -> dict[str, Any] | None:
    row = dbm.one(db, "SELECT catalog_envelope FROM sync_state WHERE id = 1")
    if not row or not row["catalog_envelope"]:
        return None
    env: dict[str, Any] = json.loads(row["catalog_envelope"])
    return env
