"""The hall's display board as a wall TV meets it: sound without a tap where the browser
allows it, the node's own voice where the browser has none, a layout that holds with four
windows and a long center name, and one word for a no-show on every page."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.speech_audio import Renderer
from tests.conftest import CLERK2, PHONE, LiveServer, make_id, run_cli, start_server
from tests.test_browser import ARGS, CHROMIUM, SHOTS, post_json, shot

ROOT = Path(__file__).resolve().parents[1]
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
LONG_NAME = "青岛市市南区八大关街道政务服务中心（便民服务中心）"
#: A stock Chromium without speech-synthesis voices, whatever this machine has installed.
NO_VOICES = "speechSynthesis.getVoices = () => [];"


# -- the node renders a call ---------------------------------------------------------------


@needs_espeak
async def test_speech_is_a_wav_of_the_call(client: Any) -> None:
    r = await client.get("/api/v1/display/speech?ticket=A023&window=3&lang=zh")
    assert r.status == 200, await r.text()
    assert r.content_type == "audio/wav"
    body = await r.read()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and len(body) > 20_000
    en = await client.get("/api/v1/display/speech?ticket=A023&window=3&lang=en")
    assert en.status == 200 and (await en.read()) != body  # another voice, another text


async def test_speech_takes_only_a_ticket_and_a_window(client: Any) -> None:
    for query, field in [
        ("ticket=%E4%BD%A0%E5%A5%BD&window=3", "ticket"),  # free text is never spoken
        ("ticket=A023&window=0", "window"),
        ("ticket=A023", "window"),
        ("ticket=A023&window=3&lang=fr", "lang"),
    ]:
        r = await client.get("/api/v1/display/speech?" + query)
        assert r.status == 422, query
        body = await r.json()
        assert body["field"] == field and body["ok"] is False, body


def test_renderer_speaks_the_board_texts() -> None:
    assert Renderer.text("A023", 12, "zh") == "请A零二三号到十二号窗口办理"
    assert Renderer.text("A023", 12, "en") == "Number A 0 2 3, please go to window 12"


async def test_a_node_without_a_synthesizer_says_what_to_install() -> None:
    from onestop.errors import NotFound

    with pytest.raises(NotFound) as err:
        await Renderer(None).wav("A001", 1, "zh")
    assert err.value.hint is not None and "espeak-ng" in err.value.hint
    assert Renderer(None).available is False


async def test_a_failing_synthesizer_is_a_503_not_a_crash(tmp_path: Path) -> None:
    from node.speech_audio import Unavailable

    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/bin/sh\necho 'no voice cmn' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(Unavailable, match="no voice cmn") as err:
        await Renderer(str(broken)).wav("A001", 1, "zh")
    assert err.value.status == 503


# -- in the browser -----------------------------------------------------------------------


@pytest.fixture
def hall(node_dir: Path) -> Iterator[LiveServer]:
    """A node with four windows and a long center name, served for real."""
    assert run_cli("node", "window", "add", "--data", str(node_dir), "--number", "4",
                   "--queues", "*") == 0  # fmt: skip
    toml = node_dir / "node.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(re.sub(r'(?m)^name = ".*"$', f'name = "{LONG_NAME}"', text), "utf-8")
    srv = start_server(["node", "serve", "--data", str(node_dir), "--port", "0"],
                       node_dir, node_dir / "serve.log")  # fmt: skip
    yield srv
    srv.stop()


def _launch(extra: list[str]) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed")
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *extra])
        yield b
        b.close()


@pytest.fixture
def wall_tv() -> Iterator[Any]:
    """Chromium as the screens role starts a board: autoplay allowed without a gesture."""
    yield from _launch(["--autoplay-policy=no-user-gesture-required"])


@pytest.fixture
def plain_browser() -> Iterator[Any]:
    yield from _launch([])


class _Clerk:
    """A clerk logged in through the API with the browser's own request context."""

    def __init__(self, browser: Any, live: LiveServer) -> None:
        self.ctx = browser.new_context()
        self.live = live
        r = self.ctx.request.post(live.url + "/api/v1/login",
                                  data=json.dumps({"username": CLERK2[0], "password": CLERK2[1]}),
                                  headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.ok, r.text()
        self.csrf = r.json()["csrf_token"]

    def call_next(self, window: int) -> str:
        r = self.ctx.request.post(f"{self.live.url}/api/v1/windows/{window}/call-next",
                                  data="{}", headers={"Content-Type": "application/json",
                                                      "X-CSRF-Token": self.csrf})  # fmt: skip
        assert r.ok, r.text()
        return str(r.json()["ticket"]["ticket_no"])


def _take(live: LiveServer, queue: str, birth: str) -> str:
    issued = post_json(live.url + "/api/v1/tickets",
                       {"queue": queue, "id_number": make_id(birth), "phone": PHONE})  # fmt: skip
    return str(issued["ticket_no"])


@needs_espeak
@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_a_wall_tv_speaks_with_no_tap_in_the_nodes_voice(wall_tv: Any, hall: LiveServer) -> None:
    number = _take(hall, "dept:civil", "19900101")
    errors: list[str] = []
    speech: list[str] = []
    ctx = wall_tv.new_context(viewport={"width": 1920, "height": 1080})
    ctx.add_init_script(NO_VOICES)
    board = ctx.new_page()
    board.on("pageerror", lambda exc: errors.append(str(exc)))
    board.on("request", lambda r: speech.append(r.url) if "/display/speech" in r.url else None)
    board.goto(hall.url + "/display")
    board.wait_for_function("document.body.dataset.connected === '1'")
    # Nobody taps a wall TV: sound is on and the overlay never shows.
    assert board.evaluate("document.body.dataset.audio") == "on"
    assert not board.locator("#unlock").is_visible()

    clerk = _Clerk(wall_tv, hall)
    assert clerk.call_next(1) == number
    board.wait_for_function("Number(document.body.dataset.nodeSpeech || 0) >= 1", timeout=20000)
    assert board.evaluate("document.body.dataset.voice") == "node"
    assert speech and f"ticket={number}" in speech[0] and "window=1" in speech[0]
    assert "lang=zh" in speech[0]
    assert errors == []
    clerk.ctx.close()
    ctx.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_the_overlay_shows_only_where_the_browser_refuses(
    plain_browser: Any, hall: LiveServer
) -> None:
    ctx = plain_browser.new_context(viewport={"width": 1920, "height": 1080})
    board = ctx.new_page()
    board.goto(hall.url + "/display")
    board.wait_for_function("document.body.dataset.audio !== undefined")
    assert board.evaluate("document.body.dataset.audio") == "blocked"
    assert board.locator("#unlock").is_visible()
    board.click("#unlock-btn")
    board.wait_for_function("document.body.dataset.audio === 'on'")
    assert not board.locator("#unlock").is_visible()
    ctx.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_four_windows_and_a_long_name_fit_the_board(
    wall_tv: Any, hall: LiveServer, lang: str
) -> None:
    clerk = _Clerk(wall_tv, hall)
    births = ["19900101", "19910202", "19920303", "19930404", "19940505", "19950606"]
    for i, queue in enumerate(["dept:edu", "dept:civil", "area:agri", "dept:edu", "dept:civil",
                               "area:agri"]):  # fmt: skip
        _take(hall, queue, births[i])
    for window in (1, 2, 3):
        clerk.call_next(window)
    ctx = wall_tv.new_context(viewport={"width": 1920, "height": 1080},
                              locale="zh-CN" if lang == "zh" else "en-US")  # fmt: skip
    ctx.add_init_script(NO_VOICES)
    board = ctx.new_page()
    board.goto(f"{hall.url}/display?lang={lang}")
    board.wait_for_function("document.body.dataset.connected === '1'")
    board.wait_for_function("document.querySelectorAll('#queue-chips .chip').length > 0")
    assert board.locator(".win-card").count() == 4
    box = board.locator(".queues-box").bounding_box()
    assert box is not None and box["height"] >= 120, box
    chips = board.locator("#queue-chips .chip")
    for i in range(chips.count()):
        c = chips.nth(i).bounding_box()
        assert c is not None and c["y"] + c["height"] <= box["y"] + box["height"] + 1, (i, c)
    # The whole center name shows: nothing cut off or hidden behind an ellipsis.
    name = board.locator(".board-head .center-name")
    assert name.inner_text().strip() == LONG_NAME
    text = board.evaluate(
        "(() => { const e = document.querySelector('.board-head .center-name');"
        " const r = document.createRange(); r.selectNodeContents(e);"
        " const t = r.getBoundingClientRect(), s = getComputedStyle(e);"
        " return {left: t.left, right: t.right, top: t.top, bottom: t.bottom,"
        " clipped: s.overflow !== 'visible' && e.scrollHeight > e.clientHeight + 1,"
        " ellipsis: s.textOverflow === 'ellipsis' && s.whiteSpace === 'nowrap'}; })()"
    )
    head = board.locator(".board-head").bounding_box()
    clock = board.locator(".board-clock").bounding_box()
    assert head is not None and clock is not None
    assert not text["clipped"] and not text["ellipsis"], text
    assert text["left"] >= 0 and text["right"] <= clock["x"], (text, clock)  # not under the clock
    assert head["y"] <= text["top"] and text["bottom"] <= head["y"] + head["height"], (text, head)
    # Nothing spills off the 1920x1080 screen.
    assert board.evaluate("document.documentElement.scrollWidth") <= 1920
    assert board.evaluate("document.documentElement.scrollHeight") <= 1080
    shot(board, f"display-four-windows-{lang}.png")
    clerk.ctx.close()
    ctx.close()


# -- one term ------------------------------------------------------------------------------


def test_one_term_for_a_no_show_everywhere() -> None:
    """过号 on the console, the status page, the board and the hub; 弃号 nowhere."""
    found = []
    for folder in ("node", "hub", "onestop", "sync"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".html", ".js", ".po"} and "弃号" in path.read_text("utf-8"):
                found.append(str(path.relative_to(ROOT)))
    assert found == []
    console = (ROOT / "node/templates/window.html").read_text("utf-8")
    assert 'pgettext("action", "过号")' in console
