"""Ansible rollout: the inventory generator, lint, and a real run of site.yml.

The end-to-end test runs ``ansible-playbook`` (from this venv) with ``connection: local``
against three "hosts" — a hub and two township nodes — each installing into its own root
under ``tmp_path`` (``onestop_root``) with its own virtualenv made from the wheel the playbook
builds once; services run as background processes (``onestop_service_manager: none``).
A ticket taken at a node reaches the hub; a second run changes nothing; ``--check --diff``
passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import site
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench import rpo
from onestop import divisions
from onestop.cli import ansible as ansible_cli
from tests.conftest import fixed_port, hub_ack_seq, run_cli

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
# PLAY RECAP lines: host -> (ok, changed, unreachable, failed)
RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


# ---- inventory ---------------------------------------------------------------------------


def test_divisions_load_and_tree() -> None:
    rows = divisions.load()
    assert len(rows) == 2021
    levels = [r["level"] for r in rows]
    assert (
        levels.count("province"),
        levels.count("city"),
        levels.count("county"),
        levels.count("township"),
    ) == (1, 16, 151, 1853)
    assert [r["code"] for r in divisions.children("37")][:2] == ["3701", "3702"]
    jinan = divisions.subtree("3701")
    assert jinan[0]["name"] == "济南市" and all(r["code"].startswith("3701") for r in jinan)
    assert [a["code"] for a in divisions.ancestors("370102001")] == ["370102", "3701", "37"]
    assert divisions.tree()[""] == ["37"]


def test_divisions_schema_rejects_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,name,level,parent_code\n37,山东省,province,\n3701,济南市,county,37\n",
        encoding="utf-8",
    )
    with pytest.raises(divisions.DivisionError, match="3701"):
        divisions.load(bad)
    orphan = tmp_path / "orphan.csv"
    orphan.write_text(
        "code,name,level,parent_code\n37,山东省,province,\n3799,X,city,38\n", encoding="utf-8"
    )
    with pytest.raises(divisions.DivisionError, match="parent 38"):
        divisions.load(orphan)


def test_inventory_groups_hosts_and_vars(tmp_path: Path) -> None:
    out = tmp_path / "hosts.yml"
    assert (
        run_cli(
            "ansible",
            "inventory",
            "--under",
            "3701",
            "--hub-url",
            "https://hub.example:8090",
            "-o",
            str(out),
        )
        == 0
    )
    done = subprocess.run(
        [BIN / "ansible-inventory", "-i", str(out), "--list"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    inv = json.loads(done.stdout)
    jinan = divisions.subtree("3701")
    hosts = inv["_meta"]["hostvars"]
    assert len([h for h in hosts if h.startswith("c")]) == len(jinan)
    assert hosts["c370102001"]["onestop_node_code"] == "370102001"
    assert hosts["c370102001"]["onestop_node_name"] == "解放路街道"
    assert hosts["c370102001"]["onestop_node_level"] == "township"
    assert hosts["c370102001"]["onestop_node_parent"] == "370102"
    assert hosts["c370102001"]["onestop_hub_url"] == "https://hub.example:8090"
    assert inv["hub"]["hosts"] == ["hub01"]
    assert "c3701" in inv["city"]["hosts"] and "c37" not in hosts
    assert "county_370102" in inv["city_3701"]["children"]
    assert set(inv["county_370102"]["hosts"]) == {
        "c370102",
        *(f"c{r['code']}" for r in divisions.children("370102")),
    }
    assert set(inv["nodes"]["children"]) == {"city", "county", "township"}


def test_inventory_script_is_a_dynamic_inventory(tmp_path: Path) -> None:
    env = dict(_env(tmp_path), ONESTOP_INVENTORY_UNDER="370102", ONESTOP_HUB_URL="http://h:1")
    done = subprocess.run(
        [
            BIN / "ansible-inventory",
            "-i",
            str(ANSIBLE / "inventory" / "generate.py"),
            "--graph",
            "county_370102",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "c370102001" in done.stdout and "c370103" not in done.stdout
    full = ansible_cli.build(divisions.load())
    assert len(full["all"]["children"]["nodes"]["children"]["township"]["hosts"]) == 1853
    text = ansible_cli.render(full, "x")
    assert text.count("onestop_node_code") == 2021


# ---- lint --------------------------------------------------------------------------------


def test_yamllint_and_ansible_lint_are_clean(tmp_path: Path) -> None:
    y = subprocess.run(
        [BIN / "yamllint", "-s", "ansible", ".yamllint"], cwd=ROOT, capture_output=True, text=True
    )
    assert y.returncode == 0, y.stdout + y.stderr
    a = subprocess.run(
        [BIN / "ansible-lint", "--nocolor", "ansible"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert a.returncode == 0, a.stdout[-4000:] + a.stderr[-4000:]
    assert "production" in a.stdout + a.stderr


# ---- a real run --------------------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    home = tmp / ".ansible"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="True",
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("ONESTOP_LITESTREAM", None)
    return env


def _snapshot_sources(dst: Path) -> Path:
    """The files the wheel is built from, copied (other work on the tree can't change them)."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dst.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dst / name)
    for pkg in [*conf["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"], "data/divisions"]:
        shutil.copytree(
            ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return dst


def _inventory(tmp: Path, hub_port: int, ports: dict[str, int], src: Path) -> Path:
    rows = divisions.by_code()
    nodes: dict[str, Any] = {}
    for code, port in ports.items():
        r = rows[code]
        nodes[f"c{code}"] = {
            "onestop_node_code": code,
            "onestop_node_name": r["name"],
            "onestop_node_level": r["level"],
            "onestop_node_parent": r["parent_code"],
            "onestop_root": str(tmp / "hosts" / f"c{code}"),
            "onestop_node_host": "127.0.0.1",
            "onestop_node_port": port,
        }
    # The first township drives the hall's screens: a display board and a kiosk.
    nodes["c370102001"]["onestop_node_screens"] = ["board", "kiosk"]
    inv = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "onestop_service_manager": "none",
                "onestop_create_user": False,
                "onestop_venv_python": sys.executable,
                "onestop_venv_extra_site_dirs": site.getsitepackages(),
                "onestop_pip_no_deps": True,
                "onestop_source_dir": str(src),
                "onestop_wheel_cache": str(tmp / "wheels"),
                "onestop_hub_url": f"http://127.0.0.1:{hub_port}",
                "litestream_binary": str(BIN / "litestream"),
            },
            "children": {
                "hub": {
                    "hosts": {
                        "hub01": {
                            "onestop_root": str(tmp / "hosts" / "hub01"),
                            "onestop_hub_host": "127.0.0.1",
                            "onestop_hub_port": hub_port,
                        }
                    }
                },
                "nodes": {"children": {"township": {"hosts": nodes}}},
            },
        }
    }
    path = tmp / "hosts.yml"
    path.write_text(json.dumps(inv, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _playbook(
    tmp: Path, inventory: Path, *extra: str, name: str, playbook: str = "site.yml", ok: bool = True
) -> dict[str, tuple[int, ...]]:
    log = tmp / f"{name}.log"
    done = subprocess.run(
        [BIN / "ansible-playbook", "-i", str(inventory), str(ANSIBLE / playbook), *extra],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        env=_env(tmp),
        timeout=400,
    )
    log.write_text(done.stdout + done.stderr)
    assert (done.returncode == 0) == ok, done.stdout[-6000:] + done.stderr[-3000:]
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(done.stdout)}
    if ok:
        assert set(recap) == {"hub01", "c370102001", "c370102002"}, done.stdout[-3000:]
    return recap


def _stop_services(tmp: Path) -> None:
    for pidfile in (tmp / "hosts").glob("*/var/lib/onestop/run/*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                continue
            break


def log_size(node_dir: Path) -> int:
    """Records in a node's signed log (what its hub should end up holding)."""
    conn = sqlite3.connect(f"{(node_dir / 'node.db').as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.ansible
@pytest.mark.timeout(900)
def test_site_playbook_installs_hub_and_nodes(tmp_path: Path) -> None:
    # The inventory names the ports before anything runs (no port 0 here).
    hub_port = fixed_port((0, 1, 2))
    ports = {"370102001": hub_port + 1, "370102002": hub_port + 2}
    src = _snapshot_sources(tmp_path / "src")
    inventory = _inventory(tmp_path, hub_port, ports, src)
    hub_url = f"http://127.0.0.1:{hub_port}"
    try:
        first = _playbook(tmp_path, inventory, name="first")
        assert all(r[1] > 0 and r[3] == 0 for r in first.values()), first

        # Every host has its own virtualenv made from the one wheel, and its services run.
        wheels = list((tmp_path / "wheels").glob("*/onestop-*.whl"))
        assert len(wheels) == 1
        for host in ("hub01", "c370102001", "c370102002"):
            root = tmp_path / "hosts" / host
            assert (root / "opt/onestop/venv/bin/onestop").exists()
            assert (root / "opt/onestop/share" / wheels[0].name).exists()
        node_dir = tmp_path / "hosts/c370102001/srv/onestop/node"
        assert (node_dir / "node.key").exists() and (node_dir / "hub.pub").exists()
        assert 'hub_url = "http://127.0.0.1:' in (node_dir / "node.toml").read_text()
        assert "sync-interval: 1s" in (node_dir / "litestream.yml").read_text()
        assert list((tmp_path / "hosts/hub01/srv/onestop/hub/nodes").glob("370102001.*.enrolled"))
        autostart = tmp_path / "hosts/c370102001/etc/xdg/autostart"
        board = (autostart / "onestop-board.desktop").read_text()
        kiosk = (autostart / "onestop-kiosk.desktop").read_text()
        url = f"http://127.0.0.1:{ports['370102001']}"
        assert "--autoplay-policy=no-user-gesture-required" in board and f"{url}/display" in board
        assert "--kiosk-printing" in kiosk and f"{url}/kiosk" in kiosk
        assert "--autoplay" not in kiosk and "--kiosk-printing" not in board
        assert not (tmp_path / "hosts/c370102002/etc/xdg/autostart").exists()

        # Both nodes are enrolled and pushed their whole log on their own (at start); an
        # event at a node arrives at the hub, pushed by the node's background sync.
        def ack(code: str) -> int:
            return hub_ack_seq(tmp_path / "hosts/hub01/srv/onestop/hub", code)

        def wait_ack(code: str, want: int, timeout: float = 30) -> None:
            deadline = time.monotonic() + timeout
            while (now := ack(code)) != want and time.monotonic() < deadline:
                time.sleep(0.2)
            assert now == want, (code, now, want)

        heads = {code: log_size(tmp_path / f"hosts/c{code}/srv/onestop/node") for code in ports}
        assert all(n > 0 for n in heads.values()), heads
        for code, head in heads.items():
            wait_ack(code, head)
        ticket = rpo.issue(f"http://127.0.0.1:{ports['370102001']}", 1)
        assert log_size(node_dir) == heads["370102001"] + 1, ticket  # ticket.issued
        wait_ack("370102001", heads["370102001"] + 1)
        hub_db = tmp_path / "hosts/hub01/srv/onestop/hub/hub.db"
        conn = sqlite3.connect(f"{hub_db.as_uri()}?mode=ro", uri=True)
        enrolled = {r[0] for r in conn.execute("SELECT code FROM nodes WHERE status = 'active'")}
        alerts = conn.execute("SELECT node, kind FROM alerts WHERE resolved = 0").fetchall()
        conn.close()
        assert enrolled == set(ports) and alerts == []

        # Idempotent: nothing changes the second time, in check mode either.
        second = _playbook(tmp_path, inventory, name="second")
        assert all(r[1] == 0 and r[3] == 0 for r in second.values()), second
        check = _playbook(tmp_path, inventory, "--check", "--diff", name="check")
        assert all(r[1] == 0 and r[3] == 0 for r in check.values()), check

        # upgrade.yml goes through the nodes one canary first: when the canary fails its
        # health check the rollout stops, and the next batch is never touched.
        bad = json.loads(inventory.read_text())
        canary = bad["all"]["children"]["nodes"]["children"]["township"]["hosts"]["c370102001"]
        canary.update(
            onestop_node_check_host="127.0.0.2",
            onestop_node_health_retries=1,
            onestop_node_health_delay=0,
        )
        (tmp_path / "bad.yml").write_text(json.dumps(bad, ensure_ascii=False))
        up = _playbook(
            tmp_path,
            tmp_path / "bad.yml",
            "--limit",
            "nodes",
            name="upgrade",
            playbook="upgrade.yml",
            ok=False,
        )
        assert up["c370102001"][3] == 1, up
        assert "c370102002" not in up, up
        assert _get(hub_url + "/api/v1/health")
    finally:
        _stop_services(tmp_path)
