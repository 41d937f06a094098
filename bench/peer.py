"""The peer: the same replication done by PouchDB (``../shared/peers/pouchdb/`` next to the
repository), run in the same ``make bench`` so the ratio onestop / peer is fair.

The peer's ``run.sh`` installs pouchdb-server and pouchdb-node with npm into ``PEER_DIR``;
we point that at a cache directory outside the repository (``$ONESTOP_BENCH_CACHE`` or
``~/.cache/onestop-bench``) so the install happens once per machine.  Skipped (with the
reason in the table) when the peer's folder, ``node`` or ``npm`` is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import REPO, Options, Row, cache_dir, log, skipped


def peer_path() -> Path:
    return REPO.parent / "shared" / "peers" / "pouchdb"


def unavailable() -> str | None:
    """Why the peer cannot run here, or None."""
    p = peer_path()
    if not (p / "run.sh").exists():
        return "peer absent: ../shared/peers/pouchdb/run.sh not found next to the repository"
    missing = [t for t in ("node", "npm", "curl", "bash") if shutil.which(t) is None]
    if missing:
        return f"peer skipped: {', '.join(missing)} not installed"
    return None


def parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.strip().partition("=")
        if sep and k and " " not in k:
            out[k] = v.strip()
    return out


def run_peer(n: int, timeout: float = 1800) -> dict[str, Any]:
    env = dict(os.environ, N=str(n), PEER_DIR=str(cache_dir() / "peer-pouchdb"))
    p = subprocess.run(
        ["bash", str(peer_path() / "run.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=str(peer_path()),
    )
    if p.returncode != 0:
        raise RuntimeError(f"peer run.sh failed ({p.returncode}): {p.stderr[-2000:]}")
    kv = parse(p.stdout)
    need = ("pouchdb_full_docs_per_s", "pouchdb_incremental_docs_per_s")
    if any(k not in kv for k in need):
        raise RuntimeError(f"peer printed no results: {p.stdout[-1000:]} {p.stderr[-1000:]}")
    return {
        "full_per_s": float(kv["pouchdb_full_docs_per_s"]),
        "incremental_per_s": float(kv["pouchdb_incremental_docs_per_s"]),
        "server_rss_kb": float(kv.get("pouchdb_server_rss_kb") or 0),
        "doc_bytes": float(kv.get("doc_bytes") or 0),
        "raw": kv,
    }


def run(opts: Options) -> list[Row]:
    why = unavailable() if opts.peer else "peer not requested (--no-peer)"
    if why:
        return [
            skipped("peer", "PouchDB full replication", why, "docs/s"),
            skipped("peer", "PouchDB incremental (1,000)", why, "docs/s"),
            skipped("peer", "pouchdb-server RSS (VmHWM)", why, "MB"),
        ]
    n = opts.peer_n or opts.n
    log(
        opts,
        f"peer: PouchDB N={n} (the first run installs npm packages into "
        f"{cache_dir() / 'peer-pouchdb'})",
    )
    r = run_peer(n)
    note = f"N={n}, doc {r['doc_bytes']:.0f} B; then 1,000 more"
    return [
        Row("peer", "PouchDB full replication", r["full_per_s"], "docs/s", note=note, extra=r),
        Row("peer", "PouchDB incremental (1,000)", r["incremental_per_s"], "docs/s"),
        Row(
            "peer",
            "pouchdb-server RSS (VmHWM)",
            r["server_rss_kb"] / 1024,
            "MB",
            note="peak resident of the server process",
        ),
    ]
