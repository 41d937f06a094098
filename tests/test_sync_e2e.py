"""End to end: a real hub process and real node processes on 127.0.0.1.

Nodes push on their own (debounced after new events, and every second); the tests only make
events through the node's API, stop, kill and restart processes, and compare the hub's copy
of each log (``GET /api/v1/nodes/{code}/records``, signed by the node) with the node's own.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from node import config as cfgm
from tests.conftest import (
    PHONE,
    LiveServer,
    copy_hub,
    hub_ack_seq,
    init_node,
    make_id,
    run_cli,
    start_server,
)

TOWN = "370102001"
COUNTY = "370102"


# --------------------------------------------------------------------------- processes


@pytest.fixture(autouse=True)
def _fast_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node processes retry quickly, check the catalog every second, push 50 records a batch."""
    monkeypatch.setenv("ONESTOP_SYNC_BACKOFF_MAX", "1")
    monkeypatch.setenv("ONESTOP_SYNC_CATALOG_SECONDS", "1")
    monkeypatch.setenv("ONESTOP_SYNC_BATCH", "50")


class Hub:
    def __init__(self, data: Path, template: Path) -> None:
        self.data = data
        # Chosen by the hub's first start (--port 0); it comes back on the same port, where
        # its nodes are configured to find it.
        self.port = 0
        self.srv: LiveServer | None = None
        copy_hub(template, data)

    @property
    def url(self) -> str:
        assert self.port, "the hub has an address once it has started"
        return f"http://127.0.0.1:{self.port}"

    def enroll(self, node: Path, code: str, *extra: str) -> None:
        assert (
            run_cli(
                "hub",
                "enroll",
                "--data",
                str(self.data),
                "--code",
                code,
                "--pubkey",
                str(node / "node.pub"),
                *extra,
            )
            == 0
        )

    def start(self) -> None:
        args = ["hub", "serve", "--data", str(self.data), "--port", str(self.port)]
        self.srv = start_server(args, self.data, self.data / "serve.log", "/api/v1/health")
        self.port = self.srv.port

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.srv and self.srv.proc.poll() is None:
            self.srv.proc.send_signal(sig)
            self.srv.proc.wait(10)
        self.srv = None

    def position(self, code: str) -> int:
        return hub_ack_seq(self.data, code)

    def hashes(self, node: Path, code: str) -> list[tuple[int, str]]:
        """The hub's verified copy of a node's log, read back with a request it signs."""
        from node.signer import load_node_key
        from sync.requests import sign_request

        key = load_node_key(node)
        assert key is not None
        out: list[tuple[int, str]] = []
        while True:
            target = f"/api/v1/nodes/{code}/records?after={len(out)}&limit=5000"
            req = urllib.request.Request(
                self.url + target, headers=sign_request(key, code, "GET", target)
            )
            body = json.loads(urllib.request.urlopen(req, timeout=10).read())
            out += [(r["seq"], r["hash"]) for r in body["records"]]
            if not body["more"]:
                return out

    def alerts(self, code: str) -> list[dict[str, Any]]:
        # Alerts over HTTP need a hub login; read them from the hub's database instead.
        conn = sqlite3.connect(self.data / "hub.db", timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT * FROM alerts WHERE node = ? ORDER BY id", [code])
            return [dict(r) for r in rows.fetchall()]
        finally:
            conn.close()


def _get(url: str) -> Any:
    try:
        return json.loads(urllib.request.urlopen(url, timeout=5).read())
    except (OSError, ValueError):
        return None


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_node(
    data: Path,
    hub: Hub | None,
    code: str = TOWN,
    *,
    hub_url: str | None = None,
    level: str = "township",
    name: str = "解放路街道便民服务中心",
) -> Path:
    extra: dict[str, str] = {}
    if hub is not None:
        extra = {
            "hub_url": hub_url or hub.url,
            "hub_pubkey": str(hub.data / "hub.pub"),
            "hub_seal_pubkey": str(hub.data / "hub-seal.pub"),
        }
    init_node(data, code=code, name=name, windows=False, **extra)
    toml = data / "node.toml"
    toml.write_text(
        toml.read_text().replace("sync_interval_seconds = 30", "sync_interval_seconds = 1")
    )
    text = toml.read_text().replace('level = "township"', f'level = "{level}"')
    toml.write_text(text)
    if hub is not None and hub_url is None:
        hub.enroll(data, code)
    return data


def serve(data: Path, port: int = 0) -> LiveServer:
    """``onestop node serve`` on a port of its own (or on ``port`` again, after a stop)."""
    args = ["node", "serve", "--data", str(data), "--port", str(port)]
    return start_server(args, data, data / "serve.log")


def kill9(srv: LiveServer) -> None:
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)


def tickets(srv: LiveServer, n: int, workers: int = 4) -> None:
    """``n`` tickets through the kiosk API (the events the node must sync)."""

    def one(i: int) -> None:
        body = json.dumps(
            {
                "queue": ("dept:edu", "dept:civil", "area:agri")[i % 3],
                "id_number": make_id(seq=f"{i % 1000:03d}"),
                "phone": PHONE,
            }
        )
        req = urllib.request.Request(
            srv.url + "/api/v1/tickets",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert urllib.request.urlopen(req, timeout=30).status == 201

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))


def node_hashes(data: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"{(data / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [
            (int(s), str(h))
            for s, h in conn.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall()
        ]
    finally:
        conn.close()


def sync_state(data: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"{(data / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM sync_state").fetchone())
    finally:
        conn.close()


def rejections(data: Path) -> set[tuple[int | None, str]]:
    """(seq, reason) of what the node's pushes were refused or flagged for."""
    conn = sqlite3.connect(f"{(data / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {(s, str(r)) for s, r in conn.execute("SELECT seq, reason FROM sync_rejections")}
    finally:
        conn.close()


def wait_synced(hub: Hub, data: Path, code: str, timeout: float = 40) -> list[tuple[int, str]]:
    """Wait until the hub acknowledges the node's whole log; return the hub's copy."""
    mine = node_hashes(data)
    wait_for(lambda: hub.position(code) == len(mine), timeout, f"hub to hold {len(mine)} of {code}")
    theirs = hub.hashes(data, code)
    assert theirs == mine
    return theirs


@pytest.fixture
def hub(tmp_path: Path, hub_template: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub", hub_template)
    yield h
    h.stop()


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for s in started:
        s.stop()


def _no_tracebacks(data: Path) -> None:
    log = (data / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


# --------------------------------------------------------------------------- tests


def test_offline_node_catches_up_and_kill_9_loses_nothing(
    hub: Hub, tmp_path: Path, servers: list[LiveServer]
) -> None:
    hub.start()  # once, to have its address
    node = make_node(tmp_path / "node", hub)
    hub.stop()
    srv = serve(node)
    servers.append(srv)
    # A long stretch offline: hundreds of tickets while the hub is down.
    tickets(srv, 300)
    st = wait_for(lambda: (s := sync_state(node))["last_error"] and s, 10, "an offline error")
    assert "unreachable" in st["last_error"] and st["hub_ack_seq"] == 0
    hub.start()
    wait_synced(hub, node, TOWN)
    _no_tracebacks(node)
    st = sync_state(node)
    assert st["last_error"] is None and st["last_success"]

    # kill -9 of the node in the middle of pushing a backlog.
    base = hub.position(TOWN)
    hub.stop()
    tickets(srv, 400)
    hub.start()
    size = len(node_hashes(node))
    wait_for(lambda: hub.position(TOWN) > base, 30, "the push to start")
    kill9(srv)
    assert base < hub.position(TOWN) <= size
    srv = serve(node)
    servers.append(srv)
    wait_synced(hub, node, TOWN)

    # kill -9 of the hub in the middle of ingesting a backlog.
    hub.stop()
    tickets(srv, 400)
    hub.start()
    before = len(node_hashes(node))
    wait_for(lambda: hub.position(TOWN) > size, 30, "the hub to ingest")
    hub.stop(signal.SIGKILL)
    hub.start()
    copy = wait_synced(hub, node, TOWN)
    assert len({s for s, _ in copy}) == len(copy) == before  # nothing lost, nothing twice
    _no_tracebacks(node)
    assert (
        subprocess.run(
            [sys.executable, "-m", "onestop.cli", "verify", "--hub", str(hub.data), "--code", TOWN],
            capture_output=True,
        ).returncode
        == 0
    )

    # The node's own log verifies offline, and a tampered row is found.
    srv.stop()
    verify = [sys.executable, "-m", "onestop.cli", "verify", "--data", str(node)]
    ok = subprocess.run(verify, capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    conn = sqlite3.connect(node / "node.db")
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = json_set(body, '$.ticket_no', 'Z999') WHERE seq = 42")
    conn.commit()
    conn.close()
    bad = subprocess.run(verify, capture_output=True, text=True)
    assert bad.returncode == 1 and "seq 42: bad_hash" in bad.stdout, bad.stdout


def test_duplicated_reordered_and_replayed_batches_change_nothing(
    hub: Hub, tmp_path: Path, servers: list[LiveServer]
) -> None:
    import gzip

    from node import signer as signerm
    from sync.requests import sign_request

    hub.start()
    node = make_node(tmp_path / "node", hub)
    srv = serve(node)
    servers.append(srv)
    tickets(srv, 40)
    wait_synced(hub, node, TOWN)
    srv.stop()  # the node stays quiet; the test sends batches itself
    db = signerm.open_node_db(cfgm.load(node))
    key = signerm.load_node_key(node)
    assert key is not None
    from node import pii
    from node import tickets as ticketsm

    cfg = cfgm.load(node)
    for i in range(10):
        ticketsm.issue(
            db,
            cfg,
            pii.load(node),
            {"queue": "dept:edu", "id_number": make_id(seq=f"{i:03d}"), "phone": PHONE},
        )
    records = signerm.load_records(db)
    old, new = records[:-10], records[-10:]

    def push(*batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        payload = {
            "node": TOWN,
            "batches": [{"node": TOWN, "records": b, "checkpoint": None} for b in batches],
            "backlog": 0,
            "sent_at": "2026-11-29T10:00:00.000Z",
        }
        content = json.dumps(payload).encode()
        req = urllib.request.Request(
            hub.url + "/api/v1/ingest",
            data=gzip.compress(content),
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                **sign_request(key, TOWN, "POST", "/api/v1/ingest", body=content),
            },
        )
        results: list[dict[str, Any]] = json.loads(urllib.request.urlopen(req).read())["results"]
        return results

    held = hub.hashes(node, TOWN)
    # Replayed history: ignored.
    res = push(old)
    assert res[0]["ack_seq"] == len(old) and res[0]["duplicates"] == len(old)
    assert not res[0]["rejected"] and not res[0]["alert"]
    # Reordered: nothing out of order is stored.
    res = push(list(reversed(new)))
    assert res[0]["ack_seq"] == len(old) and res[0]["rejected"]
    assert hub.hashes(node, TOWN) == held
    # In order, twice in one push and once more: stored once.
    res = push(new, new)
    assert [r["ack_seq"] for r in res] == [len(records)] * 2 and res[1]["duplicates"] == 10
    res = push(new[3:7], old[-5:])
    assert all(r["ack_seq"] == len(records) and not r["rejected"] for r in res)
    assert not [a for a in hub.alerts(TOWN) if a["kind"] in ("fork", "rollback")]
    # The node itself resumes from the hub's position with nothing left to send.
    out = subprocess.run(
        [sys.executable, "-m", "onestop.cli", "sync", "push", "--data", str(node)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.startswith("sent 0,"), out.stdout + out.stderr
    assert hub.hashes(node, TOWN) == node_hashes(node)


def test_rolled_back_and_forked_logs_are_flagged(
    hub: Hub, tmp_path: Path, servers: list[LiveServer]
) -> None:
    hub.start()
    node = make_node(tmp_path / "node", hub)
    srv = serve(node)
    tickets(srv, 10)
    old = wait_synced(hub, node, TOWN)
    # The backup knows the hub holds all of it (the node has stored the hub's answer).
    wait_for(lambda: sync_state(node)["hub_ack_seq"] == len(old), 10, "the node's ack")
    srv.stop()
    backup = tmp_path / "backup"
    backup.mkdir()
    for f in node.glob("node.db*"):
        shutil.copy(f, backup / f.name)
    clone = tmp_path / "clone"  # the same node identity running twice: a forked log
    shutil.copytree(node, clone)
    srv = serve(node)
    servers.append(srv)
    tickets(srv, 5)
    good = wait_synced(hub, node, TOWN)
    assert len(good) == len(old) + 5
    srv.stop()
    # Restore the old copy of the database, then make different events.
    for f in node.glob("node.db*"):
        f.unlink()
    for f in backup.iterdir():
        shutil.copy(f, node / f.name)
    srv = serve(node)
    servers.append(srv)
    tickets(srv, 3)
    mine = node_hashes(node)
    assert len(mine) == len(old) + 3 and mine[: len(old)] == old
    # The node sees the hub ahead of its log: a rollback (asked again on every push while
    # the hub holds the evidence, so the alert settles on the log's final size) ...
    rolled_back = (
        f"rollback: the hub holds {len(good)} records of this node but its log ends at "
        f"{len(mine)}: was the database restored from an old copy?"
    )
    wait_for(lambda: sync_state(node)["alert"] == rolled_back, 20, "the node to flag")
    # ... and sends on from where the backup and the hub agreed; the hub finds a different
    # signed record at the next seq: a fork, quarantined, nothing merged.
    seq = len(old) + 1

    def fork(record: str) -> str:
        return (
            f"seq {seq}: the node sent a signed record with hash {record[:16]}… "
            f"where the hub holds {good[seq - 1][1][:16]}…"
        )

    alerts = wait_for(lambda: hub.alerts(TOWN), 10, "a hub alert")
    assert [(a["kind"], a["message"]) for a in alerts] == [("fork", fork(mine[seq - 1][1]))]
    assert hub.hashes(node, TOWN) == good  # nothing merged
    flagged = {(len(good), "rollback"), (None, "fork")}  # (seq, reason)
    assert rejections(node) == flagged
    srv.stop()
    # The clone (same key, same code) makes its own events from the shared past: to the hub
    # another fork at the same seq; to the clone, too, the hub is ahead of its log.
    cl = serve(clone)
    servers.append(cl)
    tickets(cl, 2)
    theirs = node_hashes(clone)
    assert len(theirs) == len(old) + 2 and theirs[seq - 1] != mine[seq - 1]
    behind = rolled_back.replace(f"ends at {len(mine)}", f"ends at {len(theirs)}")
    wait_for(lambda: sync_state(clone)["alert"] == behind, 20, "the clone to be flagged")
    wait_for(lambda: rejections(clone) == flagged, 10, "the clone's rejections")
    assert [(a["kind"], a["message"]) for a in hub.alerts(TOWN)] == [
        ("fork", fork(mine[seq - 1][1])),
        ("fork", fork(theirs[seq - 1][1])),
    ]
    assert hub.hashes(node, TOWN) == good


def test_township_syncs_through_its_county_relay(
    hub: Hub, tmp_path: Path, servers: list[LiveServer]
) -> None:
    hub.start()
    county = make_node(
        tmp_path / "county", hub, code=COUNTY, level="county", name="历下区政务服务中心"
    )
    csrv = serve(county)
    servers.append(csrv)
    town = make_node(tmp_path / "town", hub, hub_url=csrv.url)
    hub.enroll(town, TOWN, "--parent", COUNTY)  # the county is its registered relay
    assert (
        run_cli(
            "sync",
            "relay",
            "add",
            "--data",
            str(county),
            "--code",
            TOWN,
            "--pubkey",
            str(town / "node.pub"),
        )
        == 0
    )
    tsrv = serve(town)
    servers.append(tsrv)
    tickets(tsrv, 60)
    tickets(csrv, 5)
    wait_synced(hub, town, TOWN)
    wait_synced(hub, county, COUNTY)
    # The township holds the hub's own receipts, relayed unchanged, and knows its route.
    st = wait_for(
        lambda: (s := sync_state(town))["hub_ack_seq"] == len(node_hashes(town)) and s,
        40,
        "the township's position",
    )
    assert st["via_relay"] == COUNTY and st["last_error"] is None
    # Behind a relay the township's position is what the relay holds; the hub's receipt comes
    # with the relay's answer to a push made once the hub has answered the relay.
    tickets(tsrv, 1)

    def receipts() -> int:
        conn = sqlite3.connect(f"{(town / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM receipts").fetchone()[0])
        finally:
            conn.close()

    assert wait_for(receipts, 40, "a hub receipt relayed to the township") > 0
    # While the county is down the township queues; afterwards everything arrives.
    csrv.stop()
    tickets(tsrv, 20)
    servers.append(serve(county, csrv.port))  # where the township expects its county
    wait_synced(hub, town, TOWN)
    _no_tracebacks(town)


def test_catalog_update_reaches_the_node_and_a_tampered_one_is_refused(
    hub: Hub, tmp_path: Path, servers: list[LiveServer]
) -> None:
    from schemas.catalog import load_catalog, seed_path

    hub.start()
    node = make_node(tmp_path / "node", hub)
    srv = serve(node)
    servers.append(srv)
    cat = load_catalog(seed_path())
    code = cat["items"][0]["code"]
    cat["version"] = "2026.12-province.1"
    cat["items"][0]["name_zh"] = "省级统一事项名称"
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps(cat, ensure_ascii=False), encoding="utf-8")
    assert run_cli("hub", "catalog", "publish", str(file), "--data", str(hub.data)) == 0

    def item_name() -> str:
        items = (_get(srv.url + "/api/v1/catalog") or {}).get("items", [])
        return str(next((i["name_zh"] for i in items if i["code"] == code), ""))

    wait_for(lambda: item_name() == "省级统一事项名称", 20, "the new catalog on the node")
    good = sync_state(node)["catalog_version"]
    # A forged version (altered content, the old signature) is refused and shown.
    conn = sqlite3.connect(hub.data / "hub.db")
    row = conn.execute(
        "SELECT version, published_at, catalog, sha256, key_id, sig FROM "
        "catalog_versions ORDER BY id DESC LIMIT 1"
    ).fetchone()
    forged = json.loads(row[2])
    forged["items"][0]["name_zh"] = "篡改的名称"
    conn.execute(
        "INSERT INTO catalog_versions (version, published_at, catalog, sha256, key_id, "
        "sig) VALUES (?, ?, ?, ?, ?, ?)",
        [row[0] + "-x", row[1], json.dumps(forged, ensure_ascii=False), "0" * 64, row[4], row[5]],
    )
    conn.commit()
    conn.close()
    st = wait_for(lambda: (s := sync_state(node))["catalog_error"] and s, 20, "the refusal")
    assert "signature" in st["catalog_error"] and st["catalog_version"] == good
    assert item_name() == "省级统一事项名称"  # the last good catalog is still served
    _no_tracebacks(node)
