"""Ratings in a real browser: the window's evaluator lights up when the clerk finishes a ticket
and takes a tap; a bad rating from the QR landing page on a phone, with its reason; the call
back, the fix, the clerk's appeal and the one follow-up rating (追评).

Headless Chromium through Playwright against a real ``onestop node serve`` process (the
helpers of tests/test_browser.py); screenshots go to ``tests/screenshots/rate-*.png``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import test_browser
from tests.conftest import ADMIN, CLERK, PHONE, LiveServer, make_id
from tests.test_browser import get_json, post_json, shot
from tests.test_cases_browser import Staff

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one Chromium

browser = test_browser.browser
TABLET = {"width": 1366, "height": 768}
PHONE_VIEW = {"width": 390, "height": 844}


def served_ticket(live: LiveServer, clerk: Staff, birth: str) -> dict[str, Any]:
    """A ticket taken at the kiosk (API), called and finished at window 1 by its clerk."""
    t = post_json(
        live.url + "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(birth), "phone": PHONE},
    )
    called = clerk.post("/api/v1/windows/1/call-next", {})
    assert called["ticket"]["ticket_no"] == t["ticket_no"]
    clerk.post("/api/v1/windows/1/finish", {})
    return dict(t)


def evaluator(browser: Any, live: LiveServer, lang: str, errors: list[str]) -> Any:
    ctx = browser.new_context(viewport=TABLET, has_touch=True, locale="zh-CN")
    page = ctx.new_page()
    page.on("pageerror", lambda exc: errors.append(f"evaluator {lang}: {exc}"))
    page.goto(live.url + f"/rate/window/1?lang={lang}")
    page.locator("#ev-idle").wait_for(state="visible")
    return page


def no_overflow(page: Any) -> None:
    """Nothing sticks out of the screen or out of its button (a glyph's few pixels above its
    line box aside)."""
    wide = page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert not wide, "the page scrolls sideways"
    cut = page.evaluate(
        """Array.from(document.querySelectorAll('button, .ev-window-no, .ev-title, h1'))
             .filter(e => e.offsetParent && (e.scrollWidth > e.clientWidth + 1
                                              || e.scrollHeight > e.clientHeight + 4))
             .map(e => [e.textContent.trim(), e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight])"""
    )
    assert cut == [], cut


def test_the_window_evaluator_and_the_qr_landing_page(browser: Any, live_node: LiveServer) -> None:
    live = live_node
    errors: list[str] = []
    clerk = Staff(browser, live, CLERK, "/window/1", errors)
    admin = Staff(browser, live, ADMIN, "/followups", errors)

    # The evaluator at window 1, idle, in both languages.
    zh = evaluator(browser, live, "zh", errors)
    assert "综合窗口" in zh.locator(".ev-head").inner_text()
    assert "clerk1" in zh.locator("#ev-idle").inner_text()
    shot(zh, "rate-window-idle-zh.png")
    no_overflow(zh)
    en = evaluator(browser, live, "en", errors)
    assert "Welcome" in en.locator("#ev-idle").inner_text()
    shot(en, "rate-window-idle-en.png")
    no_overflow(en)

    # The clerk finishes a ticket: both light up with the five levels; a tap rates the visit.
    first = served_ticket(live, clerk, "19750305")
    zh.locator("#ev-lit").wait_for(state="visible", timeout=10_000)
    en.locator("#ev-lit").wait_for(state="visible", timeout=10_000)
    assert first["ticket_no"] in zh.locator("#ev-subject").inner_text()
    assert zh.locator("#ev-levels button").count() == 5
    box = zh.locator('[data-level="5"]').bounding_box()
    assert box and box["width"] >= 150 and box["height"] >= 150  # big touch targets
    shot(zh, "rate-window-lit-zh.png")
    no_overflow(zh)
    shot(en, "rate-window-lit-en.png")
    no_overflow(en)
    zh.locator('[data-level="5"]').tap()
    zh.locator("#ev-thanks").wait_for(state="visible")
    shot(zh, "rate-window-thanks-zh.png")
    en.locator("#ev-idle").wait_for(state="visible", timeout=10_000)  # rated: offered no more
    rows = admin.get("/api/v1/ratings/export?format=json")["ratings"]
    assert [(r["ticket_no"], r["level"], r["channel"], r["clerk"]) for r in rows] == [
        (first["ticket_no"], 5, "window", "clerk1")
    ]
    zh.locator("#ev-idle").wait_for(state="visible", timeout=10_000)  # back to idle

    # A bad rating at the evaluator asks its reason first.
    second = served_ticket(live, clerk, "19800101")
    en.locator("#ev-lit").wait_for(state="visible", timeout=10_000)
    en.locator('[data-level="2"]').tap()
    en.locator("#ev-reasons").wait_for(state="visible")
    shot(en, "rate-window-reasons-en.png")
    no_overflow(en)
    en.locator('[data-reason="efficiency"]').tap()
    en.locator("#ev-thanks").wait_for(state="visible")
    shot(en, "rate-window-thanks-en.png")

    # On a phone: the status page of a finished visit links to its rating page.
    third = served_ticket(live, clerk, "19900202")
    ctx = browser.new_context(viewport=PHONE_VIEW, is_mobile=True, has_touch=True,
                              device_scale_factor=2, locale="zh-CN")  # fmt: skip
    phone = ctx.new_page()
    phone.on("pageerror", lambda exc: errors.append(f"phone: {exc}"))
    phone.goto(live.url + third["status_url"])
    assert phone.locator('meta[http-equiv="refresh"]').count() == 0
    link = phone.locator("#status-rating-link")
    link.wait_for()
    shot(phone, "rate-phone-status.png")
    link.tap()
    phone.wait_for_url(f"**/rate/t/{third['token']}")
    shot(phone, "rate-phone-landing.png")
    no_overflow(phone)
    phone.locator('label[for="level-1"]').tap()
    phone.fill("#rate-comment", "窗口人员态度差，电话13812345678")
    phone.locator("#rate-submit").tap()
    phone.locator("#rate-error").wait_for()  # no reason: the form says so, keeps the text
    assert "原因" in phone.locator("#rate-error").inner_text()
    assert phone.locator("#rate-comment").input_value().startswith("窗口人员态度差")
    shot(phone, "rate-phone-reason-required.png", full_page=True)
    phone.locator('label[for="level-1"]').tap()
    phone.locator('label[for="reason-attitude"]').tap()
    phone.locator("#rate-submit").tap()
    phone.locator("#rate-done").wait_for()
    shot(phone, "rate-phone-thanks.png")

    # Staff: call back and fix (admin), the rated clerk appeals, the admin rejects it.
    fups = admin.get("/api/v1/followups?state=open")["followups"]
    mine = next(f for f in fups if f["ticket_no"] == third["ticket_no"])
    assert mine["reason"] == "attitude" and mine["comment"].endswith("138****5678")
    admin.post(f"/api/v1/followups/{mine['id']}/callback", {"note": "已电话致歉"})
    clerk.post(f"/api/v1/ratings/{mine['rating_id']}/appeal", {"reason": "当时系统故障"})
    admin.page.goto(live.url + "/followups")
    admin.page.locator(f'#appeals-table tr[data-rating="{mine["rating_id"]}"]').wait_for()
    shot(admin.page, "rate-followups-admin.png")
    row = admin.page.locator(f'#followups-table tr[data-followup="{mine["id"]}"]')
    row.locator('form[data-action$="/close"] input[name=note]').fill("已对窗口人员进行服务规范培训")
    row.locator('form[data-action$="/close"] button').click()
    admin.page.wait_for_load_state("load")
    admin.page.locator(f'#appeals-table tr[data-rating="{mine["rating_id"]}"]').wait_for()
    appeal = admin.page.locator(f'#appeals-table tr[data-rating="{mine["rating_id"]}"]')
    appeal.locator("input[name=note]").fill("评价属实")
    appeal.locator('button[value="rejected"]').click()
    admin.page.locator("#appeals-table").get_by_text("暂无待复核的申诉").wait_for()
    rated = get_json(live.url + f"/api/v1/tickets/status/{third['token']}")
    assert rated["ticket_no"] == third["ticket_no"]

    # 追评: once, on the same page, only now that the fix is recorded.
    phone.goto(live.url + f"/rate/t/{third['token']}")
    phone.locator("#rate-again-note").wait_for()
    shot(phone, "rate-phone-again.png")
    phone.goto(live.url + f"/rate/t/{third['token']}?lang=en")
    assert "Please rate the result" in phone.locator("#rate-again-note").inner_text()
    shot(phone, "rate-phone-again-en.png")
    no_overflow(phone)
    phone.locator('label[for="level-4"]').tap()
    phone.locator("#rate-submit").tap()
    phone.locator("#rate-done").wait_for()
    assert phone.locator("#rate-form").count() == 0  # not offered twice
    rows = {r["ticket_no"]: r for r in admin.get("/api/v1/ratings/export?format=json")["ratings"]}
    got = rows[third["ticket_no"]]
    assert (got["level"], got["reason"], got["channel"]) == (1, "attitude", "qr")
    assert (got["followup_state"], got["appeal_state"], got["again_level"]) == (
        "closed", "rejected", 4
    )  # fmt: skip
    assert rows[second["ticket_no"]]["reason"] == "efficiency"
    assert json.dumps(errors) == "[]"
    for c in (clerk, admin):
        c.close()
