"""``python -m bench`` (``make bench``): run every benchmark, print one table, write JSON.

    python -m bench                 # everything at full size (N=20,000, 5M dashboard events)
    python -m bench --quick         # smaller sizes, a few minutes
    python -m bench --only node     # one benchmark (repeat or comma-separate for several)
    python -m bench --n 5000        # replication size (also env ONESTOP_BENCH_N)

Benchmarks: limits, node, replication, peer, hub, dashboard.  Results go to
``bench/results/latest.json`` (and the path given with ``--json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import report
from bench.common import REPO, Options, Row, loadavg, machine_facts

NAMES = ("limits", "node", "replication", "peer", "hub", "dashboard", "rebuild")


def _runner(name: str) -> Callable[[Options], list[Row]]:
    import importlib

    mod = {"node": "node_load", "hub": "hub_ingest"}.get(name, name)
    fn: Callable[[Options], list[Row]] = importlib.import_module(f"bench.{mod}").run
    return fn


def parse_args(argv: list[str] | None) -> tuple[Options, list[str], Path]:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes (minutes, not tens)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only these benchmarks ({', '.join(NAMES)})",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="replication records (default 20000; env ONESTOP_BENCH_N)",
    )
    p.add_argument(
        "--dash-events",
        type=int,
        default=None,
        help="events in the dashboard hub database (default 5,000,000)",
    )
    p.add_argument("--hub-nodes", type=int, default=None, help="nodes pushing at once (200)")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds of the node's fixed-rate run (10)"
    )
    p.add_argument("--no-peer", action="store_true", help="skip the PouchDB peer")
    p.add_argument("--keep", action="store_true", help="keep the temporary directories")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    opts = Options.quick_defaults() if a.quick else Options()
    n = a.n or (int(os.environ["ONESTOP_BENCH_N"]) if os.environ.get("ONESTOP_BENCH_N") else None)
    if n:
        opts.n = n
    if a.dash_events:
        opts.dash_events = a.dash_events
    if a.hub_nodes:
        opts.hub_nodes = a.hub_nodes
    if a.duration:
        opts.duration = a.duration
    opts.peer = not a.no_peer
    opts.keep = a.keep
    only = [x.strip() for item in a.only for x in item.split(",") if x.strip()]
    bad = [x for x in only if x not in NAMES]
    if bad:
        p.error(f"unknown benchmark {', '.join(bad)}; choose from {', '.join(NAMES)}")
    names = [x for x in NAMES if not only or x in only]
    return opts, names, a.json


def run_all(opts: Options, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        t0 = time.perf_counter()
        try:
            got = _runner(name)(opts)
        except Exception as exc:  # one broken benchmark must not hide the others
            if opts.verbose:
                traceback.print_exc()
            msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]
            got = [Row(name, "(benchmark failed)", None, status="ERROR", note=msg)]
        took = time.perf_counter() - t0
        for r in got:
            r.extra.setdefault("bench_seconds", round(took, 1))
        rows += got
        if opts.verbose:
            print(f"[bench] {name}: {took:.1f} s", file=sys.stderr, flush=True)
    return rows


def _load(values: object) -> str:
    return "/".join(f"{v:.1f}" for v in values) if isinstance(values, list) else "?"


def main(argv: list[str] | None = None) -> int:
    opts, names, json_path = parse_args(argv)
    started = dt.datetime.now().astimezone()
    load_before = loadavg()
    rows = run_all(opts, names)
    rows += report.derived(rows)
    machine = machine_facts()
    load_after = loadavg()
    meta: dict[str, object] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "options": {k: v for k, v in vars(opts).items()},
        "benchmarks": names,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    m = machine
    print(
        f"\nonestop benchmarks, {started:%Y-%m-%d %H:%M %Z}: {m['cores']} cores "
        f"{m['cpu_model']}, Python {m['python']}, SQLite {m['sqlite']}"
        f"{' (quick)' if opts.quick else ''}; load average {_load(load_before)} before, "
        f"{_load(load_after)} after\n"
    )
    print(report.table(rows))
    out = REPO / "bench" / "results" / "latest.json"
    report.write_json(out, rows, meta)
    if json_path:
        report.write_json(json_path, rows, meta)
    print(f"\nwritten: {out.relative_to(REPO)}")
    return 1 if any(r.status == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
