"""Rebuild benchmark: a node's tables again from its signed log (``onestop node rebuild``).

1. ``onestop node init`` (the shipped catalog, windows, staff) in a temporary directory;
2. a day of window work through the node's own domain functions, on a pinned clock: each
   citizen takes a ticket (ID and phone sealed to the recovery key), window 1 calls and
   finishes it (three events per citizen, each applied by its projector as it is written);
3. :func:`node.rebuild.run`: the log copied into a fresh database, every event applied by
   its projector, every projected table compared row by row with the live one, personal
   data opened with the recovery key and compared too.

Reported: events written per second with their projections (the live path) and events
rebuilt and compared per second; the run checks that the rebuild equals the live tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time

from bench.common import Options, Row, log, workdir


def run(opts: Options) -> list[Row]:
    from stdnum.cn import ric

    from node import config as cfgm
    from node import db as dbm
    from node import pii as piim
    from node import rebuild, tickets, windows
    from onestop.cli import main as cli

    people = 150 if opts.quick else 3_000
    with workdir(opts, "rebuild") as tmp:
        data = tmp / "node"
        args = ["node", "init", "--data", str(data), "--code", "370102001", "--name", "基准中心",
                "--level", "township"]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(args) == 0
            assert cli(["node", "window", "add", "--data", str(data), "--number", "1",
                        "--queues", "*"]) == 0  # fmt: skip
        cfg = cfgm.load(data)
        db = dbm.connect(cfg.db_path)
        pii = piim.load(data)
        clock = [dt.datetime(2026, 6, 1, 0, 30, tzinfo=dt.UTC)]

        def now() -> dt.datetime:
            clock[0] += dt.timedelta(seconds=5)
            return clock[0]

        t0 = time.perf_counter()
        for i in range(people):
            body = "370102198506" + f"{12 + i % 17:02d}" + f"{100 + i % 900:03d}"
            person = {"queue": "dept:edu", "id_number": body + ric.calc_check_digit(body + "0"),
                      "phone": "13800138000"}  # fmt: skip
            tickets.issue(db, cfg, pii, person, now=now)
            windows.call_next(db, cfg, 1, "bench", now=now)
            windows.finish(db, 1, "bench", now=now)
        live_s = time.perf_counter() - t0
        events = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        db.conn.close()
        t0 = time.perf_counter()
        report = rebuild.run(data)
        rebuild_s = time.perf_counter() - t0
    if not report.equal or not report.personal_compared:
        raise RuntimeError(f"the rebuild differs from the live tables: {report.failures[:5]}")
    log(opts, f"rebuild: {events} events, live {live_s:.2f} s, rebuild {rebuild_s:.2f} s")
    note = f"{events} events ({people} citizens: issued, called, finished)"
    return [
        Row("rebuild", "events written with their projections / s", events / live_s, "events/s",
            note=note),
        Row("rebuild", "events rebuilt and compared / s", events / rebuild_s, "events/s",
            note=note + "; every table equal, personal data included"),
    ]  # fmt: skip
