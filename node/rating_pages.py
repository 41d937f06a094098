"""Pages of the rating flow (好差评) and the routes of :mod:`node.rating_api`.

- ``/rate/window/{n}``: the window's evaluator (a tablet or the counter's second screen, no
  login, like the display board).  It polls ``GET /api/v1/windows/{n}/rating-prompt`` and
  lights up with the five levels when the clerk finishes a ticket, takes a case in or hands a
  result over at the window.
- ``/rate/t/{token}`` (a visit) and ``/rate/c/{case_no}?code=...`` (a case): where the QR
  codes and the result SMS lead (:func:`node.ratings.rating_path_visit`,
  :func:`node.ratings.rating_path_case`).  Plain forms: they work without scripts.  After a
  bad rating's fix they take the one follow-up rating (追评).
- ``/followups``: the administrators' follow-ups (回访, 整改, appeals) and the export.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from node import auth, rating_api, ratings
from node.keys import CLOCK, CONFIG, DB, PII
from node.views import page_lang, page_messages, render
from onestop.errors import ApiError, Invalid
from onestop.i18n import _


def setup_rating_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/rate/window/{n}", evaluator, name="rate_window")
    r.add_get("/rate/t/{token}", visit_page, name="rate_visit")
    r.add_post("/rate/t/{token}", visit_post)
    r.add_get("/rate/c/{case_no}", case_page, name="rate_case")
    r.add_post("/rate/c/{case_no}", case_post)
    r.add_get("/followups", followups_page, name="followups")
    a = "/api/v1"
    r.add_get(f"{a}/windows/{{n}}/rating-prompt", rating_api.rating_prompt)
    r.add_post(f"{a}/ratings/follow-up", rating_api.rate_again)
    r.add_get(f"{a}/ratings/export", rating_api.export)
    r.add_post(f"{a}/ratings/{{id}}/appeal", rating_api.appeal)
    r.add_post(f"{a}/ratings/{{id}}/appeal/decide", rating_api.decide_appeal)
    r.add_post(f"{a}/followups/{{id}}/callback", rating_api.call_back)


def _levels() -> list[tuple[int, Any]]:
    return [(lv, ratings.LEVELS[lv]) for lv in sorted(ratings.LEVELS, reverse=True)]


# -- the window's evaluator ----------------------------------------------------------------------


async def evaluator(request: web.Request) -> web.Response:
    app = request.app
    try:
        number = int(request.match_info["n"])
    except ValueError:
        raise Invalid("the window's number is a whole number", field="n") from None
    w = ratings.window_by_number(app[DB], number)
    lang = page_lang(request)[0]
    data = {
        "lang": lang,
        "window": {"number": w["number"], "name": w["name"], "clerk": w["clerk"]},
        "levels": [{"level": lv, "name": name.text(lang)} for lv, name in _levels()],
        "reasons": [{"code": c, "name": n.text(lang)} for c, n in ratings.REASONS.items()],
        "bad": list(ratings.BAD_LEVELS),
        "poll_ms": 2000,
        "strings": page_messages(lang, "rate_window.js"),
    }
    return await render(request, "rate_window.html", {"data": data, "window": data["window"]})


# -- landing pages for the QR codes and the SMS link ------------------------------------------


def _form_values(form: Any) -> dict[str, Any]:
    level = str(form.get("level") or "")
    return {
        "level": int(level) if level.isdigit() else None,
        "reason": str(form.get("reason") or "") or None,
        "comment": str(form.get("comment") or ""),
    }


async def _landing(
    request: web.Request,
    *,
    target: dict[str, Any],
    rating: dict[str, Any] | None,
    ready: bool,
    action: str,
    status: int = 200,
    error: ApiError | None = None,
    values: dict[str, Any] | None = None,
    done: str | None = None,
) -> web.Response:
    lang = page_lang(request)[0]
    return await render(
        request,
        "rate.html",
        {
            "target": target,
            "rating": rating,
            "ready": ready,
            "again": bool(rating and rating["follow_up_allowed"]),
            "action": action,
            "levels": _levels(),
            "reasons": ratings.REASONS,
            "followup_states": ratings.FOLLOWUP_STATES,
            "bad_levels": ratings.BAD_LEVELS,
            "error": error.message_in(lang) if error else None,
            "error_field": error.field if error else None,
            "values": values or {},
            "done": done,
        },
        status=status,
    )


async def _visit_target(request: web.Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
    db = request.app[DB]
    t = ratings.find_ticket(db, request.match_info["token"])
    target = {"kind": "visit", "ticket_no": t["ticket_no"], "state": t["state"]}
    return target, ratings.rating_of(db, ticket_id=t["id"])


async def visit_page(request: web.Request) -> web.Response:
    target, rating = await _visit_target(request)
    return await _landing(
        request,
        target=target,
        rating=rating,
        ready=target["state"] == "done",
        action=ratings.rating_path_visit(request.match_info["token"]),
        done=request.query.get("done"),
    )


async def visit_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    form = await request.post()
    values = _form_values(form)
    again = form.get("again") == "1"
    data = {"token": token, "channel": "qr", **{k: v for k, v in values.items() if v}}
    data["level"] = values["level"]
    path = ratings.rating_path_visit(token)
    exc = _submit(request, data, again)
    if exc is not None:
        target, rating = await _visit_target(request)
        return await _landing(
            request, target=target, rating=rating, ready=target["state"] == "done",
            action=path, status=exc.status, error=exc, values=values,
        )  # fmt: skip
    raise web.HTTPSeeOther(path + "?" + urlencode({"done": "again" if again else "1"}))


def _submit(request: web.Request, data: dict[str, Any], again: bool) -> ApiError | None:
    """Rate (or rate again) from a landing page's form; the error to show on the form, if
    any (an unknown ticket or case is the 404 page)."""
    app = request.app
    try:
        if again:
            ratings.rate_again(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
        else:
            ratings.rate(app[DB], app[CONFIG], app[PII], data, app[CLOCK])
    except ApiError as exc:
        if exc.status == 404:
            raise
        return exc
    return None


def _case_target(request: web.Request, code: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    app = request.app
    case = ratings.find_case(app[DB], app[PII], request.match_info["case_no"], code)
    item = ratings._item_name(app[DB], case["items"])
    target = {"kind": "case", "case_no": case["case_no"], "item": item, "state": case["state"]}
    return target, ratings.rating_of(app[DB], case_id=case["id"])


def _case_action(case_no: str, code: str, via: str) -> str:
    path = ratings.rating_path_case(case_no, code)
    return path + ("&via=qr" if via == "qr" else "")


async def case_page(request: web.Request) -> web.Response:
    code = request.query.get("code", "")
    via = request.query.get("via", "sms")
    target, rating = _case_target(request, code)
    return await _landing(
        request,
        target=target,
        rating=rating,
        ready=True,
        action=_case_action(target["case_no"], ratings._given_code(code), via),
        done=request.query.get("done"),
    )


async def case_post(request: web.Request) -> web.Response:
    code = request.query.get("code", "")
    via = "qr" if request.query.get("via") == "qr" else "sms"
    target, _rating = _case_target(request, code)
    form = await request.post()
    values = _form_values(form)
    again = form.get("again") == "1"
    data = {
        "case_no": target["case_no"],
        "rating_token": code,
        "channel": via,
        **{k: v for k, v in values.items() if v},
    }
    data["level"] = values["level"]
    path = _case_action(target["case_no"], ratings._given_code(code), via)
    exc = _submit(request, data, again)
    if exc is not None:
        target, rating = _case_target(request, code)
        return await _landing(
            request, target=target, rating=rating, ready=True, action=path,
            status=exc.status, error=exc, values=values,
        )  # fmt: skip
    raise web.HTTPSeeOther(path + "&" + urlencode({"done": "again" if again else "1"}))


# -- staff: follow-ups -------------------------------------------------------------------------


async def followups_page(request: web.Request) -> web.Response:
    user = await auth.require(request, "admin")
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    state = request.query.get("state") or "open"
    if state not in ("open", "closed", "all"):
        state = "open"
    rows = ratings.list_followups(db, cfg, state, app[CLOCK])
    appeals = [
        ratings.get_rating(db, int(r["id"]))
        for r in db.execute(
            "SELECT id FROM ratings WHERE appeal_state = 'open' ORDER BY appeal_at"
        ).fetchall()
    ]
    lang = page_lang(request)[0]
    return await render(
        request,
        "followups.html",
        {
            "user": user,
            "rows": rows,
            "appeals": appeals,
            "state": state,
            "reasons": ratings.REASONS,
            "stages": ratings.FOLLOWUP_STATES,
            "appeal_states": ratings.APPEAL_STATES,
            "settings": {
                "callback": cfg.followup_callback_workdays,
                "fix": cfg.followup_fix_workdays,
            },
            "export_csv": "/api/v1/ratings/export?" + urlencode({"format": "csv", "lang": lang}),
            "export_json": "/api/v1/ratings/export?format=json",
            "csrf_token": await auth.csrf_token(request),
            "strings": page_messages(lang, "followups.js"),
            "title": _("差评回访整改", lang),
            "quote": quote,
        },
    )
