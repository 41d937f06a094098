"""The case pages in a real browser: window intake → parallel review → approved case.

A citizen takes a ticket, window 1 calls it and opens a case for 中外合作办学机构终止 (reviewed
by education and civil affairs); each department's reviewer approves from their inbox; the case
then shows as approved and the result is handed over.  Drives Debian's headless Chromium through
Playwright against a real ``onestop node serve``; screenshots (1366x768) go to
``tests/screenshots/cases_*.png``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN, CLERK, PHONE, LiveServer, make_id, run_cli
from tests.test_cases_common import REVIEWER_CIVIL, REVIEWER_EDU, SCHOOL_ITEM, SCHOOL_MATERIALS

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parent / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEW = {"width": 1366, "height": 768}
CASE_NO = re.compile(r"^370102001-\d{8}-\d{4}$")


@pytest.fixture
def node_dir(node_dir: Path) -> Path:
    """The usual test node plus one reviewer each for education and civil affairs."""
    data = node_dir
    for (username, password), dept in ((REVIEWER_EDU, "edu"), (REVIEWER_CIVIL, "civil")):
        assert (
            run_cli(
                "node",
                "user",
                "add",
                "--data",
                str(data),
                "--username",
                username,
                "--role",
                "reviewer",
                "--department",
                dept,
                stdin=password + "\n",
            )
            == 0
        )
    return data


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / name), animations="disabled")


def take_ticket(live: LiveServer, birth: str = "19750305", item: str | None = None) -> Any:
    body: dict[str, Any] = {"queue": "dept:edu", "id_number": make_id(birth), "phone": PHONE}
    if item:
        body["item"] = item
    req = urllib.request.Request(
        live.url + "/api/v1/tickets",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Staff:
    """A browser context of its own, logged in through the login page."""

    def __init__(
        self, browser: Any, live: LiveServer, user: tuple[str, str], first: str, errors: list[str]
    ) -> None:
        self.live = live
        self.ctx = browser.new_context(viewport=VIEW, locale="zh-CN")
        self.page = self.ctx.new_page()
        self.page.on("pageerror", lambda exc: errors.append(f"{user[0]}: {exc}"))
        self.page.goto(live.url + first)
        assert "/login" in self.page.url
        self.page.fill("#username", user[0])
        self.page.fill("#password", user[1])
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url("**" + first)
        self.csrf = self.get("/api/v1/me")["csrf_token"]

    def get(self, path: str) -> Any:
        r = self.ctx.request.get(self.live.url + path)
        assert r.ok, (path, r.status, r.text())
        return r.json()

    def post(self, path: str, body: Any, status: int = 200) -> Any:
        r = self.ctx.request.post(
            self.live.url + path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf},
        )
        assert r.status == status, (path, r.status, r.text())
        return r.json()

    def close(self) -> None:
        self.ctx.close()


def open_case_from_inbox(s: Staff, case_no: str) -> Any:
    p = s.page
    p.goto(s.live.url + "/inbox")
    row = p.locator(f'#inbox-table tr[data-case="{case_no}"]')
    row.wait_for()
    row.locator("td").nth(2).click()  # the whole row opens the case
    p.wait_for_url(f"**/cases/{case_no}")
    return p


def more_cases(clerk: Staff, live: LiveServer) -> None:
    """A few more cases in other states, so the overview and the list have something to show."""
    specs = [
        ("19620817", SCHOOL_MATERIALS[1:], False),  # a required material missing: not accepted
        ("19880110", SCHOOL_MATERIALS[:-1], True),  # 容缺受理: the optional one follows
        ("19930422", SCHOOL_MATERIALS, False),
    ]
    for birth, received, commit in specs:
        issued = take_ticket(live, birth)
        called = clerk.post("/api/v1/windows/1/call-next", {})["ticket"]
        assert called["ticket_no"] == issued["ticket_no"]
        body: dict[str, Any] = {
            "ticket_id": called["id"],
            "items": [SCHOOL_ITEM],
            "received": received,
        }
        if commit:
            body["commitment"] = True
        clerk.post("/api/v1/cases", body, 201)
        clerk.post("/api/v1/windows/1/finish", {})
        bad = birth == "19620817"
        rating = {
            "token": issued["token"],
            "level": 2 if bad else 5,
            "comment": "材料清单不清楚，跑了两趟" if bad else "",
            **({"reason": "materials"} if bad else {}),
        }
        req = urllib.request.Request(
            live.url + "/api/v1/ratings",
            data=json.dumps(rating).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201


def test_intake_review_and_approval(browser: Any, live_node: LiveServer, tmp_path: Path) -> None:
    errors: list[str] = []
    issued = take_ticket(live_node)

    # -- the window clerk calls the citizen and opens the case ---------------------------
    clerk = Staff(browser, live_node, CLERK, "/window/1", errors)
    p = clerk.page
    p.click("#btn-call")
    p.wait_for_function(
        f"document.getElementById('current-no').textContent === '{issued['ticket_no']}'"
    )
    p.goto(live_node.url + "/cases/new")
    ticket_label = p.locator("#ticket option:checked").inner_text()
    # Region and the last four digits shown, the birth date and sequence masked.
    masked = "370102" + "*" * 8 + make_id("19750305")[-4:]
    assert ticket_label == f"{issued['ticket_no']} · 省教育厅 · {masked} · 1号窗口 · 办理中"
    assert p.locator("#submit").is_disabled()  # nothing chosen yet

    p.fill("#cat-search", "合作办学")
    item = p.locator(f'.cat-item[data-code="{SCHOOL_ITEM}"]')
    assert item.is_visible() and "中外合作办学机构终止" in item.inner_text()
    assert p.locator('.cat-item[data-code="370000-civil-001"]').is_hidden()
    item.click()
    rows = p.locator("#checklist-body tr")
    assert rows.count() == len(SCHOOL_MATERIALS)
    assert p.locator("#checklist-body .tag-crit").count() == 5  # 必要
    assert "省教育厅" in p.locator("#selected").inner_text()
    assert "省民政厅" in p.locator("#selected").inner_text()
    assert p.locator("#verdict").get_attribute("class") == "verdict v-bad"
    # Tick every material; one scan is attached on the way.
    scan = tmp_path / "permit.pdf"
    scan.write_bytes(b"%PDF-1.4\n% scanned permit\n")
    for code in SCHOOL_MATERIALS:
        p.check(f'#checklist-body input.m-got[data-code="{code}"]')
    p.set_input_files('#checklist-body input.m-file[data-code="permit"]', str(scan))
    assert p.locator("#verdict").get_attribute("class") == "verdict v-ok"
    assert p.locator("#submit").inner_text().strip() == "受理并生成办件"
    p.fill("#cat-search", "")
    p.locator(f'.cat-item[data-code="{SCHOOL_ITEM}"]').scroll_into_view_if_needed()
    shot(p, "cases_intake.png")
    p.click("#submit")
    p.locator("#result").wait_for(state="visible")
    case_no = p.locator("#result-case-no").inner_text().strip()
    assert CASE_NO.match(case_no), case_no
    assert p.locator("#result-state [data-state]").get_attribute("data-state") == "accepted"
    assert p.locator("#print-notice").is_hidden()  # nothing missing: no notice
    shot(p, "cases_intake_result.png")
    case = clerk.get(f"/api/v1/cases/{case_no}")["case"]
    assert case["materials"][4]["files"][0]["name"] == "permit.pdf"
    assert case["visit_count"] == 1
    # The citizen waits while the departments review (the ticket is suspended at window 1);
    # meanwhile the window serves others.
    clerk.post("/api/v1/windows/1/suspend", {})
    more_cases(clerk, live_node)

    # -- education reviews first ---------------------------------------------------------
    edu = Staff(browser, live_node, REVIEWER_EDU, "/inbox", errors)
    p = edu.page
    row = p.locator(f'#inbox-table tr[data-case="{case_no}"]')
    assert p.locator("#inbox-table tr[data-case]").count() == 3  # one case waits for materials
    assert row.get_attribute("data-status") == "green"
    assert "中外合作办学机构终止" in row.inner_text() and "主办" in row.inner_text()
    shot(p, "cases_inbox.png")
    p = open_case_from_inbox(edu, case_no)
    assert p.locator("#case-state").get_attribute("data-state") == "accepted"
    assert p.locator('form.decide[data-department="edu"]').count() == 1
    assert p.locator('form.decide[data-department="civil"]').count() == 0
    p.fill("#reason-edu", "材料齐全，符合《中外合作办学条例》终止条件，同意。")
    shot(p, "cases_detail.png")
    # A second tab left open on the same case: its decision will come too late.
    stale = edu.ctx.new_page()
    stale.on("pageerror", lambda exc: errors.append(f"stale: {exc}"))
    stale.goto(live_node.url + f"/cases/{case_no}")
    # Rejecting needs a reason; the page says so without calling the server.
    stale.click('form.decide[data-department="edu"] [data-decision="reject"]')
    assert "请填写理由" in stale.locator("#msg").inner_text()
    p.click('form.decide[data-department="edu"] [data-decision="approve"]')
    p.locator('.task[data-department="edu"][data-state="approved"]').wait_for()
    assert "审查意见已提交" in p.locator("#msg").inner_text()
    assert p.locator("form.decide").count() == 0
    assert p.locator("#case-state").get_attribute("data-state") == "accepted"  # civil pending
    stale.click('form.decide[data-department="edu"] [data-decision="approve"]')
    msg = stale.locator("#msg")
    # The message area still shows the earlier "reason needed": wait for the server's answer.
    stale.wait_for_function(
        "document.getElementById('msg').textContent.includes('already decided')"
    )
    assert "当前状态不允许此操作" in msg.inner_text() and "already decided" in msg.inner_text()

    # -- civil affairs approves: the case is approved ------------------------------------
    civil = Staff(browser, live_node, REVIEWER_CIVIL, "/inbox", errors)
    p = open_case_from_inbox(civil, case_no)
    assert p.locator('form.decide[data-department="edu"]').count() == 0
    p.click('form.decide[data-department="civil"] [data-decision="approve"]')
    p.locator("#case-state[data-state=approved]").wait_for()
    assert "审批通过" in p.locator("#case-state").inner_text()
    assert "省民政厅审查通过" in p.locator("#timeline").inner_text()
    shot(p, "cases_detail_approved.png")

    # -- back at the window: result ready, picked up in the same visit --------------------
    p = clerk.page
    p.goto(live_node.url + f"/cases/{case_no}")
    assert p.locator("#case-state").get_attribute("data-state") == "approved"
    shot(p, "cases_detail_window.png")
    p.click("#btn-result")
    p.locator("#case-state[data-state=result_ready]").wait_for()
    ticket_id = clerk.get("/api/v1/windows/1")["window"]["suspended"][0]["id"]
    clerk.post("/api/v1/windows/1/resume", {"ticket_id": ticket_id})
    p.reload()
    p.select_option("#hv-ticket", str(ticket_id))
    p.click("#btn-handover")
    p.locator("#case-state[data-state=delivered]").wait_for()
    assert p.locator("#visit-count").inner_text().strip() == "1 次"
    clerk.post("/api/v1/windows/1/finish", {})

    # -- next citizen: the legal representative's ID is missing (容缺受理) -----------------
    issued = take_ticket(live_node, "19810203", item=SCHOOL_ITEM)
    called = clerk.post("/api/v1/windows/1/call-next", {})["ticket"]
    assert called["ticket_no"] == issued["ticket_no"]
    p.goto(live_node.url + f"/cases/new?ticket={called['id']}")  # the link form
    assert p.locator(f'.cat-item[data-code="{SCHOOL_ITEM}"] input').is_checked()  # its item
    for code in SCHOOL_MATERIALS[:-1]:
        p.check(f'#checklist-body input.m-got[data-code="{code}"]')
    assert p.locator("#verdict").get_attribute("class") == "verdict v-warn"
    assert p.locator("#submit").inner_text().strip() == "收件并出具告知书"
    p.check("#commitment")
    assert p.locator("#submit").inner_text().strip() == "受理并生成办件"
    shot(p, "cases_intake_rongque.png")
    p.click("#submit")
    p.locator("#result").wait_for(state="visible")
    assert p.locator("#result-state [data-state]").get_attribute("data-state") == "accepted"
    assert "法定代表人身份证明" in p.locator("#result-missing").inner_text()
    with p.expect_popup() as popup:
        p.click("#print-notice")
    notice = popup.value
    notice.wait_for_load_state()
    assert "一次性告知书（容缺受理）" in notice.locator("h1").inner_text()
    assert "法定代表人身份证明" in notice.locator("table").inner_text()
    notice.close()
    clerk.post("/api/v1/windows/1/finish", {})
    p.goto(live_node.url + "/cases/new?lang=en")
    assert "Choose service items" in p.locator(".catalog-panel h2").inner_text()
    p.fill("#cat-search", "370000-samr-007")  # by code: 企业开办“一件事”, three departments
    p.click('.cat-item[data-code="370000-samr-007"]')
    assert "Department of Public Security" in p.locator("#selected").inner_text()
    shot(p, "cases_intake_en.png")

    # -- the overview and the list (administrator) ---------------------------------------
    admin = Staff(browser, live_node, ADMIN, "/overview", errors)
    p = admin.page
    assert p.locator("#ov-total").inner_text().strip() == "5"
    assert p.locator("#ov-one-visit").inner_text().strip() == "100.0%"
    assert "材料清单不清楚" in p.locator("#ov-followups").inner_text()
    shot(p, "cases_overview.png")
    p.goto(live_node.url + "/cases")
    assert p.locator("#cases-table tbody tr[data-case]").count() == 5
    shot(p, "cases_list.png")
    p.goto(live_node.url + "/overview?lang=en")
    assert "Case overview" in p.locator("h1").inner_text()
    p.goto(live_node.url + f"/cases/{case_no}")
    assert "Timeline" in p.locator("#timeline-panel").inner_text()
    shot(p, "cases_detail_en.png")

    assert errors == []
    for s in (clerk, edu, civil, admin):
        s.close()
