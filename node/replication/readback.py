"""Reading this node's records back from the hub: what a restore or a re-keyed node appends.

``GET /api/v1/nodes/{code}/records?after=N`` is a request signed with the node key; the hub
answers with its verified copy of the node's records (and its acknowledged position).  The
caller verifies every record (:class:`sync.chain.ChainVerifier`) before
:func:`insert_record` writes it into ``events`` unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from node import config as cfgm
from node import signer as signerm
from node.signer import body_text
from sync.requests import sign_request

PAGE = 1000


class RecoveryError(Exception):
    """The hub's records could not be fetched or do not continue the restored log."""


def fetch_records(cfg: cfgm.NodeConfig, after: int, limit: int = PAGE) -> dict[str, Any]:
    """One page of the hub's verified copy of this node's records (signed request)."""

    key = signerm.load_node_key(Path(cfg.data_dir))
    if key is None:
        raise RecoveryError(f"{cfg.data_dir}/node.key not found: cannot sign the request")
    base = cfg.hub_url.rstrip("/")
    target = f"/api/v1/nodes/{cfg.code}/records?" + urllib.parse.urlencode(
        {"after": after, "limit": limit}
    )
    # The hub checks the signature over the path as the server sees it: keep the base's path.
    prefix = urllib.parse.urlsplit(base).path.rstrip("/")
    headers = sign_request(key, cfg.code, "GET", prefix + target)
    req = urllib.request.Request(base + target, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RecoveryError(f"hub answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RecoveryError(f"hub {base} unreachable: {exc}") from None
    return body


def insert_record(conn: sqlite3.Connection, rec: dict[str, Any]) -> None:

    ev = rec["event"]
    conn.execute(
        "INSERT INTO events (seq, at, kind, entity, entity_id, body, prev, hash, sig, key_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            rec["seq"],
            ev["at"],
            ev["kind"],
            ev["entity"],
            ev["entity_id"],
            body_text(ev["body"]),
            rec["prev"],
            rec["hash"],
            rec["sig"],
            rec["key_id"],
        ],
    )
