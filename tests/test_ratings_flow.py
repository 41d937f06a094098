"""Ratings a citizen can give (GB/T 39734-2020: 一次一评, 一事一评): the window evaluator's
prompt, the QR and SMS landing pages, reasons of bad ratings, the call back and the fix in
working days, the clerk's appeal, the one follow-up rating (追评) and the export.

The clock is pinned (Monday 28 September 2026, just before the National Day holiday), every
node is fresh, and the ``env`` fixture checks every event against its schema.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from typing import Any

from node import ratings
from node.notify import NOTIFIER
from tests import test_cases_common as common
from tests.conftest import CLERK2
from tests.test_cases_common import SCHOOL_ITEM, SCHOOL_MATERIALS, Actor, Env, local, make_env

env = common.env
clock = common.clock


async def prompt_of(e: Env, n: int = 1) -> Any:
    return (await e.public.ok("GET", f"/api/v1/windows/{n}/rating-prompt"))["prompt"]


async def finished_visit(e: Env) -> dict[str, Any]:
    t = await e.ticket(item=None)
    await e.finish()
    return t


async def bad_visit(e: Env, level: int = 2, reason: str = "attitude") -> dict[str, Any]:
    t = await finished_visit(e)
    r = await e.public.ok(
        "POST", "/api/v1/ratings", {"token": t["token"], "level": level, "reason": reason}, 201
    )
    return dict(r["rating"], token=t["token"])


async def clerk2(e: Env) -> Actor:
    a = Actor(e.clerk.base)
    e.actors.append(a)
    return await a.login(CLERK2)


# --------------------------------------------------------------------------- helpers


def test_rating_paths_for_the_printed_qr_codes_and_notices() -> None:
    assert ratings.rating_path_visit("abc_DEF-1") == "/rate/t/abc_DEF-1"
    assert ratings.rating_path_visit("a/b") == "/rate/t/a%2Fb"
    path = ratings.rating_path_case("370102001-20260928-0001", "K7QM2ZP4XWHD")
    assert path == "/rate/c/370102001-20260928-0001?code=K7QM-2ZP4-XWHD"


# --------------------------------------------------------------------------- the evaluator


async def test_the_evaluator_lights_up_when_a_ticket_is_finished_and_only_then(env: Env) -> None:
    e = env
    w = await e.public.ok("GET", "/api/v1/windows/1/rating-prompt")
    assert w["prompt"] is None and w["window"]["number"] == 1 and w["window"]["clerk"] == "clerk1"
    t = await e.ticket(item=None)
    assert await prompt_of(e) is None  # still being served
    await e.finish()
    p = await prompt_of(e)
    assert p["kind"] == "visit" and p["token"] == t["token"] and p["ticket_no"] == t["ticket_no"]
    assert await prompt_of(e, 2) is None  # another window's evaluator stays idle
    r = await e.public.ok(
        "POST", "/api/v1/ratings", {"token": p["token"], "level": 5, "channel": "window"}, 201
    )
    got = r["rating"]
    assert (got["channel"], got["clerk"], got["window_no"], got["reason"]) == (
        "window", "clerk1", 1, None
    )  # fmt: skip
    assert await prompt_of(e) is None  # rated: never offered again


async def test_a_prompt_expires_and_ends_with_the_next_call(env: Env) -> None:
    e = env
    await finished_visit(e)
    e.clock.advance(seconds=ratings.PROMPT_SECONDS - 5)
    assert await prompt_of(e) is not None
    e.clock.advance(seconds=10)
    assert await prompt_of(e) is None  # expired
    await finished_visit(e)
    assert await prompt_of(e) is not None
    await e.public.ok(
        "POST", "/api/v1/tickets", {"queue": "dept:edu", "id_number": common.make_id(),
                                    "phone": common.PHONE}, 201,
    )  # fmt: skip
    await e.clerk.ok("POST", "/api/v1/windows/1/call-next")
    assert await prompt_of(e) is None  # the next citizen is at the window


async def test_the_evaluator_offers_the_case_at_acceptance_once(env: Env) -> None:
    e = env
    t = await e.ticket()
    case = await e.intake(t)
    p = await prompt_of(e)
    assert p["kind"] == "case" and p["case_no"] == case["case_no"]
    assert p["rating_code"] == e.rating_code(case["case_no"])
    assert p["item"]["code"] == SCHOOL_ITEM
    await e.public.ok(
        "POST", "/api/v1/ratings",
        {"case_no": p["case_no"], "rating_token": p["rating_code"], "level": 4,
         "channel": "window"}, 201,
    )  # fmt: skip
    await e.finish()
    assert await prompt_of(e) is None  # the visit was for the case, which is rated


async def test_the_evaluator_checks_its_window(env: Env) -> None:
    e = env
    got, err = await e.public.get("/api/v1/windows/99/rating-prompt")
    assert got == 404 and err["field"] == "n"
    got, err = await e.public.get("/api/v1/windows/abc/rating-prompt")
    assert got == 422 and err["field"] == "n"
    r = await e.public.session.get(e.public.base + "/rate/window/1")
    html = await r.text()
    assert r.status == 200 and "综合窗口" in html and "非常满意" in html and "非常不满意" in html
    assert '<script src="http' not in html and "fonts.googleapis" not in html
    r = await e.public.session.get(e.public.base + "/rate/window/99")
    assert r.status == 404


# --------------------------------------------------------------------------- bad ratings


async def test_a_bad_rating_names_its_reason(env: Env) -> None:
    e = env
    t = await finished_visit(e)
    for body, field in (
        ({"level": 2}, "reason"),
        ({"level": 1, "reason": ""}, "reason"),
        ({"level": 1, "reason": "rude"}, "reason"),
        ({"level": 5, "channel": "fax"}, "channel"),
    ):
        got, err = await e.public.post("/api/v1/ratings", {"token": t["token"], **body})
        assert got == 422 and err["field"] == field, (body, err)
    got, err = await e.public.post("/api/v1/ratings?lang=zh", {"token": t["token"], "level": 2})
    assert err["message"] == "请选择不满意的原因"
    assert e.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0
    r = await e.public.ok(
        "POST", "/api/v1/ratings",
        {"token": t["token"], "level": 1, "reason": "efficiency", "comment": "回电13812345678"},
        201,
    )  # fmt: skip
    assert r["rating"]["reason"] == "efficiency" and r["rating"]["comment"] == "回电138****5678"
    assert r["rating"]["channel"] == "qr"  # a visit's default


async def test_call_back_and_fix_are_due_in_working_days(env: Env) -> None:
    e = env
    r = await bad_visit(e)
    f = r["followup"]
    # Rated Monday 28 Sep: called back by Tuesday 29 Sep (1 working day), fixed within 5:
    # 29, 30 Sep, then 8, 9 Oct after the National Day holiday and Saturday 10 Oct, a
    # make-up working day.
    assert (f["callback_due"], f["due_date"], f["stage"]) == ("2026-09-29", "2026-10-10", "open")
    e.clock.set(local(2026, 9, 30))
    [row] = (await e.admin.ok("GET", "/api/v1/followups"))["followups"]
    assert row["callback_overdue"] and not row["overdue"]
    got, err = await e.admin.post(f"/api/v1/followups/{f['id']}/callback", {"note": ""})
    assert got == 422 and err["field"] == "note"
    assert (await e.clerk.post(f"/api/v1/followups/{f['id']}/callback", {"note": "x"}))[0] == 403
    assert (await e.admin.post("/api/v1/followups/999/callback", {"note": "x"}))[0] == 404
    done = await e.admin.ok(
        "POST", f"/api/v1/followups/{f['id']}/callback", {"note": "已致电致歉 13812345678"}
    )
    assert done["followup"]["stage"] == "called_back" and not done["followup"]["callback_overdue"]
    assert done["followup"]["callback_note"] == "已致电致歉 138****5678"
    got, err = await e.admin.post(f"/api/v1/followups/{f['id']}/callback", {"note": "again"})
    assert got == 409
    ev = e.db.execute("SELECT body FROM events WHERE kind = 'followup.called_back'").fetchone()[0]
    assert json.loads(ev)["on_time"] is False  # a day late
    e.clock.set(local(2026, 10, 12))
    [row] = (await e.admin.ok("GET", "/api/v1/followups"))["followups"]
    assert row["overdue"] and row["status"] == "red"
    fixed = await e.admin.ok("POST", f"/api/v1/followups/{f['id']}/close", {"note": "已培训"})
    assert fixed["followup"]["stage"] == "closed" and fixed["followup"]["on_time"] is False
    assert (await e.admin.post(f"/api/v1/followups/{f['id']}/callback", {"note": "x"}))[0] == 409


async def test_the_deadlines_are_settings(
    aiohttp_client: Any, node_config: Any, clock: Any
) -> None:
    cfg = dataclasses.replace(node_config, followup_callback_workdays=2, followup_fix_workdays=3)
    e = await make_env(aiohttp_client, cfg, clock)
    try:
        f = (await bad_visit(e))["followup"]
        assert (f["callback_due"], f["due_date"]) == ("2026-09-30", "2026-10-08")
        common.check_events(e.db)
    finally:
        for a in e.actors:
            await a.session.close()


# --------------------------------------------------------------------------- appeals


async def test_the_rated_clerk_appeals_and_an_administrator_decides(env: Env) -> None:
    e = env
    good = (await e.public.ok(
        "POST", "/api/v1/ratings", {"token": (await finished_visit(e))["token"], "level": 5}, 201
    ))["rating"]  # fmt: skip
    bad = await bad_visit(e, 1, "attitude")
    kept = await bad_visit(e, 2, "process")
    ov = (await e.admin.ok("GET", "/api/v1/overview"))["ratings"]
    assert (ov["total"], ov["bad"], ov["excluded"]) == (3, 2, 0)

    other = await clerk2(e)
    path = f"/api/v1/ratings/{bad['id']}/appeal"
    assert (await other.post(path, {"reason": "不是我办的"}))[0] == 403  # not the rated clerk
    assert (await e.admin.post(path, {"reason": "x"}))[0] == 403  # window staff only
    got, err = await e.clerk.post(path, {"reason": ""})
    assert got == 422 and err["field"] == "reason"
    got, err = await e.clerk.post(f"/api/v1/ratings/{good['id']}/appeal", {"reason": "x"})
    assert got == 409  # only bad ratings
    assert (await e.clerk.post("/api/v1/ratings/999/appeal", {"reason": "x"}))[0] == 404
    r = await e.clerk.ok("POST", path, {"reason": "群众误触，监控可证"})
    assert r["rating"]["appeal_state"] == "open" and r["rating"]["counts_in_figures"]
    assert (await e.clerk.post(path, {"reason": "again"}))[0] == 409
    await e.clerk.ok("POST", f"/api/v1/ratings/{kept['id']}/appeal", {"reason": "流程规定"})

    decide = f"/api/v1/ratings/{bad['id']}/appeal/decide"
    assert (await e.clerk.post(decide, {"decision": "upheld", "note": "x"}))[0] == 403
    got, err = await e.admin.post(decide, {"decision": "maybe", "note": "x"})
    assert got == 422 and err["field"] == "decision"
    got, err = await e.admin.post(decide, {"decision": "upheld"})
    assert got == 422 and err["field"] == "note"
    r = await e.admin.ok("POST", decide, {"decision": "upheld", "note": "监控核实为误触"})
    assert r["rating"]["appeal_state"] == "upheld" and not r["rating"]["counts_in_figures"]
    assert (await e.admin.post(decide, {"decision": "rejected", "note": "x"}))[0] == 409
    r = await e.admin.ok(
        "POST", f"/api/v1/ratings/{kept['id']}/appeal/decide",
        {"decision": "rejected", "note": "评价属实"},
    )  # fmt: skip
    assert r["rating"]["appeal_state"] == "rejected" and r["rating"]["counts_in_figures"]
    ov = (await e.admin.ok("GET", "/api/v1/overview"))["ratings"]
    assert (ov["total"], ov["bad"], ov["excluded"]) == (2, 1, 1)
    assert ov["by_level"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert ov["average"] == 3.5


# --------------------------------------------------------------------------- 追评


async def test_one_follow_up_rating_after_the_fix(env: Env) -> None:
    e = env
    r = await bad_visit(e)
    body = {"token": r["token"], "level": 4, "comment": "已改进"}
    got, err = await e.public.post("/api/v1/ratings/follow-up", body)
    assert got == 409 and err["field"] == "followup"  # nothing fixed yet
    await e.admin.ok(
        "POST", f"/api/v1/followups/{r['followup']['id']}/callback", {"note": "已回访"}
    )
    got, err = await e.public.post("/api/v1/ratings/follow-up", body)
    assert got == 409 and err["field"] == "followup"  # called back, not fixed
    await e.admin.ok("POST", f"/api/v1/followups/{r['followup']['id']}/close", {"note": "已整改"})
    got, err = await e.public.post("/api/v1/ratings/follow-up", {**body, "level": 9})
    assert got == 422 and err["field"] == "level"
    assert (await e.public.post("/api/v1/ratings/follow-up", {**body, "token": "nope"}))[0] == 404
    again = await e.public.ok("POST", "/api/v1/ratings/follow-up", body, 201)
    assert again["rating"]["again_level"] == 4 and again["rating"]["level"] == 2
    got, err = await e.public.post("/api/v1/ratings/follow-up", body)
    assert got == 409 and "already" in err["message"]
    ov = (await e.admin.ok("GET", "/api/v1/overview"))["ratings"]
    assert ov["by_level"]["2"] == 1 and ov["by_level"]["4"] == 0  # 追评 changes no figure
    # A good rating has no follow-up to rate again.
    t = await finished_visit(e)
    await e.public.ok("POST", "/api/v1/ratings", {"token": t["token"], "level": 5}, 201)
    got, _ = await e.public.post("/api/v1/ratings/follow-up", {"token": t["token"], "level": 5})
    assert got == 409


# --------------------------------------------------------------------------- export


async def rated_case(e: Env) -> str:
    t = await e.ticket()
    no = str((await e.intake(t))["case_no"])
    await e.finish()
    e.clock.advance(hours=2)
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.public.ok(
        "POST", "/api/v1/ratings",
        {"case_no": no, "rating_token": e.rating_code(no), "level": 2, "reason": "materials"},
        201,
    )  # fmt: skip
    return no


async def test_export_has_the_national_platforms_fields(env: Env) -> None:
    e = env
    no = await rated_case(e)
    e.clock.set(local(2026, 9, 29, 16, 0))
    await bad_visit(e, 1, "system")
    got = await e.admin.ok("GET", "/api/v1/ratings/export?format=json")
    assert got["fields"] == list(ratings.EXPORT_FIELDS)
    case_row, visit_row = got["ratings"]
    assert case_row["item_code"] == SCHOOL_ITEM and case_row["case_no"] == no
    assert case_row["department"] == "edu" and case_row["clerk"] == "clerk1"
    assert case_row["applied_at"] == "2026-09-28T09:30:00+08:00"
    assert case_row["completed_at"] == "2026-09-28T11:30:00+08:00"  # decided
    assert (case_row["level"], case_row["channel"], case_row["reason"]) == (2, "sms", "materials")
    assert case_row["followup_state"] == "open"
    assert visit_row["rated_at"] == "2026-09-29T16:00:00+08:00"
    assert visit_row["channel"] == "qr" and visit_row["reason"] == "system"
    assert visit_row["department"] == "edu" and visit_row["window"] == 1
    # A range of local days.
    got = await e.admin.ok(
        "GET", "/api/v1/ratings/export?format=json&from=2026-09-29&to=2026-09-29"
    )
    assert [r["ticket_no"] for r in got["ratings"]] == [visit_row["ticket_no"]]
    for query, field in (("from=2026-09-30&to=2026-09-29", "from"), ("from=yesterday", "from"),
                         ("to=2026-13-01", "to"), ("format=xls", "format")):  # fmt: skip
        status, err = await e.admin.get(f"/api/v1/ratings/export?{query}")
        assert status == 422 and err["field"] == field, (query, err)
    assert (await e.clerk.get("/api/v1/ratings/export"))[0] == 403
    assert (await e.public.get("/api/v1/ratings/export"))[0] == 401

    r = await e.admin.session.get(e.admin.base + "/api/v1/ratings/export?format=csv")
    raw = await r.read()
    assert r.status == 200 and r.content_type == "text/csv"
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM: Excel opens it right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["评价编号", "事项实施编码", "办件编号"]
    assert len(rows) == 3 and rows[1][1] == SCHOOL_ITEM and rows[1][2] == no
    assert "2026-09-28T09:30:00+08:00" in rows[1]
    r = await e.admin.session.get(e.admin.base + "/api/v1/ratings/export?format=csv&lang=en")
    head = (await r.read()).decode("utf-8-sig").splitlines()[0]
    assert head.startswith("Rating no.,Item implementation code,Case no.")
    page = await (await e.admin.session.get(e.admin.base + "/followups")).text()
    assert (
        "/api/v1/ratings/export?format=csv" in page and "/api/v1/ratings/export?format=json" in page
    )


# --------------------------------------------------------------------------- landing pages


async def form_post(a: Actor, path: str, data: dict[str, str]) -> tuple[int, str, str]:
    r = await a.session.post(a.base + path, data=data, allow_redirects=False)
    return r.status, r.headers.get("Location", ""), await r.text()


async def test_the_qr_landing_page_rates_a_visit_without_scripts(env: Env) -> None:
    e = env
    t = await e.ticket(item=None)
    page = f"/rate/t/{t['token']}"
    html = await (await e.public.session.get(e.public.base + page)).text()
    assert "业务办理结束后即可评价" in html and "<form" not in html
    status = await (await e.public.session.get(e.public.base + f"/s/{t['token']}")).text()
    assert "/rate/t/" not in status
    await e.finish()
    status = await (await e.public.session.get(e.public.base + f"/s/{t['token']}")).text()
    assert f'href="/rate/t/{t["token"]}"' in status and "<svg" in status
    assert 'http-equiv="refresh"' not in status
    html = await (await e.public.session.get(e.public.base + page)).text()
    assert '<form class="rate-form" method="post"' in html and "服务态度" in html
    got, _, html = await form_post(e.public, page, {"level": "2", "comment": "太慢"})
    assert got == 422 and "请选择不满意的原因" in html and "太慢" in html
    got, _, html = await form_post(e.public, page, {"comment": "x"})
    assert got == 422
    got, where, _ = await form_post(e.public, page, {"level": "2", "reason": "efficiency"})
    assert got == 303 and where == page + "?done=1"
    html = await (await e.public.session.get(e.public.base + where)).text()
    assert "感谢您的评价" in html and "您已评价：不满意" in html and "<form" not in html
    row = e.db.execute("SELECT level, reason, channel FROM ratings").fetchone()
    assert tuple(row) == (2, "efficiency", "qr")
    got, _, html = await form_post(e.public, page, {"level": "5"})
    assert got == 409  # 一次一评
    # After the fix the same page takes the one follow-up rating.
    f = e.db.execute("SELECT id FROM followups").fetchone()[0]
    await e.admin.ok("POST", f"/api/v1/followups/{f}/close", {"note": "已整改"})
    html = await (await e.public.session.get(e.public.base + page)).text()
    assert 'name="again" value="1"' in html
    got, where, _ = await form_post(e.public, page, {"level": "4", "again": "1"})
    assert got == 303 and where.endswith("done=again")
    assert e.db.execute("SELECT again_level FROM ratings").fetchone()[0] == 4
    assert (await e.public.session.get(e.public.base + "/rate/t/nope")).status == 404


async def test_the_sms_link_rates_the_case(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = str((await e.intake(t))["case_no"])
    await e.finish()
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    sms = (await e.admin.ok("GET", "/api/v1/sms"))["sms"]
    text = next(m["text"] for m in sms if m["template"] == "result_ready")
    code = e.rating_code(no)
    link = re.search(r"https?://\S+", text)
    assert link, text
    assert link.group().endswith(f"/rate/c/{no}?code={code}")
    assert link.group().startswith(e.public.base)  # no public_url: the request's address
    path = link.group()[len(e.public.base) :]
    html = await (await e.public.session.get(e.public.base + path)).text()
    assert no in html and "<form" in html
    wrong = await e.public.session.get(e.public.base + f"/rate/c/{no}?code=AAAA-AAAA-AAAA")
    assert wrong.status == 404
    got, where, _ = await form_post(e.public, path, {"level": "5"})
    assert got == 303 and where == path + "&done=1"
    assert e.db.execute("SELECT channel FROM ratings").fetchone()[0] == "sms"


async def test_the_sms_link_is_under_public_url(
    aiohttp_client: Any, node_config: Any, clock: Any
) -> None:
    cfg = dataclasses.replace(node_config, public_url="https://zwfw.example.gov.cn/jfl")
    e = await make_env(aiohttp_client, cfg, clock)
    try:
        t = await e.ticket()
        no = str((await e.intake(t, received=SCHOOL_MATERIALS))["case_no"])
        await e.finish()
        for dept, a in (("edu", e.edu), ("civil", e.civil)):
            await a.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", {"decision": "approve"})
        await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
        assert e.client.app[NOTIFIER].auto is False
        sms = (await e.admin.ok("GET", "/api/v1/sms"))["sms"]
        text = next(m["text"] for m in sms if m["template"] == "result_ready")
        want = f"https://zwfw.example.gov.cn/jfl/rate/c/{no}?code={e.rating_code(no)}"
        assert want in text, text
    finally:
        for a in e.actors:
            await a.session.close()


async def test_a_cases_timeline_tells_its_rating_story(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = str((await e.intake(t))["case_no"])
    await e.finish()
    code = e.rating_code(no)
    r = await e.public.ok(
        "POST", "/api/v1/ratings",
        {"case_no": no, "rating_token": code, "level": 1, "reason": "information"}, 201,
    )  # fmt: skip
    rid, fid = r["rating"]["id"], r["rating"]["followup"]["id"]
    await e.admin.ok("POST", f"/api/v1/followups/{fid}/callback", {"note": "已电话说明"})
    await e.admin.ok("POST", f"/api/v1/followups/{fid}/close", {"note": "已更新办事指南"})
    await e.clerk.ok("POST", f"/api/v1/ratings/{rid}/appeal", {"reason": "已一次性告知"})
    await e.admin.ok(
        "POST", f"/api/v1/ratings/{rid}/appeal/decide", {"decision": "upheld", "note": "属实"}
    )
    await e.public.ok(
        "POST", "/api/v1/ratings/follow-up",
        {"case_no": no, "rating_token": code, "level": 5}, 201,
    )  # fmt: skip
    html = await (await e.clerk.session.get(e.clerk.base + f"/cases/{no}?lang=zh")).text()
    for text in (
        "信息公开/告知",
        "差评已回访",
        "工作人员申诉复核",
        "申诉成立",
        "申请人追评：非常满意",
    ):
        assert text in html, text
    html = await (await e.clerk.session.get(e.clerk.base + f"/cases/{no}?lang=en")).text()
    assert ">rating.appealed<" not in html and "Appeal upheld" in html


async def test_the_evaluator_offers_the_case_at_its_handover(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = str((await e.intake(t))["case_no"])
    e.clock.advance(seconds=ratings.PROMPT_SECONDS + 1)
    await e.finish()  # rated by nobody; the prompt of the intake has expired meanwhile
    e.clock.advance(seconds=ratings.PROMPT_SECONDS + 1)
    assert await prompt_of(e) is None
    for dept, a in (("edu", e.edu), ("civil", e.civil)):
        await a.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    t2 = await e.ticket(item=None)
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"channel": "window", "ticket_id": t2["id"]}
    )
    p = await prompt_of(e)
    assert p["kind"] == "case" and p["case_no"] == no  # 办结: the result picked up
