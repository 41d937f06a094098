"""JSON API of the rating flow (好差评): the window evaluator's prompt, the follow-up rating
(追评), the call back (回访), the clerk's appeal and its decision (申诉复核), and the export
for the national platform.  Rating itself is ``POST /api/v1/ratings`` (:mod:`node.cases.api`).

Routes are set by :func:`node.rating_pages.setup_rating_routes`; each handler's
``@operation`` describes it for the OpenAPI document.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from aiohttp import web

from node import auth, ratings
from node import models as m
from node.keys import CLOCK, CONFIG, DB, PII
from onestop import requests
from onestop.i18n import lazy_gettext
from onestop.openapi import operation

ADMIN = ("admin",)

#: Column headers of the CSV export (the JSON export uses the field names).
EXPORT_HEADERS = {
    "rating_id": lazy_gettext("评价编号"),
    "item_code": lazy_gettext("事项实施编码"),
    "case_no": lazy_gettext("办件编号"),
    "ticket_no": lazy_gettext("排队号"),
    "department": lazy_gettext("部门"),
    "clerk": lazy_gettext("工作人员工号"),
    "window": lazy_gettext("窗口号"),
    "applied_at": lazy_gettext("申请时间"),
    "completed_at": lazy_gettext("办结时间"),
    "rated_at": lazy_gettext("评价时间"),
    "level": lazy_gettext("评价等级"),
    "level_name": lazy_gettext("评价等级名称"),
    "channel": lazy_gettext("评价渠道"),
    "reason": lazy_gettext("差评原因"),
    "comment": lazy_gettext("评价内容"),
    "followup_state": lazy_gettext("整改状态"),
    "appeal_state": lazy_gettext("申诉状态"),
    "counts_in_figures": lazy_gettext("计入统计"),
    "again_level": lazy_gettext("追评等级"),
}


@operation(
    "What the window's evaluator offers for rating now: a visit (ticket token) or a case "
    "(number and rating code) just served at the window, or null",
    tag="citizen",
    public=True,
    path=m.WindowNumberPath,
    returns=m.RatingPrompt,
    errors=(404, 422),
)
async def rating_prompt(request: web.Request) -> web.Response:
    n = requests.path(request, m.WindowNumberPath).n
    app = request.app
    out = ratings.prompt(app[DB], app[CONFIG], app[PII], n, app[CLOCK])
    w = out["window"]
    body = {"window": {k: w[k] for k in ("number", "name", "clerk")}, "prompt": out["prompt"]}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@operation(
    "The one follow-up rating (追评) of a bad rating after its fix, with the same ticket token "
    "or case number and rating code",
    tag="citizen",
    public=True,
    ok=201,
    body=m.RatingRequest,
    returns=m.RatingResult,
    errors=(404, 409, 422),
)
async def rate_again(request: web.Request) -> web.Response:
    data = (await requests.body(request, m.RatingRequest)).data()
    app = request.app
    out = ratings.rate_again(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    return web.json_response({"rating": out}, status=201)


@operation(
    "Record the call back (回访) of a follow-up",
    tag="ratings",
    path=m.IdPath,
    body=m.NoteRequest,
    returns=m.FollowupResult,
    errors=(404, 409, 422),
)
async def call_back(request: web.Request) -> web.Response:
    user = await auth.require(request, *ADMIN)
    fid = requests.path(request, m.IdPath).id
    data = await requests.body(request, m.NoteRequest)
    app = request.app
    f = ratings.call_back(app[DB], app[CONFIG], fid, data.note, user, app[CLOCK])
    return web.json_response({"followup": f})


@operation(
    "The rated clerk appeals a bad rating (申诉复核)",
    tag="ratings",
    path=m.RatingIdPath,
    body=m.AppealRequest,
    returns=m.RatingResult,
    errors=(404, 409, 422),
)
async def appeal(request: web.Request) -> web.Response:
    user = await auth.require(request, "window")
    rid = requests.path(request, m.RatingIdPath).id
    data = await requests.body(request, m.AppealRequest)
    app = request.app
    return web.json_response(
        {"rating": ratings.appeal(app[DB], rid, data.reason, user, app[CLOCK])}
    )


@operation(
    "Decide a clerk's appeal: upheld takes the rating out of the figures, rejected keeps it",
    tag="ratings",
    path=m.RatingIdPath,
    body=m.AppealDecisionRequest,
    returns=m.RatingResult,
    errors=(404, 409, 422),
)
async def decide_appeal(request: web.Request) -> web.Response:
    user = await auth.require(request, *ADMIN)
    rid = requests.path(request, m.RatingIdPath).id
    data = await requests.body(request, m.AppealDecisionRequest)
    app = request.app
    out = ratings.decide_appeal(app[DB], rid, data.decision, data.note, user, app[CLOCK])
    return web.json_response({"rating": out})


def export_csv(rows: list[dict[str, Any]], lang: str) -> bytes:
    """The export as CSV: UTF-8 with a byte order mark (Excel), headers in ``lang``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([EXPORT_HEADERS[f].text(lang) for f in ratings.EXPORT_FIELDS])
    for r in rows:
        w.writerow(["" if r[f] is None else _cell(r[f]) for f in ratings.EXPORT_FIELDS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    # A cell Excel would run as a formula starts with a quote instead.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text


@operation(
    "Ratings for the national 好差评 platform: item code, case, department, clerk, times "
    "(local, +08:00), level, channel, reason, follow-up and appeal state (format csv or json)",
    tag="ratings",
    query=m.ExportQuery,
    content={
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
    errors=(422,),
)
async def export(request: web.Request) -> web.Response:
    await auth.require(request, *ADMIN)
    q = requests.query(request, m.ExportQuery)
    app = request.app
    rows = ratings.export_rows(app[DB], app[CONFIG], q.from_, q.to)
    span = f"{q.from_ or 'start'}-{q.to or 'now'}"
    name = f"ratings-{app[CONFIG].code}-{span}"
    headers = {"Cache-Control": "no-store"}
    if q.format == "json":
        headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return web.Response(
            text=json.dumps(
                {"fields": list(ratings.EXPORT_FIELDS), "ratings": rows}, ensure_ascii=False
            ),
            content_type="application/json",
            headers=headers,
        )
    lang = "zh" if requests_lang(request) == "zh" else "en"
    headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return web.Response(
        body=export_csv(rows, lang), content_type="text/csv", charset="utf-8", headers=headers
    )


def requests_lang(request: web.Request) -> str:
    """Headers in Chinese unless the client asked for English (``?lang=en``, the cookie)."""
    lang = request.query.get("lang") or request.cookies.get("lang") or ""
    return "en" if lang == "en" else "zh"
