"""The pages in a real browser: kiosk → ticket, window console → call, display board.

Drives Debian's headless Chromium through Playwright against a real ``onestop node serve``
process.  Screenshots land in ``tests/screenshots/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLERK, PHONE, LiveServer, make_id

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one Chromium

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post_json(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def waiting(live: LiveServer, queue: str) -> int:
    return int(
        next(
            q["waiting"]
            for q in get_json(live.url + "/api/v1/queues")["queues"]
            if q["code"] == queue
        )
    )


def shot(page: Any, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(SHOTS / name), full_page=full_page, animations="disabled")


def type_keypad(page: Any, text: str) -> None:
    for ch in text:
        page.click(f'#keypad [data-key="{ch}"]')


def test_kiosk_issues_a_ticket_and_shows_field_errors(browser: Any, live_node: LiveServer) -> None:
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_node.url + "/kiosk")
    assert page.locator("#mode-department").inner_text().strip().startswith("按部门取号")
    shot(page, "kiosk-1-start.png")

    page.click("#mode-department")
    tile = page.locator('[data-queue="dept:edu"]')
    tile.wait_for()
    assert "教育厅" in tile.inner_text()
    shot(page, "kiosk-2-departments.png")
    tile.click()
    if page.locator("#screen-item.active").count():
        shot(page, "kiosk-3-items.png")
        page.locator("#item-list .item-btn").first.click()
    page.locator("#screen-info.active").wait_for()

    # A wrong check character: the page names the field and keeps what was typed.
    good = make_id("19850612")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    page.click("#id_number")
    type_keypad(page, bad)
    page.click("#phone")
    type_keypad(page, PHONE)
    page.click("#submit")
    err = page.locator("#error-id_number")
    err.wait_for(state="visible")
    page.wait_for_function("document.getElementById('error-id_number').textContent.length > 0")
    assert "校验" in err.inner_text()
    assert page.locator("#id_number").input_value() == bad
    assert page.locator("#phone").input_value() == PHONE
    assert page.locator("#screen-info.active").count() == 1
    assert waiting(live_node, "dept:edu") == 0
    shot(page, "kiosk-4-field-error.png")

    # Fix it with the keypad: clear, type the valid number, get a ticket.
    page.click('#keypad [data-key="clear"]')
    type_keypad(page, good)
    page.click("#submit")
    page.locator("#screen-done.active").wait_for()
    number = page.locator("#ticket-number").inner_text().strip()
    assert number.startswith("N") and len(number) >= 3
    masked = page.locator("#ticket-id").inner_text()
    assert good not in page.content()
    assert masked == good[:6] + "*" * 8 + good[-4:]
    assert waiting(live_node, "dept:edu") == 1
    # 127.0.0.1 and no public_url: no phone could open a QR code, so the reference instead.
    assert not page.locator("#ticket-qr-box").is_visible()
    assert number in page.locator("#ticket-ref").inner_text()
    shot(page, "kiosk-5-ticket.png")

    # The print page of that ticket, and the public status page on a phone.
    url = page.locator("#print-ticket").get_attribute("data-url")
    assert url
    pp = ctx.new_page()
    pp.set_viewport_size({"width": 480, "height": 900})
    pp.goto(live_node.url + url)
    assert pp.locator("#ticket-number").inner_text().strip() == number
    assert pp.locator(".t-qr-img svg").count() == 0 and pp.locator("#ticket-ref").count() == 1
    shot(pp, "ticket-print.png", full_page=True)
    token = url.split("/")[2]
    pp.goto(live_node.url + f"/s/{token}")
    assert number in pp.content() and good[-4:] not in pp.locator("body").inner_text()
    shot(pp, "ticket-status.png", full_page=True)
    # Done with the phone: a tab in the background gets no animation frames, so every action
    # on the kiosk tab would wait about two seconds for the page to be "stable".
    pp.close()

    # The English kiosk sends lang=en and shows English errors.
    # "Done", unless the kiosk went back by itself after printing (one task: no race).
    page.evaluate("(b => b.offsetParent && b.click())(document.getElementById('done'))")
    page.locator("#screen-mode.active").wait_for()
    page.click('[data-lang-switch="en"]')
    page.wait_for_load_state()
    assert "By department" in page.locator("#mode-department").inner_text()
    page.click("#mode-area")
    page.click('[data-queue="area:agri"]')
    if page.locator("#screen-item.active").count():
        page.click("#skip-item")
    page.click("#phone")
    type_keypad(page, "12345")
    page.click("#submit")
    page.wait_for_function("document.getElementById('error-phone').textContent.length > 0")
    assert "ID card number is required" in page.locator("#error-id_number").inner_text()
    assert "mobile" in page.locator("#error-phone").inner_text().lower()
    assert waiting(live_node, "area:agri") == 0
    assert errors == []
    ctx.close()


def test_window_call_appears_on_display(browser: Any, live_node: LiveServer) -> None:
    post_json(
        live_node.url + "/api/v1/tickets",
        {"queue": "dept:civil", "id_number": make_id("19900101"), "phone": PHONE},
    )
    # Born in 1945: an elderly citizen goes first (绿色通道).
    issued = post_json(
        live_node.url + "/api/v1/tickets",
        {"queue": "area:agri", "id_number": make_id("19450101"), "phone": PHONE},
    )
    assert issued["priority"] == 1
    number = issued["ticket_no"]
    errors: list[str] = []

    # The board is open before anyone calls.
    board_ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    board = board_ctx.new_page()
    board.on("pageerror", lambda exc: errors.append(str(exc)))
    board.goto(live_node.url + "/display")
    board.wait_for_function("document.body.dataset.connected === '1'")
    assert board.locator("#unlock").is_visible()
    shot(board, "display-locked.png")
    board.click("#unlock-btn")
    assert not board.locator("#unlock").is_visible()

    staff_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    staff = staff_ctx.new_page()
    staff.on("pageerror", lambda exc: errors.append(str(exc)))
    staff.goto(live_node.url + "/window/1")
    assert "/login" in staff.url
    staff.fill("#username", CLERK[0])
    staff.fill("#password", CLERK[1])
    staff.click("#login-form button[type=submit]")
    staff.wait_for_url("**/window/1")
    assert staff.locator("#current-none").is_visible()
    staff.click("#btn-call")
    staff.locator("#current-no").wait_for(state="visible")
    staff.wait_for_function(f"document.getElementById('current-no').textContent === '{number}'")
    assert staff.locator("#message").inner_text().strip().endswith(number)
    assert staff.locator("#btn-call").is_disabled()
    elderly = make_id("19450101")
    assert staff.locator("#current-id").inner_text() == elderly[:6] + "*" * 8 + elderly[-4:]
    assert staff.locator("#current-prio").is_visible()

    cell = board.locator('.win-card[data-window="1"] .win-ticket')
    board.wait_for_function(
        f"document.querySelector('.win-card[data-window=\"1\"]').dataset.ticket === '{number}'"
    )
    assert cell.inner_text().strip() == number
    board.wait_for_function(f"(document.body.dataset.lastCall || '').includes('{number}')")
    assert "一号窗口" in board.evaluate("document.body.dataset.lastCall")
    assert board.locator("#now-ticket").inner_text().strip() == number
    assert number in board.locator("#recent").inner_text()

    # A second call must wait: the console shows the 409 message in its message area.
    # (enable and click in one task, so a live refresh cannot disable it in between)
    staff.evaluate("const b = document.getElementById('btn-call'); b.disabled = false; b.click()")
    staff.wait_for_function("document.getElementById('message').classList.contains('msg-error')")
    assert number in staff.locator("#message").inner_text()
    shot(staff, "window-console.png")
    shot(board, "display.png")

    # Finish: the board shows the window free again.
    staff.click("#btn-finish")
    staff.locator("#current-none").wait_for(state="visible")
    board.wait_for_function(
        "document.querySelector('.win-card[data-window=\"1\"]').dataset.ticket === ''"
    )
    shot(staff, "window-console-idle.png")
    assert errors == []
    staff_ctx.close()
    board_ctx.close()
