"""HTML pages: kiosk, ticket print and status, display board, staff login, window console
and admin overview.

Pages are Jinja templates under ``node/templates`` with plain CSS and vanilla JavaScript under
``node/static`` (the node runs on an offline LAN: nothing is loaded from the internet).  Every
visible text is a message of the one catalog (:mod:`onestop.i18n`), the page scripts' too
(:func:`page_messages`); the language comes from ``?lang=`` (remembered in the ``lang``
cookie), else the cookie, else the node's default.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
import segno
from aiohttp import web
from markupsafe import Markup

from node import auth, hall, links, ratings, tickets, users, windows
from node import db as dbm
from node.keys import CLOCK, CONFIG, DB, SPEECH
from onestop import i18n
from onestop.clock import local_date, parse
from onestop.errors import Forbidden, NotFound
from onestop.i18n import LANGS, _, lazy_gettext
from onestop.sessions import safe_next

STATIC = Path(__file__).with_name("static")

LANG_COOKIE = "lang"
LANG_COOKIE_AGE = 365 * 24 * 3600


#: Names of codes shown on pages (templates: ``{{ ROLE_NAMES[user.role]|text }}``).
ROLE_NAMES = {
    "admin": lazy_gettext("管理员"),
    "window": lazy_gettext("窗口人员"),
    "reviewer": lazy_gettext("审核人员"),
}
WINDOW_STATUS = {
    "open": lazy_gettext("服务中"),
    "paused": lazy_gettext("暂停服务"),
    "closed": lazy_gettext("已关闭"),
}
TICKET_STATES = {
    "waiting": lazy_gettext("排队等候中"),
    "called": lazy_gettext("请到窗口办理"),
    "suspended": lazy_gettext("已挂起，请留意工作人员通知"),
    "done": lazy_gettext("已办结，感谢您的耐心"),
    "no_show": lazy_gettext("已过号，请重新取号"),
    "expired": lazy_gettext("当日未办理，号码已失效，请重新取号"),
}
PRIORITY_REASONS = {
    "elderly": lazy_gettext("老年人优先"),
    "appointment": lazy_gettext("预约优先"),
    "staff": lazy_gettext("人工优先"),
}


# -- Jinja helpers ----------------------------------------------------------------------------


@jinja2.pass_context
def _localized(ctx: Any, obj: dict[str, Any] | None, field: str = "name") -> str:
    """``obj[field_en]`` on English pages (when set), else ``obj[field_zh]``."""
    if not obj:
        return ""
    if ctx.get("lang") == "en" and obj.get(f"{field}_en"):
        return str(obj[f"{field}_en"])
    return str(obj.get(f"{field}_zh") or obj.get(field) or "")


@jinja2.pass_context
def _localtime(ctx: Any, value: str | None, fmt: str = "%H:%M:%S") -> str:
    if not value:
        return ""
    return to_local(value, ctx.get("tz", "Asia/Shanghai")).strftime(fmt)


def setup_jinja(env: jinja2.Environment) -> None:
    i18n.install_jinja(env)
    env.globals.update(
        ROLE_NAMES=ROLE_NAMES,
        WINDOW_STATUS=WINDOW_STATUS,
        TICKET_STATES=TICKET_STATES,
        PRIORITY_REASONS=PRIORITY_REASONS,
    )
    env.globals["loc"] = _localized
    env.filters["localtime"] = _localtime
    env.trim_blocks = True
    env.lstrip_blocks = True


def to_local(value: str, tz: str) -> dt.datetime:
    return parse(value).astimezone(ZoneInfo(tz))


# -- language and rendering -------------------------------------------------------------------


def page_lang(request: web.Request) -> tuple[str, bool]:
    """The page language and whether it was chosen by ``?lang=`` (to be remembered)."""
    asked = request.query.get("lang", "")
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE, "")
    if cookie in LANGS:
        return cookie, False
    return request.app[CONFIG].default_lang, False


def page_messages(lang: str, script: str) -> dict[str, str]:
    """The catalog messages of ``common.js`` and the page's ``script``, in the page language."""
    return i18n.script_messages(lang, (STATIC / "common.js", STATIC / script))


async def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> web.Response:
    cfg = request.app[CONFIG]
    lang, remember = page_lang(request)
    ctx: dict[str, Any] = {
        "lang": lang,
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "center_name": cfg.name,
        "tz": cfg.timezone,
        "lang_urls": {code: str(request.rel_url.update_query(lang=code)) for code in LANGS},
    }
    ctx.update(context)
    resp = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    resp.headers["Cache-Control"] = "no-store"
    if remember:
        resp.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE, path="/", samesite="Lax")
    return resp


def _queue_names(request: web.Request) -> dict[str, dict[str, Any]]:
    rows = dbm.rows(request.app[DB], "SELECT code, prefix, kind, name_zh, name_en FROM queues")
    return {r["code"]: r for r in rows}


def _queue(request: web.Request, code: str) -> dict[str, Any]:
    return _queue_names(request).get(code) or {"code": code, "name_zh": code, "name_en": code}


def _item(request: web.Request, code: str | None) -> dict[str, Any] | None:
    if not code:
        return None
    return dbm.one(
        request.app[DB], "SELECT code, name_zh, name_en FROM items WHERE code = ?", [code]
    )


def _today(request: web.Request) -> str:
    app = request.app
    return local_date(app[CLOCK](), app[CONFIG].timezone).isoformat()


# -- public pages -----------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    return await render(request, "index.html", {"user": await auth.current_user(request)})


async def kiosk(request: web.Request) -> web.Response:
    app = request.app
    db = app[DB]
    items = dbm.rows(
        db, "SELECT code, name_zh, name_en, area, departments FROM items ORDER BY sort, code"
    )
    for it in items:
        it["departments"] = json.loads(it["departments"])
    lang = page_lang(request)[0]
    data = {
        "lang": lang,
        "tz": app[CONFIG].timezone,
        "queues": tickets.queue_overview(db, app[CONFIG], app[CLOCK]),
        "items": items,
        "strings": page_messages(lang, "kiosk.js"),
    }
    return await render(
        request, "kiosk.html", {"data": data, "elderly_age": app[CONFIG].elderly_age}
    )


def _qr(request: web.Request, token: str) -> segno.QRCode | None:
    """The QR code of the ticket's status page (:func:`node.links.public_link`); None when
    no phone could open it."""
    url = links.public_link(request.app[CONFIG], request, f"/s/{token}")
    return segno.make(url, error="m") if url else None


async def ticket_print(request: web.Request) -> web.Response:
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    tk = tickets.by_token(db, request.match_info["token"])
    ahead = tickets.waiting_ahead(db, tk)
    qr = _qr(request, tk["token"])
    svg = qr.svg_inline(scale=4, border=2, omitsize=True) if qr else None
    return await render(
        request,
        "print.html",
        {
            "ticket": tickets.anonymous(tk),
            "priority": tk["priority"],
            "queue": _queue(request, tk["queue"]),
            "item": _item(request, tk["item_code"]),
            "issued": to_local(tk["created_at"], cfg.timezone).strftime("%Y-%m-%d %H:%M:%S"),
            "ahead": ahead,
            "est": tickets.estimate_minutes(db, cfg, tk["queue"], ahead, tk["service_date"]),
            "qr_svg": Markup(svg) if svg else None,
            "where": hall.where_text(
                cfg.hall, hall.hall_windows(db), tk["queue"], page_lang(request)[0]
            ),
            "autoprint": request.query.get("autoprint") == "1",
            "embed": request.query.get("embed") == "1",
        },
    )


async def ticket_qr(request: web.Request) -> web.Response:
    tk = tickets.by_token(request.app[DB], request.match_info["token"])
    qr = _qr(request, tk["token"])
    if qr is None:
        raise NotFound(
            "no QR code: public_url is not set and this page was opened at a loopback address",
            field="token",
        )
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=8, border=2)
    return web.Response(
        body=buf.getvalue(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "private, no-store"},  # one ticket's: for its holder only
    )


def public_base(request: web.Request) -> str:
    """Where links for citizens point: ``public_url``, else the address of this request."""
    return request.app[CONFIG].public_url.rstrip("/") or f"{request.scheme}://{request.host}"


def qr_svg(link: str, scale: int = 4) -> Markup:
    return Markup(segno.make(link, error="m").svg_inline(scale=scale, border=2, omitsize=True))


def status_rating(request: web.Request, tk: dict[str, Any]) -> dict[str, Any] | None:
    """The rating link and QR code on a finished visit's status page: to rate it, or to rate
    it again once its bad rating was fixed (追评); what was given once done."""
    if tk["state"] != "done":
        return None
    rated = ratings.rating_of(request.app[DB], ticket_id=tk["id"])
    if rated and not rated["follow_up_allowed"]:
        return {"rated": True, "level": rated["level"]}
    path = ratings.rating_path_visit(tk["token"])
    link = ratings.rating_link(request.app[CONFIG], path, public_base(request))
    return {"rated": False, "again": bool(rated), "link": path, "qr": qr_svg(link, 3)}


async def ticket_status(request: web.Request) -> web.Response:
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    tk = tickets.by_token(db, request.match_info["token"])
    ahead = tickets.waiting_ahead(db, tk)
    window_number = windows.get(db, tk["window_id"])["number"] if tk["window_id"] else None
    return await render(
        request,
        "status.html",
        {
            "ticket": tickets.anonymous(tk),
            "queue": _queue(request, tk["queue"]),
            "state": tk["state"],
            "window_number": window_number,
            "ahead": ahead,
            "est": tickets.estimate_minutes(db, cfg, tk["queue"], ahead, tk["service_date"]),
            "updated": app[CLOCK]().astimezone(ZoneInfo(cfg.timezone)).strftime("%H:%M:%S"),
            "rating": status_rating(request, tk),
            "LEVELS": ratings.LEVELS,
            "live": tk["state"] in ("waiting", "called", "suspended"),
        },
    )


async def display(request: web.Request) -> web.Response:

    lang = page_lang(request)[0]
    data = {
        "lang": lang,
        "tz": request.app[CONFIG].timezone,
        "state": windows.board_state(request.app[DB], request.app[CONFIG], request.app[CLOCK]),
        "queues": tickets.queue_overview(request.app[DB], request.app[CONFIG], request.app[CLOCK]),
        "strings": page_messages(lang, "display.js"),
        "speech_audio": request.app[SPEECH].available,  # node-rendered calls (espeak-ng)
    }
    return await render(request, "display.html", {"data": data})


# -- staff: login -----------------------------------------------------------------------------


def _home_for(user: dict[str, Any]) -> str:
    return {"window": "/window", "admin": "/admin", "reviewer": "/inbox"}.get(user["role"], "/")


async def login_page(
    request: web.Request, *, error: str | None = None, status: int = 200, username: str = ""
) -> web.Response:
    return await render(
        request,
        "login.html",
        {
            "csrf_token": await auth.csrf_token(request),
            "next": safe_next(request.query.get("next")) or "",
            "error": error,
            "username": username,
            "user": await auth.current_user(request),
        },
        status=status,
    )


async def login_post(request: web.Request) -> web.Response:
    r = await auth.STAFF.form_login(request)
    if r.user is None:
        lang = page_lang(request)[0]
        if r.locked is not None:  # too many wrong passwords: how long to wait
            page = await login_page(request, error=r.locked.message_in(lang), status=r.status,
                                    username=r.username)  # fmt: skip
            page.headers["Retry-After"] = str(r.retry_after)
            return page
        error = {"csrf": _("页面已过期，请刷新后重新登录", lang),
                 "required": _("请输入用户名和密码", lang),
                 "wrong": _("用户名或密码错误", lang)}[r.reason]  # fmt: skip
        return await login_page(request, error=error, status=r.status, username=r.username)
    raise web.HTTPFound(r.next or _home_for(r.user))


async def logout(request: web.Request) -> web.Response:
    await auth.require(request)
    await auth.logout(request)
    raise web.HTTPFound("/login")


# -- staff: window console --------------------------------------------------------------------


async def window_select(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "window")
    if user["role"] == "window" and user["window_id"] is not None:
        raise web.HTTPFound(f"/window/{user['window_id']}")
    db = request.app[DB]
    rows = []
    for w in windows.all_windows(db):
        cur = windows.current(db, w["id"])
        w["ticket_no"] = cur["ticket_no"] if cur else None
        rows.append(w)
    return await render(
        request,
        "window_select.html",
        {
            "user": user,
            "windows": rows,
            "queues": _queue_names(request),
            "csrf_token": await auth.csrf_token(request),
        },
    )


async def window_page(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "window")
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    try:
        wid = int(request.match_info["id"])
    except ValueError:
        raise NotFound("no such window", field="window") from None
    if user["role"] == "window" and user["window_id"] not in (None, wid):
        raise Forbidden(f"user {user['username']} works at another window")
    w = windows.get(db, wid)
    cur = windows.current(db, wid)
    current = tickets.public(cur) if cur else None
    suspended = [tickets.public(x) for x in windows.suspended(db, wid)]
    overview = tickets.queue_overview(db, cfg, app[CLOCK])
    names = _queue_names(request)
    items = {r["code"]: r for r in dbm.rows(db, "SELECT code, name_zh, name_en FROM items")}
    others = [
        {"id": o["id"], "number": o["number"], "name": o["name"], "status": o["status"]}
        for o in windows.all_windows(db)
        if o["id"] != wid
    ]
    lang = page_lang(request)[0]
    data = {
        "lang": lang,
        "tz": cfg.timezone,
        "window": w,
        "current": current,
        "suspended": suspended,
        "queues": overview,
        "queue_names": names,
        "items": items,
        "recall_limit": cfg.recall_limit,
        "strings": page_messages(lang, "console.js"),
    }
    if "*" in w["queues"]:
        served = [q for q in overview if q["waiting"]]
    else:
        served = [q for q in overview if q["code"] in w["queues"]]
    served.sort(key=lambda q: -q["waiting"])
    return await render(
        request,
        "window.html",
        {
            "user": user,
            "window": w,
            "current": current,
            "current_queue": names.get(current["queue"]) if current else None,
            "current_item": items.get(current["item_code"] or "") if current else None,
            "suspended": suspended,
            "served": served,
            "all_queues": overview,
            "others": others,
            "names": names,
            "csrf_token": await auth.csrf_token(request),
            "data": data,
        },
    )


# -- staff: admin -----------------------------------------------------------------------------


async def admin(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin")
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    today = _today(request)
    counts = {
        r["state"]: r["n"]
        for r in dbm.rows(
            db,
            "SELECT state, COUNT(*) AS n FROM tickets WHERE service_date = ? GROUP BY state",
            [today],
        )
    }
    wins = []
    for w in windows.all_windows(db):
        cur = windows.current(db, w["id"])
        w["ticket_no"] = cur["ticket_no"] if cur else None
        wins.append(w)
    all_users = users.all_users(db)
    numbers = {w["id"]: w["number"] for w in wins}
    for u in all_users:
        u["window_number"] = numbers.get(u["window_id"])
    queues = tickets.queue_overview(db, cfg, app[CLOCK])
    return await render(
        request,
        "admin.html",
        {
            "user": user,
            "today": today,
            "stats": {
                "issued": sum(counts.values()),
                "waiting": counts.get("waiting", 0),
                "done": counts.get("done", 0),
                "open_windows": sum(1 for w in wins if w["status"] == "open"),
            },
            "queues": queues,
            "windows": wins,
            "users": all_users,
            "names": _queue_names(request),
            "csrf_token": await auth.csrf_token(request),
            "strings": page_messages(page_lang(request)[0], "admin.js"),
        },
    )
