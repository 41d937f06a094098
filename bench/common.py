"""Shared pieces of the benchmarks: result rows, paths, processes, percentiles, memory."""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from onestop.commands import SERVING

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Options:
    """What ``python -m bench`` was asked for; each benchmark reads the fields it needs."""

    quick: bool = False
    n: int = 20_000  # replication records
    incremental: int = 1_000
    rate: float = 100.0  # node: fixed request rate (req/s)
    duration: float = 10.0  # node: seconds at the fixed rate
    sat_duration: float = 5.0  # node: seconds at saturation
    sat_concurrency: int = 16
    windows: int = 4
    window_service_s: float = 0.0  # node: a window's pause between call-next and finish
    hub_nodes: int = 200
    hub_records: int = 100  # records each of the hub_nodes pushes
    dash_events: int = 5_000_000
    dash_nodes: int = 2_000
    dash_samples: int = 30
    peer: bool = True
    peer_n: int | None = None  # default: same as n
    keep: bool = False  # keep temporary directories (for debugging)
    verbose: bool = True

    @classmethod
    def quick_defaults(cls) -> Options:
        return cls(
            quick=True,
            n=2_000,
            incremental=200,
            duration=3.0,
            sat_duration=2.0,
            hub_nodes=50,
            hub_records=40,
            dash_events=200_000,
            dash_nodes=200,
            dash_samples=10,
        )

    @classmethod
    def tiny(cls) -> Options:
        """Seconds per benchmark: the smoke test's size."""
        return cls(
            quick=True,
            n=200,
            incremental=50,
            rate=50.0,
            duration=1.0,
            sat_duration=1.0,
            sat_concurrency=4,
            windows=2,
            hub_nodes=5,
            hub_records=10,
            dash_events=5_000,
            dash_nodes=20,
            dash_samples=3,
            peer=False,
            verbose=False,
        )


@dataclass
class Row:
    """One line of the results table."""

    bench: str  # which benchmark (node, replication, peer, limits, hub, dashboard, targets)
    metric: str
    value: float | None  # None: not measured (see note)
    unit: str = ""
    target: str = ""  # e.g. "< 20 ms"; empty when the row has no target
    status: str = ""  # PASS, MISS, SKIP or ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skipped(bench: str, metric: str, why: str, unit: str = "", target: str = "") -> Row:
    return Row(bench, metric, None, unit, target, "SKIP", why)


def log(opts: Options, msg: str) -> None:
    if opts.verbose:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where the benchmarks keep what is worth keeping between runs (the peer's npm install)."""
    base = os.environ.get("ONESTOP_BENCH_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "onestop-bench"


@contextlib.contextmanager
def workdir(opts: Options, prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards unless ``opts.keep``."""
    d = Path(tempfile.mkdtemp(prefix=f"onestop-bench-{prefix}-"))
    try:
        yield d
    finally:
        if opts.keep:
            log(opts, f"kept {d}")
        else:
            import shutil

            shutil.rmtree(d, ignore_errors=True)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def proc_status_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process, in kB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.startswith("Vm") and rest.strip().endswith("kB"):
            out[key] = int(rest.split()[0])
    return out


def onestop_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "onestop.cli", *args]


def run_onestop(*args: str, stdin: str | None = None, timeout: float = 600) -> str:
    """Run an ``onestop`` command in a child process; its output, or RuntimeError."""
    p = subprocess.run(
        onestop_argv(*args),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env=child_env(),
    )
    if p.returncode != 0:
        raise RuntimeError(
            f"onestop {' '.join(args[:3])} failed ({p.returncode}): {p.stderr[-2000:]}"
        )
    return p.stdout


def run_cli_inprocess(*args: str, stdin: str | None = None) -> str:
    """Run an ``onestop`` command in this process (fast: no interpreter start); its output."""
    from onestop.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = old_stdin
    if code != 0:
        raise RuntimeError(f"onestop {' '.join(args[:3])} failed ({code}): {err.getvalue()}")
    return out.getvalue()


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class Server:
    """A server child process (``onestop node serve`` / ``onestop hub serve``) started with
    ``--port 0``: it binds a port of its own and names it in its "serving on" log line, where
    :attr:`url` comes from (no port is picked here and then raced for)."""

    def __init__(self, argv: list[str], log_path: Path, ready_path: str) -> None:
        self.url = ""
        self.log_path = log_path
        self._offset = log_path.stat().st_size if log_path.exists() else 0
        self._fh = log_path.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdout=self._fh, stderr=subprocess.STDOUT, cwd=REPO, env=child_env()
        )
        self.startup_s = self._wait(ready_path)

    def _wait(self, path: str, timeout: float = 60) -> float:
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}): {self.tail()}")
            if not self.url:
                found = SERVING.search(self.log_path.read_bytes()[self._offset :].decode(
                    "utf-8", "replace"))  # fmt: skip
                if found is None:
                    time.sleep(0.005)
                    continue
                self.url = found.group(1)
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    r.read()
                return time.perf_counter() - self.started
            except urllib.error.HTTPError:
                # It answers: up (the path may need authentication).
                return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"server did not answer {path} in {timeout} s: {self.tail()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory_kb(self) -> dict[str, int]:
        return proc_status_kb(self.proc.pid)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def loadavg() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def machine_facts() -> dict[str, Any]:
    import platform

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    import sqlite3

    try:
        import cryptography

        crypto_version = cryptography.__version__
    except ImportError:  # pragma: no cover
        crypto_version = ""
    return {
        "loadavg": loadavg(),
        "cores": os.cpu_count() or 0,
        "cpu_model": model or platform.processor(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cryptography": crypto_version,
        "platform": platform.platform(),
    }
