"""`make demo`'s main job: a hub and two centers on localhost, replicating."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import PHONE, free_port, make_id


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as r:
        return dict(json.loads(r.read()))


def test_demo_serves_hub_and_two_centers_that_replicate(tmp_path: Path) -> None:
    port = free_port()
    while True:  # the demo uses port, port+1 and port+10
        try:
            import socket

            for p in (port + 1, port + 10):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            break
        except OSError:
            port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "onestop", "demo", "--data",
                             str(tmp_path / "demo"), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        node, hub = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 10}"
        deadline = time.time() + 60
        while True:
            try:
                _get(f"{hub}/api/v1/health")
                _get(f"{node}/api/v1/queues")
                _get(f"http://127.0.0.1:{port + 1}/api/v1/queues")
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "demo.log").read_text()
                assert time.time() < deadline, (tmp_path / "demo.log").read_text()
                time.sleep(0.2)
        before = _get(f"{hub}/api/v1/ingest/370102001/position")["ack_seq"]
        req = urllib.request.Request(
            f"{node}/api/v1/tickets", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"queue": "dept:edu", "id_number": make_id(), "phone": PHONE}).encode())
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
        deadline = time.time() + 20
        while _get(f"{hub}/api/v1/ingest/370102001/position")["ack_seq"] <= before:
            assert time.time() < deadline, "the ticket never reached the hub"
            time.sleep(0.2)
        text = (tmp_path / "demo.log").read_text()
        assert "/kiosk" in text and "/dash" in text and "onestop-admin" in text
    finally:
        proc.terminate()
        proc.wait(10)
