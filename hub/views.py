"""HTML pages of the hub: login and the dashboards (province → city → county → township).

Pages are Jinja templates under ``hub/templates`` with CSS and vanilla JavaScript under
``hub/static`` (offline LAN: nothing comes from the internet; charts are inline SVG drawn by
``dash.js``).  A dashboard page carries its figures as JSON and polls
``GET /api/v1/dash/{code}`` every ``refresh_seconds`` to update them in place.  Texts are
messages of the one catalog (:mod:`onestop.i18n`), the script's too.  Language: ``?lang=en``
(remembered in a cookie), default Chinese.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from hub import dash_api, staff
from hub.dash_api import LANG_COOKIE, lang_of
from hub.keys import CONFIG
from hub.models import ExportQuery, PageQuery
from onestop import i18n
from onestop.i18n import _, lazy_gettext
from onestop.sessions import safe_next

LANG_COOKIE_AGE = 365 * 24 * 3600
DASH_JS = Path(__file__).with_name("static") / "dash.js"
#: Names of codes shown on the pages (templates: ``{{ LEVEL_NAMES[level]|text }}``).
LEVEL_NAMES = {
    "province": lazy_gettext("省级"),
    "city": lazy_gettext("市级"),
    "county": lazy_gettext("县级"),
    "township": lazy_gettext("乡镇（街道）"),
    "unknown": lazy_gettext("未知区划代码"),
}
PRESET_NAMES = {
    "today": lazy_gettext("今日"),
    "7d": lazy_gettext("近7日"),
    "30d": lazy_gettext("近30日"),
}


def setup_jinja(env: jinja2.Environment) -> None:
    i18n.install_jinja(env)
    env.globals.update(LEVEL_NAMES=LEVEL_NAMES, PRESET_NAMES=PRESET_NAMES)


def _json_script(data: Any) -> Markup:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


async def render(request: web.Request, template: str, ctx: dict[str, Any],
                 status: int = 200) -> web.Response:  # fmt: skip
    lang = lang_of(request)
    base = {"lang": lang, "hub_name": request.app[CONFIG].name, "path_qs": request.path_qs}
    resp = aiohttp_jinja2.render_template(template, request, {**base, **ctx}, status=status)
    if request.query.get("lang") in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=LANG_COOKIE_AGE,
                        samesite="Lax", httponly=True)  # fmt: skip
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/dash")


# -- login ---------------------------------------------------------------------------------------


async def login_page(request: web.Request, *, error: str | None = None, status: int = 200,
                     username: str = "") -> web.Response:  # fmt: skip
    return await render(request, "login.html", {
        "csrf_token": await staff.csrf_token(request),
        "next": safe_next(request.query.get("next")) or "",
        "error": error, "username": username,
    }, status=status)  # fmt: skip


async def login_post(request: web.Request) -> web.Response:
    r = await staff.STAFF.form_login(request)
    if r.user is None:
        lang = lang_of(request)
        if r.locked is not None:  # too many wrong passwords: how long to wait
            page = await login_page(request, error=r.locked.message_in(lang), status=r.status,
                                    username=r.username)  # fmt: skip
            page.headers["Retry-After"] = str(r.retry_after)
            return page
        error = {"csrf": _("页面已过期，请重新提交", lang), "required": _("请输入用户名和密码", lang),
                 "wrong": _("用户名或密码错误", lang)}[r.reason]  # fmt: skip
        return await login_page(request, error=error, status=r.status, username=r.username)
    raise web.HTTPFound(r.next or "/dash")


async def logout(request: web.Request) -> web.Response:
    await staff.require(request)
    await staff.logout(request)
    raise web.HTTPFound("/login")


# -- dashboards ------------------------------------------------------------------------------------


async def dash_home(request: web.Request) -> web.Response:
    user = await staff.require(request)
    qs = f"?{request.query_string}" if request.query_string else ""
    raise web.HTTPFound(f"/dash/{user['scope']}{qs}")


async def dash_page(request: web.Request) -> web.Response:
    c = await dash_api.context(request, query=PageQuery)
    data = dash_api.summary(c)
    return await render(request, "dash.html", {
        "data": _json_script(data), "strings": _json_script(i18n.script_messages(c.lang, (DASH_JS,))),
        "division": data["division"], "path": data["path"], "period": data["period"],
        "user": c.user, "csrf_token": await staff.csrf_token(request),
        "code": c.code, "period_query": c.period.query(), "tables": ("children", "departments", "items", "series", "nodes",
                                   "alerts"),
        "presets": ("today", "7d", "30d"),
    })  # fmt: skip


async def dash_export(request: web.Request) -> web.Response:
    c = await dash_api.context(request, query=ExportQuery)
    table = request.match_info["table"]
    rows = dash_api.table_rows(c, table)
    return dash_api.csv_response(c, table, rows)
