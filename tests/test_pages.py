"""HTML pages: languages, staff redirects and login, window console, ticket print and status."""

from __future__ import annotations

import re
from typing import Any

import pytest

from node.keys import CONFIG
from tests.conftest import ADMIN, CLERK, PHONE, login, make_id

PUBLIC = [
    ("/", "欢迎使用一站式政务服务系统", "Welcome to the one-stop government service system"),
    ("/kiosk", "按部门取号", "By department"),
    ("/display", "点击启用语音", "Tap to enable sound"),
    ("/login", "工作人员登录", "Staff sign-in"),
]


async def issue(
    client: Any, queue: str = "dept:edu", birth: str = "19850612", **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/tickets",
        json={"queue": queue, "id_number": make_id(birth), "phone": PHONE, **extra},
    )
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def csrf_of(client: Any, path: str = "/login") -> str:
    r = await client.get(path)
    assert r.status == 200
    m = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert m, "no csrf_token field in the form"
    return m.group(1)


@pytest.mark.parametrize(("path", "zh", "en"), PUBLIC)
async def test_public_pages_in_both_languages(client: Any, path: str, zh: str, en: str) -> None:
    r = await client.get(path)
    assert r.status == 200
    assert r.content_type == "text/html"
    html = await r.text()
    assert zh in html and en not in html
    assert '<html lang="zh-CN">' in html
    assert "解放路街道便民服务中心" in html  # the center's name in the header
    assert 'href="' + path + '?lang=en"' in html  # the language switch

    r = await client.get(path, params={"lang": "en"})
    assert r.status == 200
    html = await r.text()
    assert en in html and zh not in html
    assert '<html lang="en">' in html
    assert r.cookies["lang"].value == "en"

    # The cookie remembers the choice; ?lang=zh switches back.
    assert en in await (await client.get(path)).text()
    assert zh in await (await client.get(path, params={"lang": "zh"})).text()
    assert zh in await (await client.get(path)).text()


async def test_pages_use_no_external_resources(client: Any) -> None:
    for path, _, _ in PUBLIC:
        html = await (await client.get(path)).text()
        assert not re.search(r'(src|href)="(https?:)?//', html), path


async def test_unknown_lang_falls_back_to_default(client: Any) -> None:
    r = await client.get("/kiosk", params={"lang": "fr"})
    assert r.status == 200
    assert "按部门取号" in await r.text()
    assert "lang" not in r.cookies


@pytest.mark.parametrize("path", ["/window", "/window/1", "/admin"])
async def test_staff_pages_redirect_to_login(client: Any, path: str) -> None:
    r = await client.get(path, allow_redirects=False)
    assert r.status == 302
    assert r.headers["Location"] == f"/login?next={path}"


async def test_login_form_with_csrf(client: Any) -> None:
    token = await csrf_of(client, "/login?next=/admin")
    r = await client.post(
        "/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token, "next": "/admin"},
        allow_redirects=False,
    )
    assert r.status == 302
    assert r.headers["Location"] == "/admin"
    r = await client.get("/admin")
    assert r.status == 200
    html = await r.text()
    assert "今日概况" in html and "clerk1" in html and "综合窗口" in html


async def test_login_redirects_by_role(client: Any) -> None:
    token = await csrf_of(client)
    r = await client.post(
        "/login",
        data={"username": CLERK[0], "password": CLERK[1], "csrf_token": token},
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/window"
    # clerk1 works at window 1: /window goes straight there.
    r = await client.get("/window", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/window/1"
    # ... and may not open another window's console.
    assert (await client.get("/window/2")).status == 403
    assert (await client.get("/admin")).status == 403


async def test_reviewers_land_on_their_inbox(client: Any) -> None:
    from tests.conftest import run_cli

    assert (
        run_cli(
            "node",
            "user",
            "add",
            "--data",
            str(client.app[CONFIG].data_dir),
            "--username",
            "rev1",
            "--role",
            "reviewer",
            "--department",
            "edu",
            stdin="review-pass-1\n",
        )
        == 0
    )
    token = await csrf_of(client)
    r = await client.post(
        "/login",
        data={"username": "rev1", "password": "review-pass-1", "csrf_token": token},
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/inbox"


async def test_login_rejects_missing_or_wrong_csrf(client: Any) -> None:
    await csrf_of(client)
    r = await client.post(
        "/login", data={"username": ADMIN[0], "password": ADMIN[1]}, allow_redirects=False
    )
    assert r.status == 403
    assert "页面已过期" in await r.text()
    r = await client.post(
        "/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": "forged"},
        allow_redirects=False,
    )
    assert r.status == 403
    assert (await client.get("/admin", allow_redirects=False)).status == 302


async def test_login_wrong_password_and_open_redirect(client: Any) -> None:
    token = await csrf_of(client)
    r = await client.post(
        "/login", data={"username": ADMIN[0], "password": "nope-nope", "csrf_token": token}
    )
    assert r.status == 401
    html = await r.text()
    assert "用户名或密码错误" in html
    assert 'value="admin"' in html  # the username is kept
    token = await csrf_of(client)
    r = await client.post(
        "/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf_token": token,
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/admin"


async def test_logout_needs_csrf_and_ends_the_session(client: Any) -> None:
    token = await csrf_of(client)
    await client.post(
        "/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token},
        allow_redirects=False,
    )
    r = await client.get("/admin")
    page_token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert page_token
    assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
    r = await client.post(
        "/logout", data={"csrf_token": page_token.group(1)}, allow_redirects=False
    )
    assert r.status == 302 and r.headers["Location"] == "/login"
    assert (await client.get("/admin", allow_redirects=False)).status == 302


async def test_window_page_shows_current_ticket(client: Any) -> None:
    id_number = make_id("19850612")
    t = await issue(client, "dept:edu", "19850612")
    headers = await login(client, CLERK)
    r = await client.get("/window/1")
    html = await r.text()
    assert r.status == 200
    assert 'id="current-none"' in html and t["ticket_no"] not in html.split('id="actions"')[0]
    assert "叫号" in html and "办结" in html and "转移" in html and "挂起" in html
    token = re.search(r"window.CSRF_TOKEN = \"([^\"]+)\"", html)
    assert token and token.group(1) == headers["X-CSRF-Token"]

    r = await client.post("/api/v1/windows/1/call-next", headers=headers)
    assert r.status == 200
    html = await (await client.get("/window/1")).text()
    assert f'<div class="current-no" id="current-no">{t["ticket_no"]}</div>' in html
    assert id_number not in html and PHONE not in html
    assert id_number[:6] + "********" + id_number[-4:] in html  # masked ID
    assert "138****8000" in html  # masked phone
    assert "省教育厅" in html
    called = (await r.json())["ticket"]
    assert f'href="/cases/new?ticket={called["id"]}"' in html  # straight on to intake

    html = await (await client.get("/window/1", params={"lang": "en"})).text()
    assert "Call next" in html and "Provincial Department of Education" in html


async def test_window_select_for_unbound_user(client: Any) -> None:
    await login(client, ADMIN)
    r = await client.get("/window")
    assert r.status == 200
    html = await r.text()
    for n in (1, 2, 3):
        assert f'href="/window/{n}"' in html


async def test_print_page(client: Any) -> None:
    id_number = make_id("19850612")
    t = await issue(client, "dept:edu", "19850612")
    r = await client.get(t["print_url"], headers={"Host": "10.20.0.7:8080"})
    assert r.status == 200
    html = await r.text()
    assert "<svg" in html
    assert t["ticket_no"] in html
    assert "请到 1、2 号窗口附近等候" in html  # the windows serving dept:edu
    assert "请留意叫号屏幕和语音提示" in html
    assert "省教育厅" in html
    assert id_number not in html and PHONE not in html
    css = await (await client.get("/static/print.css")).text()
    assert "size: 80mm 150mm" in css

    html = await (await client.get(t["print_url"], params={"lang": "en"})).text()
    assert "Please watch the screens" in html


async def test_qr_svg(client: Any) -> None:
    t = await issue(client)
    r = await client.get(f"/t/{t['token']}/qr.svg", headers={"Host": "10.20.0.7:8080"})
    assert r.status == 200
    assert r.content_type == "image/svg+xml"
    body = await r.text()
    assert "<svg" in body and "</svg>" in body


async def test_status_page_has_no_personal_data(client: Any) -> None:
    id_number = make_id("19850612")
    t = await issue(client, "dept:edu", "19850612")
    url = t["status_url"]
    r = await client.get(url)
    assert r.status == 200
    html = await r.text()
    assert t["ticket_no"] in html
    assert "排队等候中" in html
    # Updated in place by its script, never reloaded by a refresh header (focus is kept).
    assert 'http-equiv="refresh"' not in html and "/static/status.js" in html
    masked = id_number[:6] + "********" + id_number[-4:]
    for secret in (id_number, masked, id_number[6:14], PHONE, "138****8000", PHONE[-4:]):
        assert secret not in html, secret

    headers = await login(client, CLERK)
    assert (await client.post("/api/v1/windows/1/call-next", headers=headers)).status == 200
    html = await (await client.get(url)).text()
    assert "请到 1 号窗口办理" in html
    html = await (await client.get(url, params={"lang": "en"})).text()
    assert "Please go to window 1" in html


async def test_unknown_ticket_is_an_html_404(client: Any) -> None:
    for path in ("/s/nope", "/t/nope/print", "/t/nope/qr.svg"):
        r = await client.get(path)
        assert r.status == 404
        assert r.content_type == "text/html"


async def test_admin_page_needs_admin(client: Any) -> None:
    await login(client, CLERK)
    assert (await client.get("/admin")).status == 403
