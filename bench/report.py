"""The results table: derived rows (ratios against the peer and the physical limit, the
targets' PASS/MISS), the text table and the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.common import Row

REPLICATION_TARGET = 5.0  # x the peer's records/s
HUB_LIMIT_TARGET = 0.5  # of the physical limit
COLUMNS = ("bench", "metric", "value", "unit", "target", "status", "note")


def find(rows: list[Row], bench: str, metric: str) -> Row | None:
    for r in rows:
        if r.bench == bench and r.metric == metric:
            return r
    return None


def _val(r: Row | None) -> float | None:
    if r is None or r.value is None or (isinstance(r.value, float) and math.isnan(r.value)):
        return None
    return float(r.value)


def _bound_note(rows: list[Row]) -> str:
    vr = _val(find(rows, "limits", "sync.chain.verify_record / s (1 core)"))
    ed = _val(find(rows, "limits", "Ed25519 verify / s (1 core)"))
    if vr is None:
        return ""
    s = f"bound by per-record verification: sync.chain.verify_record {vr:,.0f}/s on one core"
    if ed:
        s += (
            f" (Ed25519 alone {ed:,.0f}/s; the rest is canonical JSON, hashing and the "
            "chain walk in Python; extra cores verify signatures in worker processes)"
        )
    return s


def derived(rows: list[Row]) -> list[Row]:
    """Ratios and targets computed from the other benchmarks' rows."""
    out: list[Row] = []
    bound = _bound_note(rows)
    hub_rows = [r for r in rows if r.bench == "hub" and r.extra.get("bound")]
    if hub_rows:
        bound = "; ".join(x for x in (bound, str(hub_rows[0].extra["bound"])) if x)
    verified_row = find(rows, "replication", "full catch-up")
    verified = bool(verified_row and verified_row.extra.get("all_verified"))
    for metric, peer_metric, label in (
        ("full catch-up", "PouchDB full replication", "full"),
        ("incremental push", "PouchDB incremental (1,000)", "incremental"),
    ):
        ours, peer = find(rows, "replication", metric), find(rows, "peer", peer_metric)
        name = f"replication {label}: onestop / peer"
        target = f">= {REPLICATION_TARGET:.0f}x, all verified"
        if _val(ours) is None or _val(peer) is None:
            why = (
                peer.note
                if peer is not None and _val(peer) is None
                else ours.note
                if ours is not None and _val(ours) is None
                else "not measured"
            )
            out.append(Row("targets", name, None, "x", target, "SKIP", why))
            continue
        ratio = _val(ours) / _val(peer)  # type: ignore[operator]
        ok = ratio >= REPLICATION_TARGET and verified
        note = f"{_val(ours):,.0f} vs {_val(peer):,.0f} records/s" + (
            "" if verified else "; NOT every record verified and stored"
        )
        if not ok and bound:
            note += "; " + bound
        out.append(Row("targets", name, ratio, "x", target, "PASS" if ok else "MISS", note))
    ours_rss = find(rows, "replication", "hub RSS (VmHWM)")
    peer_rss = find(rows, "peer", "pouchdb-server RSS (VmHWM)")
    ours_mb, peer_mb = _val(ours_rss), _val(peer_rss)
    if ours_mb is not None and peer_mb:
        out.append(
            Row(
                "targets",
                "server RSS: onestop hub / pouchdb-server",
                ours_mb / peer_mb,
                "x",
                note=f"{ours_mb:.1f} vs {peer_mb:.1f} MB (lower is better)",
            )
        )
    else:
        out.append(
            Row(
                "targets",
                "server RSS: onestop hub / pouchdb-server",
                None,
                "x",
                status="SKIP",
                note="peer or replication not measured",
            )
        )
    limit = _val(find(rows, "limits", "physical limit (lower of the two)"))
    hub = find(rows, "hub", "ingest, 200 nodes at once") or find(rows, "hub", "ingest")
    if hub is None:
        hub = next((r for r in rows if r.bench == "hub" and r.metric.startswith("ingest")), None)
    target = f">= {HUB_LIMIT_TARGET:.0%} of limit"
    if limit and _val(hub) is not None:
        frac = _val(hub) / limit  # type: ignore[operator]
        ok = frac >= HUB_LIMIT_TARGET
        note = f"{_val(hub):,.0f} of {limit:,.0f} records/s"
        if not ok and bound:
            note += "; " + bound
        out.append(
            Row(
                "targets",
                "hub ingest / physical limit",
                frac,
                "",
                target,
                "PASS" if ok else "MISS",
                note,
            )
        )
    else:
        out.append(
            Row(
                "targets",
                "hub ingest / physical limit",
                None,
                "",
                target,
                "SKIP",
                hub.note if hub is not None else "hub or limits not measured",
            )
        )
    full = _val(find(rows, "replication", "full catch-up"))
    if limit and full is not None:
        out.append(
            Row(
                "targets",
                "replication full catch-up / physical limit",
                full / limit,
                "",
                note="one node pushing (informational)",
            )
        )
    return out


def fmt_value(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if unit in ("x", "") and abs(v) < 100:
        return f"{v:.2f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(rows: list[Row], width: int = 0) -> str:
    """A Markdown table (also readable in a terminal)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [
            r.bench,
            r.metric,
            fmt_value(r.value, r.unit),
            r.unit,
            r.target,
            r.status,
            r.note.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = dict(meta, rows=[_clean(r.as_dict()) for r in rows])
    path.write_text(
        json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )


def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON: write null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
