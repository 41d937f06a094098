"""The hub's dashboards in headless Chromium: log in, province view, then drill down city →
county → township by clicking rows of the child-division table; 1920x1080 screenshots of each
level go to tests/screenshots/hub_*.png.  Live refresh updates numbers without a reload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, run_cli
from tests.test_dashboard import serve
from tests.test_dashboard_seed import seed_province

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path(__file__).resolve().parent / "screenshots"
USER = ("prov", "prov-pass-001")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("hub_browser"),  # one seeded hub for the module
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    hub_dir = tmp_path_factory.mktemp("hubbrowser") / "hub"
    assert run_cli("hub", "init", "--data", str(hub_dir)) == 0
    assert run_cli("hub", "user", "add", "--data", str(hub_dir), "--username", USER[0],
                   "--role", "official", "--scope", "37", stdin=USER[1] + "\n") == 0  # fmt: skip
    seed_province(hub_dir, dt.datetime.now(dt.UTC), days=7)
    srv = serve(["hub", "serve", "--data", str(hub_dir)], "/api/v1/health", hub_dir)
    yield srv
    srv.stop()


@pytest.fixture
def page(hub: LiveServer) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
    assert not errors, errors


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"hub_{name}.png"))


def test_login_and_drill_down_province_to_township(hub: LiveServer, page: Any) -> None:
    page.goto(hub.url + "/dash/37?preset=7d")
    assert "/login" in page.url  # the dashboards need a login
    page.fill("input[name=username]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/dash/37?preset=7d")
    page.wait_for_selector("#children tbody tr")
    assert page.inner_text("#div-name") == "山东省"
    assert page.locator("#children tbody tr").count() == 17  # its own center + 16 cities
    assert page.locator("#trend svg rect").count() == 7
    assert int(page.inner_text("#kpi-tickets .k-value").replace(",", "")) > 0
    shot(page, "province")

    for name, level in (("济南市", "city"), ("历下区", "county"), ("解放路街道", "township")):
        page.locator("#children tbody tr.link", has_text=name).first.click()
        page.wait_for_function(
            "n => document.getElementById('div-name').textContent === n", arg=name
        )
        page.wait_for_selector("#children tbody tr")
        crumbs = page.inner_text("#crumbs")
        assert name in crumbs and "山东省" in crumbs
        assert "preset=7d" in page.url
        if level == "township":
            assert page.is_visible("#center") and "在线" in page.inner_text("#center")
        shot(page, level)

    # Back up by the breadcrumb; the department/item tabs switch the table.
    page.click("#crumbs a[data-code='3701']")
    page.wait_for_function("() => document.getElementById('div-name').textContent === '济南市'")
    page.click(".tab[data-tab=items]")
    assert "items.csv" in (page.get_attribute("#breakdown-export", "href") or "")
    assert page.locator("#breakdown tbody tr").count() > 0


def test_live_refresh_updates_numbers_in_place(hub: LiveServer, page: Any) -> None:
    page.goto(hub.url + "/login?next=/dash/3701")
    page.fill("input[name=username]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#kpi-tickets .k-value")
    page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    with page.expect_response(lambda r: "/api/v1/dash/3701" in r.url) as resp:
        page.evaluate("window.onestopDash.poll()")
    assert resp.value.status == 200
    page.wait_for_function("() => document.getElementById('live-text').textContent.includes(':')")
    assert page.evaluate("window.__marker") == 1
    assert not page.locator("#live.stale").count()


def test_english(hub: LiveServer, page: Any) -> None:
    page.goto(hub.url + "/login?lang=en&next=/dash/37")
    page.fill("input[name=username]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#children tbody tr")
    assert "Centers online" in page.inner_text("#kpis")
    assert "Divisions below" in page.inner_text(".p-children h3")
    assert "济南市" in page.inner_text("#children")  # division names stay as the data has them
