"""Every benchmark of bench/ at a tiny size (seconds each), so none of them rots.

The numbers are not judged here, only that each benchmark runs end to end against the real
processes and returns rows with the expected keys and sane values.  The PouchDB peer is
skipped (it needs npm packages); its output parser is checked on a sample.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from bench import report
from bench.common import Options, Row

KEYS = {"bench", "metric", "value", "unit", "target", "status", "note", "extra"}


@pytest.fixture
def opts() -> Options:
    return Options.tiny()


def by_metric(rows: list[Row]) -> dict[str, Row]:
    for r in rows:
        assert set(r.as_dict()) == KEYS
        assert r.status in ("", "PASS", "MISS", "SKIP", "ERROR"), r
        assert r.status != "ERROR", r.note
    return {r.metric: r for r in rows}


def positive(r: Row) -> float:
    assert r.value is not None and math.isfinite(r.value) and r.value > 0, r
    return float(r.value)


def test_case_events_follow_the_hub_schemas_and_size() -> None:
    from bench.records import BODY_MAX, BODY_MIN, canonical_size, case_events
    from hub.ingest.schemas import event_problem

    kinds = set()
    for ev in case_events("370102001", 300):
        assert event_problem(ev) is None, ev
        assert BODY_MIN <= canonical_size(ev["body"]) <= BODY_MAX, ev
        text = json.dumps(ev["body"], ensure_ascii=False)
        assert not re.search(r"\d{17}[\dX]|1\d{10}", text), text  # masks only
        kinds.add(ev["kind"])
    assert len(kinds) >= 5


def test_limits(opts: Options) -> None:
    from bench import limits

    rows = by_metric(limits.run(opts))
    ed = positive(rows["Ed25519 verify / s (1 core)"])
    sq = positive(rows["SQLite inserts / s (1 tx, WAL)"])
    assert positive(rows["physical limit (lower of the two)"]) == min(ed, sq)
    # Whole chains verified, each record after its predecessor (the two rates are timed at
    # different moments, so comparing them would only measure how busy the machine was).
    chain = rows["sync.chain.verify_record / s (1 core)"]
    assert positive(chain) > 0 and chain.extra["records"] % 300 == 0, chain.extra


def test_node_load(opts: Options) -> None:
    from bench import node_load

    rows = by_metric(node_load.run(opts))
    p50 = positive(rows["ticket issue p50 @ fixed rate"])
    p99 = rows["ticket issue p99 @ fixed rate"]
    assert positive(p99) >= p50
    assert p99.status in ("PASS", "MISS") and p99.target
    assert p99.extra["fixed"]["errors"] == 0
    assert p99.extra["fixed"]["sent"] == int(opts.rate * opts.duration)
    assert positive(rows["ticket issue at saturation"]) > 5
    assert rows["window call-next+finish (during load)"].extra["windows"]["called"] > 0
    assert 10 < positive(rows["resident memory peak (VmHWM)"]) < 2000
    assert 0 < positive(rows["start-up to /api/v1/queues"]) < 30


def test_replication(opts: Options) -> None:
    from bench import replication

    rows = by_metric(replication.run(opts))
    full = rows["full catch-up"]
    assert positive(full) > 0
    assert full.extra["all_verified"], full.note
    assert full.extra["records"] >= opts.n
    assert positive(rows["incremental push"]) > 0
    assert 50 < positive(rows["bytes on the wire per record"]) < 2000
    assert positive(rows["hub RSS (VmHWM)"]) > 10


def test_hub_ingest(opts: Options) -> None:
    from bench import hub_ingest

    rows = hub_ingest.run(opts)
    (row,) = rows
    assert by_metric(rows)
    assert row.metric == f"ingest, {opts.hub_nodes} nodes at once"
    assert positive(row) > 0
    assert row.extra["acked"] == opts.hub_nodes * opts.hub_records
    assert row.extra["all_acked"]


def test_dashboard(opts: Options) -> None:
    from bench import dashboard

    rows = by_metric(dashboard.run(opts))
    gen = rows["generate hub DB (direct SQL + rollups)"]
    assert gen.extra["events"] == opts.dash_events and gen.extra["nodes"] == opts.dash_nodes
    nodes = rows["GET /api/v1/nodes p50"]
    assert positive(nodes) > 0
    assert nodes.extra["status"] == 200


def test_rebuild(opts: Options) -> None:
    from bench import rebuild

    rows = by_metric(rebuild.run(opts))
    positive(rows["events written with their projections / s"])
    positive(rows["events rebuilt and compared / s"])


def test_peer_is_skipped_and_its_output_parsed(opts: Options) -> None:
    from bench import peer

    rows = peer.run(opts)
    assert rows and all(r.status == "SKIP" and r.value is None for r in rows)
    kv = peer.parse(
        "doc_bytes=1031\nfull: 2000 docs in 1.22 s\npouchdb_full_docs_per_s=1638\n"
        "pouchdb_server_rss_kb=139024\n"
    )
    assert kv == {
        "doc_bytes": "1031",
        "pouchdb_full_docs_per_s": "1638",
        "pouchdb_server_rss_kb": "139024",
    }


def test_report_targets_table_and_json(tmp_path: Path) -> None:
    rows = [
        Row("limits", "Ed25519 verify / s (1 core)", 8000.0, "/s"),
        Row("limits", "physical limit (lower of the two)", 8000.0, "records/s"),
        Row("limits", "sync.chain.verify_record / s (1 core)", 5000.0, "records/s"),
        Row("replication", "full catch-up", 3000.0, "records/s", extra={"all_verified": True}),
        Row("replication", "incremental push", 1000.0, "records/s"),
        Row("replication", "hub RSS (VmHWM)", 70.0, "MB"),
        Row("peer", "PouchDB full replication", 500.0, "docs/s"),
        Row(
            "peer", "PouchDB incremental (1,000)", None, "docs/s", status="SKIP", note="peer absent"
        ),
        Row("peer", "pouchdb-server RSS (VmHWM)", 140.0, "MB"),
        Row("hub", "ingest, 200 nodes at once", 3000.0, "records/s"),
    ]
    derived = {r.metric: r for r in report.derived(rows)}
    assert derived["replication full: onestop / peer"].value == 6.0
    assert derived["replication full: onestop / peer"].status == "PASS"
    assert derived["replication incremental: onestop / peer"].status == "SKIP"
    assert derived["server RSS: onestop hub / pouchdb-server"].value == 0.5
    hub = derived["hub ingest / physical limit"]
    assert hub.value == 3000 / 8000 and hub.status == "MISS"
    assert "verify_record" in hub.note  # says what bounds it
    text = report.table(rows + list(derived.values()))
    assert "| hub | ingest, 200 nodes at once | 3,000 |" in text
    out = tmp_path / "r.json"
    report.write_json(out, rows, {"date": "x"})
    doc = json.loads(out.read_text())
    assert doc["date"] == "x" and len(doc["rows"]) == len(rows)


def test_command_line_options() -> None:
    from bench.__main__ import NAMES, parse_args

    opts, names, _ = parse_args(["--quick", "--only", "node,limits", "--n", "300"])
    assert opts.quick and opts.n == 300 and names == ["limits", "node"]
    opts, names, _ = parse_args([])
    assert names == list(NAMES) and opts.n == 20_000 and opts.dash_events == 5_000_000
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])
