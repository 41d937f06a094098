"""Recovery point of a node replicated by Litestream with the default settings.

    python -m bench.rpo                      # 3 trials, 20 tickets/s, kill after 4-8 s
    python -m bench.rpo --trials 10 --rate 50 --json rpo.json

Each trial: a fresh node (``onestop node init``, default ``litestream.yml``: monitor and sync
every 1 s to a file replica), ``onestop node serve`` and ``onestop node replicate`` as real
processes; tickets are issued through ``POST /api/v1/tickets`` at a steady rate, each one's
answer time noted; at a random moment both processes get SIGKILL together (a lost machine),
the database and its ``-wal``/``-shm`` are deleted, ``onestop node restore --no-hub`` brings it
back from the replica, and the answered tickets missing from the restored ``tickets`` table are
counted.  The RPO of the trial is the time between the first missing ticket's answer and the
kill (0 when nothing is missing): the writes a node can lose when it has no hub to recover
them from.  (With a hub, ``onestop node restore`` also recovers what the hub had acknowledged.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from onestop.commands import SERVING

QUEUES = ("dept:edu", "dept:civil", "area:agri")


def onestop(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "onestop.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"onestop {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "onestop.cli", *args],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=env or dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> str:
    """The URL a ``serve --port 0`` process names in its "serving on" line, once it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text(errors='replace')[-2000:]}")
        found = SERVING.search(log.read_text(errors="replace"))
        if found is not None:
            try:
                urllib.request.urlopen(found.group(1) + "/api/v1/queues", timeout=1).read()
                return found.group(1)
            except urllib.error.HTTPError:
                return found.group(1)
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"the node did not answer: {log.read_text(errors='replace')[-2000:]}")


def wait_replicating(proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"litestream exited: {log.read_text(errors='replace')[-2000:]}")
        if "replicating to" in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"litestream did not start: {log.read_text(errors='replace')[-2000:]}")


def make_id(n: int) -> str:
    from stdnum.cn import ric

    body = f"370102198506{(n % 28) + 1:02d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def issue(url: str, n: int) -> str:
    body = json.dumps(
        {"queue": QUEUES[n % len(QUEUES)], "id_number": make_id(n), "phone": "13800138000"}
    ).encode()
    req = urllib.request.Request(
        url + "/api/v1/tickets", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    return f"{out['service_date']} {out['queue']} {out['ticket_no']}"


def init_node(data: Path, port: int) -> None:
    onestop(
        "node",
        "init",
        "--data",
        str(data),
        "--code",
        "370102001",
        "--name",
        "解放路街道便民服务中心",
        "--level",
        "township",
        "--port",
        str(port),
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def delete_db(data: Path) -> None:
    for name in ("node.db", "node.db-wal", "node.db-shm"):
        (data / name).unlink(missing_ok=True)


def restored_tickets(data: Path) -> set[str]:
    conn = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    try:
        return {
            f"{d} {q} {n}"
            for d, q, n in conn.execute("SELECT service_date, issued_queue, ticket_no FROM tickets")
        }
    finally:
        conn.close()


@dataclass
class Trial:
    written: int = 0
    missing: int = 0
    rpo_seconds: float = 0.0  # first missing ticket's answer -> kill
    kill_after_seconds: float = 0.0
    rate: float = 0.0
    restore_seconds: float = 0.0
    missing_tickets: list[str] = field(default_factory=list)


def trial(work: Path, *, rate: float = 20.0, kill_after: float = 5.0) -> Trial:
    """One node, steady writes, SIGKILL of node and litestream, restore from the replica."""
    data = work / "node"
    init_node(data, 0)  # port 0: the node picks a free port and names it in its log
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("ONESTOP_LITESTREAM", None)
    ls = spawn(["node", "replicate", "--data", str(data)], work / "litestream.log", env)
    node = spawn(["node", "serve", "--data", str(data)], work / "node.log", env)
    acked: list[tuple[float, str]] = []
    try:
        wait_replicating(ls, work / "litestream.log")
        url = wait_serving(node, work / "node.log")
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < kill_after:
            due = start + n / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            acked.append((time.monotonic(), issue(url, n)))
            n += 1
        killed_at = time.monotonic()
        os.kill(node.pid, signal.SIGKILL)
        os.kill(ls.pid, signal.SIGKILL)
    finally:
        kill(node)
        kill(ls)
    delete_db(data)
    t0 = time.monotonic()
    onestop("node", "restore", "--data", str(data), "--no-hub")
    took = time.monotonic() - t0
    have = restored_tickets(data)
    missing = [(t, k) for t, k in acked if k not in have]
    rpo = killed_at - missing[0][0] if missing else 0.0
    return Trial(
        written=len(acked),
        missing=len(missing),
        rpo_seconds=round(rpo, 3),
        kill_after_seconds=round(kill_after, 3),
        rate=rate,
        restore_seconds=round(took, 3),
        missing_tickets=[k for _, k in missing],
    )


def measure(
    trials: int = 3,
    rate: float = 20.0,
    min_s: float = 4.0,
    max_s: float = 8.0,
    seed: int | None = None,
    work: Path | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        with tempfile.TemporaryDirectory(prefix="onestop-rpo-", dir=work) as tmp:
            results.append(trial(Path(tmp), rate=rate, kill_after=rng.uniform(min_s, max_s)))
            print(
                f"trial {i + 1}: {results[-1].written} written, {results[-1].missing} missing, "
                f"RPO {results[-1].rpo_seconds:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    rpos = [t.rpo_seconds for t in results]
    return {
        "settings": {"monitor-interval": "1s", "sync-interval": "1s", "replica": "file"},
        "rate_per_second": rate,
        "trials": [asdict(t) for t in results],
        "rpo_seconds_max": max(rpos),
        "rpo_seconds_mean": round(statistics.mean(rpos), 3),
        "missing_max": max(t.missing for t in results),
    }


def run(opts: Any) -> list[Any]:
    """``bench`` harness entry: one row for the worst RPO over a few trials."""
    from bench.common import Row

    quick = bool(getattr(opts, "quick", False))
    out = measure(trials=2 if quick else 3, min_s=3.0, max_s=5.0 if quick else 8.0)
    return [
        Row(
            "litestream",
            "RPO (kill -9, default settings)",
            out["rpo_seconds_max"],
            "s",
            "< 3 s",
            "PASS" if out["rpo_seconds_max"] < 3 else "MISS",
            f"{out['missing_max']} of ~{int(out['rate_per_second'])}/s writes lost at worst",
            extra=out,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.rpo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--rate", type=float, default=20.0, help="tickets per second (20)")
    p.add_argument("--min", type=float, default=4.0, help="earliest kill, seconds (4)")
    p.add_argument("--max", type=float, default=8.0, help="latest kill, seconds (8)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    out = measure(a.trials, a.rate, a.min, a.max, a.seed)
    for i, t in enumerate(out["trials"], 1):
        print(
            f"trial {i}: killed after {t['kill_after_seconds']:.1f} s, {t['written']} tickets "
            f"answered, {t['missing']} missing after restore, RPO {t['rpo_seconds']:.2f} s, "
            f"restore {t['restore_seconds']:.2f} s"
        )
    print(
        f"RPO: max {out['rpo_seconds_max']:.2f} s, mean {out['rpo_seconds_mean']:.2f} s "
        f"at {a.rate:g} writes/s (monitor-interval 1s, sync-interval 1s, file replica)"
    )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
