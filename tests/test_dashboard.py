"""Dashboards end to end: a real hub process and two real township nodes in two cities.

Tickets, cases, ratings and follow-ups are made through each node's own API; the nodes push
(`onestop sync push`) and the hub's rollups must place every figure at the right division
of the tree (township → county → city → province), answer CSV, keep each city official to
their own city on every page and API route, and equal a rebuild from the records.
"""

from __future__ import annotations

import http.cookiejar
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub import db as hubdb
from hub import rollups
from node import pii as piim
from node import ratings
from tests.conftest import (
    CLERK,
    PHONE,
    LiveServer,
    hub_ack_seq,
    init_node,
    make_id,
    run_cli,
    start_server,
)

# One province (a hub and two centers, set up once) for the whole module, on one worker.
pytestmark = pytest.mark.xdist_group("dashboard")

JINAN_TOWN, JINAN_COUNTY, JINAN = "370102001", "370102", "3701"  # 历下区 解放路街道
QINGDAO_TOWN, QINGDAO_COUNTY, QINGDAO = "370202001", "370202", "3702"  # 市南区 香港中路街道
SCHOOL_ITEM = "370000-edu-001"  # 中外合作办学机构终止: edu (lead) and civil
SCHOOL_MATERIALS = ["termination-application", "board-resolution", "liquidation-report",
                    "student-placement", "permit", "legal-rep-id"]  # fmt: skip
PROV = ("prov", "prov-pass-001")
JINAN_OFFICIAL = ("jinan", "jinan-pass-01")
QINGDAO_OFFICIAL = ("qingdao", "qingdao-pass-1")
REV_EDU = ("rev_edu", "reviewer-pass-1")
REV_CIVIL = ("rev_civil", "reviewer-pass-2")


# --------------------------------------------------------------------------- HTTP helpers


class Session:
    """A browser of its own (cookies) against a server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.headers: dict[str, str] = {}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **self.headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=30) as r:
                raw, status, hdrs = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, dict(e.headers)
        ctype = hdrs.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(raw), hdrs
        if "text/csv" in ctype:
            return status, raw, hdrs
        return status, raw.decode("utf-8", "replace"), hdrs

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data, _ = self.call(method, path, body)
        assert got == status, (method, path, got, data)
        return data

    def login(self, user: tuple[str, str]) -> Session:
        data = self.ok("POST", "/api/v1/login", {"username": user[0], "password": user[1]})
        self.headers = {"X-CSRF-Token": data["csrf_token"]}
        return self


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


def serve(args: list[str], probe: str, data: Path) -> LiveServer:
    """``onestop ARGS --port 0``: the server picks its port and names it in its log."""
    return start_server([*args, "--port", "0"], data, data / "serve.log", probe)


# --------------------------------------------------------------------------- the province


@dataclass
class Tally:
    """What a center did, counted by the test as it happens."""

    tickets_issued: int = 0
    tickets_called: int = 0
    tickets_finished: int = 0
    tickets_no_show: int = 0
    cases_received: int = 0
    cases_accepted: int = 0
    cases_completed: int = 0
    cases_approved: int = 0
    cases_rejected: int = 0
    cases_delivered: int = 0
    cases_one_visit: int = 0
    in_review: int = 0
    ratings: dict[int, int] = field(default_factory=dict)
    followups_opened: int = 0
    followups_closed: int = 0

    def figures(self) -> dict[str, int]:
        out = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        for lv in range(1, 6):
            out[f"rating_{lv}"] = self.ratings.get(lv, 0)
        return out

    def __add__(self, other: Tally) -> dict[str, int]:
        a, b = self.figures(), other.figures()
        return {k: a[k] + b[k] for k in a}


class Center:
    def __init__(self, data: Path, code: str, srv: LiveServer) -> None:
        self.data, self.code, self.srv = data, code, srv
        self.tally = Tally()
        self.public = Session(srv.url)
        self.clerk = Session(srv.url).login(CLERK)
        self.edu = Session(srv.url).login(REV_EDU)
        self.civil = Session(srv.url).login(REV_CIVIL)
        self.n = 0

    def issue(self, item: str | None = SCHOOL_ITEM) -> dict[str, Any]:
        self.n += 1
        body: dict[str, Any] = {"queue": "dept:edu", "id_number": make_id(seq=f"{self.n:03d}"),
                                "phone": PHONE}  # fmt: skip
        if item:
            body["item"] = item
        issued = self.public.ok("POST", "/api/v1/tickets", body, 201)
        self.tally.tickets_issued += 1
        return dict(issued)

    def call(self) -> dict[str, Any]:
        t = self.clerk.ok("POST", "/api/v1/windows/1/call-next")["ticket"]
        self.tally.tickets_called += 1
        return dict(t)

    def finish(self) -> None:
        self.clerk.ok("POST", "/api/v1/windows/1/finish")
        self.tally.tickets_finished += 1

    def no_show(self) -> None:
        self.clerk.ok("POST", "/api/v1/windows/1/no-show")
        self.tally.tickets_no_show += 1

    def intake(self) -> str:
        self.issue()
        t = self.call()
        case = self.clerk.ok(
            "POST",
            "/api/v1/cases",
            {"ticket_id": t["id"], "items": [SCHOOL_ITEM], "received": SCHOOL_MATERIALS},
            201,
        )
        self.finish()
        self.tally.cases_received += 1
        self.tally.cases_accepted += 1
        self.tally.in_review += 1
        return str(case["case"]["case_no"])

    def approve(self, case_no: str) -> None:
        self.edu.ok("POST", f"/api/v1/cases/{case_no}/reviews/edu", {"decision": "approve"})
        self.civil.ok("POST", f"/api/v1/cases/{case_no}/reviews/civil", {"decision": "approve"})
        self.tally.cases_completed += 1
        self.tally.cases_approved += 1
        self.tally.in_review -= 1

    def reject(self, case_no: str) -> None:
        self.civil.ok("POST", f"/api/v1/cases/{case_no}/reviews/civil",
                      {"decision": "reject", "reason": "学生安置方案未落实"})  # fmt: skip
        self.tally.cases_completed += 1
        self.tally.cases_rejected += 1
        self.tally.in_review -= 1

    def mail_result(self, case_no: str) -> None:
        self.clerk.ok("POST", f"/api/v1/cases/{case_no}/result")
        self.clerk.ok("POST", f"/api/v1/cases/{case_no}/handover",
                      {"method": "mail", "tracking": "SF1234567890"})  # fmt: skip
        self.tally.cases_delivered += 1
        self.tally.cases_one_visit += 1  # only the intake visit

    def rate_case(self, case_no: str, level: int) -> None:
        self.public.ok(
            "POST",
            "/api/v1/ratings",
            {
                "case_no": case_no,
                "level": level,
                **({"reason": "other"} if level <= 2 else {}),
                "rating_token": ratings.case_code(piim.load(self.data), case_no),
            },
            201,
        )
        self._rated(level)

    def rate_ticket(self, token: str, level: int) -> None:
        self.public.ok("POST", "/api/v1/ratings", {"token": token, "level": level,
                                                   "comment": "等太久", "reason": "efficiency"},
                       201)  # fmt: skip
        self._rated(level)

    def _rated(self, level: int) -> None:
        self.tally.ratings[level] = self.tally.ratings.get(level, 0) + 1
        if level <= 2:
            self.tally.followups_opened += 1

    def close_followups(self) -> None:
        for f in self.clerk.ok("GET", "/api/v1/followups?state=open")["followups"]:
            self.clerk.ok("POST", f"/api/v1/followups/{f['id']}/close", {"note": "已回访并整改"})
            self.tally.followups_closed += 1


@dataclass
class Province:
    hub_dir: Path
    hub: LiveServer
    jinan: Center
    qingdao: Center


def make_center(root: Path, code: str, name: str, hub_dir: Path) -> Path:
    data = root / code
    init_node(
        data,
        code=code,
        name=name,
        hub_url="http://127.0.0.1:9",  # replaced below
        hub_pubkey=str(hub_dir / "hub.pub"),
        hub_seal_pubkey=str(hub_dir / "hub-seal.pub"),
    )
    for user, dept in ((REV_EDU, "edu"), (REV_CIVIL, "civil")):
        assert (
            run_cli(
                "node",
                "user",
                "add",
                "--data",
                str(data),
                "--username",
                user[0],
                "--role",
                "reviewer",
                "--department",
                dept,
                stdin=user[1] + "\n",
            )
            == 0
        )
    assert run_cli("hub", "enroll", "--data", str(hub_dir), "--code", code, "--pubkey",
                   str(data / "node.pub")) == 0  # fmt: skip
    return data


def point_at_hub(data: Path, url: str) -> None:
    toml = data / "node.toml"
    toml.write_text(toml.read_text().replace("http://127.0.0.1:9", url))


def push(data: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "onestop.cli", "sync", "push", "--data",
                          str(data), "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def node_events(data: Path) -> int:
    conn = sqlite3.connect(f"{(data / 'node.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Province]:
    root = tmp_path_factory.mktemp("province")
    hub_dir = root / "hub"
    assert run_cli("hub", "init", "--data", str(hub_dir)) == 0
    for user, role, scope in ((PROV, "official", "37"), (JINAN_OFFICIAL, "official", JINAN),
                              (QINGDAO_OFFICIAL, "official", QINGDAO)):  # fmt: skip
        assert (
            run_cli(
                "hub",
                "user",
                "add",
                "--data",
                str(hub_dir),
                "--username",
                user[0],
                "--role",
                role,
                "--scope",
                scope,
                stdin=user[1] + "\n",
            )
            == 0
        )
    jdata = make_center(root, JINAN_TOWN, "解放路街道便民服务中心", hub_dir)
    qdata = make_center(root, QINGDAO_TOWN, "香港中路街道便民服务中心", hub_dir)
    hub = serve(["hub", "serve", "--data", str(hub_dir)], "/api/v1/health", hub_dir)
    servers = [hub]
    try:
        for d in (jdata, qdata):
            point_at_hub(d, hub.url)
        jsrv = serve(["node", "serve", "--data", str(jdata)], "/api/v1/queues", jdata)
        servers.append(jsrv)
        qsrv = serve(["node", "serve", "--data", str(qdata)], "/api/v1/queues", qdata)
        servers.append(qsrv)
        jinan, qingdao = Center(jdata, JINAN_TOWN, jsrv), Center(qdata, QINGDAO_TOWN, qsrv)

        # Jinan: a case approved and mailed (rated 5), one still in review, tickets served,
        # a no-show, one waiting, a visit rated 1 whose follow-up is closed.
        done = jinan.intake()
        jinan.approve(done)
        jinan.mail_result(done)
        jinan.rate_case(done, 5)
        jinan.intake()
        served = jinan.issue(item=None)
        jinan.call()
        jinan.finish()
        jinan.rate_ticket(served["token"], 1)
        jinan.close_followups()
        jinan.issue()
        jinan.call()
        jinan.no_show()
        jinan.issue()  # still waiting
        # Qingdao: a case rejected, two tickets served and rated 4 and 2 (follow-up open).
        rejected = qingdao.intake()
        qingdao.reject(rejected)
        for level in (4, 2):
            t = qingdao.issue(item=None)
            qingdao.call()
            qingdao.finish()
            qingdao.rate_ticket(t["token"], level)

        for c in (jinan, qingdao):
            c.srv.stop()
            servers.remove(c.srv)
            push(c.data)
            assert hub_ack_seq(hub_dir, c.code) == node_events(c.data)
        yield Province(hub_dir, hub, jinan, qingdao)
    finally:
        for s in servers:
            s.stop()


def figures_match(figures: dict[str, Any], want: dict[str, int]) -> None:
    got = {k: figures[k] for k in want}
    assert got == want


# --------------------------------------------------------------------------- the tests


def test_figures_land_at_every_level_of_the_tree(province: Province) -> None:
    s = Session(province.hub.url).login(PROV)
    j, q = province.jinan.tally, province.qingdao.tally
    for code in (JINAN_TOWN, JINAN_COUNTY, JINAN):
        d = s.ok("GET", f"/api/v1/dash/{code}")
        figures_match(d["figures"], j.figures())
        assert d["status"]["enrolled"] == 1 and d["status"]["online"] == 1
    for code in (QINGDAO_TOWN, QINGDAO_COUNTY, QINGDAO):
        figures_match(s.ok("GET", f"/api/v1/dash/{code}")["figures"], q.figures())
    prov = s.ok("GET", "/api/v1/dash/37?preset=7d")
    figures_match(prov["figures"], j + q)
    assert prov["status"]["enrolled"] == 2 and prov["status"]["divisions"] == 2021
    assert prov["status"]["not_enrolled"] == 2019 and prov["status"]["health"] == "green"
    assert prov["division"]["name"] == "山东省" and len(prov["series"]) == 7
    assert sum(r["tickets_issued"] for r in prov["series"]) == j.tickets_issued + q.tickets_issued
    # The province's children are the 16 cities; Jinan's and Qingdao's rows hold their figures.
    kids = {r["code"]: r for r in prov["children"]}
    assert len(kids) == 16 and kids[JINAN]["name"] == "济南市"
    figures_match(kids[JINAN], j.figures())
    figures_match(kids[QINGDAO], q.figures())
    assert kids["3703"]["tickets_issued"] == 0 and kids["3703"]["status"]["health"] == "grey"
    assert kids[JINAN]["status"]["online"] == 1 and kids[JINAN]["status"]["health"] == "green"
    # Down the tree: county 历下区 lists its townships; the township lists its own center.
    county = s.ok("GET", f"/api/v1/dash/{JINAN_COUNTY}")
    assert [p["name"] for p in county["path"]] == ["山东省", "济南市", "历下区"]
    town = {r["code"]: r for r in county["children"]}[JINAN_TOWN]
    assert town["name"] == "解放路街道" and town["status"]["health"] == "green"
    figures_match(town, j.figures())
    own = s.ok("GET", f"/api/v1/dash/{JINAN_TOWN}")["children"]
    assert [(r["code"], r["own"]) for r in own] == [(JINAN_TOWN, True)]
    # Averages, shares and the open case's deadline.
    f = s.ok("GET", f"/api/v1/dash/{JINAN_TOWN}")["figures"]
    assert f["avg_wait_s"] is not None and f["avg_service_s"] is not None
    assert f["one_visit_share"] == 1.0 and f["satisfaction"] == 0.5 and f["overdue"] == 0
    # Per department and per item: everything here is 教育厅 / the school item.
    deps = s.ok("GET", "/api/v1/dash/37/departments")["departments"]
    edu = {r["code"]: r for r in deps}["edu"]
    assert edu["name"] == "省教育厅" and edu["cases_received"] == 3
    assert edu["tickets_issued"] == j.tickets_issued + q.tickets_issued
    items = {r["code"]: r for r in s.ok("GET", "/api/v1/dash/37/items")["items"]}
    assert items[SCHOOL_ITEM]["cases_received"] == 3 and items[SCHOOL_ITEM]["dept"] == "edu"
    nodes = s.ok("GET", f"/api/v1/dash/{JINAN}/nodes")["nodes"]
    assert [(n["code"], n["state"], n["key_status"]) for n in nodes] == [
        (JINAN_TOWN, "online", "active")
    ]
    assert nodes[0]["records"] == node_events(province.jinan.data) and nodes[0]["newest_at"]
    # English.
    en = s.ok("GET", "/api/v1/dash/37/departments?lang=en")["departments"]
    assert {r["code"]: r for r in en}["edu"]["name"].startswith("Shandong Provincial")


def test_pages_drill_down_and_csv_export(province: Province) -> None:
    s = Session(province.hub.url)
    status, _, hdrs = s.call("GET", "/dash/37")
    assert status == 302 and hdrs["Location"].startswith("/login?next=")
    s.login(PROV)
    status, _, hdrs = s.call("GET", "/dash")
    assert status == 302 and hdrs["Location"] == "/dash/37"
    for code, name in (("37", "山东省"), (JINAN, "济南市"), (JINAN_COUNTY, "历下区"),
                       (JINAN_TOWN, "解放路街道")):  # fmt: skip
        page = s.ok("GET", f"/dash/{code}")
        assert name in page and "dash.js" in page
    j = province.jinan.tally
    for path in (f"/dash/{JINAN}/export/children.csv", f"/api/v1/dash/{JINAN}/children?format=csv"):
        status, raw, hdrs = s.call("GET", path)
        assert status == 200 and hdrs["Content-Type"].startswith("text/csv")
        assert "attachment" in hdrs["Content-Disposition"]
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese right
        lines = raw.decode("utf-8-sig").splitlines()
        header = lines[0].split(",")
        assert header[:3] == ["区划代码", "名称", "层级"]
        rows = {r.split(",")[0]: dict(zip(header, r.split(","), strict=True)) for r in lines[1:]}
        assert len(rows) == 13  # 济南市: 10 districts, 2 counties, 1 development zone
        assert rows[JINAN_COUNTY]["名称"] == "历下区"
        assert int(rows[JINAN_COUNTY]["取号"]) == j.tickets_issued
        assert int(rows[JINAN_COUNTY]["受理"]) == j.cases_received
        assert int(rows["370103"]["取号"]) == 0
    status, raw, _ = s.call("GET", "/dash/37/export/series.csv?preset=30d&lang=en")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Date,Tickets") and len(lines) == 31
    for table in ("departments", "items", "nodes", "alerts"):
        status, raw, _ = s.call("GET", f"/dash/37/export/{table}.csv")
        assert status == 200 and raw.startswith(b"\xef\xbb\xbf"), table
    assert s.call("GET", "/dash/37/export/secrets.csv")[0] == 404
    status, body, _ = s.call("GET", "/api/v1/dash/37?from=2026-13-01")
    assert status == 422 and body["field"] == "from"
    # English on ?lang=en, remembered by a cookie.
    assert "Daily trend" in s.ok("GET", f"/dash/{JINAN}?lang=en")
    assert "Daily trend" in s.ok("GET", f"/dash/{JINAN}")
    assert "每日趋势" in s.ok("GET", f"/dash/{JINAN}?lang=zh")


def _routes_with_code(hub_dir: Path) -> list[str]:
    """Every GET route of the hub that names a division, with {code} left in."""
    from hub import config as hubcfg
    from hub.app import create_app
    from hub.keys import DB

    app = create_app(hubcfg.load(hub_dir))
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "GET" and "{code}" in path:
            out.append(path)
    app[DB].conn.close()
    return sorted(set(out))


# Routes nodes use without a hub login (signed or public by design).
NODE_ROUTES = {"/api/v1/ingest/{code}/position", "/api/v1/nodes/{code}/records"}


def test_city_official_sees_only_their_city(province: Province) -> None:
    s = Session(province.hub.url).login(JINAN_OFFICIAL)
    routes = [r for r in _routes_with_code(province.hub_dir) if r not in NODE_ROUTES]
    assert "/api/v1/dash/{code}" in routes and "/dash/{code}" in routes
    assert "/api/v1/nodes/{code}" in routes and "/dash/{code}/export/{table}.csv" in routes
    checked = 0
    for route in routes:
        for code in (QINGDAO, QINGDAO_COUNTY, QINGDAO_TOWN, "37", "3799"):
            for table in ("children", "nodes", "items"):
                path = route.replace("{code}", code).replace("{table}", table)
                for q in ("", "?format=csv", "?preset=30d&lang=en"):
                    status, body, _ = s.call("GET", path + q)
                    assert status == 403, (path + q, status)
                    if path.startswith("/api/"):
                        assert body["error"] == "out_of_scope" and body["ok"] is False
                    else:
                        assert QINGDAO_TOWN not in body and "香港中路" not in body
                    checked += 1
        # ...while their own city answers.
        path = route.replace("{code}", JINAN_TOWN).replace("{table}", "children")
        assert s.call("GET", path)[0] == 200, path
    assert checked > 100
    # Lists are cut to the scope; naming another city's node is refused.
    assert [n["code"] for n in s.ok("GET", "/api/v1/nodes")["nodes"]] == [JINAN_TOWN]
    assert s.call("GET", f"/api/v1/alerts?node={QINGDAO_TOWN}")[0] == 403
    assert all(a["node"].startswith(JINAN) for a in s.ok("GET", "/api/v1/alerts?state=all")[
        "alerts"])  # fmt: skip
    root = s.ok("GET", "/api/v1/dash")
    assert root["division"]["code"] == JINAN and all(
        c["code"].startswith(JINAN) for c in root["children"]
    )
    status, _, hdrs = s.call("GET", "/dash")
    assert status == 302 and hdrs["Location"] == f"/dash/{JINAN}"
    assert QINGDAO_TOWN not in json.dumps(s.ok("GET", f"/api/v1/dash/{JINAN}"))
    assert s.call("GET", "/api/v1/users")[0] == 403  # officials are not admins
    # The other way round, and no login at all.
    other = Session(province.hub.url).login(QINGDAO_OFFICIAL)
    assert other.call("GET", f"/api/v1/dash/{JINAN_TOWN}")[0] == 403
    assert other.ok("GET", f"/api/v1/dash/{QINGDAO_TOWN}")["figures"]["cases_rejected"] == 1
    anon = Session(province.hub.url)
    for path in ("/api/v1/dash/37", "/api/v1/nodes", "/api/v1/alerts", f"/api/v1/nodes/{JINAN_TOWN}",
                 "/api/v1/dash/37/nodes?format=csv"):  # fmt: skip
        status, body, _ = anon.call("GET", path)
        assert status == 401 and body["error"] == "unauthorized", path
    assert anon.ok("GET", "/api/v1/health")["ok"] is True
    # Logout needs the CSRF token.
    s.headers = {}
    assert s.call("POST", "/api/v1/logout")[0] == 403


def test_rebuild_equals_incremental_rollups(province: Province) -> None:
    db = hubdb.connect(province.hub_dir / "hub.db")
    try:
        incremental = rollups.snapshot(db)
    finally:
        db.conn.close()
    assert incremental["rollup_day"] and incremental["rollup_open"]
    assert run_cli("hub", "rollups", "rebuild", "--data", str(province.hub_dir)) == 0
    db = hubdb.connect(province.hub_dir / "hub.db")
    try:
        rebuilt = rollups.snapshot(db)
    finally:
        db.conn.close()
    assert rebuilt == incremental
    s = Session(province.hub.url).login(PROV)
    figures_match(s.ok("GET", "/api/v1/dash/37")["figures"],
                  province.jinan.tally + province.qingdao.tally)  # fmt: skip
