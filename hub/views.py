"""HTML pages of the hub: login and the dashboards (province → city → county → township).

Pages are Jinja templates under ``hub/templates`` with CSS and vanilla JavaScript under
``hub/static`` (offline LAN: nothing comes from the internet; charts are inline SVG drawn by
``dash.js``).  A dashboard page carries its figures as JSON and polls
``GET /api/v1/dash/{code}`` every ``refresh_seconds`` to update them in place.  Language:
``?lang=en`` (remembered in a cookie), default Chinese.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from hub import dash_api, staff
from hub.dash_api import LANG_COOKIE, lang_of
from hub.i18n import strings, t
from hub.keys import CONFIG
from hub.models import ExportQuery, PageQuery
from onestop.errors import Unauthorized

LANG_COOKIE_AGE = 365 * 24 * 3600


def _json_script(data: Any) -> Markup:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


async def render(request: web.Request, template: str, ctx: dict[str, Any],
                 status: int = 200) -> web.Response:  # fmt: skip
    lang = lang_of(request)
    base = {"lang": lang, "_": lambda key, **kw: t(key, lang, **kw),
            "hub_name": request.app[CONFIG].name, "path_qs": request.path_qs}  # fmt: skip
    resp = aiohttp_jinja2.render_template(template, request, {**base, **ctx}, status=status)
    if request.query.get("lang") in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=LANG_COOKIE_AGE,
                        samesite="Lax", httponly=True)  # fmt: skip
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/dash")


# -- login ---------------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def login_page(request: web.Request, *, error: str | None = None, status: int = 200,
                     username: str = "") -> web.Response:  # fmt: skip
    return await render(request, "login.html", {
        "csrf_token": await staff.csrf_token(request),
        "next": _safe_next(request.query.get("next")) or "",
        "error": error, "username": username,
    }, status=status)  # fmt: skip


async def login_post(request: web.Request) -> web.Response:
    form = await request.post()
    lang = lang_of(request)
    session = await get_session(request)
    sent, want = str(form.get("csrf_token", "")), str(session.get("csrf", ""))
    username = str(form.get("username", "")).strip()
    if not sent or not want or not hmac.compare_digest(sent, want):
        return await login_page(request, error=t("ui.login.csrf", lang), status=403,
                                username=username)  # fmt: skip
    password = str(form.get("password", ""))
    if not username or not password:
        return await login_page(request, error=t("ui.login.required", lang), status=422,
                                username=username)  # fmt: skip
    try:
        await staff.login(request, username, password)
    except Unauthorized:
        return await login_page(request, error=t("ui.login.wrong", lang), status=401,
                                username=username)  # fmt: skip
    raise web.HTTPFound(_safe_next(str(form.get("next", ""))) or "/dash")


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
        "data": _json_script(data), "strings": _json_script(strings(c.lang)),
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
