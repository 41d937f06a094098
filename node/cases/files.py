"""Scans of a case's materials, stored once by their SHA-256 under ``DATA/files/``."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, notify, numbers
from node.cases.common import get
from node.config import NodeConfig
from onestop.clock import Now, iso, system_now
from onestop.errors import Invalid, NotFound
from onestop.i18n import lazy_gettext

MAX_NAME = 255  # characters: what file systems allow


def check_name(name: str) -> None:
    """A file's name as given at upload: no control characters (NUL, newline ...: they cannot
    go into the download's headers) and at most :data:`MAX_NAME` characters."""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name):
        raise Invalid(
            lazy_gettext("文件名不能含有控制字符"),
            field="name",
        )
    if len(name) > MAX_NAME:
        raise Invalid(lazy_gettext("文件名超过 {n} 个字符", n=MAX_NAME), field="name")


def attach_file(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    material: str,
    content: bytes,
    name: str,
    content_type: str,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Store a scan of a material by its SHA-256 under ``DATA/files/`` and attach it."""
    if not content:
        raise Invalid("the file is empty", field="file")
    check_name(name)
    case = get(db, case_no)
    if (
        dbm.one(
            db,
            "SELECT 1 AS x FROM case_materials WHERE case_id = ? AND code = ?",
            [case["id"], material],
        )
        is None
    ):
        raise NotFound(
            f"material {material} is not on the checklist of case {case_no}", field="material"
        )
    sha = hashlib.sha256(content).hexdigest()
    path = file_path(cfg, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    # The name and type travel in the event: numbers typed into them are masked.
    name = notify.redact((name or "file").replace("/", "_").replace("\\", "_"))[:200]
    content_type = notify.redact(content_type or "application/octet-stream")[:100]
    at = iso(now())
    with dbm.tx(db) as conn:
        fid = numbers.next_id(conn, "case_files")
        events.append(
            conn,
            "case.file_attached",
            "case",
            case_no,
            {
                "case_no": case_no,
                "file_id": fid,
                "material": material,
                "sha256": sha,
                "name": name,
                "size": len(content),
                "content_type": content_type,
                "by": user["username"],
            },
            at=at,
        )
    row = dbm.one(db, "SELECT * FROM case_files WHERE id = ?", [fid])
    assert row is not None
    row.pop("case_id")
    return row


def file_path(cfg: NodeConfig, sha: str) -> Any:
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise NotFound("no such file", field="sha256")
    return cfg.data_dir / "files" / sha[:2] / sha
