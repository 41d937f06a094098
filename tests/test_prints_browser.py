"""Printing in a real hall, in Chromium: the 80 mm slip, the kiosk printing in its own page
and coming back to its first screen, closed queues, appointment check-in at the kiosk.

Screenshots land in ``tests/screenshots/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests import test_browser
from tests.conftest import PHONE, LiveServer, make_id, start_server
from tests.test_browser import SHOTS, post_json, shot, type_keypad

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one Chromium

MM = 72 / 25.4  # PDF points per millimetre
KIOSK = {"width": 1080, "height": 1920}


#: One Chromium for the module (the fixture of tests/test_browser.py).
browser = test_browser.browser


def media_boxes(pdf: bytes) -> list[tuple[float, float]]:
    """Width and height (points) of every page's MediaBox."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", pdf)
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


HALL = """
[queues."dept:edu"]
where_zh = "二楼东侧 3、4 号窗口"
where_en = "2nd floor east, windows 3 and 4"
cutoff = "00:00"

[queues."dept:civil"]
where_zh = "一楼大厅 B 区"
where_en = "Ground floor, area B"
"""


@pytest.fixture
def hall_node(node_dir: Path) -> Iterator[LiveServer]:
    """The test node with hall settings: dept:edu past its cut-off all day (00:00),
    public_url set so the slip carries a QR code, two live tickets per person."""
    yield from serve_with(
        node_dir,
        [('public_url = ""', 'public_url = "http://10.20.0.7:8080"'),
         ("max_live_tickets_per_id = 50", "max_live_tickets_per_id = 2")],
        HALL,
    )  # fmt: skip


def serve_with(
    data: Path, changes: list[tuple[str, str]], tables: str = ""
) -> Iterator[LiveServer]:
    """The node at ``data`` served, with these text changes to its node.toml and ``tables``
    at its end."""
    toml = data / "node.toml"
    text = toml.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    toml.write_text(text + tables)
    srv = start_server(["node", "serve", "--data", str(data), "--port", "0"],
                       data, data / "serve.log")  # fmt: skip
    yield srv
    srv.stop()


def test_the_ticket_slip_prints_80mm_wide_on_one_page(browser: Any, hall_node: LiveServer) -> None:
    # The tallest slip: a priority ticket (born 1945) with the longest item name.
    t = post_json(hall_node.url + "/api/v1/tickets",
                  {"queue": "dept:civil", "id_number": make_id("19450101"), "phone": PHONE,
                   "item": "370000-civil-001"})  # fmt: skip
    ctx = browser.new_context()
    page = ctx.new_page()
    for lang in ("zh", "en"):
        page.goto(hall_node.url + t["print_url"] + f"?lang={lang}")
        assert page.locator(".t-qr-img svg").count() == 1
        assert page.locator("main").count() == 1 and page.locator("h1").count() == 1
        where = "一楼大厅 B 区" if lang == "zh" else "Ground floor, area B"
        assert page.locator("#ticket-where").inner_text() == where
        page.emulate_media(media="print")
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        (SHOTS / f"ticket-{lang}.pdf").write_bytes(pdf)
        boxes = media_boxes(pdf)
        assert boxes, "no MediaBox in the PDF"
        for w, h in boxes:
            assert abs(w - 80 * MM) <= 0.5, (w, h)  # 226.77 pt
            assert abs(h - 150 * MM) <= 1, (w, h)
        page.set_viewport_size({"width": 303, "height": 567})  # 80 x 150 mm at 96 dpi
        shot(page, f"ticket-slip-{lang}.png", full_page=True)
        page.emulate_media(media="screen")
        assert pages(pdf) == 1, f"the slip takes {pages(pdf)} pages"
    ctx.close()


def issue_at_kiosk(page: Any, queue: str, id_number: str) -> None:
    page.click("#mode-department")
    page.click(f'[data-queue="{queue}"]')
    if page.locator("#screen-item.active").count():
        page.click("#skip-item")
    page.locator("#screen-info.active").wait_for()
    page.click("#id_number")
    type_keypad(page, id_number)
    page.click("#phone")
    type_keypad(page, PHONE)
    page.click("#submit")
    page.locator("#screen-done.active").wait_for()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_kiosk_prints_in_page_and_returns_to_its_first_screen(
    browser: Any, hall_node: LiveServer, lang: str
) -> None:
    ctx = browser.new_context(viewport=KIOSK)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(hall_node.url + f"/kiosk?lang={lang}&return=6")
    assert page.locator("main").count() == 1 and page.locator("h1:visible").count() == 1
    shot(page, f"kiosk-{lang}-1-start.png")
    page.click("#mode-department")
    page.locator('[data-queue="dept:edu"].closed').wait_for()
    shot(page, f"kiosk-{lang}-2-departments.png")
    closed = page.locator('[data-queue="dept:edu"]').inner_text()
    assert ("今日已停止取号" if lang == "zh" else "No more tickets today") in closed
    page.click('[data-queue="dept:edu"]', force=True)  # a closed queue does not go on
    assert page.locator("#screen-queue.active").count() == 1
    page.click('#screen-queue [data-action="back"]')

    issue_at_kiosk(page, "dept:civil", make_id("19850612"))
    where = "一楼大厅 B 区" if lang == "zh" else "Ground floor, area B"
    assert page.locator("#ticket-where").inner_text() == where
    assert page.locator("#ticket-qr-box").is_visible()
    page.wait_for_function("document.getElementById('ticket-qr').naturalWidth > 0")
    frame = page.locator("#print-frame iframe")
    assert frame.count() == 1 and "embed=1" in (frame.get_attribute("src") or "")
    page.wait_for_function("document.body.dataset.printed === '1'", timeout=10_000)
    assert "请取票" in page.locator("#take-slip").inner_text() if lang == "zh" else True
    shot(page, f"kiosk-{lang}-3-ticket.png")
    # Back to the first screen by itself, and never a second tab.
    page.locator("#screen-mode.active").wait_for(timeout=10_000)
    assert len(ctx.pages) == 1
    assert page.locator("#print-frame iframe").count() == 0
    assert errors == []
    ctx.close()


def test_the_kiosk_says_the_per_person_cap_in_chinese(browser: Any, hall_node: LiveServer) -> None:
    me = make_id("19700101", seq="321")
    for queue in ("dept:civil", "area:agri"):
        post_json(
            hall_node.url + "/api/v1/tickets", {"queue": queue, "id_number": me, "phone": PHONE}
        )
    ctx = browser.new_context(viewport=KIOSK)
    page = ctx.new_page()
    page.goto(hall_node.url + "/kiosk?lang=zh")
    page.click("#mode-department")
    page.click('[data-queue="dept:civil"]')
    if page.locator("#screen-item.active").count():
        page.click("#skip-item")
    page.click("#id_number")
    type_keypad(page, me)
    page.click("#phone")
    type_keypad(page, PHONE)
    page.click("#submit")
    page.wait_for_function("document.getElementById('error-id_number').textContent.length > 0")
    assert "该证件今日已有 2 张未办结的号票" in page.locator("#error-id_number").inner_text()
    assert page.locator("#screen-info.active").count() == 1
    shot(page, "kiosk-zh-cap.png")
    ctx.close()


def book_today(data: Path, queue: str, id_number: str) -> str:
    """An appointment for today, booked as if this morning (before its slot began)."""
    from node import appointments, pii
    from node.cli import open_db

    cfg, db = open_db(data)
    today = dt.datetime.now(ZoneInfo(cfg.timezone)).date()
    early = dt.datetime.combine(today, dt.time(6, 0), ZoneInfo(cfg.timezone))
    real = appointments.workdays.is_workday
    appointments.workdays.is_workday = lambda day: True  # today may be a Sunday
    try:
        out = appointments.book(db, cfg, pii.load(data),
                                {"queue": queue, "date": today.isoformat(), "slot": "09:00",
                                 "id_number": id_number, "phone": PHONE}, now=lambda: early)  # fmt: skip
        db.conn.close()
    finally:
        appointments.workdays.is_workday = real
    return str(out["ref"])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_appointment_check_in_at_the_kiosk(browser: Any, node_dir: Path, lang: str) -> None:
    ref = book_today(node_dir, "dept:civil", make_id("19800101"))
    srv = start_server(["node", "serve", "--data", str(node_dir), "--port", "0"],
                       node_dir, node_dir / "serve.log")  # fmt: skip
    try:
        ctx = browser.new_context(viewport=KIOSK)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(srv.url + f"/kiosk?lang={lang}&return=5")
        page.click("#mode-checkin")
        page.locator("#screen-checkin.active").wait_for()
        assert page.locator("label[for=ref]").count() == 1
        # A wrong reference first.
        for ch in "YAAAAAAAA":
            page.click(f'#keypad-ref [data-ref-key="{ch}"]')
        page.click("#checkin-find")
        page.wait_for_function("document.getElementById('error-ref').textContent.length > 0")
        shot(page, f"kiosk-{lang}-checkin-1-wrong.png")
        page.click('#keypad-ref [data-ref-key="clear"]')
        for ch in ref:
            page.click(f'#keypad-ref [data-ref-key="{ch}"]')
        page.click("#checkin-find")
        page.locator("#appointment:not([hidden])").wait_for()
        assert page.locator("#appt-ref").inner_text() == ref
        assert "09:00" in page.locator("#appt-when").inner_text()
        shot(page, f"kiosk-{lang}-checkin-2-found.png")
        page.click("#checkin-go")
        page.locator("#screen-done.active").wait_for()
        number = page.locator("#ticket-number").inner_text().strip()
        assert number and page.locator("#ticket-priority").is_visible()
        # 127.0.0.1 and no public_url: no QR code, the reference instead.
        assert not page.locator("#ticket-qr-box").is_visible()
        assert number in page.locator("#ticket-ref").inner_text()
        assert page.locator("#print-frame iframe").count() == 1
        shot(page, f"kiosk-{lang}-checkin-3-ticket.png")
        page.locator("#screen-mode.active").wait_for(timeout=10_000)
        assert len(ctx.pages) == 1 and errors == []
        ctx.close()
    finally:
        srv.stop()


# ---------------------------------------------------------------- the printed notices (A4)

A4 = (595.28, 841.89)
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


@pytest.fixture
def notice_node(node_dir: Path) -> Iterator[LiveServer]:
    """The test node with a reviewer for education, the center's address and phone, and
    public_url (the notice's QR code)."""
    from tests.test_cases_browser import node_dir as with_reviewers

    with_reviewers.__wrapped__(node_dir)  # type: ignore[attr-defined]
    yield from serve_with(
        node_dir,
        [('public_url = ""', 'public_url = "https://zwfw.example.gov.cn"'),
         ('center_address = ""', 'center_address = "济南市历下区解放路 100 号"'),
         ('center_phone = ""', 'center_phone = "0531-86661234"')],
    )  # fmt: skip


def test_the_notices_print_on_a4_in_the_page_language(
    browser: Any, notice_node: LiveServer
) -> None:
    from tests.conftest import CLERK
    from tests.test_cases_browser import Staff
    from tests.test_cases_common import REVIEWER_EDU, SCHOOL_ITEM, SCHOOL_MATERIALS

    errors: list[str] = []
    clerk = Staff(browser, notice_node, CLERK, "/window/1", errors)

    def case(birth: str, received: list[str]) -> str:
        post_json(notice_node.url + "/api/v1/tickets",
                  {"queue": "dept:edu", "id_number": make_id(birth), "phone": PHONE})  # fmt: skip
        called = clerk.post("/api/v1/windows/1/call-next", {})["ticket"]
        body = {"ticket_id": called["id"], "items": [SCHOOL_ITEM], "received": received}
        no = str(clerk.post("/api/v1/cases", body, 201)["case"]["case_no"])
        clerk.post("/api/v1/windows/1/finish", {})
        return no

    # A one-time notice: two materials missing, one of them required (not accepted).
    intake_no = case("19620817", [m for m in SCHOOL_MATERIALS if m not in
                                  ("termination-application", "legal-rep-id")])  # fmt: skip
    # A supplement notice (补正): education asks for the liquidation report again.
    supplement_no = case("19880110", SCHOOL_MATERIALS)
    reviewer = Staff(browser, notice_node, REVIEWER_EDU, "/inbox", errors)
    reviewer.post(f"/api/v1/cases/{supplement_no}/reviews/edu",
                  {"decision": "supplement", "reason": "财务清算报告缺少审计机构盖章",
                   "materials": ["liquidation-report"]})  # fmt: skip
    reviewer.close()

    page = clerk.page
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    titles = {"intake": ("一次性告知书", "One-time notice of missing materials"),
              "supplement": ("补正材料告知书", "Notice of supplementary materials")}  # fmt: skip
    for kind, no in (("intake", intake_no), ("supplement", supplement_no)):
        for lang in ("zh", "en"):
            page.goto(notice_node.url + f"/cases/{no}/notice?lang={lang}")
            assert page.locator("main").count() == 1 and page.locator("h1").count() == 1
            title = page.locator("h1").inner_text()
            assert title == titles[kind][lang == "en"], title
            text = page.locator("main").inner_text()
            assert not STAMP.search(text), text
            for code in SCHOOL_MATERIALS:
                assert code not in text, code
            assert "370102********" in text and "解放路 100 号" in text and "0531-86661234" in text
            assert "clerk1" in text and page.locator("#seal").count() == 1
            assert page.locator(".follow svg").count() == 1  # QR code under public_url
            if lang == "zh":
                assert "Notice" not in text and "legal" not in text.lower()
                if kind == "intake":
                    assert "法定代表人身份证明" in text
                    assert "1号窗口" in text
            else:
                assert "材料" not in text and "告知" not in text
                assert "Window 1" in text
            shot(page, f"notice-{kind}-{lang}.png", full_page=True)
            page.emulate_media(media="print")
            pdf = page.pdf(prefer_css_page_size=True, print_background=True)
            page.emulate_media(media="screen")
            (SHOTS / f"notice-{kind}-{lang}.pdf").write_bytes(pdf)
            boxes = media_boxes(pdf)
            assert boxes
            for w, h in boxes:
                assert abs(w - A4[0]) <= 1 and abs(h - A4[1]) <= 1, (w, h)
            assert pages(pdf) == 1, f"{kind} {lang}: {pages(pdf)} pages"
    clerk.close()
    assert errors == []
