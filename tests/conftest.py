"""Shared fixtures: fresh node data directories in tmp_path, real servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stdnum.cn import ric

from node import config as cfgm
from onestop.cli import main as cli

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


def init_node(data: Path, code: str = "370102001", name: str = "解放路街道便民服务中心",
              windows: bool = True, **extra: str) -> cfgm.NodeConfig:
    args = ["node", "init", "--data", str(data), "--code", code, "--name", name,
            "--level", "township"]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    assert run_cli(*args) == 0
    assert run_cli("node", "user", "add", "--data", str(data), "--username", ADMIN[0],
                   "--role", "admin", stdin=ADMIN[1] + "\n") == 0
    if windows:
        assert run_cli("node", "window", "add", "--data", str(data), "--number", "1",
                       "--name", "综合窗口", "--queues", "*") == 0
        assert run_cli("node", "window", "add", "--data", str(data), "--number", "2",
                       "--queues", "dept:edu,dept:civil") == 0
        assert run_cli("node", "window", "add", "--data", str(data), "--number", "3",
                       "--queues", "area:agri") == 0
        assert run_cli("node", "user", "add", "--data", str(data), "--username", CLERK[0],
                       "--role", "window", "--window", "1", stdin=CLERK[1] + "\n") == 0
        assert run_cli("node", "user", "add", "--data", str(data), "--username", CLERK2[0],
                       "--role", "window", stdin=CLERK2[1] + "\n") == 0
    return cfgm.load(data)


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    init_node(data)
    return data


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, data: Path) -> None:
        self.proc, self.url, self.data = proc, url, data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_process(args: list[str], url: str, data: Path, log: Path) -> LiveServer:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    fh = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "onestop.cli", *args], stdout=fh,
                            stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(url + "/api/v1/queues", timeout=1).read()
            return LiveServer(proc, url, data)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def live_node(node_dir: Path) -> Iterator[LiveServer]:
    """The node served by a real `onestop node serve` process on 127.0.0.1."""
    port = free_port()
    srv = start_process(["node", "serve", "--data", str(node_dir), "--port", str(port)],
                        f"http://127.0.0.1:{port}", node_dir, node_dir / "serve.log")
    yield srv
    srv.stop()
