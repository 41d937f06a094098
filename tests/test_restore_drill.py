"""The restore drill: a node with tickets and cases in every state is lost, and each way
back gives every row back, reuses no number and keeps every printed ticket link working.

Real processes throughout (``onestop hub serve``, ``onestop node serve``, ``onestop node
replicate`` with the Litestream binary, SIGKILL); the four paths of ``onestop node restore``:

(a) a complete replica;
(b) a stale replica (replication stopped while the node kept working and pushing) plus the
    hub, with the key bundle for the personal data the replica lacks;
(c) no replica and no data directory: the key bundle and the hub;
(d) nothing at all but the hub: a new key authorised by the hub administrator.
"""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench import rpo
from node import pii as piim
from node import projection, ratings, rebuild
from tests import test_litestream as litestream_tests
from tests.conftest import ADMIN, CLERK, PHONE, hub_ack_seq, init_node, make_id, run_cli
from tests.test_cases_common import SCHOOL_ITEM, SCHOOL_MATERIALS
from tests.test_litestream import (
    CODE,
    Procs,
    cli,
    get_json,
    hub_alerts,
    log_size,
    replica_log_size,
    served,
    wait_for,
)

procs = litestream_tests.procs  # real processes, ended at teardown
PASSPHRASE = "drill passphrase 2026"


class Staff:
    """A logged-in member of staff on the node's JSON API."""

    def __init__(self, url: str, user: tuple[str, str]) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""
        self.csrf = self.call("POST", "/api/v1/login", {"username": user[0], "password": user[1]})[
            "csrf_token"
        ]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=15) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:400]!r}") from None

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body or {})


def kiosk(url: str, n: int, queue: str = "dept:edu", item: str | None = SCHOOL_ITEM) -> Any:
    body: dict[str, Any] = {"queue": queue, "id_number": make_id(seq=f"{n:03d}"), "phone": PHONE}
    if item:
        body["item"] = item
    req = urllib.request.Request(
        url + "/api/v1/tickets", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Hall:
    """The work of a center: window 1 (clerk1) takes cases in, the administrator reviews as
    each department (education and civil affairs) and hands results out."""

    def __init__(self, url: str, data: Path) -> None:
        self.url, self.data = url, data
        self.clerk = Staff(url, CLERK)
        self.admin = Staff(url, ADMIN)
        self.n = 0
        self.people: dict[str, int] = {}  # case number -> the applicant's kiosk number

    def case(self, received: list[str] = SCHOOL_MATERIALS) -> str:
        self.n += 1
        kiosk(self.url, self.n)
        t = self.clerk.post("/api/v1/windows/1/call-next")["ticket"]
        body = {"ticket_id": t["id"], "items": [SCHOOL_ITEM], "received": received}
        case = self.clerk.post("/api/v1/cases", body)["case"]
        self.clerk.post("/api/v1/windows/1/finish")
        self.people[str(case["case_no"])] = self.n
        return str(case["case_no"])

    def review(self, no: str, dept: str, decision: str = "approve", **extra: Any) -> None:
        self.admin.post(f"/api/v1/cases/{no}/reviews/{dept}", {"decision": decision, **extra})

    def first_half(self) -> None:
        """In review at both departments; approved, mailed and rated; rejected with a
        complaint and its follow-up closed; a no-show."""
        self.case()  # in review at education and civil affairs
        done = self.case()
        self.review(done, "edu")
        self.review(done, "civil")
        self.clerk.post(f"/api/v1/cases/{done}/result")
        self.clerk.post(f"/api/v1/cases/{done}/handover", {"method": "mail", "tracking": "SF1"})
        self.rate(done, 5)
        refused = self.case()
        self.review(refused, "edu", "reject", reason="不符合终止条件")
        self.rate(refused, 1, comment="办理太慢")
        followups = self.admin.call("GET", "/api/v1/followups")["followups"]
        self.admin.post(f"/api/v1/followups/{followups[0]['id']}/close", {"note": "已回访说明"})
        self.n += 1
        kiosk(self.url, self.n, "dept:civil", None)
        self.clerk.post("/api/v1/windows/1/call-next")
        self.clerk.post("/api/v1/windows/1/no-show")

    def second_half(self) -> None:
        """A supplement asked and supplied at the window, one by post, one still asked; one
        case approved at one department only; a complaint still open; a ticket waiting."""
        at_window = self.case()
        self.review(at_window, "civil", "supplement", reason="请补充学生安置说明")
        kiosk(self.url, self.people[at_window])  # the applicant comes back in person
        t = self.clerk.post("/api/v1/windows/1/call-next")["ticket"]
        self.clerk.post(
            f"/api/v1/cases/{at_window}/supplement",
            {"received": ["student-placement"], "channel": "window", "ticket_id": t["id"]},
        )
        self.clerk.post("/api/v1/windows/1/finish")
        by_post = self.case()
        self.review(by_post, "civil", "supplement", reason="请补充清算报告")
        self.clerk.post(
            f"/api/v1/cases/{by_post}/supplement",
            {"received": ["liquidation-report"], "channel": "post"},
        )
        asked = self.case()
        self.review(asked, "edu", "supplement", reason="请补充董事会决议")
        half = self.case()
        self.review(half, "edu")
        pending = self.case(received=SCHOOL_MATERIALS[:3])  # 一次性告知: not accepted
        del pending
        picked = self.case()
        self.review(picked, "edu")
        self.review(picked, "civil")
        self.clerk.post(f"/api/v1/cases/{picked}/result")
        self.rate(picked, 2, comment="等候时间长")
        self.n += 1
        kiosk(self.url, self.n, "area:agri", None)  # left waiting

    def rate(self, no: str, level: int, comment: str = "") -> None:
        code = ratings.case_code(piim.load(self.data), no)  # as the result SMS gives it
        body = {"case_no": no, "rating_token": code, "level": level, "comment": comment}
        if level <= 2:  # a bad rating names its reason
            body["reason"] = "efficiency"
        req = urllib.request.Request(
            self.url + "/api/v1/ratings", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10):
            pass


def snapshot(data: Path, dest: Path) -> Path:
    """A consistent copy of the node's database (the WAL folded in)."""
    src = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    out = sqlite3.connect(dest)
    src.backup(out)
    src.close()
    out.close()
    return dest


def numbers(db: Path) -> dict[str, set[Any]]:
    conn = sqlite3.connect(db)
    try:
        return {
            "tickets": {tuple(r) for r in conn.execute(
                "SELECT issued_queue, service_date, ticket_no FROM tickets")},
            "ticket_ids": {r[0] for r in conn.execute("SELECT id FROM tickets")},
            "cases": {r[0] for r in conn.execute("SELECT case_no FROM cases")},
            "ratings": {r[0] for r in conn.execute("SELECT id FROM ratings")},
            "tokens": {r[0] for r in conn.execute("SELECT token FROM tickets")},
        }  # fmt: skip
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["a", "b", "c", "d"])
def test_every_restore_path_loses_no_row_and_reuses_no_number(
    tmp_path: Path, procs: Procs, path: str
) -> None:
    hub, data, replica = tmp_path / "hub", tmp_path / "node", tmp_path / "replica"
    assert run_cli("hub", "init", "--data", str(hub)) == 0
    hub_proc = procs.start("hub", "hub", "serve", "--data", str(hub), "--port", "0")
    hub_url = served(hub_proc, tmp_path / "hub.log", "/api/v1/health")
    node_keys = {
        "hub_url": hub_url,
        "hub_pubkey": str(hub / "hub.pub"),
        "hub_seal_pubkey": str(hub / "hub-seal.pub"),
    }
    init_node(data, **node_keys)
    enroll = ["hub", "enroll", "--data", str(hub), "--code", CODE, "--name", "解放路街道便民服务中心",
              "--level", "township", "--parent", "370102"]  # fmt: skip
    assert run_cli(*enroll, "--pubkey", str(data / "node.pub")) == 0
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    bundle = tmp_path / "keys.bundle"
    export = cli("node", "keys", "export", "--data", str(data), "--out", str(bundle),
                 "--passphrase-file", str(tmp_path / "pass"))  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert not (data / "recovery.key").exists()  # it lives in the bundle, off the node

    ls = procs.start("litestream", "node", "replicate", "--data", str(data))
    rpo.wait_replicating(ls, tmp_path / "litestream.log")
    node = procs.start("node", "node", "serve", "--data", str(data), "--port", "0")
    hall = Hall(served(node, tmp_path / "node.log", "/api/v1/queues"), data)

    def hub_ack() -> int:
        return hub_ack_seq(hub, CODE)

    hall.first_half()
    if path == "b":  # replication stops; the node goes on working and pushing
        held = log_size(data)
        wait_for("the replica", lambda: replica_log_size(data, tmp_path) == held, 60)
        procs.kill9(ls)
    hall.second_half()
    size = log_size(data)
    wait_for("the hub to hold the log", lambda: hub_ack() == size, 60)
    if path == "a":
        wait_for("the replica", lambda: replica_log_size(data, tmp_path) == size, 60)
    before = snapshot(data, tmp_path / "before.db")
    pii_before = piim.load(data)
    issued = numbers(before)
    procs.kill9(node)
    procs.kill9(ls)

    # The loss, and the way back.
    if path in ("a", "b"):
        for name in ("node.db", "node.db-wal", "node.db-shm"):
            (data / name).unlink(missing_ok=True)
    else:
        shutil.rmtree(data)
        shutil.rmtree(replica)
    with_bundle = ["--key-bundle", str(bundle), "--passphrase-file", str(tmp_path / "pass")]
    if path == "a":
        done = cli("node", "restore", "--data", str(data))
    elif path in ("b", "c"):
        done = cli("node", "restore", "--data", str(data), *with_bundle)
    else:
        again = ["node", "init", "--data", str(data), "--code", CODE, "--name", "解放路街道便民服务中心",
                 "--level", "township", "--no-seed", "--hub-url", hub_url,
                 "--hub-pubkey", node_keys["hub_pubkey"],
                 "--hub-seal-pubkey", node_keys["hub_seal_pubkey"]]  # fmt: skip
        assert cli(*again).returncode == 0
        rekey = cli("hub", "rekey", "--data", str(hub), "--node", CODE, "--pubkey",
                    str(data / "node.pub"), "--by", "province-ops", "--reason", "disk and keys lost")  # fmt: skip
        assert rekey.returncode == 0, rekey.stdout + rekey.stderr
        done = cli("node", "restore", "--data", str(data), "--rekeyed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed node.restored" in done.stdout, done.stdout
    if path == "a":
        assert "restored from the replica" in done.stdout
    if path == "b":
        assert "recovered" in done.stdout and "restored with the recovery key" in done.stdout
    if path == "d":  # a new node: its new keys want a bundle of their own
        assert "onestop node keys export" in done.stdout
    else:
        assert not (data / "recovery.key").exists()

    # Every row back: the same tables, row by row (personal data too, except on a new key,
    # where only the masks and keyed hashes can come back).
    after = sqlite3.connect(f"{(data / 'node.db').as_uri()}?mode=ro", uri=True)
    live = sqlite3.connect(before)
    personal = path != "d"
    diffs = [rebuild.compare(live, after, t, pii_before if personal else None, personal)
             for t in projection.TABLES]  # fmt: skip
    kinds = dict(after.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())
    after.close()
    live.close()
    lost = {d.table: (d.missing[:3], d.extra[:3], d.differing[:3]) for d in diffs if not d.equal}
    assert lost == {}, lost
    assert kinds.get("node.restored") == 1
    verify = cli("verify", "--data", str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Back in service: no number again, every printed ticket's link still works.
    node = procs.start("node2", "node", "serve", "--data", str(data), "--port", "0")
    hall = Hall(served(node, tmp_path / "node2.log", "/api/v1/queues"), data)
    hall.n = 500
    new_case = hall.case()
    assert new_case not in issued["cases"]
    new = numbers(snapshot(data, tmp_path / "after.db"))
    assert not (new["tickets"] - issued["tickets"]) & issued["tickets"]
    assert len(new["tickets"]) == len(issued["tickets"]) + 1
    assert len(new["ticket_ids"]) == len(issued["ticket_ids"]) + 1
    for token in sorted(issued["tokens"])[:5]:
        status = get_json(f"{hall.url}/api/v1/tickets/status/{token}")
        assert status["ticket_no"]
    wait_for("the hub to take the new records", lambda: hub_ack() == log_size(data), 60)
    assert hub_alerts(hub) == []
    hub_copy = cli("verify", "--hub", str(hub), "--code", CODE)
    assert hub_copy.returncode == 0, hub_copy.stdout + hub_copy.stderr
