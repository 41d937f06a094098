"""The shared fixtures themselves: a copied node or hub is as whole as a freshly made one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from hub import config as hubcfg
from hub import identity
from node import config as cfgm
from node import litestream as lsm
from tests.conftest import ClosedPort, copy_node, run_cli, start_server


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_node_copy_is_a_whole_node_of_its_own(
    node_dir: Path, node_template: Path, tmp_path: Path
) -> None:
    assert sorted(p.name for p in node_dir.iterdir()) == [
        "litestream.yml", "node.db", "node.key", "node.pub", "node.toml", "recovery.key",
        "recovery.pub", "secret.key",
    ]  # fmt: skip
    # litestream.yml is the one `node init --data node_dir` writes: this database, and the
    # replica beside this directory (not the template's).
    assert (node_dir / "litestream.yml").read_text() == lsm.render(
        node_dir / "node.db", lsm.ReplicaSettings(path=str(tmp_path / "replica"))
    )
    assert lsm.db_path_of(node_dir / "litestream.yml") == (node_dir / "node.db").resolve()
    assert (tmp_path / "replica").is_dir()
    cfg = cfgm.load(node_dir)
    assert cfg.data_dir == node_dir and cfg.code == "370102001" and cfg.hub_pubkey == ""
    # The signed log verifies with the copied key; the users and windows came along.
    done = subprocess.run(
        [sys.executable, "-m", "onestop.cli", "verify", "--data", str(node_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    assert _count(node_dir / "node.db", "users") == 3
    assert _count(node_dir / "node.db", "windows") == 3
    # Changing the copy leaves the template as it was (one settled file, no WAL).
    before = (node_template / "node.db").read_bytes()
    assert run_cli("node", "window", "add", "--data", str(node_dir), "--number", "4",
                   "--queues", "*") == 0  # fmt: skip
    assert _count(node_dir / "node.db", "windows") == 4
    assert (node_template / "node.db").read_bytes() == before
    assert sorted(p.name for p in node_template.iterdir()) == sorted(
        p.name for p in node_dir.iterdir() if not p.name.startswith("node.db-")
    )


def test_two_copies_are_independent(node_template: Path, tmp_path: Path) -> None:
    a = copy_node(node_template, tmp_path / "a" / "node")
    b = copy_node(node_template, tmp_path / "b" / "node")
    assert run_cli("node", "window", "add", "--data", str(a), "--number", "9",
                   "--queues", "*") == 0  # fmt: skip
    assert _count(a / "node.db", "windows") == 4 and _count(b / "node.db", "windows") == 3
    assert lsm.db_path_of(b / "litestream.yml") == (b / "node.db").resolve()


def test_hub_copy_is_a_whole_hub(hub_template: Path, tmp_path: Path) -> None:
    from tests.conftest import copy_hub

    data = copy_hub(hub_template, tmp_path / "hub")
    cfg = hubcfg.load(data)
    assert cfg.data_dir == data and cfg.db_path.exists()
    ident = identity.load(cfg)
    assert ident.seal_public_pem() == (data / "hub-seal.pub").read_text()
    assert (data / "hub.key").stat().st_mode & 0o077 == 0  # still private


def test_serve_on_port_0_names_the_bound_port(node_dir: Path) -> None:
    srv = start_server(["node", "serve", "--data", str(node_dir), "--port", "0"], node_dir,
                       node_dir / "serve.log")  # fmt: skip
    try:
        assert srv.port > 0
        log = (node_dir / "serve.log").read_text()
        assert f"onestop node 370102001 serving on http://127.0.0.1:{srv.port}/" in log
    finally:
        srv.stop()


def test_a_taken_fixed_port_is_tried_again_until_free(node_dir: Path) -> None:
    import threading
    import time

    log = node_dir / "serve.log"
    with ClosedPort() as taken:
        port = taken.port

        def let_go() -> None:  # the other holder lets go once the server found it taken
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if log.exists() and "address already in use" in log.read_text().lower():
                    break
                time.sleep(0.05)
            taken.sock.close()

        holder = threading.Thread(target=let_go)
        holder.start()
        srv = start_server(["node", "serve", "--data", str(node_dir), "--port", str(port)],
                           node_dir, log)  # fmt: skip
        holder.join()
    try:
        assert srv.port == port
        text = log.read_text()
        assert "address already in use" in text.lower()
        assert f"onestop node 370102001 serving on http://127.0.0.1:{port}/" in text
    finally:
        srv.stop()
