"""Shared fixtures: fresh node data directories in tmp_path, real servers on 127.0.0.1.

A node (and a hub) is initialised once per session, through the CLI, into a template
directory; every test gets its own copy of it (``shutil.copytree`` into its tmp_path), so
each test's database is fresh and independent without paying for ``onestop node init``
(migrations, the catalog, keys, several password hashes) again and again.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stdnum.cn import ric

from node import config as cfgm
from onestop.cli import main as cli
from onestop.commands import SERVING

ADMIN = ("admin", "admin-pass-1")
CLERK = ("clerk1", "clerk-pass-1")
CLERK2 = ("clerk2", "clerk-pass-2")


def make_id(birth: dt.date | str = "19850612", region: str = "370102", seq: str = "123") -> str:
    """A valid GB 11643-1999 ID number for the given birth date."""
    if isinstance(birth, dt.date):
        birth = birth.strftime("%Y%m%d")
    body = region + birth + seq
    return body + ric.calc_check_digit(body + "0")


PHONE = "13800138000"


def run_cli(*args: str, stdin: str | None = None) -> int:
    if stdin is None:
        return cli(list(args))
    import io

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return cli(list(args))
    finally:
        sys.stdin = old


def init_node(
    data: Path,
    code: str = "370102001",
    name: str = "解放路街道便民服务中心",
    windows: bool = True,
    **extra: str,
) -> cfgm.NodeConfig:
    args = [
        "node",
        "init",
        "--data",
        str(data),
        "--code",
        code,
        "--name",
        name,
        "--level",
        "township",
    ]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    assert run_cli(*args) == 0
    # Tests take many tickets with one ID number (make_id()); the per-person cap
    # (default 2) has tests of its own that set it back.
    toml = data / "node.toml"
    toml.write_text(
        toml.read_text().replace("max_live_tickets_per_id = 2", "max_live_tickets_per_id = 50")
    )
    assert (
        run_cli(
            "node",
            "user",
            "add",
            "--data",
            str(data),
            "--username",
            ADMIN[0],
            "--role",
            "admin",
            stdin=ADMIN[1] + "\n",
        )
        == 0
    )
    if windows:
        assert (
            run_cli(
                "node",
                "window",
                "add",
                "--data",
                str(data),
                "--number",
                "1",
                "--name",
                "综合窗口",
                "--queues",
                "*",
            )
            == 0
        )
        assert (
            run_cli(
                "node",
                "window",
                "add",
                "--data",
                str(data),
                "--number",
                "2",
                "--queues",
                "dept:edu,dept:civil",
            )
            == 0
        )
        assert (
            run_cli(
                "node",
                "window",
                "add",
                "--data",
                str(data),
                "--number",
                "3",
                "--queues",
                "area:agri",
            )
            == 0
        )
        assert (
            run_cli(
                "node",
                "user",
                "add",
                "--data",
                str(data),
                "--username",
                CLERK[0],
                "--role",
                "window",
                "--window",
                "1",
                stdin=CLERK[1] + "\n",
            )
            == 0
        )
        assert (
            run_cli(
                "node",
                "user",
                "add",
                "--data",
                str(data),
                "--username",
                CLERK2[0],
                "--role",
                "window",
                stdin=CLERK2[1] + "\n",
            )
            == 0
        )
    return cfgm.load(data)


def hub_ack_seq(hub_dir: Path, code: str) -> int:
    """Where a hub stands for a node, from its database (its position endpoint wants a request
    signed by the node, or a hub login); -1 when the node is not enrolled."""
    conn = sqlite3.connect(f"{(hub_dir / 'hub.db').resolve().as_uri()}?mode=ro", uri=True,
                           timeout=30)  # fmt: skip
    try:
        row = conn.execute("SELECT ack_seq FROM nodes WHERE code = ?", [code]).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else -1


def settle_db(path: Path) -> None:
    """Fold the WAL into the database file and close it, so the file alone is the whole
    database and copies as one consistent file."""
    gc.collect()  # sqlite_utils connections the in-process CLI calls left open
    conn = sqlite3.connect(path)
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.close()
    assert busy == 0, f"{path} is still in use"
    for suffix in ("-wal", "-shm"):
        assert not path.with_name(path.name + suffix).exists(), f"{path}{suffix} is left open"


def _assert_no_reference(dest: Path, template: Path) -> None:
    """No file of a copy names where the template lives (config files with absolute paths:
    the template's directory, or the replica beside it)."""
    for old in {str(template.parent), str(template.parent.resolve())}:
        needle = old.encode()
        for f in dest.rglob("*"):
            if f.is_file():
                assert needle not in f.read_bytes(), f"{f} names the template {old}"


def copy_node(template: Path, dest: Path) -> Path:
    """A copy of an initialised node at ``dest``, configured as if ``onestop node init
    --data dest`` had made it."""
    from node import litestream as lsm

    shutil.copytree(template, dest)
    # litestream.yml holds absolute paths (the database, DIR/../replica): write it anew
    # exactly as ``node init`` does for this directory.
    lsm.write(dest, dest / "node.db", lsm.ReplicaSettings())
    _assert_no_reference(dest, template)
    return dest


def copy_hub(template: Path, dest: Path) -> Path:
    """A copy of an initialised hub at ``dest`` (hub.toml holds no paths)."""
    shutil.copytree(template, dest)
    _assert_no_reference(dest, template)
    return dest


@pytest.fixture(scope="session")
def node_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The usual test node (three windows, admin and two clerks), initialised once."""
    data = tmp_path_factory.mktemp("node-template") / "node"
    init_node(data)
    settle_db(data / "node.db")
    return data


@pytest.fixture(scope="session")
def hub_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub just after ``onestop hub init``, made once."""
    data = tmp_path_factory.mktemp("hub-template") / "hub"
    assert run_cli("hub", "init", "--data", str(data)) == 0
    settle_db(data / "hub.db")
    return data


@pytest.fixture
def node_dir(tmp_path: Path, node_template: Path) -> Path:
    return copy_node(node_template, tmp_path / "node")


@pytest.fixture
def node_config(node_dir: Path) -> cfgm.NodeConfig:
    return cfgm.load(node_dir)


@pytest.fixture
async def client(aiohttp_client: Any, node_config: cfgm.NodeConfig) -> Any:
    from node.app import create_app

    return await aiohttp_client(create_app(node_config))


async def login(client: Any, user: tuple[str, str] = ADMIN) -> dict[str, str]:
    """Log in through the API; returns headers carrying the CSRF token."""
    r = await client.post("/api/v1/login", json={"username": user[0], "password": user[1]})
    assert r.status == 200, await r.text()
    return {"X-CSRF-Token": (await r.json())["csrf_token"]}


class LiveServer:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, data: Path) -> None:
        self.proc, self.url, self.data = proc, url, data

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _log_since(log: Path, offset: int) -> str:
    with log.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def wait_serving(proc: subprocess.Popen[bytes], log: Path, probe: str, offset: int = 0,
                 timeout: float = 30) -> str | None:  # fmt: skip
    """The URL a ``serve`` process names in its "serving on" line (in ``log`` after
    ``offset``), once it answers ``probe``; None when the process exits first."""
    deadline = time.monotonic() + timeout
    url = ""
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise RuntimeError(f"server did not start: {_log_since(log, offset)[-2000:]}")
        if not url:
            m = SERVING.search(_log_since(log, offset))
            url = m[1] if m else ""
        if url:
            try:
                urllib.request.urlopen(url + probe, timeout=1).read()
                return url
            except urllib.error.HTTPError:
                return url  # it answers
            except OSError:
                pass
        time.sleep(0.05)
    return None


def start_server(
    args: list[str], data: Path, log: Path, probe: str = "/api/v1/queues", timeout: float = 30
) -> LiveServer:
    """``onestop ARGS`` (a ``serve`` command) in a subprocess, once it answers ``probe``.

    Pass ``--port 0`` and the server binds a port of its own choosing and names it in its
    "serving on" line, which is where the URL comes from (no port is picked here and then
    raced for).  A fixed ``--port`` (a server started again where its clients expect it) is
    tried again while the port is still taken."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    deadline = time.monotonic() + timeout
    while True:
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "onestop.cli", *args],
                                    stdout=fh, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        url = wait_serving(proc, log, probe, offset, deadline - time.monotonic())
        if url:
            return LiveServer(proc, url, data)
        out = _log_since(log, offset)
        if "address already in use" not in out.lower() or time.monotonic() > deadline:
            raise RuntimeError(f"server exited: {out[-2000:]}")
        time.sleep(0.2)  # a fixed port still held by someone else: try again


@pytest.fixture
def live_node(node_dir: Path) -> Iterator[LiveServer]:
    """The node served by a real `onestop node serve` process on 127.0.0.1."""
    srv = start_server(["node", "serve", "--data", str(node_dir), "--port", "0"],
                       node_dir, node_dir / "serve.log")  # fmt: skip
    yield srv
    srv.stop()


def _ephemeral_ports() -> range:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(lo), int(hi) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def fixed_port(offsets: tuple[int, ...] = (0,)) -> int:
    """A port ``base`` with ``base + offset`` free now for every offset, for servers that
    must be told their ports before they start (a playbook's inventory, the demo's fixed
    layout), where port 0 cannot be used.

    It comes from below the kernel's ephemeral range, where every port-0 bind and outgoing
    connection gets its port, so nothing else on the machine takes it by chance meanwhile."""
    top = _ephemeral_ports().start - max(offsets)
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, top)
        try:
            for off in offsets:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports below the ephemeral range")


class ClosedPort:
    """A local port bound but not listening: connecting to it is refused, and nothing else
    can take it while this is open."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def __enter__(self) -> ClosedPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
