"""`make demo`'s main job: a hub and two centers on localhost, replicating."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import PHONE, fixed_port, hub_ack_seq, make_id


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as r:
        return dict(json.loads(r.read()))


def start_demo(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``onestop demo`` on a fixed layout of ports (port, port+1 and port+10), again on
    other ports if one was taken meanwhile."""
    for attempt in range(5):
        port = fixed_port((0, 1, 10))
        log = tmp_path / f"demo{attempt}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "onestop", "demo", "--data",
                                     str(tmp_path / f"demo{attempt}"), "--port", str(port)],
                                    stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            try:
                _get(f"http://127.0.0.1:{port + 10}/api/v1/health")
                _get(f"http://127.0.0.1:{port}/api/v1/queues")
                _get(f"http://127.0.0.1:{port + 1}/api/v1/queues")
                return proc, port, log
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        assert "address already in use" in log.read_text().lower(), log.read_text()
    raise AssertionError("the demo found no free ports")


def test_demo_serves_hub_and_two_centers_that_replicate(tmp_path: Path) -> None:
    proc, port, log = start_demo(tmp_path)
    try:
        node = f"http://127.0.0.1:{port}"
        hub_dir = log.with_suffix("") / "hub"
        before = hub_ack_seq(hub_dir, "370102001")
        req = urllib.request.Request(
            f"{node}/api/v1/tickets",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"queue": "dept:edu", "id_number": make_id(), "phone": PHONE}).encode(),
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
        deadline = time.time() + 20
        while hub_ack_seq(hub_dir, "370102001") <= before:
            assert time.time() < deadline, "the ticket never reached the hub"
            time.sleep(0.2)
        text = log.read_text()
        assert "/kiosk" in text and "/dash" in text and "onestop-admin" in text
    finally:
        proc.terminate()
        proc.wait(10)
