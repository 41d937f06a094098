"""Staff pages of the case part (办件): window intake, case list, back-office inbox, case detail
and the center's overview.

Pages are Jinja templates under ``node/templates/cases`` extending the node's ``base.html``,
with ``node/static/cases.css`` and ``node/static/cases.js``.  Every change goes through the JSON
API (``/api/v1/cases`` ...) from the page script with the session's CSRF token; the handlers
here only read.  Texts are messages of the one catalog (:mod:`onestop.i18n`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import auth, ratings, tickets, workdays
from node import db as dbm
from node.cases import common, queries
from node.cases.api import STAFF, WINDOW
from node.keys import CLOCK, CONFIG, DB
from node.views import ROLE_NAMES, page_lang, page_messages, render, to_local
from onestop.clock import local_date
from onestop.errors import ApiError, NotFound
from onestop.i18n import _, lazy_gettext, lazy_pgettext, pgettext

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Names of the codes the case pages show (templates: ``{{ CASE_STATES[state]|text }}``).
CASE_STATES = {
    "pending_materials": lazy_gettext("待补齐材料"),
    "accepted": lazy_gettext("审查中"),
    "supplement": lazy_gettext("待补正"),
    "approved": lazy_gettext("审批通过"),
    "rejected": lazy_gettext("不予许可"),
    "result_ready": lazy_gettext("待领取"),
    "delivered": lazy_gettext("已送达"),
}
TASK_STATES = {
    "pending": lazy_pgettext("review task", "审查中"),
    "approved": lazy_gettext("已通过"),
    "rejected": lazy_gettext("不予许可"),
    "supplement": lazy_gettext("要求补正"),
    "cancelled": lazy_gettext("已取消"),
}
DEADLINE_STATUS = {
    "green": lazy_pgettext("deadline", "正常"),
    "yellow": lazy_gettext("预警"),
    "red": lazy_gettext("超期"),
    "paused": lazy_gettext("暂停"),
    "done": lazy_gettext("已审结"),
}
MATERIAL_STATES = {
    "received": lazy_gettext("已收取"),
    "missing": lazy_gettext("缺少"),
    "requested": lazy_pgettext("material", "待补正"),
}
DESK_STATES = {
    "called": lazy_gettext("办理中"),
    "suspended": lazy_gettext("挂起"),
}
HANDOVER_METHODS = {
    "pickup": lazy_gettext("窗口领取"),
    "mail": lazy_gettext("邮寄送达"),
}
CHANNELS = {
    "window": lazy_gettext("窗口当面递交"),
    "post": lazy_gettext("邮政寄递"),
    "online": lazy_gettext("网上提交"),
    "courier": lazy_gettext("快递寄递"),
}
VISIT_PURPOSES = {
    "intake": lazy_gettext("递交申请"),
    "supplement": lazy_pgettext("visit purpose", "补交材料"),
    "pickup": lazy_gettext("领取结果"),
}
REVIEW_EVENTS = {
    "review.decided.approve": lazy_gettext("{dept}审查通过"),
    "review.decided.reject": lazy_gettext("{dept}作出不予许可决定"),
    "review.decided.supplement": lazy_gettext("{dept}要求补正"),
    "review.cancelled": lazy_gettext("{dept}审查终止"),
    "review.reopened": lazy_gettext("{dept}恢复审查"),
}
HANDED_OVER = {
    "pickup": lazy_gettext("申请人窗口领取结果，办件完结"),
    "mail": lazy_gettext("结果已邮寄送达（运单号 {tracking}），办件完结"),
}
SMS_KINDS = {
    "accepted": lazy_gettext("受理通知"),
    "supplement": lazy_gettext("补正通知"),
    "result_ready": lazy_gettext("领取通知"),
    "mailed": lazy_gettext("邮寄通知"),
}
SMS_STATES = {
    "sms.sent": lazy_gettext("短信已发送"),
    "sms.failed": lazy_gettext("短信发送失败"),
}


# --------------------------------------------------------------------------- helpers


def _lang(request: web.Request) -> str:
    return page_lang(request)[0]


def _today(request: web.Request) -> str:
    app = request.app
    return local_date(app[CLOCK](), app[CONFIG].timezone).isoformat()


def _pick(obj: dict[str, Any] | None, lang: str, field: str = "name") -> str:
    if not obj:
        return ""
    if lang == "en" and obj.get(f"{field}_en"):
        return str(obj[f"{field}_en"])
    return str(obj.get(f"{field}_zh") or obj.get(field) or obj.get("code") or "")


def _departments(db: Any) -> list[dict[str, Any]]:
    return dbm.rows(db, "SELECT code, name_zh, name_en FROM departments ORDER BY sort, code")


def _dept_names(db: Any, lang: str) -> dict[str, str]:
    return {d["code"]: _pick(d, lang) for d in _departments(db)}


def _local(request: web.Request, value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return ""
    return to_local(value, request.app[CONFIG].timezone).strftime(fmt)


def size_label(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def deadline_view(dl: dict[str, Any] | None, lang: str) -> dict[str, str]:
    """The colour (green/yellow/red/paused/done/none) and a short text of a deadline."""
    if not dl:
        return {"status": "none", "label": "", "text": _("未受理，不计时", lang)}
    if dl.get("paused"):
        return {
            "status": "paused",
            "label": _("暂停", lang),
            "text": _("补正中，{date} 起暂停计时", lang, date=dl["as_of"]),
        }
    status = dl.get("status")
    if status is None:
        done = _("按期", lang) if dl.get("on_time") else pgettext("decided", "超期", lang)
        return {"status": "done", "label": _("已审结", lang), "text": done}
    if status == "red":
        text = _("超期 {n} 个工作日", lang, n=dl["overdue_workdays"])
    elif dl["workdays_left"] == 0:
        text = _("今日到期", lang)
    else:
        text = _("剩 {n} 个工作日", lang, n=dl["workdays_left"])
    return {"status": str(status), "label": DEADLINE_STATUS[str(status)].text(lang), "text": text}


def _desk_tickets(request: web.Request, user: dict[str, Any]) -> list[dict[str, Any]]:
    """Today's tickets called or suspended at the user's window (every window for admins)."""
    db = request.app[DB]
    lang = _lang(request)
    sql = (
        "SELECT t.*, w.number AS window_number FROM tickets t "
        "LEFT JOIN windows w ON w.id = t.window_id "
        "WHERE t.state IN ('called', 'suspended') AND t.service_date = ?"
    )
    params: list[Any] = [_today(request)]
    if user["role"] == "window" and user.get("window_id") is not None:
        sql += " AND t.window_id = ?"
        params.append(user["window_id"])
    sql += " ORDER BY t.state = 'called' DESC, t.called_at DESC"
    queues = {q["code"]: q for q in dbm.rows(db, "SELECT code, name_zh, name_en FROM queues")}
    out = []
    for row in dbm.rows(db, sql, params):
        t = tickets.public(row)
        t["window_number"] = row["window_number"]
        t["queue_name"] = _pick(queues.get(row["queue"]), lang) or row["queue"]
        out.append(t)
    return out


async def _base_ctx(request: web.Request, user: dict[str, Any], tab: str) -> dict[str, Any]:
    return {
        "user": user,
        "tab": tab,
        "csrf_token": await auth.csrf_token(request),
        "today": _today(request),
    }


def _js_data(lang: str, **extra: Any) -> dict[str, Any]:
    return {"lang": lang, "strings": page_messages(lang, "cases.js"), **extra}


async def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    user = await auth.current_user(request)
    ctx: dict[str, Any] = {"status": status, "message": message, "tab": ""}
    if user is not None:
        ctx.update(await _base_ctx(request, user, ""))
    return await render(request, "cases/error.html", ctx, status=status)


def page(*roles: str) -> Callable[[Handler], Handler]:
    """A staff page for ``roles``: login first, a styled error page for refusals."""

    def wrap(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            user = await auth.require(request)
            lang = _lang(request)
            if user["role"] not in roles:
                role = ROLE_NAMES[user["role"]].text(lang)
                return await _error_page(
                    request, 403, _("您的角色（{role}）无权使用此页面。", lang, role=role)
                )
            request["user"] = user
            try:
                return await fn(request)
            except ApiError as exc:
                return await _error_page(request, exc.status, exc.message_in(lang))

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap


# --------------------------------------------------------------------------- intake


def _catalog(db: Any, lang: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Catalog items grouped by lead department, and the items for the page script."""
    depts = _departments(db)
    names = {d["code"]: _pick(d, lang) for d in depts}
    items = dbm.rows(
        db,
        "SELECT code, name_zh, name_en, kind, departments, materials, promised_days, "
        "statutory_days FROM items ORDER BY sort, code",
    )
    by_dept: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        it["departments"] = json.loads(it["departments"])
        it["materials"] = json.loads(it["materials"])
        it["dept_names"] = [names.get(d, d) for d in it["departments"]]
        lead = it["departments"][0] if it["departments"] else ""
        by_dept.setdefault(lead, []).append(it)
    groups = [
        {"code": d["code"], "name": names[d["code"]], "items": by_dept[d["code"]]}
        for d in depts
        if d["code"] in by_dept
    ]
    return groups, items


@page(*WINDOW)
async def intake_page(request: web.Request) -> web.StreamResponse:
    """``/cases/new?ticket={id}``: open a case from the ticket being served."""
    user = request["user"]
    app = request.app
    db = app[DB]
    lang = _lang(request)
    desk = _desk_tickets(request, user)
    warning = None
    selected: int | None = None
    raw = request.query.get("ticket", "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = -1
        if any(t["id"] == wanted for t in desk):
            selected = wanted
        else:
            row = dbm.one(db, "SELECT ticket_no FROM tickets WHERE id = ?", [wanted])
            warning = _(
                "号票 {no} 当前不在窗口办理中（已办结或未叫号），请重新选择。",
                lang,
                no=row["ticket_no"] if row else raw,
            )
    elif len([t for t in desk if t["state"] == "called"]) == 1:
        selected = next(t["id"] for t in desk if t["state"] == "called")
    groups, items = _catalog(db, lang)
    preselect: list[str] = []
    ticket = next((t for t in desk if t["id"] == selected), None)
    if ticket and ticket.get("item_code"):
        preselect = [ticket["item_code"]]
    data = _js_data(
        lang,
        tickets=desk,
        items={
            it["code"]: {
                k: it[k]
                for k in (
                    "code",
                    "name_zh",
                    "name_en",
                    "kind",
                    "departments",
                    "dept_names",
                    "materials",
                    "promised_days",
                    "statutory_days",
                )
            }
            for it in items
        },
        preselect=preselect,
        today=_today(request),
    )
    ctx = await _base_ctx(request, user, "intake")
    ctx.update(
        {
            "tickets": desk,
            "selected_ticket": selected,
            "warning": warning,
            "groups": groups,
            "preselect": preselect,
            "data": data,
        }
    )
    return await render(request, "cases/intake.html", ctx)


# --------------------------------------------------------------------------- list


@page(*STAFF)
async def cases_list(request: web.Request) -> web.StreamResponse:
    """``/cases``: cases newest first, filtered by state, date, department and text."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    q = request.query
    state = q.get("state") or ""
    if state not in common.STATE_NAMES:
        state = ""
    date = q.get("date") or ""
    department = q.get("department") or ""
    if user["role"] == "reviewer":
        department = user.get("department") or "-"
    text = (q.get("q") or "").strip()
    if text and common.CASE_NO_RE.match(text):
        if dbm.one(db, "SELECT 1 AS x FROM cases WHERE case_no = ?", [text]):
            raise web.HTTPFound(f"/cases/{text}")
    try:
        rows = queries.list_cases(
            db,
            cfg,
            state=state or None,
            date=date or None,
            department=department or None,
            limit=1000 if text else 300,
            now=app[CLOCK],
        )
    except ApiError:
        rows = []
    names = _dept_names(db, lang)
    item_names = {r["code"]: r for r in dbm.rows(db, "SELECT code, name_zh, name_en FROM items")}
    out = []
    for r in rows:
        its = [item_names.get(c) or {"code": c, "name_zh": c} for c in r["items"]]
        label = " / ".join(_pick(it, lang) for it in its)
        haystack = " ".join(
            [r["case_no"], *(f"{it['code']} {it.get('name_zh')} {it.get('name_en')}" for it in its)]
        )
        if text and text.lower() not in haystack.lower():
            continue
        r["item_label"] = label
        r["dept_label"] = "、".join(names.get(d, d) for d in r["departments"])
        r["dl"] = deadline_view(r["deadline"], lang)
        r["created_local"] = _local(request, r["created_at"])
        out.append(r)
    ctx = await _base_ctx(request, user, "list")
    ctx.update(
        {
            "rows": out,
            "states": list(common.STATE_NAMES),
            "departments": _departments(db),
            "f": {"state": state, "date": date, "department": department, "q": text},
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/list.html", ctx)


# --------------------------------------------------------------------------- inbox


@page("admin", "reviewer")
async def inbox_page(request: web.Request) -> web.StreamResponse:
    """``/inbox``: a department's review tasks, most urgent first."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    depts = _departments(db)
    open_counts = {
        r["department"]: r["n"]
        for r in dbm.rows(
            db,
            "SELECT department, COUNT(*) AS n FROM review_tasks "
            "WHERE state IN ('pending', 'supplement') GROUP BY department",
        )
    }
    if user["role"] == "reviewer":
        department = user.get("department") or ""
        if not department:
            return await _error_page(
                request, 403, _("您的账号未设置所属部门，请联系管理员。", lang)
            )
    else:
        department = request.query.get("department") or ""
        if department not in {d["code"] for d in depts}:
            busiest = sorted(open_counts.items(), key=lambda kv: -kv[1])
            department = busiest[0][0] if busiest else (depts[0]["code"] if depts else "")
    show = request.query.get("show") or "open"
    if show not in ("open", "all"):
        show = "open"
    rows = queries.inbox(db, cfg, department, show, app[CLOCK]) if department else []
    names = {d["code"]: _pick(d, lang) for d in depts}
    for r in rows:
        r["dl"] = deadline_view(r["deadline"], lang)
        if r["state"] not in ("pending", "supplement"):
            r["dl"] = dict(r["dl"], status="done", label=TASK_STATES[r["state"]].text(lang))
        r["item_label"] = " / ".join(_pick(it, lang) for it in r["items"])
        r["progress"] = [
            {
                "department": t["department"],
                "name": names.get(t["department"], t["department"]),
                "state": t["state"],
            }
            for t in r["tasks"]
        ]
    counts = {
        s: sum(1 for r in rows if r["dl"]["status"] == s)
        for s in ("red", "yellow", "green", "paused")
    }
    ctx = await _base_ctx(request, user, "inbox")
    ctx.update(
        {
            "department": department,
            "department_name": names.get(department, department),
            "departments": [dict(d, open=open_counts.get(d["code"], 0)) for d in depts],
            "rows": rows,
            "counts": counts,
            "show": show,
            "warn_workdays": workdays.WARN_WORKDAYS,
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/inbox.html", ctx)


# --------------------------------------------------------------------------- detail


def describe(
    ev: dict[str, Any], lang: str, depts: dict[str, str], mats: dict[str, str]
) -> dict[str, str]:
    """A timeline event as a readable title, detail and tone (ok/warn/bad/info/muted)."""
    kind, b = ev["kind"], ev["body"]

    def dept() -> str:
        return depts.get(b.get("department", ""), b.get("department", ""))

    def names(codes: list[Any]) -> str:
        sep = "; " if lang == "en" else "、"
        return sep.join(mats.get(str(c), str(c)) for c in codes)

    title, detail, tone = kind, "", "info"
    by = b.get("by") or ""
    if kind == "case.opened":
        title = _("窗口收件，生成办件", lang)
        detail = _(
            "号票 {ticket}；收取材料 {got} 项，缺 {miss} 项",
            lang,
            ticket=b.get("ticket_no") or "—",
            got=len(b.get("received") or []),
            miss=len(b.get("missing") or []),
        )
    elif kind == "case.visit":
        why = VISIT_PURPOSES.get(b.get("purpose") or "")
        purpose = why.text(lang) if why else str(b.get("purpose"))
        title = _("申请人第 {n} 次到场：{purpose}", lang, n=b.get("visits"), purpose=purpose)
        detail = _("号票 {no}", lang, no=b["ticket_no"]) if b.get("ticket_no") else ""
    elif kind == "case.accepted":
        title, tone = _("正式受理，开始计时", lang), "ok"
        detail = _(
            "承诺办结 {promised}，法定时限 {statutory}",
            lang,
            promised=b.get("promised_deadline"),
            statutory=b.get("statutory_deadline"),
        )
        if b.get("commitment"):
            detail += ("; " if lang == "en" else "；") + pgettext(
                "timeline", "容缺受理，补交期限 {date}", lang, date=b.get("catch_up_date")
            )
    elif kind == "case.notice_issued":
        n = len(b.get("missing") or [])
        if b.get("reason") == "supplement":
            title = _("出具补正告知书（{n} 项材料）", lang, n=n)
        else:
            title = _("出具一次性告知书（{n} 项材料）", lang, n=n)
        tone = "warn"
        detail = names([m.get("code") for m in b.get("missing") or []])
    elif kind == "review.opened":
        role = _("主办", lang) if b.get("lead") else _("协办", lang)
        title = _("{dept}开始审查（{role}）", lang, dept=dept(), role=role)
    elif kind == "review.decided":
        decision = b.get("decision", "")
        event = REVIEW_EVENTS.get(f"review.decided.{decision}")
        title = event.text(lang, dept=dept()) if event else kind
        tone = {"approve": "ok", "reject": "bad", "supplement": "warn"}.get(decision, "info")
        detail = b.get("reason") or ""
    elif kind in ("review.cancelled", "review.reopened"):
        title, tone = REVIEW_EVENTS[kind].text(lang, dept=dept()), "muted"
    elif kind == "case.supplement_requested":
        title, tone = _("办件转入补正，办理时限暂停", lang), "warn"
        detail = (
            dept()
            + ("：" if lang == "zh" else ": ")
            + (b.get("reason") or "")
            + (" — " + names(b["materials"]) if b.get("materials") else "")
        )
    elif kind == "case.supplemented":
        title = _("补交材料 {n} 项", lang, n=len(b.get("received") or []))
        detail = names(b.get("received") or [])
        if b.get("channel") in CHANNELS and b["channel"] != "window":
            detail = CHANNELS[b["channel"]].text(lang) + ("; " if lang == "en" else "；") + detail
        if b.get("paused_workdays") is not None:
            detail += ("; " if lang == "en" else "；") + _(
                "时限顺延 {n} 个工作日，承诺办结 {promised}",
                lang,
                n=b["paused_workdays"],
                promised=b.get("promised_deadline"),
            )
        tone = "ok"
    elif kind == "case.approved":
        title, tone = _("审批通过", lang), "ok"
        detail = _("按期", lang) if b.get("on_time") else pgettext("decided", "超期", lang)
    elif kind == "case.rejected":
        title, tone = _("不予许可", lang), "bad"
        detail = dept() + ("：" if lang == "zh" else ": ") + (b.get("reason") or "")
    elif kind == "case.result_ready":
        title, tone = _("结果送达统一出件窗口", lang), "ok"
    elif kind == "case.handed_over":
        method = b.get("method", "pickup")
        title = HANDED_OVER.get(method, HANDED_OVER["pickup"]).text(
            lang, tracking=b.get("tracking") or ""
        )
        tone = "ok"
        detail = _("号票 {no}", lang, no=b["ticket_no"]) if b.get("ticket_no") else ""
    elif kind == "case.file_attached":
        title = _("上传材料扫描件：{material}", lang, material=names([b.get("material")]))
        detail = size_label(int(b.get("size") or 0))
        tone = "muted"
    elif kind == "case.identity_viewed":
        title, tone, by = _("{by} 查看了完整身份信息", lang, by=by), "muted", ""
    elif kind == "preapplication.used":
        title = _("关联网上预审申请", lang)
    elif kind == "sms.queued":
        template = SMS_KINDS.get(str(b.get("template")))
        what = template.text(lang) if template else str(b.get("template"))
        title, tone = _("短信通知：{what}", lang, what=what), "muted"
        detail = b.get("to_masked") or ""
    elif kind in ("sms.sent", "sms.failed"):
        title, tone = SMS_STATES[kind].text(lang), "muted" if kind == "sms.sent" else "bad"
    elif kind == "rating.given":
        level = ratings.LEVELS.get(int(b.get("level") or 0))
        title = _("申请人评价：{level}", lang, level=level.text(lang) if level else "")
        tone = "bad" if b.get("level") in ratings.BAD_LEVELS else "ok"
        reason = ratings.REASONS.get(str(b.get("reason")))
        detail = "；".join(x for x in (reason.text(lang) if reason else "", b.get("comment")) if x)
    elif kind == "rating.followed_up":
        level = ratings.LEVELS.get(int(b.get("level") or 0))
        title = _("申请人追评：{level}", lang, level=level.text(lang) if level else "")
        tone = "bad" if b.get("level") in ratings.BAD_LEVELS else "ok"
        detail = b.get("comment") or ""
    elif kind == "rating.appealed":
        title, tone, detail = _("工作人员申诉复核", lang), "warn", b.get("reason") or ""
    elif kind == "rating.appeal_decided":
        upheld = b.get("decision") == "upheld"
        title = ratings.APPEAL_STATES["upheld" if upheld else "rejected"].text(lang)
        tone, detail = ("muted" if upheld else "info"), b.get("note") or ""
    elif kind == "followup.called_back":
        title, tone, detail = _("差评已回访", lang), "ok", b.get("note") or ""
    elif kind == "followup.opened":
        title, tone = _("差评回访工单，期限 {due}", lang, due=b.get("due_date")), "warn"
    elif kind == "followup.closed":
        title, tone = _("差评回访已办结", lang), "ok"
        detail = b.get("note") or ""
    return {"title": title, "detail": detail, "tone": tone, "by": by}


@page(*STAFF)
async def case_page(request: web.Request) -> web.StreamResponse:
    """``/cases/{case_no}``: everything about one case, and what the user may do with it."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    case_no = request.match_info["case_no"]
    try:
        row = common.get(db, case_no)
    except NotFound:
        return await _error_page(
            request, 404, _("没有编码为 {case_no} 的办件。", lang, case_no=case_no)
        )
    if user["role"] == "reviewer" and user.get("department") not in row["departments"]:
        dept = _dept_names(db, lang).get(user.get("department") or "", user.get("department"))
        return await _error_page(
            request,
            403,
            _(
                "办件 {case_no} 不在您所在部门（{dept}）的审查范围内。",
                lang,
                case_no=case_no,
                dept=dept or "—",
            ),
        )
    c = queries.detail(db, cfg, row, app[CLOCK])
    depts = _dept_names(db, lang)
    mats = {m["code"]: _pick(m, lang) for m in c["materials"]}
    timeline = []
    for ev in reversed(c["timeline"]):
        d = describe(ev, lang, depts, mats)
        d["at"] = _local(request, ev["at"], "%m-%d %H:%M")
        d["at_full"] = _local(request, ev["at"], "%Y-%m-%d %H:%M:%S")
        d["kind"] = ev["kind"]
        timeline.append(d)
    is_window = user["role"] in WINDOW
    role = user["role"]
    for task in c["tasks"]:
        task["name"] = depts.get(task["department"], task["department"])
        task["mine"] = role == "admin" or (
            role == "reviewer" and user.get("department") == task["department"]
        )
        task["can_decide"] = (
            task["mine"] and task["state"] == "pending" and c["state"] == "accepted"
        )
        task["decided_local"] = _local(request, task["decided_at"])
    outstanding = [m for m in c["materials"] if m["state"] != "received"]
    has_notice = any(ev["kind"] == "case.notice_issued" for ev in c["timeline"])
    actions = {
        "result": is_window
        and c["state"] in ("approved", "rejected")
        and not (c["outcome"] == "approved" and outstanding),
        "handover": is_window and c["state"] == "result_ready",
        "supplement": is_window
        and bool(outstanding)
        and c["state"] in ("pending_materials", "supplement", "accepted", "approved"),
        "identity": is_window,
    }
    for m in c["materials"]:
        for f in m["files"]:
            f["size_label"] = size_label(f["size"])
    data = _js_data(
        lang,
        case_no=c["case_no"],
        state=c["state"],
        materials=[
            {k: m[k] for k in ("code", "name_zh", "name_en", "critical", "state")}
            for m in c["materials"]
        ],
    )
    ctx = await _base_ctx(request, user, "list" if role != "reviewer" else "inbox")
    ctx.update(
        {
            "c": c,
            "dl": deadline_view(c["deadline"], lang),
            "dept_names": depts,
            "timeline": timeline,
            "actions": actions,
            "outstanding": outstanding,
            "has_notice": has_notice,
            "desk": _desk_tickets(request, user) if is_window else [],
            "created_local": _local(request, c["created_at"]),
            "handed_local": _local(request, c["handed_over_at"]),
            "is_window": is_window,
            "my_pending": [t for t in c["tasks"] if t["can_decide"]],
            "data": data,
        }
    )
    return await render(request, "cases/detail.html", ctx)


# --------------------------------------------------------------------------- overview


@page("admin")
async def overview_page(request: web.Request) -> web.StreamResponse:
    """``/overview``: counts, deadlines, overdue cases, visits, ratings and follow-ups."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    ov = queries.overview(db, cfg, app[CLOCK])
    depts = _dept_names(db, lang)
    item_names = {r["code"]: r for r in dbm.rows(db, "SELECT code, name_zh, name_en FROM items")}
    for o in ov["overdue"]:
        o["item_label"] = " / ".join(_pick(item_names.get(c), lang) or c for c in o["items"])
        o["pending_label"] = "、".join(depts.get(d, d) for d in o["pending_departments"])
    followups = ratings.list_followups(db, cfg, "open", app[CLOCK])
    by_state = ov["cases"]["by_state"]
    state_max = max([1, *by_state.values()])
    r = ov["ratings"]
    level_max = max([1, *r["by_level"].values()])
    dls = ov["deadlines"]
    dl_max = max(1, dls["green"], dls["yellow"], dls["red"])
    ctx = await _base_ctx(request, user, "overview")
    ctx.update(
        {
            "ov": ov,
            "by_state": by_state,
            "state_max": state_max,
            "levels": [
                (lv, ratings.LEVELS[lv], r["by_level"][str(lv)])
                for lv in sorted(ratings.LEVELS, reverse=True)
            ],
            "level_max": level_max,
            "dl_max": dl_max,
            "followups": followups,
            "open_cases": by_state.get("accepted", 0) + by_state.get("supplement", 0),
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/overview.html", ctx)


def setup_case_pages(app: web.Application) -> None:
    aiohttp_jinja2.get_env(app).globals.update(
        CASE_STATES=CASE_STATES,
        TASK_STATES=TASK_STATES,
        DEADLINE_STATUS=DEADLINE_STATUS,
        MATERIAL_STATES=MATERIAL_STATES,
        DESK_STATES=DESK_STATES,
        HANDOVER_METHODS=HANDOVER_METHODS,
        CHANNELS=CHANNELS,
    )
    r = app.router
    r.add_get("/cases", cases_list, name="cases_list_page")
    r.add_get("/cases/new", intake_page, name="case_intake_page")
    r.add_get(r"/cases/{case_no:\d{2,12}-\d{8}-\d{4,}}", case_page, name="case_detail_page")
    r.add_get("/inbox", inbox_page, name="cases_inbox_page")
    r.add_get("/overview", overview_page, name="cases_overview_page")
