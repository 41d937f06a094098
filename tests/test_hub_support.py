"""Helpers for the hub tests: a hub data directory, simulated node logs, signed pushes.

(No tests here; the hub test modules import these.)
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser

from hub import config as hubcfg
from sync.chain import GENESIS, ROTATION_KIND, make_record, rotation_body
from sync.checkpoint import make_checkpoint
from sync.keys import Ed25519PrivateKey, load_public
from sync.merkle import MerkleTree, record_leaf
from sync.requests import sign_request
from tests.conftest import copy_hub, run_cli

AT = "2026-11-29T10:00:00.000Z"
# The hub under test lives on this instant (its clock seam), whatever day the suite runs on:
# the dashboards' default period, deadlines and request signature times all follow it.
HUB_NOW = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.UTC)
TOWNSHIP = "370102001"
TOWNSHIP2 = "370102002"
COUNTY = "370102"


def ticket_body(seq: int, queue: str = "dept:edu", prefix: str = "A") -> dict[str, Any]:
    """A body matching schemas/events/ticket.issued.schema.json."""
    return {"item": None, "priority": 0, "priority_reason": None, "queue": queue,
            "service_date": "2026-11-29", "ticket_no": f"{prefix}{seq:03d}"}  # fmt: skip


class NodeLog:
    """A node's signed log built in memory with :func:`sync.chain.make_record`."""

    def __init__(self, code: str, key: Ed25519PrivateKey | None = None) -> None:
        self.code = code
        self.key = key or Ed25519PrivateKey.generate()
        self.first_key = self.key
        self.records: list[dict[str, Any]] = []

    @property
    def head(self) -> str:
        return self.records[-1]["hash"] if self.records else GENESIS

    def add(
        self,
        kind: str = "ticket.issued",
        body: dict[str, Any] | None = None,
        entity: str = "ticket",
        entity_id: str | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> dict[str, Any]:
        seq = len(self.records) + 1
        event = {
            "seq": seq, "at": AT, "kind": kind, "entity": entity,
            "entity_id": entity_id or str(seq),
            "body": body if body is not None else ticket_body(seq),
        }  # fmt: skip
        rec = make_record(self.code, event, self.head, key or self.key)
        self.records.append(rec)
        return rec

    def extend(self, n: int, **kw: Any) -> list[dict[str, Any]]:
        return [self.add(**kw) for _ in range(n)]

    def rotate(self) -> Ed25519PrivateKey:
        new = Ed25519PrivateKey.generate()
        self.add(kind=ROTATION_KIND, entity="node", entity_id=self.code,
                 body=rotation_body(new.public_key()))  # fmt: skip
        self.key = new
        return new

    def checkpoint(self, size: int | None = None, key: Ed25519PrivateKey | None = None,
                   root: str | None = None) -> dict[str, Any]:  # fmt: skip
        size = len(self.records) if size is None else size
        tree = MerkleTree(record_leaf(r["hash"]) for r in self.records[:size])
        return make_checkpoint(self.code, size, root or tree.root().hex(), key or self.key, at=AT)

    def batch(self, lo: int = 1, hi: int | None = None, checkpoint: bool = True) -> dict[str, Any]:
        """Records lo..hi (1-based, inclusive) and a checkpoint at hi."""
        hi = len(self.records) if hi is None else hi
        return {
            "node": self.code,
            "records": self.records[lo - 1 : hi],
            "checkpoint": self.checkpoint(hi) if checkpoint else None,
        }

    def pub_file(self, directory: Path, key: Ed25519PrivateKey | None = None) -> Path:
        path = directory / f"{self.code}.pub"
        pub = (key or self.first_key).public_key()
        path.write_bytes(pub.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
        return path


def init_hub(data: Path) -> hubcfg.HubConfig:
    assert run_cli("hub", "init", "--data", str(data)) == 0
    return hubcfg.load(data)


def enroll(hub_dir: Path, log: NodeLog, **extra: str) -> None:
    args = ["hub", "enroll", "--data", str(hub_dir), "--code", log.code,
            "--pubkey", str(log.pub_file(hub_dir.parent))]  # fmt: skip
    for k, v in extra.items():
        args += [f"--{k}", v]
    assert run_cli(*args) == 0


def signed(
    key: Ed25519PrivateKey, node: str, method: str, target: str, body: bytes = b""
) -> dict[str, str]:
    """Request signature headers timed on the pinned hub clock (``body``: before gzip)."""
    return sign_request(key, node, method, target, HUB_NOW, body=body)


def hub_public(hub_dir: Path) -> Any:
    return load_public(hub_dir / "hub.pub")


def envelope(sender: str, *batches: dict[str, Any], backlog: int = 0) -> dict[str, Any]:
    return {"node": sender, "batches": list(batches), "backlog": backlog, "sent_at": AT}


async def push(
    client: Any,
    body: dict[str, Any],
    signer: NodeLog | None = None,
    *,
    gzipped: bool = True,
    sign_as: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Any:
    """POST /api/v1/ingest (gzip JSON), signed by ``signer`` when given."""
    data = content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    if signer is not None:
        headers.update(signed(key or signer.key, sign_as or signer.code, "POST", "/api/v1/ingest",
                              content))  # fmt: skip
    return await client.post("/api/v1/ingest", data=data, headers=headers)


async def push_ok(client: Any, body: dict[str, Any], signer: NodeLog | None = None,
                  **kw: Any) -> list[dict[str, Any]]:  # fmt: skip
    r = await push(client, body, signer, **kw)
    assert r.status == 200, await r.text()
    results: list[dict[str, Any]] = (await r.json())["results"]
    return results


@pytest.fixture
def hub_dir(tmp_path: Path, hub_template: Path) -> Path:
    return copy_hub(hub_template, tmp_path / "hub")


HUB_ADMIN = ("hubadmin", "hub-admin-pass-1")


def add_hub_user(hub_dir: Path, username: str, password: str, role: str, scope: str) -> None:
    assert run_cli("hub", "user", "add", "--data", str(hub_dir), "--username", username,
                   "--role", role, "--scope", scope, stdin=password + "\n") == 0  # fmt: skip


@pytest.fixture
async def hub_client(aiohttp_client: Any, hub_dir: Path) -> Any:
    """A test client of the hub, logged in as a province-wide admin (status reads need it)."""
    from hub.app import create_app

    add_hub_user(hub_dir, *HUB_ADMIN, "admin", "37")
    client = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    r = await client.post("/api/v1/login", json={"username": HUB_ADMIN[0],
                                                 "password": HUB_ADMIN[1]})  # fmt: skip
    assert r.status == 200, await r.text()
    return client


ERROR_KEYS = {"ok", "status", "error", "message", "field", "errors", "hint"}


def check_error_shape(body: dict[str, Any], status: int) -> None:
    assert set(body) == ERROR_KEYS, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
