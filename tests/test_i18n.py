"""The one message catalog (onestop/locale): both catalogs complete and in step with the marked
sources, and every page of the node and the hub shows its own language only.

Visible text is the HTML without <script>/<style>, <code> and the ``mono`` elements that show
codes, with the fixture's data values (usernames, queue, item and material codes) taken out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from onestop import i18n
from tests import test_cases_common as common
from tests import test_hub_support as hub_support
from tests.test_cases_common import SCHOOL_MATERIALS, Actor, Env

env = common.env
clock = common.clock
hub_client = hub_support.hub_client
hub_dir = hub_support.hub_dir

ROOT = Path(__file__).resolve().parents[1]
#: Words a Chinese page may show: brand, codes and units.
ALLOWED = {"onestop", "SMS", "QR", "ID", "API", "CSV", "JSON", "OK", "KB", "MB", "English"}
CJK = re.compile(r"[\u4e00-\u9fff]")
WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
PLACEHOLDER = re.compile(r"\{\w+\}")


# --------------------------------------------------------------------------- the catalogs


def messages(lang: str) -> dict[tuple[str | None, str], str]:
    out = {}
    for m in i18n.catalog(lang):
        if m.id:
            assert isinstance(m.id, str) and isinstance(m.string, str), m.id  # no plurals
            out[(m.context, m.id)] = m.string
    return out


def test_both_catalogs_translate_every_message() -> None:
    zh, en = messages("zh"), messages("en")
    assert len(zh) > 500
    assert set(zh) == set(en)
    assert not [m.id for lang in ("zh", "en") for m in i18n.catalog(lang) if m.id and m.fuzzy]
    for key in zh:
        assert zh[key] and en[key], key
        assert zh[key] == key[1], key  # the msgid is the zh-CN text shown
        # English may name more of the arguments (an error's English says more), not fewer.
        assert set(PLACEHOLDER.findall(key[1])) <= set(PLACEHOLDER.findall(en[key])), key
    # One Chinese text that reads two ways in English has a context for the other one.
    assert i18n.gettext("叫号", "en") == "Called"
    assert i18n.pgettext("button", "叫号", "en") == "Call next"
    assert i18n.gettext("{n}号窗口", "en", n=3) == "Window 3"
    assert i18n.gettext("{n}号窗口", "zh", n=3) == "3号窗口"
    assert i18n.gettext("没有这条消息", "en") == "没有这条消息"  # unknown: the msgid itself
    assert i18n.gettext("叫号", "fr") == "叫号"  # unknown language: zh-CN


def extracted() -> dict[tuple[str | None, str], list[str]]:
    """Every marked message of the sources, as ``make messages`` extracts it (babel.cfg)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, **i18n.KEYWORDS}
    found: dict[tuple[str | None, str], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        assert isinstance(message, str), (filename, lineno, message)  # no plural forms
        found.setdefault((context, message), []).append(f"{filename}:{lineno}")
    return found


def test_catalog_is_what_the_sources_mark() -> None:
    found = extracted()
    catalog = messages("en")
    missing = {k: v for k, v in found.items() if k not in catalog}
    unused = sorted(k[1] for k in catalog if k not in found)
    assert not missing, f"marked but not in the catalog (make messages): {missing}"
    assert not unused, f"in the catalog but marked nowhere: {unused}"
    # Each kind of source is extracted: templates, scripts, Python (lazy and immediate).
    where = {p.split(":")[0] for v in found.values() for p in v}
    for path in ("node/templates/kiosk.html", "hub/templates/dash.html", "node/static/cases.js",
                 "hub/static/dash.js", "node/cases/views.py", "onestop/identity.py"):  # fmt: skip
        assert path in where, path


def test_page_scripts_get_their_messages_from_the_catalog() -> None:
    scripts = [ROOT / "node/static/common.js", ROOT / "node/static/console.js"]
    en, zh = i18n.script_messages("en", scripts), i18n.script_messages("zh", scripts)
    assert en["网络异常，请稍后重试"] == "Network error, please try again"  # common.js
    assert en["已呼叫 {no}"] == "Called {no}" and zh["已呼叫 {no}"] == "已呼叫 {no}"
    assert set(en) == set(zh)
    dash = i18n.script_messages("en", [ROOT / "hub/static/dash.js"])
    assert dash["alert" + i18n.CONTEXT_SEP + "密钥吊销"] == "Revoked key"
    assert dash["密钥吊销"] == "Key revoked"


# --------------------------------------------------------------------------- visible text


class _Visible(HTMLParser):
    SKIP = {"script", "style", "code"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = tag in self.SKIP or "mono" in classes
        self.stack.append((tag, hidden or any(h for _, h in self.stack[-1:])))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1][1]):
            self.parts.append(data)


def visible(html: str, data: Iterable[str] = ()) -> str:
    p = _Visible()
    p.feed(html)
    text = " ".join(" ".join(p.parts).split())
    for value in sorted(data, key=len, reverse=True):  # whole values only: "AB", not "ABC"
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
    return text


def english_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text) if len(w) > 1 and w not in ALLOWED}


def chinese_left(text: str, en: dict[tuple[str | None, str], str]) -> set[str]:
    """The zh-CN msgids (that have English) still shown in the English ``text``; a Chinese
    term an English text names on purpose ("Ratings (好差评)") does not count."""
    for english in sorted((v for v in en.values() if CJK.search(v)), key=len, reverse=True):
        for piece in PLACEHOLDER.split(english):
            if CJK.search(piece):
                text = text.replace(piece, " ")
    left = set()
    for (_ctx, msgid), english in en.items():
        if english == msgid or not CJK.search(english + msgid) or CJK.search(english):
            continue
        pieces = [p for p in PLACEHOLDER.split(msgid) if len(CJK.findall(p)) >= 2]
        if PLACEHOLDER.search(msgid):
            pieces = [p for p in pieces if len(CJK.findall(p)) >= 4]
        if any(p in text for p in pieces):
            left.add(msgid)
    return {m for m in left if not any(m != o and m in o for o in left)}  # the longest ones


def test_visible_text_drops_scripts_styles_and_codes() -> None:
    html = ("<title>标题 Title</title><style>p{}</style><p>正文<br>Body<code>key-1</code>"
            "<span class='mono'>370102-edu</span><script>var x = 'Script';</script>尾</p>")  # fmt: skip
    assert visible(html) == "标题 Title 正文 Body 尾"
    assert english_words(visible(html, {"Title"})) == {"Body"}
    en = messages("en")
    assert chinese_left("Status 自助取号 now", en) == {"自助取号"}
    # A window's name is data: taken out before the check.
    assert chinese_left(visible("<p>Window 3 · 3号窗口</p>", {"3号窗口"}), en) == set()


# --------------------------------------------------------------------------- node pages


async def node_data(e: Env) -> set[str]:
    """What pages show as the fixture has it: the center's and windows' names, usernames,
    queue prefixes, codes of queues, departments, items and materials, the catalog version."""
    db = e.db
    values = {e.config.name}
    values |= {r["username"] for r in db.execute("SELECT username FROM users").fetchall()}
    for r in db.execute("SELECT code, prefix FROM queues").fetchall():
        values |= {r["code"], r["prefix"]}
    values |= {r["code"] for r in db.execute("SELECT code FROM departments").fetchall()}
    values |= {r["name"] for r in db.execute("SELECT name FROM windows").fetchall()}
    for r in db.execute("SELECT code, materials FROM items").fetchall():
        values.add(r["code"])
        values |= {m["code"] for m in json.loads(r["materials"])}
    sync = await e.admin.ok("GET", "/api/v1/sync/status")
    values |= {str(sync["catalog"]["version"]), str(sync["node"])}
    return values


async def html_of(actor: Actor, path: str, lang: str, **params: str) -> tuple[int, str]:
    got, html = await actor.get(path, params={**params, "lang": lang}, allow_redirects=False)
    assert isinstance(html, str), (path, got)
    return got, html


NOT_PAGES = ("/api/", "/static", "/t/{token}/qr.svg", "/metrics")  # /metrics: Prometheus text


async def test_every_node_page_shows_one_language(env: Env) -> None:
    e = env
    t = await e.ticket()
    case = await e.intake(t, received=SCHOOL_MATERIALS[:-1], commitment=True)  # 容缺: a notice
    no = case["case_no"]
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.public.ok(
        "POST", "/api/v1/ratings",
        {"case_no": no, "rating_token": e.rating_code(no), "level": 1, "comment": "等太久",
         "reason": "efficiency"}, 201,
    )  # fmt: skip
    await e.finish()
    t2 = await e.ticket()  # called at window 1: the intake page offers it
    token = t2["token"]
    pages: dict[str, list[tuple[Actor, str, dict[str, str]]]] = {
        "/": [(e.public, "/", {})],
        "/kiosk": [(e.public, "/kiosk", {})],
        "/t/{token}/print": [(e.public, f"/t/{token}/print", {})],
        "/s/{token}": [(e.public, f"/s/{token}", {})],
        "/display": [(e.public, "/display", {})],
        "/login": [(e.public, "/login", {})],
        "/window": [(e.admin, "/window", {})],
        "/window/{id}": [(e.clerk, "/window/1", {})],
        "/admin": [(e.admin, "/admin", {})],
        "/sync": [(e.admin, "/sync", {})],
        "/cases": [(e.admin, "/cases", {})],
        "/cases/new": [(e.clerk, "/cases/new", {"ticket": str(t2["id"])})],
        "/cases/{case_no}": [
            (e.clerk, f"/cases/{no}", {}),
            (e.edu, f"/cases/{no}", {}),
            (e.clerk, "/cases/370102001-20990101-0001", {}),  # the error page
        ],
        "/inbox": [(e.civil, "/inbox", {})],
        "/overview": [(e.admin, "/overview", {})],
        "/status": [(e.public, "/status", {})],
        "/status/{case_no}": [(e.public, f"/status/{no}", {"phone_last4": "8000"})],
        "/cases/{case_no}/notice": [(e.clerk, f"/cases/{no}/notice", {})],
        "/rate/window/{n}": [(e.public, "/rate/window/1", {})],
        "/rate/t/{token}": [
            (e.public, f"/rate/t/{t['token']}", {}),
            (e.public, f"/rate/t/{token}", {}),
        ],
        "/rate/c/{case_no}": [(e.public, f"/rate/c/{no}", {"code": e.rating_code(no)})],
        "/followups": [(e.admin, "/followups", {"state": "all"})],
    }
    routes = set()
    for route in e.client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "GET" and not any(x in path for x in NOT_PAGES):
            routes.add(path)
    assert routes == set(pages), f"pages without a check here: {routes - set(pages)}"

    data = await node_data(e)
    en_messages = messages("en")
    problems = []
    for visits in pages.values():
        for actor, path, params in visits:
            got, zh_html = await html_of(actor, path, "zh", **params)
            assert got in (200, 404), (path, got)
            got, en_html = await html_of(actor, path, "en", **params)
            assert got in (200, 404), (path, got)
            zh_text, en_text = visible(zh_html, data), visible(en_html, data)
            assert CJK.search(zh_text), path
            if words := english_words(zh_text):
                problems.append(f"{path} zh: English {sorted(words)}")
            if left := chinese_left(en_text, en_messages):
                problems.append(f"{path} en: Chinese {sorted(left)}")
    assert not problems, "\n".join(problems)


async def test_field_errors_follow_the_request_language(env: Env) -> None:
    e = env
    for lang, want in (("zh", "身份证号码校验位错误，请核对后重新输入"),
                       ("en", "the check character of the ID card number is wrong")):  # fmt: skip
        got, body = await e.public.post(
            "/api/v1/tickets",
            {"queue": "dept:edu", "id_number": "370102198506121230", "phone": "abc", "lang": lang},
        )
        assert got == 422 and body["error"] == "invalid", body
        fields = {x["field"]: x["message"] for x in body["errors"]}
        assert fields["id_number"] == want
        assert fields["phone"] == i18n.gettext("手机号码格式不正确", lang)


async def test_api_errors_of_the_catalog_answer_in_the_asked_language(env: Env) -> None:
    e = env
    await e.ticket()
    # Window 1 is busy: calling again is refused in the client's language.
    got, body = await e.clerk.post("/api/v1/windows/1/call-next", headers={"Accept-Language": "en"})
    assert got == 409 and re.fullmatch(
        r"window 1 is still serving [A-Z]+\d+: finish it, mark it no-show or suspend it first",
        body["message"],
    )
    assert body["errors"] == [{"field": "window", "message": body["message"]}]
    got, body = await e.clerk.post(
        "/api/v1/windows/1/call-next", headers={"Accept-Language": "zh-CN"}
    )
    assert got == 409 and re.fullmatch(
        r"1号窗口正在办理 [A-Z]+\d+，请先办结、过号或挂起", body["message"]
    )
    assert body["errors"][0]["message"] == body["message"]
    assert set(body) == {"ok", "status", "error", "message", "field", "errors", "hint"}


# --------------------------------------------------------------------------- hub pages


async def test_every_hub_page_shows_one_language(hub_client: Any) -> None:
    from hub.keys import CONFIG

    data = {hub_support.HUB_ADMIN[0], hub_client.app[CONFIG].name}
    pages = {
        "/login": ["/login"],
        "/dash/{code}": ["/dash/37", "/dash/3701", "/dash/370102"],
        "/dash/{code}/export/{table}.csv": [],  # CSV: its headers below
    }
    redirects = {"/": "/dash", "/dash": "/dash/37?lang=en"}
    for path, target in redirects.items():
        r = await hub_client.get(path, params={"lang": "en"}, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == target, path
    routes = set()
    for route in hub_client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "GET" and not any(x in path for x in NOT_PAGES):
            routes.add(path)
    assert routes == set(pages) | set(redirects), f"not checked here: {routes - set(pages)}"
    en_messages = messages("en")
    problems = []
    for paths in pages.values():
        for path in paths:
            texts = {}
            for lang in ("zh", "en"):
                r = await hub_client.get(path, params={"lang": lang})
                assert r.status == 200 and r.content_type == "text/html", (path, r.status)
                html = await r.text()
                assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in html, path
                texts[lang] = visible(html, data)
            if words := english_words(texts["zh"]):
                problems.append(f"{path} zh: English {sorted(words)}")
            if left := chinese_left(texts["en"], en_messages):
                problems.append(f"{path} en: Chinese {sorted(left)}")
    assert not problems, "\n".join(problems)
    # The script's messages come along in the page language.
    r = await hub_client.get("/dash/37", params={"lang": "en"})
    m = re.search(r'<script id="dash-strings" type="application/json">(.*?)</script>',
                  await r.text())  # fmt: skip
    assert m and json.loads(m.group(1))["在线中心"] == "Centers online"
    # CSV headers are catalog messages too.
    for table in ("children", "departments", "items", "series", "nodes", "alerts"):
        heads = {}
        for lang in ("zh", "en"):
            r = await hub_client.get(f"/dash/37/export/{table}.csv", params={"lang": lang})
            assert r.status == 200, table
            heads[lang] = next(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        zh_words = english_words(" ".join(heads["zh"]))
        assert not zh_words and all(CJK.search(h) for h in heads["zh"]), (table, heads["zh"])
        assert not any(CJK.search(h) for h in heads["en"]), (table, heads["en"])


def test_no_page_template_or_script_keeps_a_string_table() -> None:
    """The old shapes are gone: no ``ui.*`` keys, no zh/en pairs handed to pages."""
    for base in ("node/templates", "hub/templates", "node/static", "hub/static"):
        for path in (ROOT / base).rglob("*"):
            if path.suffix not in (".html", ".js"):
                continue
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"""_\(\s*["'](ui|kpi|col|sec|state)\.""", text), path
            assert not re.search(r"""\bt\(\s*["']ui\.""", text), path
    assert not (ROOT / "hub" / "i18n.py").exists()
    assert not hasattr(i18n, "STRINGS")
