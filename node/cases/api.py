"""JSON API handlers of the case part (``/api/v1/cases`` ...) and its few public pages.

Routes are in :mod:`node.cases.routes`; each handler's ``@operation`` describes it for the
OpenAPI document, with its request models from :mod:`node.models`.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

import segno
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from markupsafe import Markup

from node import appointments, auth, links, metrics, notify, preapplications, ratings
from node import db as dbm
from node import models as m
from node.cases import common, files, intake, notices, queries, results
from node.cases import review as reviewm
from node.cases.status_guard import StatusGuard
from node.keys import BOARD, CLOCK, CONFIG, DB, PII
from node.notify import NOTIFIER
from node.views import page_lang, render
from onestop import requests
from onestop.clock import local_date
from onestop.errors import ApiError, Forbidden, Invalid, NotFound
from onestop.i18n import _, lazy_gettext, pgettext
from onestop.openapi import operation

STAFF = ("admin", "window", "reviewer")
WINDOW = ("admin", "window")
STATUS_GUARD = web.AppKey("status_guard", StatusGuard)


def _visible(user: dict[str, Any], case: dict[str, Any]) -> None:
    """Reviewers see the cases their department reviews; other staff see all."""
    if user["role"] == "reviewer" and user.get("department") not in case["departments"]:
        raise Forbidden(
            f"case {case['case_no']} is not reviewed by department {user.get('department')!r}"
        )


def _case_response(request: web.Request, case: dict[str, Any], status: int = 200) -> web.Response:
    app = request.app
    return web.json_response(
        {"case": queries.detail(app[DB], app[CONFIG], case, app[CLOCK])}, status=status
    )


# -- window: intake, supplement, results -----------------------------------------------------


CASE_ERRORS = (404, 409, 422)


@operation(
    "Open a case at the window (intake, 一次性告知, 容缺受理)",
    tag="cases",
    ok=201,
    body=m.IntakeRequest,
    returns=m.CaseResult,
    errors=(409, 422),
)
async def create_case(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    data = (await requests.body(request, m.IntakeRequest)).data()
    app = request.app
    case = intake.intake(app[DB], app[CONFIG], data, user, app[CLOCK], app[PII])
    app[NOTIFIER].wake()
    return _case_response(request, case, 201)


@operation(
    "Cases, newest first (reviewers: their department's)",
    tag="cases",
    query=m.CasesQuery,
    errors=(422,),
)
async def list_cases(request: web.Request) -> web.Response:
    user = await auth.require(request, *STAFF)
    app = request.app
    q = requests.query(request, m.CasesQuery)
    department = q.department
    if user["role"] == "reviewer":
        department = user.get("department") or "-"
    limit = min(1000, max(1, q.limit))
    rows = queries.list_cases(
        app[DB],
        app[CONFIG],
        state=q.state,
        date=q.date.isoformat() if q.date else None,
        department=department,
        limit=limit,
        now=app[CLOCK],
    )
    return web.json_response({"cases": rows})


@operation(
    "One case: items, materials, review tasks, visits, deadline, timeline of events",
    tag="cases",
    returns=m.CaseResult,
    errors=(404,),
)
async def case_detail(request: web.Request) -> web.Response:
    user = await auth.require(request, *STAFF)
    case = common.get(request.app[DB], request.match_info["case_no"])
    _visible(user, case)
    return _case_response(request, case)


@operation(
    "Full ID and phone number for checking at the window (the viewing is logged as "
    "case.identity_viewed)",
    tag="cases",
    returns=m.Identity,
    errors=(404,),
)
async def case_identity(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    app = request.app
    out = intake.view_identity(app[DB], app[PII], request.match_info["case_no"], user, app[CLOCK])
    return web.json_response(out, headers={"Cache-Control": "no-store"})


@operation("Attach a scan of a material (stored by SHA-256 content hash); multipart field "
           "'file' or the raw body with ?name=", tag="cases", ok=201, query=m.MaterialQuery,
           errors=CASE_ERRORS, request_content={
               "multipart/form-data": {"schema": {
                   "type": "object", "required": ["file"],
                   "properties": {"file": {"type": "string", "format": "binary"}}}},
               "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
           })  # fmt: skip
async def upload_material(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    app = request.app
    q = requests.query(request, m.MaterialQuery)
    case_no, code = request.match_info["case_no"], request.match_info["code"]
    common.get(app[DB], case_no)
    if request.content_type == "multipart/form-data":
        try:
            form = await request.post()
        except BadHttpMessage:  # e.g. a control character in the part's file name
            raise Invalid(
                "the multipart part is malformed (a control character in its file name?)",
                field="file",
            ) from None
        field = form.get("file")
        if not isinstance(field, web.FileField):
            raise Invalid("send the file as the multipart field 'file'", field="file")
        content = field.file.read()
        name, ctype = field.filename or "file", field.content_type
    else:
        content = await request.read()
        name = q.name or "file"
        ctype = request.content_type
    row = files.attach_file(
        app[DB], app[CONFIG], case_no, code, content, name, ctype, user, app[CLOCK]
    )
    return web.json_response({"file": row}, status=201)


@operation(
    "Download an attached file",
    tag="cases",
    errors=(404,),
    content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
)
async def download_file(request: web.Request) -> web.StreamResponse:
    user = await auth.require(request, *STAFF)
    app = request.app
    case = common.get(app[DB], request.match_info["case_no"])
    _visible(user, case)
    sha = request.match_info["sha256"]
    row = dbm.one(
        app[DB],
        "SELECT name, content_type FROM case_files WHERE case_id = ? AND "
        "sha256 = ? ORDER BY id DESC LIMIT 1",
        [case["id"], sha],
    )
    path = files.file_path(app[CONFIG], sha)
    if row is None or not path.exists():
        raise NotFound("no such file in this case", field="sha256")
    return web.FileResponse(path, headers=file_headers(row["content_type"], row["name"]))


#: Types an attached scan is shown in the browser as (inline); any other type (HTML, SVG,
#: scripts, whatever was declared at upload) is served as a download of bytes.
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})


def file_headers(declared: str | None, name: str) -> dict[str, str]:
    """Headers of a stored file: a PDF, PNG or JPEG inline as itself, anything else as
    ``application/octet-stream`` to save; never sniffed, never cached."""
    kind = (declared or "").split(";", 1)[0].strip().lower()
    inline = kind in INLINE_TYPES
    return {
        "Content-Type": kind if inline else "application/octet-stream",
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; "
        f"filename*=UTF-8''{_quote(name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }


def _quote(name: str) -> str:

    return quote(name, safe="")


@operation(
    "The latest one-time notice (一次性告知) of missing materials; printable at "
    "/cases/{case_no}/notice",
    tag="cases",
    errors=(404,),
)
async def case_notice(request: web.Request) -> web.Response:
    user = await auth.require(request, *STAFF)
    app = request.app
    case = common.get(app[DB], request.match_info["case_no"])
    _visible(user, case)
    return web.json_response({"notice": notices.notice(app[DB], app[CONFIG], case["case_no"])})


@operation(
    "Materials brought to the window: resumes a paused case (补正), completes a case "
    "waiting for materials, or catches up 容缺 materials",
    tag="cases",
    body=m.SupplementRequest,
    returns=m.CaseResult,
    errors=CASE_ERRORS,
)
async def supplement(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    data = (await requests.body(request, m.SupplementRequest)).data()
    app = request.app
    case = intake.supplement(
        app[DB], app[CONFIG], request.match_info["case_no"], data, user, app[CLOCK]
    )
    app[NOTIFIER].wake()
    return _case_response(request, case)


@operation(
    "The result is ready at the results window (统一出件); the applicant gets an SMS",
    tag="cases",
    returns=m.CaseResult,
    errors=(404, 409),
)
async def result(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    app = request.app
    case = results.result_ready(
        app[DB],
        app[CONFIG],
        request.match_info["case_no"],
        user,
        app[CLOCK],
        base=f"{request.scheme}://{request.host}",
    )
    app[NOTIFIER].wake()
    return _case_response(request, case)


@operation(
    "Hand the result over: picked up (a visit) or mailed",
    tag="cases",
    body=m.HandoverRequest,
    returns=m.CaseResult,
    errors=CASE_ERRORS,
)
async def handover(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    data = (await requests.body(request, m.HandoverRequest)).data()
    app = request.app
    case = results.handover(
        app[DB], app[CONFIG], request.match_info["case_no"], data, user, app[CLOCK]
    )
    app[NOTIFIER].wake()
    return _case_response(request, case)


# -- back office -------------------------------------------------------------------------------


@operation(
    "A department's review decision (parallel; approve all to approve the case, one "
    "reject rejects it, supplement pauses the clock)",
    tag="review",
    body=m.ReviewRequest,
    returns=m.CaseResult,
    errors=CASE_ERRORS,
)
async def review(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "reviewer")
    data = (await requests.body(request, m.ReviewRequest)).data()
    app = request.app
    case = reviewm.decide(
        app[DB],
        app[CONFIG],
        request.match_info["case_no"],
        request.match_info["department"],
        data,
        user,
        app[CLOCK],
    )
    app[NOTIFIER].wake()
    return _case_response(request, case)


@operation(
    "A department's review tasks with deadline status (green/yellow/red), most urgent first",
    tag="review",
    query=m.InboxQuery,
    errors=(404, 422),
)
async def inbox(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin", "reviewer")
    department = request.match_info["department"]
    if user["role"] == "reviewer" and user.get("department") != department:
        raise Forbidden(
            f"reviewer {user['username']} works for department "
            f"{user.get('department')!r}, not {department!r}",
            field="department",
        )
    state = requests.query(request, m.InboxQuery).state
    app = request.app
    rows = queries.inbox(app[DB], app[CONFIG], department, state, app[CLOCK])
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("green", "yellow", "red")}
    return web.json_response({"department": department, "tasks": rows, "counts": counts})


@operation(
    "Counts by deadline status, overdue cases, visits (at most one visit) and ratings", tag="cases"
)
async def overview(request: web.Request) -> web.Response:
    await auth.require(request, *STAFF)
    app = request.app
    return web.json_response(queries.overview(app[DB], app[CONFIG], app[CLOCK]))


# -- ratings and follow-ups ------------------------------------------------------------------


@operation(
    "Rate a finished visit (ticket token) or a case (case_no and rating_token, the code in "
    "the result SMS): 5 非常满意, "
    "4 满意, 3 基本满意, 2 不满意, 1 非常不满意; 1-2 open a follow-up",
    tag="citizen",
    public=True,
    ok=201,
    body=m.RatingRequest,
    errors=(404, 409, 422),
)
async def create_rating(request: web.Request) -> web.Response:
    data = (await requests.body(request, m.RatingRequest)).data()
    app = request.app
    return web.json_response(
        {"rating": ratings.rate(app[DB], app[CONFIG], app[PII], data, app[CLOCK])}, status=201
    )


@operation(
    "Follow-ups of bad ratings with their deadline status",
    tag="ratings",
    query=m.FollowupsQuery,
    returns=m.Followups,
    errors=(422,),
)
async def list_followups(request: web.Request) -> web.Response:
    await auth.require(request, *WINDOW)
    app = request.app
    state = requests.query(request, m.FollowupsQuery).state
    rows = ratings.list_followups(app[DB], app[CONFIG], state, app[CLOCK])
    return web.json_response({"followups": rows})


@operation(
    "Close a follow-up with what was done",
    tag="ratings",
    path=m.IdPath,
    body=m.CloseFollowup,
    returns=m.FollowupResult,
    errors=(404, 409, 422),
)
async def close_followup(request: web.Request) -> web.Response:
    user = await auth.require(request, *WINDOW)
    fid = requests.path(request, m.IdPath).id
    data = await requests.body(request, m.CloseFollowup)
    app = request.app
    f = ratings.close_followup(
        app[DB],
        app[CONFIG],
        fid,
        data.note,
        user,
        app[CLOCK],
    )
    return web.json_response({"followup": f})


# -- citizens: pre-applications, appointments, status ----------------------------------------


@operation(
    "Pre-apply online (网上预审); bring the reference to the window",
    tag="citizen",
    public=True,
    ok=201,
    body=m.PreapplicationRequest,
    errors=(422,),
)
async def create_preapplication(request: web.Request) -> web.Response:
    data = (await requests.body(request, m.PreapplicationRequest)).data()
    app = request.app
    out = preapplications.submit(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    return web.json_response({"preapplication": out}, status=201)


@operation(
    "A pre-application's checklist (no personal data)", tag="citizen", public=True, errors=(404,)
)
async def get_preapplication(request: web.Request) -> web.Response:
    out = preapplications.public(request.app[DB], request.match_info["ref"])
    return web.json_response({"preapplication": out})


@operation(
    "Bookable half-hour slots of a queue on a day with remaining capacity",
    tag="citizen",
    public=True,
    query=m.SlotsQuery,
    errors=(422,),
)
async def appointment_slots(request: web.Request) -> web.Response:
    app = request.app
    q = requests.query(request, m.SlotsQuery)
    day = (q.date or local_date(app[CLOCK](), app[CONFIG].timezone)).isoformat()
    return web.json_response(appointments.slots(app[DB], app[CONFIG], q.queue, day, app[CLOCK]))


@operation(
    "Book an appointment (预约)",
    tag="citizen",
    public=True,
    ok=201,
    body=m.AppointmentRequest,
    returns=m.AppointmentResult,
    errors=(409, 422),
)
async def create_appointment(request: web.Request) -> web.Response:
    data = (await requests.body(request, m.AppointmentRequest)).data()
    app = request.app
    out = appointments.book(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    app[NOTIFIER].wake()
    return web.json_response({"appointment": out}, status=201)


@operation("Appointments of a day (masked)", tag="window", query=m.AppointmentsQuery, errors=(422,))
async def list_appointments(request: web.Request) -> web.Response:
    await auth.require(request, *WINDOW)
    app = request.app
    q = requests.query(request, m.AppointmentsQuery)
    day = (q.date or local_date(app[CLOCK](), app[CONFIG].timezone)).isoformat()
    return web.json_response({"date": day, "appointments": appointments.on_day(app[DB], day)})


@operation(
    "An appointment's state", tag="citizen", public=True, returns=m.AppointmentResult, errors=(404,)
)
async def get_appointment(request: web.Request) -> web.Response:
    out = appointments.public(request.app[DB], request.match_info["ref"])
    return web.json_response({"appointment": out})


@operation(
    "Check in at the kiosk on the day: issues a priority ticket",
    tag="citizen",
    public=True,
    ok=201,
    returns=m.IssuedTicket,
    errors=(404, 409),
)
async def check_in(request: web.Request) -> web.Response:
    app = request.app
    issued = appointments.check_in(
        app[DB], app[CONFIG], app[PII], request.match_info["ref"], app[CLOCK]
    )
    t = issued.ticket
    metrics.ticket_issued(app, t)
    app[BOARD].publish({"type": "queues"})
    return web.json_response(links.issued_answer(app[CONFIG], request, issued), status=201)


@operation(
    "Cancel an appointment",
    tag="citizen",
    public=True,
    returns=m.AppointmentResult,
    errors=(404, 409),
)
async def cancel_appointment(request: web.Request) -> web.Response:
    app = request.app
    out = appointments.cancel(app[DB], request.match_info["ref"], app[CLOCK])
    return web.json_response({"appointment": out})


#: The last four digits of a phone: ASCII digits only (no full-width or Arabic-Indic ones).
LAST4 = re.compile("[0-9]{4}")


def _lookup_status(request: web.Request, case_no: str, last4: str) -> dict[str, Any]:
    app = request.app
    guard = app[STATUS_GUARD]
    guard.check(case_no, request.remote)
    if not LAST4.fullmatch(last4):
        raise Invalid(
            "phone_last4 must be the last 4 digits (0-9) of the applicant's mobile",
            field="phone_last4",
        )
    try:
        return queries.public_status(app[DB], app[CONFIG], case_no, last4, app[CLOCK])
    except NotFound:
        guard.fail(case_no, request.remote)
        raise


@operation(
    "Public case status for the applicant (no personal data); a wrong number or "
    "phone both answer 404",
    tag="citizen",
    public=True,
    query=m.StatusQuery,
    errors=(404, 422, 429),
)
async def case_status(request: web.Request) -> web.Response:
    last4 = requests.query(request, m.StatusQuery).phone_last4
    out = _lookup_status(request, request.match_info["case_no"], last4)
    return web.json_response(out, headers={"Cache-Control": "no-store"})


# -- SMS outbox --------------------------------------------------------------------------------


@operation("The SMS outbox (numbers masked)", tag="admin", query=m.SmsQuery, errors=(422,))
async def list_sms(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    state = requests.query(request, m.SmsQuery).state
    sql = (
        "SELECT * FROM sms_outbox"
        + (" WHERE state = ?" if state else "")
        + " ORDER BY id DESC LIMIT 500"
    )
    rows = dbm.rows(request.app[DB], sql, [state] if state else [])
    return web.json_response({"sms": [notify.public(r) for r in rows]})


@operation("Send queued SMS now through the node's sender", tag="admin", returns=m.SmsSent)
async def send_sms(request: web.Request) -> web.Response:
    await auth.require(request, "admin")
    app = request.app
    counts = notify.send_pending(app[DB], app[PII], app[NOTIFIER].sender, app[CLOCK])
    return web.json_response(counts)


# -- pages (self-contained HTML) -------------------------------------------------------------

_CSS = """body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
max-width:46em;margin:2em auto;padding:0 1em;color:#222;line-height:1.6}
h1{font-size:1.4em;border-bottom:2px solid #b22;padding-bottom:.3em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3em .5em;
text-align:left;vertical-align:top}.muted{color:#666}.crit{color:#b22;font-weight:bold}
form p{margin:.6em 0}input{font-size:1.1em;padding:.2em}
@media print{.noprint{display:none}body{margin:0}}"""


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang") or request.app[CONFIG].default_lang
    return "en" if lang == "en" else "zh"


def _page(title: str, body: str, lang: str, status: int = 200) -> web.Response:
    html = (
        f"<!doctype html><html lang='{'en' if lang == 'en' else 'zh-CN'}'><head>"
        f"<meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main>"
        "</body></html>"
    )
    return web.Response(text=html, content_type="text/html", status=status)


#: Title and status line of the printed notice, by its kind.
NOTICE_TEXTS = {
    "supplement": lazy_gettext("补正材料告知书"),
    "supplement_status": lazy_gettext("审查部门要求补正，办理时限暂停计算，补齐后恢复。"),
    "rongque": lazy_gettext("一次性告知书（容缺受理）"),
    "rongque_status": lazy_gettext("已受理。请于 {date} 前补交下列材料。"),
    "intake": lazy_gettext("一次性告知书"),
    "intake_status": lazy_gettext("材料不全，暂未受理。请一次性补齐下列全部材料后再来办理。"),
}


async def notice_page(request: web.Request) -> web.Response:
    """The printable one-time notice (一次性告知书) or supplement notice (补正材料告知书): an A4
    document in the page's language."""
    user = await auth.require(request, *STAFF)
    app = request.app
    case = common.get(app[DB], request.match_info["case_no"])
    _visible(user, case)
    lang = page_lang(request)[0]
    n = notices.printable(app[DB], app[CONFIG], case["case_no"], lang)
    kind = "supplement" if n["reason"] == "supplement" else "rongque" if n["accepted"] else "intake"
    status = NOTICE_TEXTS[f"{kind}_status"].text(lang, date=n["catch_up_date"] or "")
    follow = "/status?" + urlencode({"case_no": n["case_no"], "lang": lang})
    link = links.public_link(app[CONFIG], request, follow)
    qr = segno.make(link, error="m").svg_inline(scale=3, border=2, omitsize=True) if link else None
    return await render(
        request,
        "cases/notice.html",
        {
            "n": n,
            "title": NOTICE_TEXTS[kind].text(lang),
            "status": status,
            "qr_svg": Markup(qr) if qr else None,
        },
    )


def _status_form(lang: str, case_no: str = "", message: str = "") -> str:
    title = escape(_("办件进度查询", lang))
    number = escape(_("办件编码", lang))
    last4 = escape(_("手机号后四位", lang))
    look_up = escape(pgettext("citizen", "查询", lang))
    return (
        f"<h1>{title}</h1>"
        + (f"<p class='crit'>{escape(message)}</p>" if message else "")
        + "<form method='get' action='/status'>"
        f"<input type='hidden' name='lang' value='{lang}'>"
        f"<p><label>{number}<br>"
        f"<input name='case_no' value='{escape(case_no)}' required "
        "placeholder='370102001-20261129-0007' size='28'></label></p>"
        f"<p><label>{last4}<br>"
        "<input name='phone_last4' inputmode='numeric' pattern='[0-9]{4}' maxlength='4' "
        "required size='6'></label></p>"
        f"<p><button type='submit'>{look_up}</button> "
        f"<a href='?lang={'zh' if lang == 'en' else 'en'}'>"
        f"{'中文' if lang == 'en' else 'English'}</a></p></form>"
    )


async def status_form(request: web.Request) -> web.Response:
    lang = _lang(request)
    case_no = request.query.get("case_no", "").strip()
    if case_no and "phone_last4" in request.query:
        qs = urlencode({"phone_last4": request.query.get("phone_last4", ""), "lang": lang})
        raise web.HTTPSeeOther(f"/status/{_quote(case_no)}?{qs}")
    # Without the phone digits (the printed notice's QR code): the form, number filled in.
    return _page(_("办件进度查询", lang), _status_form(lang, case_no), lang)


async def status_page(request: web.Request) -> web.Response:
    lang = _lang(request)
    case_no = request.match_info["case_no"]
    try:
        s = _lookup_status(request, case_no, request.query.get("phone_last4", "").strip())
    except ApiError as exc:
        msg = _("未找到该办件，请核对办件编码和手机号后四位。", lang)
        if exc.status == 429:
            msg = _("尝试次数过多，请稍后再试。", lang)
        elif exc.status == 422:
            msg = _("请输入手机号后四位数字。", lang)
        return _page(
            _("办件进度查询", lang),
            _status_form(lang, case_no, msg),
            lang,
            exc.status,
        )
    name = s["state_name_en"] if lang == "en" else s["state_name_zh"]
    items = "".join(
        f"<li>{escape(it['name_en'] if lang == 'en' else it['name_zh'])}</li>" for it in s["items"]
    )
    colour = {
        "green": pgettext("deadline", "正常", lang),
        "yellow": _("临近时限", lang),
        "red": _("已超时", lang),
    }.get(s["deadline_status"] or "", "")
    rows = [
        (_("办件编码", lang), escape(s["case_no"])),
        (_("办理状态", lang), escape(name)),
        (
            _("承诺办结日期", lang),
            escape(s["promised_deadline"] or "—") + (f" ({escape(colour)})" if colour else ""),
        ),
    ]
    if s["handover_method"]:
        how = {"pickup": _("窗口领取", lang), "mail": _("邮寄", lang)}[s["handover_method"]]
        rows.append(
            (
                _("送达方式", lang),
                escape(how + (f" {s['tracking']}" if s["tracking"] else "")),
            )
        )
    table = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    gaps = ""
    if s["missing"]:
        li = "".join(
            f"<li>{escape(m['name_en'] if lang == 'en' else m['name_zh'])}</li>"
            for m in s["missing"]
        )
        due_by = escape(pgettext("citizen", "补交期限", lang))
        due = f" ({due_by} {escape(s['catch_up_date'])})" if s["catch_up_date"] else ""
        still_missing = escape(pgettext("citizen", "尚缺材料", lang))
        gaps = f"<h2>{still_missing}{due}</h2><ul>{li}</ul>"
    service_items = escape(_("办理事项", lang))
    another = escape(_("查询其他办件", lang))
    body = (
        f"<h1>{escape(s['center'])}</h1><table>{table}</table>"
        f"<h2>{service_items}</h2><ul>{items}</ul>{gaps}"
        f"<p><a href='/status?lang={lang}'>{another}</a></p>"
    )
    return _page(_("办件进度查询", lang), body, lang)
