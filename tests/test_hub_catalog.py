"""Signed catalog versions: publish with the CLI, fetch with ETag / If-None-Match."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import load_catalog, seed_path
from sync.catalog import CatalogSignatureError, verify_catalog
from sync.keys import Ed25519PrivateKey
from tests import test_hub_support as support
from tests.conftest import run_cli
from tests.test_hub_support import (
    check_error_shape,
    hub_public,
)

# Fixtures shared by the hub tests.
hub_client = support.hub_client
hub_dir = support.hub_dir


async def test_publish_and_fetch_latest(hub_client: Any, hub_dir: Path, tmp_path: Path,
                                        capsys: Any) -> None:  # fmt: skip
    r = await hub_client.get("/api/v1/catalog/latest")
    assert r.status == 404
    body = await r.json()
    check_error_shape(body, 404)
    assert "onestop hub catalog publish" in body["hint"]

    assert run_cli("hub", "catalog", "publish", "--data", str(hub_dir), str(seed_path())) == 0
    r = await hub_client.get("/api/v1/catalog/latest")
    assert r.status == 200
    doc = await r.json()
    verify_catalog(doc, hub_public(hub_dir))
    assert doc["catalog"] == load_catalog(seed_path())
    assert r.headers["ETag"] == f'"{doc["version"]}"'
    first = doc["version"]
    assert first.endswith("-1") and len(first.split("-")[0].split(".")) == 3

    for inm in (f'"{first}"', first, f'W/"{first}"', f'"other", "{first}"', "*"):
        r = await hub_client.get("/api/v1/catalog/latest", headers={"If-None-Match": inm})
        assert r.status == 304, inm
        assert r.headers["ETag"] == f'"{first}"'
    r = await hub_client.get("/api/v1/catalog/latest", headers={"If-None-Match": '"old"'})
    assert r.status == 200

    # Same content: nothing new.  Changed content: the next version of the day.
    capsys.readouterr()
    assert run_cli("hub", "catalog", "publish", "--data", str(hub_dir), str(seed_path())) == 0
    assert "unchanged" in capsys.readouterr().out
    data = json.loads(seed_path().read_text(encoding="utf-8"))
    data["items"] = data["items"][:-1]
    changed = tmp_path / "catalog.json"
    changed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert run_cli("hub", "catalog", "publish", "--data", str(hub_dir), str(changed)) == 0
    r = await hub_client.get("/api/v1/catalog/latest", headers={"If-None-Match": f'"{first}"'})
    assert r.status == 200
    doc2 = await r.json()
    assert doc2["version"] == first[:-1] + "2"
    verify_catalog(doc2, hub_public(hub_dir))

    # Tampered or wrongly signed documents fail verification.
    bad = copy.deepcopy(doc2)
    bad["catalog"]["items"] = []
    with pytest.raises(CatalogSignatureError):
        verify_catalog(bad, hub_public(hub_dir))
    with pytest.raises(CatalogSignatureError):
        verify_catalog(doc2, Ed25519PrivateKey.generate().public_key())


def test_invalid_catalog_is_not_published(hub_dir: Path, tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"departments": "nope"}', encoding="utf-8")
    assert run_cli("hub", "catalog", "publish", "--data", str(hub_dir), str(bad)) == 1
    err = capsys.readouterr().err
    assert "nothing published" in err and "error:" in err
    assert run_cli("hub", "catalog", "publish", "--data", str(hub_dir),
                   str(tmp_path / "missing.json")) == 1  # fmt: skip
