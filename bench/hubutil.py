"""A real hub for the benchmarks: ``onestop hub init / enroll / serve`` in child processes,
node codes and key files, and the signed request headers of the protocol."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import Server, onestop_argv, run_cli_inprocess, run_onestop


def node_code(i: int) -> str:
    """The ``i``-th (0-based) township code: 9 digits, 37 01 CC TTT, unique for i < 98,901."""
    return f"3701{i // 999 + 1:02d}{i % 999 + 1:03d}"


def hub_init(data: Path) -> None:
    run_onestop("hub", "init", "--data", str(data))


def hub_serve(data: Path, log_name: str = "hub-serve.log") -> Server:
    argv = onestop_argv("hub", "serve", "--data", str(data), "--port", "0")
    return Server(argv, data / log_name, "/api/v1/nodes")


def write_node_key(dir: Path, name: str) -> tuple[Any, Path]:
    """A fresh Ed25519 key; its public key written as ``dir/<name>.pub`` (PEM)."""
    from cryptography.hazmat.primitives import serialization as ser

    from sync.keys import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    dir.mkdir(parents=True, exist_ok=True)
    pub = dir / f"{name}.pub"
    pub.write_bytes(
        key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, pub


def enroll(hub_dir: Path, code: str, pubkey: Path, name: str = "") -> None:
    """``onestop hub enroll`` (in this process: 200 enrolments must not start 200 Pythons)."""
    args = ["hub", "enroll", "--data", str(hub_dir), "--code", code, "--pubkey", str(pubkey)]
    if name:
        args += ["--name", name]
    run_cli_inprocess(*args)


def signed_headers(
    key: Any, node: str, method: str, target: str, body: bytes = b""
) -> dict[str, str]:
    """The signed-request headers of :func:`sync.requests.sign_request` (``body``: before gzip)."""
    from sync.requests import sign_request

    return sign_request(key, node, method, target, body=body)


def position(url: str, code: str, key: Any) -> dict[str, Any]:
    """Where the hub stands for node ``code`` (a request signed with the node's ``key``)."""
    target = f"/api/v1/ingest/{code}/position"
    req = urllib.request.Request(url + target, headers=signed_headers(key, code, "GET", target))
    with urllib.request.urlopen(req, timeout=30) as r:
        out: dict[str, Any] = json.loads(r.read())
    return out
