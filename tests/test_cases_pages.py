"""The case pages (办件): intake, list, inbox, detail and overview, in Chinese and English.

Pages only read; every change goes through the JSON API, so these tests drive the API like the
page scripts do and check what the pages then show.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from node.cases.views import deadline_view, describe
from tests import test_cases_common as common
from tests.test_cases_common import (
    REVIEWER_AGRI,
    SCHOOL_MATERIALS,
    Actor,
    Env,
)

env = common.env
clock = common.clock

PAGES = ["/cases", "/cases/new", "/inbox", "/overview"]


async def page(actor: Actor, path: str, status: int = 200, **params: str) -> str:
    got, html = await actor.get(path, params=params, allow_redirects=False)
    assert got == status, (path, got, str(html)[:500])
    assert isinstance(html, str)
    return html


def page_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert m, "no page data"
    data = json.loads(m.group(1))
    assert isinstance(data, dict)
    return data


async def agri(e: Env) -> Actor:
    a = Actor(e.admin.base)
    e.actors.append(a)
    return await a.login(REVIEWER_AGRI)


def no_external(html: str) -> None:
    assert not re.search(r'(src|href)="(https?:)?//', html)


# --------------------------------------------------------------------------- access


@pytest.mark.parametrize("path", [*PAGES, "/cases/370102001-20260928-0001"])
async def test_pages_need_a_login(env: Env, path: str) -> None:
    got, _ = await env.public.get(path, allow_redirects=False)
    assert got == 302
    got, html = await env.public.get(path)
    assert got == 200 and "工作人员登录" in html


async def test_roles_see_their_pages_only(env: Env) -> None:
    e = env
    # Window staff: no inbox, no overview; the refusal is a page in the center's layout.
    html = await page(e.clerk, "/inbox", 403)
    assert "您的角色（窗口人员）无权使用此页面" in html and 'id="page-error"' in html
    assert "/static/cases.css" in html
    await page(e.clerk, "/overview", 403)
    # Reviewers: no intake, no overview.
    await page(e.edu, "/cases/new", 403)
    html = await page(e.edu, "/overview", 403, lang="en")
    assert "Your role (Reviewer) may not use this page." in html
    # The tabs follow the role.
    clerk_tabs = await page(e.clerk, "/cases")
    assert 'href="/cases/new"' in clerk_tabs and 'href="/inbox"' not in clerk_tabs
    edu_tabs = await page(e.edu, "/cases")
    assert 'href="/inbox"' in edu_tabs and 'href="/cases/new"' not in edu_tabs
    admin_tabs = await page(e.admin, "/cases")
    for href in ("/cases/new", "/inbox", "/overview"):
        assert f'href="{href}"' in admin_tabs
    await page(e.admin, "/cases/370102001-20260928-9999", 404)


# --------------------------------------------------------------------------- intake


async def test_intake_page_in_both_languages(env: Env) -> None:
    e = env
    t = await e.ticket()
    html = await page(e.clerk, "/cases/new", ticket=str(t["id"]))
    assert "<title>窗口收件受理" in html and "Window intake" not in html
    assert '<html lang="zh-CN">' in html
    # The ticket is selected; its item is preselected; the catalog is grouped by department.
    assert re.search(rf'<option value="{t["id"]}" selected[^>]*>{t["ticket_no"]} ', html)
    assert "370102********" in html  # masked ID only
    assert '"preselect": ["370000-edu-001"]' in html
    assert 'data-code="370000-edu-001"' in html and "中外合作办学机构终止" in html
    assert 'class="cat-group" data-dept="edu"' in html
    assert "省教育厅" in html and "省民政厅" in html
    no_external(html)

    html = await page(e.clerk, "/cases/new", ticket=str(t["id"]), lang="en")
    assert '<html lang="en">' in html and "<title>Window intake" in html
    assert "<title>窗口收件受理" not in html
    assert "Termination of a Sino-foreign cooperatively-run educational institution" in html
    strings = page_data(html)["strings"]  # the script's messages, in the page language
    assert strings["材料齐全，提交后即予受理。"].startswith("All materials are in")


async def test_intake_without_ticket_offers_the_called_tickets(env: Env) -> None:
    e = env
    html = await page(e.clerk, "/cases/new")
    assert 'id="no-tickets"' in html
    t = await e.ticket()
    html = await page(e.clerk, "/cases/new")
    assert 'id="no-tickets"' not in html
    # The only ticket called at the clerk's window is chosen for them.
    assert re.search(rf'<option value="{t["id"]}" selected', html)
    # A ticket that is no longer served: the page says so and lets the clerk choose.
    await e.finish()
    html = await page(e.clerk, "/cases/new", ticket=str(t["id"]))
    assert f"号票 {t['ticket_no']} 当前不在窗口办理中" in html
    assert 'id="ticket-warning"' in html


# --------------------------------------------------------------------------- detail


async def test_case_detail_in_both_languages(env: Env) -> None:
    e = env
    case = await e.intake()
    no = case["case_no"]
    html = await page(e.clerk, f"/cases/{no}")
    assert f'id="case-no">{no}<' in html
    assert "已受理，审查中" in html and "并联审查" in html
    assert "省教育厅" in html and "省民政厅" in html
    assert "窗口收件，生成办件" in html and "正式受理，开始计时" in html
    assert "承诺办结 2026-10-16，法定时限 2026-10-30" in html
    assert "剩 10 个工作日" in html and 'data-status="green"' in html
    assert html.count('class="mat-state ms-received"') == len(SCHOOL_MATERIALS)
    # Window staff get window actions, not decision buttons.
    assert 'id="actions-panel"' in html and 'class="decide"' not in html
    no_external(html)

    html = await page(e.clerk, f"/cases/{no}", lang="en")
    assert "Accepted, under review" in html and "Parallel review" in html
    assert "Case opened at the window" in html and "Accepted: the clock starts" in html
    assert "10 working days left" in html
    assert "Shandong Provincial Department of Education" in html


async def test_decision_buttons_only_for_the_reviewers_department(env: Env) -> None:
    e = env
    case = await e.intake()
    no = case["case_no"]
    html = await page(e.edu, f"/cases/{no}")
    assert re.findall(r'<form class="decide" data-department="(\w+)"', html) == ["edu"]
    assert "由省民政厅审核人员作出审查意见" in html
    assert 'id="actions-panel"' not in html
    html = await page(e.civil, f"/cases/{no}")
    assert re.findall(r'<form class="decide" data-department="(\w+)"', html) == ["civil"]
    html = await page(e.admin, f"/cases/{no}")
    assert re.findall(r'<form class="decide" data-department="(\w+)"', html) == ["edu", "civil"]


async def test_reviewer_of_another_department_cannot_decide(env: Env) -> None:
    e = env
    case = await e.intake()
    no = case["case_no"]
    other = await agri(e)
    # The page refuses with a readable message in the page language.
    html = await page(other, f"/cases/{no}", 403)
    assert f"办件 {no} 不在您所在部门（省农业农村厅）的审查范围内。" in html
    html = await page(other, f"/cases/{no}", 403, lang="en")
    assert f"Case {no} is not reviewed by your department" in html
    # The API (what the page script calls) refuses too: 403 for another department ...
    got, body = await other.post(f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    assert got == 403 and "works for department 'agri'" in body["message"]
    got, body = await e.edu.post(f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    assert got == 403 and "not 'civil'" in body["message"]
    # ... and 409 for a decision already taken (a stale page).
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    got, body = await e.edu.post(f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    assert got == 409 and "already decided" in body["message"]
    # The page now shows the decision and no button for edu.
    html = await page(e.edu, f"/cases/{no}")
    assert 'class="decide"' not in html
    assert re.search(r'data-department="edu" data-state="approved"', html)
    assert "省教育厅审查通过" in html
    # The script explains API refusals by status, with messages from the catalog.
    strings = page_data(await page(e.edu, f"/cases/{no}", lang="en"))["strings"]
    assert strings["无权操作"] == "Not allowed"
    assert strings["当前状态不允许此操作"] == "Not possible now"
    strings = page_data(await page(e.edu, f"/cases/{no}", lang="zh"))["strings"]
    assert strings["当前状态不允许此操作"] == "当前状态不允许此操作"


async def test_full_story_on_the_detail_page(env: Env) -> None:
    """Intake with a gap, 补正, reject by one department, result, handover, rating: every
    event of the timeline reads as a sentence in both languages."""
    e = env
    t = await e.ticket()
    case = await e.intake(t, received=SCHOOL_MATERIALS[:-1], commitment=True)
    no = case["case_no"]
    assert case["state"] == "accepted" and case["commitment"] is True
    await e.edu.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/edu",
        {
            "decision": "supplement",
            "reason": "清算报告缺少审计意见",
            "materials": ["liquidation-report"],
        },
    )
    html = await page(e.clerk, f"/cases/{no}")
    assert "要求补正" in html and "补正中，2026-09-28 起暂停计时" in html
    assert 'id="supplement-form"' in html and 'href="/cases/' + no + '/notice"' in html
    await e.clerk.ok(
        "POST",
        f"/api/v1/cases/{no}/supplement",
        {"received": ["liquidation-report", "legal-rep-id"], "ticket_id": t["id"]},
    )
    await e.civil.ok(
        "POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "reject", "reason": "不符合条件"}
    )
    html = await page(e.clerk, f"/cases/{no}")
    assert 'id="btn-result"' in html and "不予许可理由" in html
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    html = await page(e.clerk, f"/cases/{no}")
    assert 'id="handover-form"' in html
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "mail", "tracking": "SF123"}
    )
    await e.public.ok(
        "POST",
        "/api/v1/ratings",
        {"case_no": no, "rating_token": e.rating_code(no), "level": 2, "reason": "process"},
        201,
    )
    await e.flush_sms()
    for lang in ("zh", "en"):
        html = await page(e.admin, f"/cases/{no}", lang=lang)
        titles = re.findall(r'<div class="tl-title">(.*?)</div>', html)
        assert len(titles) > 15
        raw = [x for x in titles if re.match(r"^[a-z_]+\.[a-z_.]+$", x)]
        assert not raw, raw
    assert "结果已邮寄送达（运单号 SF123），办件完结" in await page(
        e.admin, f"/cases/{no}", lang="zh"
    )


def test_deadline_texts() -> None:
    assert deadline_view(None, "zh")["status"] == "none"
    running = {"paused": False, "status": "yellow", "workdays_left": 0, "overdue_workdays": 0}
    assert deadline_view(running, "zh")["text"] == "今日到期"
    late = dict(running, status="red", overdue_workdays=3)
    assert deadline_view(late, "en")["text"] == "3 working days overdue"
    done = {"paused": False, "status": None, "on_time": True}
    assert deadline_view(done, "zh") == {"status": "done", "label": "已审结", "text": "按期"}
    unknown = describe({"kind": "x.y", "body": {}}, "zh", {}, {})
    assert unknown["title"] == "x.y"


# --------------------------------------------------------------------------- inbox, list


async def test_inbox_lists_the_departments_tasks(env: Env) -> None:
    e = env
    case = await e.intake()
    no = case["case_no"]
    html = await page(e.edu, "/inbox")
    assert "审查待办" in html and 'data-department="edu"' in html
    assert f'data-case="{no}" data-status="green"' in html
    assert "中外合作办学机构终止" in html and "主办" in html
    assert 'id="dept-select"' not in html  # reviewers see their own department only
    html = await page(e.civil, "/inbox", lang="en")
    assert f'data-case="{no}"' in html and "Joint" in html and "Review inbox" in html
    assert ">Reviewing</span>" in html
    # Admins choose the department.
    html = await page(e.admin, "/inbox", department="civil")
    assert 'id="dept-select"' in html and f'data-case="{no}"' in html
    assert re.search(r'<option value="civil" selected>省民政厅 \(1\)</option>', html)
    # Decided tasks leave the open list but stay under "all".
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    assert f'data-case="{no}"' not in await page(e.edu, "/inbox")
    html = await page(e.edu, "/inbox", show="all")
    assert f'data-case="{no}" data-status="done"' in html


async def test_case_list_filters(env: Env) -> None:
    e = env
    case = await e.intake()
    no = case["case_no"]
    await e.finish()
    t2 = await e.ticket(queue="dept:civil", item=None)
    pending = await e.intake(t2, received=SCHOOL_MATERIALS[1:])
    assert pending["state"] == "pending_materials"
    html = await page(e.clerk, "/cases")
    assert f'data-case="{no}"' in html and f'data-case="{pending["case_no"]}"' in html
    assert "共 2 件" in html
    html = await page(e.clerk, "/cases", state="pending_materials")
    assert f'data-case="{no}"' not in html and f'data-case="{pending["case_no"]}"' in html
    html = await page(e.clerk, "/cases", q="合作办学", lang="en")
    assert "2 case(s)" in html
    assert ">Under review</span>" in html and ">Waiting for materials</span>" in html
    got, _ = await e.clerk.get("/cases", params={"q": no}, allow_redirects=False)
    assert got == 302
    html = await page(e.admin, "/cases", department="agri")
    assert "没有符合条件的办件" in html
    other = await agri(e)
    html = await page(other, "/cases")
    assert f'data-case="{no}"' not in html


# --------------------------------------------------------------------------- overview


async def test_overview_in_both_languages(env: Env) -> None:
    e = env
    t = await e.ticket()
    case = await e.intake(t)
    no = case["case_no"]
    for dept, actor in (("edu", e.edu), ("civil", e.civil)):
        await actor.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "pickup", "ticket_id": t["id"]}
    )
    await e.finish()
    await e.public.ok(
        "POST",
        "/api/v1/ratings",
        {"token": t["token"], "level": 1, "comment": "等太久", "reason": "efficiency"},
        201,
    )
    t2 = await e.ticket()
    await e.intake(t2)
    html = await page(e.admin, "/overview")
    assert "办件总览" in html
    assert re.search(r'id="ov-total">2<', html) and re.search(r'id="ov-open">1<', html)
    assert 'id="ov-one-visit">100.0<small>%' in html
    assert "等太久" in html and 'class="followup-close" data-id="1"' in html
    assert "没有超期办件" in html
    # Far past the promised date the open case is overdue.
    e.clock.set(common.local(2026, 11, 20))
    html = await page(e.admin, "/overview", lang="en")
    assert "Case overview" in html and "past the statutory limit" in html
    assert re.search(r'id="ov-red">1<', html)
    assert "working days overdue" in html
