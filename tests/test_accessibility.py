"""Every page, in zh-CN and English, passes axe-core with no critical or serious violation,
and has one ``main`` landmark and one ``h1``.

A real node (with a ticket called at window 1 and a case of the seed's 中外合作办学机构终止
taken in) and a real hub (a province seeded with a week of figures) are served; each page is
opened as the user who would see it.  The list of pages is checked against the routes the
apps register, so a new page cannot go unchecked.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.axe import landmarks, report, violations
from tests.conftest import ADMIN, CLERK, PHONE, LiveServer, make_id, run_cli, start_server
from tests.test_browser import CHROMIUM, SHOTS
from tests.test_browser import browser as browser  # one Chromium for the module
from tests.test_cases_common import REVIEWER_EDU, SCHOOL_ITEM, SCHOOL_MATERIALS
from tests.test_hub_browser import USER as HUB_USER
from tests.test_hub_browser import hub as hub  # the seeded province, served

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("axe")]
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed", allow_module_level=True)


class Actor:
    """A browser context logged in as one user (or nobody), with the API at hand."""

    def __init__(self, browser: Any, base: str, user: tuple[str, str] | None, view: dict[str, int],
                 lang: str) -> None:  # fmt: skip
        self.base = base
        self.ctx = browser.new_context(viewport=view, locale="zh-CN" if lang == "zh" else "en-US")
        self.csrf = ""
        if user:
            r = self.ctx.request.post(base + "/api/v1/login",
                                      data=json.dumps({"username": user[0], "password": user[1]}),
                                      headers={"Content-Type": "application/json"})  # fmt: skip
            assert r.ok, r.text()
            self.csrf = r.json().get("csrf_token", "")

    def post(self, path: str, body: Any, status: int = 200) -> Any:
        r = self.ctx.request.post(self.base + path, data=json.dumps(body),
                                  headers={"Content-Type": "application/json",
                                           "X-CSRF-Token": self.csrf})  # fmt: skip
        assert r.status == status, (path, r.status, r.text())
        return r.json()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, node_template: Path) -> Iterator[LiveServer]:
    from tests.conftest import copy_node

    data = copy_node(node_template, tmp_path_factory.mktemp("axe") / "node")
    assert run_cli("node", "user", "add", "--data", str(data), "--username", REVIEWER_EDU[0],
                   "--role", "reviewer", "--department", "edu",
                   stdin=REVIEWER_EDU[1] + "\n") == 0  # fmt: skip
    srv = start_server(["node", "serve", "--data", str(data), "--port", "0"], data,
                       data / "serve.log")  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hall(node: LiveServer, browser: Any) -> dict[str, str]:
    """A ticket served at window 1 that became a case, and a second ticket waiting."""
    public = Actor(browser, node.url, None, {"width": 800, "height": 600}, "zh")
    ticket = public.post("/api/v1/tickets", {"queue": "dept:edu", "id_number": make_id("19750305"),
                                             "phone": PHONE, "item": SCHOOL_ITEM}, 201)  # fmt: skip
    waiting = public.post("/api/v1/tickets", {"queue": "dept:civil",
                                              "id_number": make_id("19800101"),
                                              "phone": PHONE}, 201)  # fmt: skip
    clerk = Actor(browser, node.url, CLERK, {"width": 800, "height": 600}, "zh")
    called = clerk.post("/api/v1/windows/1/call-next", {})["ticket"]
    # 容缺受理: the optional material follows, so the case has a one-time notice.
    case = clerk.post("/api/v1/cases", {"ticket_id": called["id"], "items": [SCHOOL_ITEM],
                                        "received": SCHOOL_MATERIALS[:-1], "commitment": True},
                      201)["case"]  # fmt: skip
    clerk.post("/api/v1/windows/1/finish", {})  # the visit can now be rated
    public.ctx.close()
    clerk.ctx.close()
    from node import pii, ratings

    code = ratings.shown_code(ratings.case_code(pii.load(node.data), case["case_no"]))
    return {"token": ticket["token"], "waiting": waiting["token"], "case_no": case["case_no"],
            "code": code}  # fmt: skip


KIOSK = {"width": 1080, "height": 1920}
BOARD = {"width": 1920, "height": 1080}
CONSOLE = {"width": 1366, "height": 768}
PHONE_VIEW = {"width": 390, "height": 844}

#: Node pages: route → (who opens it, screen, the path with its parameters filled in).
NODE_PAGES: dict[str, tuple[str, dict[str, int], str]] = {
    "/": ("public", CONSOLE, "/"),
    "/kiosk": ("public", KIOSK, "/kiosk"),
    "/t/{token}/print": ("public", {"width": 302, "height": 600}, "/t/{token}/print"),
    "/s/{token}": ("public", PHONE_VIEW, "/s/{waiting}"),
    "/display": ("public", BOARD, "/display"),
    "/login": ("public", CONSOLE, "/login"),
    "/status": ("public", PHONE_VIEW, "/status"),
    "/status/{case_no}": ("public", PHONE_VIEW, "/status/{case_no}?phone_last4=" + PHONE[-4:]),
    "/window": ("clerk", CONSOLE, "/window"),
    "/window/{id}": ("clerk", CONSOLE, "/window/1"),
    "/cases/new": ("clerk", CONSOLE, "/cases/new"),
    "/admin": ("admin", CONSOLE, "/admin"),
    "/cases": ("admin", CONSOLE, "/cases"),
    "/cases/{case_no}": ("admin", CONSOLE, "/cases/{case_no}"),
    "/cases/{case_no}/notice": ("admin", {"width": 794, "height": 1123}, "/cases/{case_no}/notice"),
    "/overview": ("admin", CONSOLE, "/overview"),
    "/sync": ("admin", CONSOLE, "/sync"),
    "/inbox": ("reviewer", CONSOLE, "/inbox"),
    "/followups": ("admin", CONSOLE, "/followups"),
    "/rate/window/{n}": ("public", CONSOLE, "/rate/window/1"),
    "/rate/t/{token}": ("public", PHONE_VIEW, "/rate/t/{token}"),
    "/rate/c/{case_no}": ("public", PHONE_VIEW, "/rate/c/{case_no}?code={code}"),
}
HUB_PAGES: dict[str, tuple[str, dict[str, int], str]] = {
    "/": ("public", BOARD, "/"),
    "/login": ("public", BOARD, "/login"),
    "/dash": ("official", BOARD, "/dash"),
    "/dash/{code}": ("official", BOARD, "/dash/3702"),
}
#: Routes that answer something other than a page.
NOT_PAGES = {"/t/{token}/qr.svg", "/dash/{code}/export/{table}.csv", "/metrics"}


def _page_routes(app: Any) -> set[str]:
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or ""
        path = path.replace(r"{case_no:\d{2,12}-\d{8}-\d{4,}}", "{case_no}")
        if not path or path.startswith(("/api/", "/static")) or path in NOT_PAGES:
            continue
        if any(r.method == "GET" for r in resource):
            out.add(path)
    return out


def test_every_page_is_in_the_list(tmp_path: Path, node_template: Path,
                                   hub_template: Path) -> None:  # fmt: skip
    from hub.app import create_app as hub_app
    from hub.config import load as hub_load
    from node.app import create_app as node_app
    from node.config import load as node_load
    from tests.conftest import copy_hub, copy_node

    node_dir = copy_node(node_template, tmp_path / "node")
    hub_dir = copy_hub(hub_template, tmp_path / "hub")
    assert _page_routes(node_app(node_load(node_dir))) == set(NODE_PAGES)
    assert _page_routes(hub_app(hub_load(hub_dir))) == set(HUB_PAGES)


def _check(page: Any, url: str) -> list[str]:
    problems = []
    found = violations(page)
    if found:
        problems.append(report(url, found))
    counts = landmarks(page)
    if counts != {"main": 1, "h1": 1}:
        problems.append(f"{url}: {counts['main']} main landmark(s), {counts['h1']} h1 (want 1, 1)")
    return problems


def _visit(site: str, browser: Any, base: str, pages: dict[str, tuple[str, dict[str, int], str]],
           users: dict[str, tuple[str, str] | None], fill: dict[str, str], lang: str) -> list[str]:  # fmt: skip
    problems: list[str] = []
    actors: dict[tuple[str, str], Actor] = {}
    for who, view, path in pages.values():
        key = (who, json.dumps(view))
        if key not in actors:
            actors[key] = Actor(browser, base, users[who], view, lang)
        page = actors[key].ctx.new_page()
        url = base + path.format(**fill) + ("&" if "?" in path else "?") + f"lang={lang}"
        resp = page.goto(url)
        assert resp is not None and resp.ok, (url, resp and resp.status)
        page.wait_for_load_state("networkidle")
        problems += _check(page, url.removeprefix(base))
        slug = re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].strip("/").lower()) or "home"
        page.screenshot(path=str(SHOTS / f"a11y-{site}-{slug}-{lang}.png"), animations="disabled")
        page.close()
    for a in actors.values():
        a.ctx.close()
    return problems


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_node_pages(browser: Any, node: LiveServer, hall: dict[str, str], lang: str) -> None:
    users = {"public": None, "clerk": CLERK, "admin": ADMIN, "reviewer": REVIEWER_EDU}
    problems = _visit("node", browser, node.url, NODE_PAGES, users, hall, lang)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_kiosk_steps(browser: Any, node: LiveServer, lang: str) -> None:
    """The kiosk's later steps (queue list, the ID form) as well as its first screen."""
    ctx = browser.new_context(viewport=KIOSK)
    page = ctx.new_page()
    page.goto(f"{node.url}/kiosk?lang={lang}")
    problems = []
    for step in ("[data-mode='department']", "[data-queue='dept:edu']"):
        target = page.locator(step).first
        if target.count() == 0:
            break
        target.click()
        page.wait_for_timeout(200)
        problems += [report(f"/kiosk {step}", v) for v in [violations(page)] if v]
    ctx.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hub_pages(browser: Any, hub: LiveServer, lang: str) -> None:
    users = {"public": None, "official": HUB_USER}
    problems = _visit("hub", browser, hub.url, HUB_PAGES, users, {}, lang)
    assert not problems, "\n".join(problems)


def test_axe_is_pinned_and_bundled_not_fetched() -> None:
    """axe-core comes from the npm registry at build time, pinned, and no page loads it."""
    root = Path(__file__).resolve().parents[1]
    pkg = json.loads((root / "package.json").read_text())
    assert pkg["devDependencies"]["axe-core"].count(".") == 2  # an exact version
    lock = json.loads((root / "package-lock.json").read_text())
    assert (
        lock["packages"]["node_modules/axe-core"]["version"] == pkg["devDependencies"]["axe-core"]
    )
    for folder in ("node/templates", "hub/templates"):
        for tpl in (root / folder).rglob("*.html"):
            assert "axe" not in tpl.read_text("utf-8"), tpl
    assert shutil.which("npm") is not None
