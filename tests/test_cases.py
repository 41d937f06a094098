"""Cases end to end through the real HTTP API: intake, parallel review, supplement (补正),
deadlines, results at one window, visits, invalid transitions, 容缺受理.

Every test's event log is checked against schemas/events by the ``env`` fixture.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from node.cases.common import CASE_NO_RE
from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import (
    SCHOOL_ITEM,
    SCHOOL_MATERIALS,
    Env,
    check_events,
    local,
    snapshot,
)

CASE_NO = re.compile(r"^370102001-(\d{8})-(\d{4})$")

# Fixtures shared by the case tests.
env = common.env
clock = common.clock


def kinds_of(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["timeline"]]


async def get_case(e: Env, case_no: str) -> dict[str, Any]:
    return dict((await e.admin.ok("GET", f"/api/v1/cases/{case_no}"))["case"])


async def refused(
    e: Env, actor: Any, path: str, body: Any, status: int = 409, needle: str = ""
) -> dict[str, Any]:
    """POST that must be refused with ``status`` and change nothing at all."""
    before = snapshot(e.db)
    got, data = await actor.post(path, body)
    assert got == status, (path, got, data)
    assert data["ok"] is False and data["status"] == status
    assert needle in data["message"], data
    assert snapshot(e.db) == before, f"{path} changed the database"
    return dict(data)


# --------------------------------------------------------------------------- the seed example


@pytest.mark.parametrize("order", [("edu", "civil"), ("civil", "edu")])
async def test_school_termination_one_ticket_one_case_one_visit(
    env: Env, order: tuple[str, str]
) -> None:
    """A resident cancels a Sino-foreign cooperative school: one ticket, one case, reviews by
    education and civil affairs in parallel (either order), the result in the same visit."""
    e = env
    t = await e.ticket()
    case = await e.intake(t)
    assert CASE_NO.match(case["case_no"]), case["case_no"]
    assert case["case_no"] == "370102001-20260928-0001"
    assert case["state"] == "accepted" and case["kind"] == "licensing"
    assert case["departments"] == ["edu", "civil"]
    assert [x["department"] for x in case["tasks"]] == ["edu", "civil"]
    assert {x["state"] for x in case["tasks"]} == {"pending"}
    assert case["missing"] == [] and len(case["materials"]) == 6
    assert case["id_masked"].startswith("370102") and "*" in case["id_masked"]
    assert case["phone_masked"] == "138****8000"
    assert case["promised_deadline"] == "2026-10-16"  # 10 working days over National Day
    assert case["statutory_deadline"] == "2026-10-30"  # 20 working days
    assert case["deadline"]["status"] == "green"
    assert case["visit_count"] == 1 and case["visits"][0]["ticket_no"] == t["ticket_no"]
    assert kinds_of(case)[:2] == ["case.opened", "case.visit"]
    assert "case.accepted" in kinds_of(case) and "case.notice_issued" not in kinds_of(case)
    # No full numbers anywhere in what staff get by default.
    assert t["token"] and PHONE not in str(case) and make_id() not in str(case)
    got, _ = await e.clerk.get(f"/api/v1/cases/{case['case_no']}/notice")
    assert got == 404  # nothing was missing: no notice

    # The citizen waits (ticket suspended) while both departments review in parallel.
    await e.clerk.ok("POST", "/api/v1/windows/1/suspend")
    inbox = await e.edu.ok("GET", "/api/v1/inbox/edu")
    assert [x["case_no"] for x in inbox["tasks"]] == [case["case_no"]]
    assert inbox["tasks"][0]["status"] == "green" and inbox["tasks"][0]["lead"] is True
    reviewers = {"edu": e.edu, "civil": e.civil}
    first, second = order
    c1 = await reviewers[first].ok(
        "POST", f"/api/v1/cases/{case['case_no']}/reviews/{first}", {"decision": "approve"}
    )
    assert c1["case"]["state"] == "accepted"  # one approval is not enough
    c2 = await reviewers[second].ok(
        "POST",
        f"/api/v1/cases/{case['case_no']}/reviews/{second}",
        {"decision": "approve", "reason": "材料齐全，同意"},
    )
    assert c2["case"]["state"] == "approved" and c2["case"]["outcome"] == "approved"
    assert c2["case"]["deadline"]["on_time"] is True

    # 统一出件: result ready, SMS, picked up with the same ticket: one visit.
    r = await e.clerk.ok("POST", f"/api/v1/cases/{case['case_no']}/result")
    assert r["case"]["state"] == "result_ready"
    await e.clerk.ok("POST", "/api/v1/windows/1/resume", {"ticket_id": t["id"]})
    h = await e.clerk.ok(
        "POST",
        f"/api/v1/cases/{case['case_no']}/handover",
        {"method": "pickup", "ticket_id": t["id"]},
    )
    assert h["case"]["state"] == "delivered" and h["case"]["visit_count"] == 1
    await e.finish()

    sms = (await e.admin.ok("GET", "/api/v1/sms"))["sms"]
    assert sorted(m["template"] for m in sms) == ["accepted", "result_ready"]
    assert all(m["to_masked"] == "138****8000" and "to_enc" not in m for m in sms)
    assert (await e.flush_sms())["sent"] == 2

    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["visits"]["completed_cases"] == 1
    assert ov["visits"]["at_most_one_visit"] == 1
    assert ov["visits"]["at_most_one_visit_share"] == 1.0
    assert ov["cases"]["by_state"]["delivered"] == 1 and ov["overdue"] == []

    final = await get_case(e, case["case_no"])
    assert kinds_of(final).count("review.decided") == 2
    assert kinds_of(final)[-1] in ("case.handed_over", "sms.sent")
    kinds = check_events(e.db)
    for k in (
        "case.opened",
        "case.accepted",
        "review.opened",
        "review.decided",
        "case.approved",
        "case.result_ready",
        "case.handed_over",
        "sms.queued",
        "sms.sent",
        "ticket.issued",
        "ticket.called",
        "ticket.suspended",
        "ticket.resumed",
        "ticket.finished",
    ):
        assert k in kinds, k


async def test_supplement_takes_two_visits_and_moves_the_deadline(env: Env) -> None:
    e = env
    t1 = await e.ticket()
    case = await e.intake(t1)
    no = case["case_no"]
    await e.finish()
    # Tuesday 29 Sep: education asks for a corrected liquidation report (补正).
    e.clock.set(local(2026, 9, 29, 10))
    c = await e.edu.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/edu",
        {
            "decision": "supplement",
            "reason": "财务清算报告缺少审计机构盖章",
            "materials": ["liquidation-report"],
        },
    )
    c = c["case"]
    assert c["state"] == "supplement" and c["deadline"]["paused"] is True
    assert c["missing"] == ["liquidation-report"]
    assert {m["code"]: m["state"] for m in c["materials"]}["liquidation-report"] == "requested"
    n = await e.clerk.ok("GET", f"/api/v1/cases/{no}/notice")
    assert n["notice"]["reason"] == "supplement"
    assert [m["code"] for m in n["notice"]["missing"]] == ["liquidation-report"]
    sms = (await e.admin.ok("GET", "/api/v1/sms"))["sms"]
    assert "supplement" in [m["template"] for m in sms]
    assert any("财务清算报告缺少审计机构盖章" in m["text"] for m in sms)
    # Civil affairs cannot decide while the clock is paused.
    await refused(
        e,
        e.civil,
        f"/api/v1/cases/{no}/reviews/civil",
        {"decision": "approve"},
        409,
        "supplementary",
    )
    # The citizen sees what is missing.
    st = await e.public.ok("GET", f"/api/v1/cases/{no}/status?phone_last4=8000")
    assert st["paused"] is True and [m["code"] for m in st["missing"]] == ["liquidation-report"]

    # Friday 9 Oct: a second visit with a new ticket; 3 working days were paused
    # (30 Sep, 8 Oct, 9 Oct), so the deadlines move by 3 working days.
    e.clock.set(local(2026, 10, 9, 14))
    t2 = await e.ticket()
    await refused(
        e,
        e.clerk,
        f"/api/v1/cases/{no}/supplement",
        {"ticket_id": t2["id"], "received": ["permit"]},
        422,
        "liquidation-report",
    )
    c = (
        await e.clerk.ok(
            "POST",
            f"/api/v1/cases/{no}/supplement",
            {"ticket_id": t2["id"], "received": ["liquidation-report"]},
        )
    )["case"]
    assert c["state"] == "accepted" and c["missing"] == []
    assert c["paused_days"] == 3
    assert c["promised_deadline"] == "2026-10-21" and c["statutory_deadline"] == "2026-11-04"
    assert c["visit_count"] == 2
    assert [x["state"] for x in c["tasks"]] == ["pending", "pending"]
    await e.finish()

    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    await refused(e, e.clerk, f"/api/v1/cases/{no}/handover", {"method": "mail"}, 422, "tracking")
    c = (
        await e.clerk.ok(
            "POST", f"/api/v1/cases/{no}/handover", {"method": "mail", "tracking": "SF1234567890"}
        )
    )["case"]
    assert c["state"] == "delivered" and c["handover_method"] == "mail"
    assert c["visit_count"] == 2  # mailing is no visit
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["visits"] == {
        "total": 2,
        "completed_cases": 1,
        "at_most_one_visit": 0,
        "at_most_one_visit_share": 0.0,
        "average_per_completed_case": 2.0,
    }
    kinds = kinds_of(await get_case(e, no))
    for k in (
        "case.supplement_requested",
        "case.notice_issued",
        "case.supplemented",
        "review.reopened",
        "case.handed_over",
    ):
        assert k in kinds, k
    assert "mailed" in [m["template"] for m in (await e.admin.ok("GET", "/api/v1/sms"))["sms"]]


async def test_supplement_in_the_same_visit_is_one_visit(env: Env) -> None:
    """The citizen fetches the document while the ticket is suspended: still one visit."""
    e = env
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.clerk.ok("POST", "/api/v1/windows/1/suspend")
    await e.civil.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/civil",
        {"decision": "supplement", "reason": "请补充学生安置落实情况说明"},
    )
    await e.clerk.ok("POST", "/api/v1/windows/1/resume", {"ticket_id": t["id"]})
    c = (
        await e.clerk.ok(
            "POST",
            f"/api/v1/cases/{no}/supplement",
            {"ticket_id": t["id"], "received": ["student-placement"]},
        )
    )["case"]
    assert c["state"] == "accepted" and c["visit_count"] == 1 and c["paused_days"] == 0
    assert c["promised_deadline"] == "2026-10-16"


# --------------------------------------------------------------------------- deadlines


async def test_overdue_case_turns_yellow_then_red(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.finish()
    # Promised deadline Friday 16 Oct 2026.
    e.clock.set(local(2026, 10, 13))  # 3 working days left
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["deadlines"]["green"] == 1 and ov["overdue"] == []
    e.clock.set(local(2026, 10, 14))  # 2 working days left: warning
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["deadlines"]["yellow"] == 1 and ov["warn_workdays"] == 2
    inbox = await e.civil.ok("GET", "/api/v1/inbox/civil")
    assert inbox["tasks"][0]["status"] == "yellow" and inbox["counts"]["yellow"] == 1
    e.clock.set(local(2026, 10, 19))  # Monday after the deadline
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["deadlines"]["red"] == 1
    [late] = ov["overdue"]
    assert late["case_no"] == no and late["overdue_workdays"] == 1
    assert late["pending_departments"] == ["edu", "civil"]
    assert late["statutory_overdue"] is False
    inbox = await e.edu.ok("GET", "/api/v1/inbox/edu")
    assert inbox["tasks"][0]["status"] == "red"
    assert inbox["tasks"][0]["deadline"]["overdue_workdays"] == 1
    # Decided late: no longer in the overdue list, and recorded as late.
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    c = (await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"}))[
        "case"
    ]
    assert c["deadline"]["on_time"] is False
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["overdue"] == [] and ov["deadlines"]["red"] == 0
    assert any(
        ev["kind"] == "case.approved" and ev["body"]["on_time"] is False for ev in c["timeline"]
    )


# --------------------------------------------------------------------------- invalid transitions


async def test_invalid_transitions_answer_409_and_change_nothing(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    base = f"/api/v1/cases/{no}"
    # Not ready for results or handover while under review.
    await refused(e, e.clerk, f"{base}/result", None, 409, "approved or rejected")
    await refused(e, e.clerk, f"{base}/handover", {"method": "pickup"}, 409, "ready result")
    await refused(
        e,
        e.clerk,
        f"{base}/supplement",
        {"received": ["permit"], "channel": "post"},
        409,
        "every material",
    )
    # Departments not involved, wrong reviewers and roles.
    await refused(e, e.admin, f"{base}/reviews/agri", {"decision": "approve"}, 409, "not involved")
    await refused(e, e.civil, f"{base}/reviews/edu", {"decision": "approve"}, 403, "civil")
    await refused(e, e.clerk, f"{base}/reviews/edu", {"decision": "approve"}, 403, "reviewer")
    await refused(e, e.edu, f"{base}/reviews/edu", {"decision": "reject"}, 422, "reason")
    await refused(e, e.edu, f"{base}/reviews/edu", {"decision": "maybe"}, 422, "decision")
    # Deciding a task twice.
    await e.edu.ok("POST", f"{base}/reviews/edu", {"decision": "approve"})
    await refused(e, e.edu, f"{base}/reviews/edu", {"decision": "approve"}, 409, "already decided")
    await refused(
        e,
        e.edu,
        f"{base}/reviews/edu",
        {"decision": "reject", "reason": "x"},
        409,
        "already decided",
    )
    # One rejection rejects the case; approving it afterwards is refused.
    c = (
        await e.civil.ok(
            "POST", f"{base}/reviews/civil", {"decision": "reject", "reason": "学生安置方案未落实"}
        )
    )["case"]
    assert c["state"] == "rejected" and c["reject_reason"] == "学生安置方案未落实"
    await refused(e, e.civil, f"{base}/reviews/civil", {"decision": "approve"}, 409, "rejected")
    await refused(e, e.edu, f"{base}/reviews/edu", {"decision": "approve"}, 409, "rejected")
    await refused(e, e.clerk, f"{base}/handover", {"method": "pickup"}, 409, "rejected")
    # Unknown case: 404.
    await refused(
        e,
        e.edu,
        "/api/v1/cases/370102001-20260928-9999/reviews/edu",
        {"decision": "approve"},
        404,
        "no case",
    )
    # The rejection decision is still handed out at the results window.
    await e.clerk.ok("POST", f"{base}/result")
    await refused(e, e.clerk, f"{base}/result", None, 409, "result_ready")
    await e.clerk.ok("POST", f"{base}/handover", {"method": "pickup", "ticket_id": t["id"]})
    await refused(e, e.clerk, f"{base}/handover", {"method": "pickup"}, 409, "delivered")


async def test_reject_cancels_the_other_tasks(env: Env) -> None:
    e = env
    no = (await e.intake())["case_no"]
    c = (
        await e.edu.ok(
            "POST",
            f"/api/v1/cases/{no}/reviews/edu",
            {"decision": "reject", "reason": "办学许可证已过期"},
        )
    )["case"]
    assert {x["department"]: x["state"] for x in c["tasks"]} == {
        "edu": "rejected",
        "civil": "cancelled",
    }
    assert (await e.civil.ok("GET", "/api/v1/inbox/civil"))["tasks"] == []
    all_tasks = await e.civil.ok("GET", "/api/v1/inbox/civil?state=all")
    assert [x["state"] for x in all_tasks["tasks"]] == ["cancelled"]
    assert "review.cancelled" in kinds_of(c) and "case.rejected" in kinds_of(c)


async def test_intake_needs_a_ticket_at_the_window(env: Env) -> None:
    e = env
    issued = await e.public.ok(
        "POST",
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )
    waiting = next(
        x
        for x in (await e.clerk.ok("GET", "/api/v1/tickets"))["tickets"]
        if x["ticket_no"] == issued["ticket_no"]
    )
    body = {"ticket_id": waiting["id"], "items": [SCHOOL_ITEM], "received": SCHOOL_MATERIALS}
    await refused(e, e.clerk, "/api/v1/cases", body, 409, "waiting")
    await refused(e, e.clerk, "/api/v1/cases", {"items": [SCHOOL_ITEM]}, 422, "ticket_id")
    await refused(e, e.clerk, "/api/v1/cases", {**body, "items": ["nope"]}, 422, "nope")
    await refused(e, e.clerk, "/api/v1/cases", {**body, "received": ["x-ray"]}, 422, "x-ray")
    await refused(e, e.edu, "/api/v1/cases", body, 403, "reviewer")
    got, err = await e.public.post("/api/v1/cases", body)
    assert got == 401


# --------------------------------------------------------------------------- 容缺受理


async def test_acceptance_with_missing_materials(env: Env) -> None:
    e = env
    t = await e.ticket()
    no_critical = [m for m in SCHOOL_MATERIALS if m != "liquidation-report"]
    body = {
        "ticket_id": t["id"],
        "items": [SCHOOL_ITEM],
        "received": no_critical,
        "commitment": True,
    }
    # A critical material is missing: 容缺 refused, naming the material; nothing stored.
    err = await refused(e, e.clerk, "/api/v1/cases", body, 422, "liquidation-report")
    assert err["field"] == "received" and "财务清算报告" in err["message"]
    assert e.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0

    # Only the non-critical legal representative's ID is missing: allowed with a commitment,
    # the catch-up date no later than the promised deadline (16 Oct).
    minor = [m for m in SCHOOL_MATERIALS if m != "legal-rep-id"]
    body = {"ticket_id": t["id"], "items": [SCHOOL_ITEM], "received": minor, "commitment": True}
    err = await refused(
        e,
        e.clerk,
        "/api/v1/cases",
        {**body, "catch_up_date": "2026-10-19"},
        422,
        "promised deadline",
    )
    assert err["field"] == "catch_up_date"
    await refused(e, e.clerk, "/api/v1/cases", {**body, "catch_up_date": "2026-09-27"}, 422, "past")
    await refused(
        e, e.clerk, "/api/v1/cases", {**body, "catch_up_date": "soon"}, 422, "catch_up_date"
    )
    c = await e.intake(t, **{**body, "catch_up_date": "2026-10-09"})
    assert c["state"] == "accepted" and c["commitment"] is True
    assert c["catch_up_date"] == "2026-10-09" and c["missing"] == ["legal-rep-id"]
    n = (await e.clerk.ok("GET", f"/api/v1/cases/{c['case_no']}/notice"))["notice"]
    assert n["accepted"] is True and n["catch_up_date"] == "2026-10-09"
    assert [m["code"] for m in n["missing"]] == ["legal-rep-id"]
    # Without a date the catch-up deadline is the promised deadline.
    c2 = await e.intake(t, **body)
    assert c2["catch_up_date"] == "2026-10-16"

    # Approved, but the result waits for the promised material.
    no = c["case_no"]
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await refused(e, e.clerk, f"/api/v1/cases/{no}/result", None, 409, "legal-rep-id")
    c = (
        await e.clerk.ok(
            "POST",
            f"/api/v1/cases/{no}/supplement",
            {"ticket_id": t["id"], "received": ["legal-rep-id"]},
        )
    )["case"]
    assert c["state"] == "approved" and c["missing"] == [] and c["visit_count"] == 1
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")


async def test_gaps_without_commitment_leave_the_case_pending_with_a_full_notice(env: Env) -> None:
    e = env
    t = await e.ticket()
    received = ["termination-application", "board-resolution", "permit"]
    c = await e.intake(t, received=received)
    assert c["state"] == "pending_materials" and c["tasks"] == []
    assert c["promised_deadline"] is None and c["deadline"] is None
    assert c["missing"] == ["liquidation-report", "student-placement", "legal-rep-id"]
    n = (await e.clerk.ok("GET", f"/api/v1/cases/{c['case_no']}/notice"))["notice"]
    assert n["accepted"] is False and n["reason"] == "intake"
    assert [m["code"] for m in n["missing"]] == c["missing"]
    assert n["center"] == "解放路街道便民服务中心" and n["case_no"] == c["case_no"]
    # The printable notice: centre, case number, every missing material by name, in the
    # page's language only, no material codes, no UTC stamps.
    r = await e.clerk.session.get(e.clerk.base + f"/cases/{c['case_no']}/notice?lang=zh")
    html = await r.text()
    assert r.status == 200 and r.content_type == "text/html"
    for needle in (
        "解放路街道便民服务中心",
        c["case_no"],
        "一次性告知",
        "财务清算报告",
        "学生安置方案及落实情况",
        "法定代表人身份证明",
        "2026年9月28日 09:30",  # local time (Asia/Shanghai)
    ):
        assert needle in html, needle
    assert "Financial liquidation report" not in html and "legal-rep-id" not in html
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", html)
    r = await e.clerk.session.get(e.clerk.base + f"/cases/{c['case_no']}/notice?lang=en")
    html = await r.text()
    assert "Financial liquidation report" in html and "财务清算报告" not in html
    # Its QR code opens the status form with the case number filled in (no error yet).
    r = await e.public.session.get(e.public.base + f"/status?case_no={c['case_no']}&lang=zh")
    html = await r.text()
    assert r.status == 200 and f"value='{c['case_no']}'" in html and "请输入手机号" not in html
    r = await e.public.session.get(
        e.public.base + f"/cases/{c['case_no']}/notice", allow_redirects=False
    )
    assert r.status in (302, 303)  # staff only: to the login page
    # Nothing to review before acceptance.
    assert (await e.edu.ok("GET", "/api/v1/inbox/edu"))["tasks"] == []
    await refused(
        e,
        e.edu,
        f"/api/v1/cases/{c['case_no']}/reviews/edu",
        {"decision": "approve"},
        409,
        "not accepted",
    )

    # Next visit: part of the materials, still pending, a new notice lists the rest.
    await e.finish()
    e.clock.set(local(2026, 9, 30))
    t2 = await e.ticket()
    c = (
        await e.clerk.ok(
            "POST",
            f"/api/v1/cases/{c['case_no']}/supplement",
            {"ticket_id": t2["id"], "received": ["liquidation-report"]},
        )
    )["case"]
    assert c["state"] == "pending_materials" and c["visit_count"] == 2
    n = (await e.clerk.ok("GET", f"/api/v1/cases/{c['case_no']}/notice"))["notice"]
    assert n["reason"] == "still_missing"
    assert [m["code"] for m in n["missing"]] == ["student-placement", "legal-rep-id"]
    # Critical one now in, the minor one under 容缺: accepted today (30 Sep).
    c = (
        await e.clerk.ok(
            "POST",
            f"/api/v1/cases/{c['case_no']}/supplement",
            {"ticket_id": t2["id"], "received": ["student-placement"], "commitment": True},
        )
    )["case"]
    assert c["state"] == "accepted" and c["accepted_date"] == "2026-09-30"
    assert c["promised_deadline"] == "2026-10-20" and c["visit_count"] == 2
    assert c["missing"] == ["legal-rep-id"]


# --------------------------------------------------------------------------- numbers, identity


async def test_case_numbers_are_unique_sequential_and_use_the_local_date(env: Env) -> None:
    e = env
    t = await e.ticket()
    nos = [(await e.intake(t))["case_no"] for _ in range(3)]
    assert nos == [f"370102001-20260928-000{i}" for i in (1, 2, 3)]
    await e.finish()
    # 00:10 on 29 Sep in Jinan is still 28 Sep in UTC: the local date counts.
    e.clock.set(local(2026, 9, 29, 0, 10))
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    assert no == "370102001-20260929-0001"
    all_nos = [r[0] for r in e.db.execute("SELECT case_no FROM cases")]
    assert len(set(all_nos)) == len(all_nos) == 4
    for n in all_nos:
        m = CASE_NO_RE.match(n)
        assert m and m.group(1) == e.config.code
    listed = await e.admin.ok("GET", "/api/v1/cases?date=2026-09-28")
    assert sorted(x["case_no"] for x in listed["cases"]) == nos


async def test_identity_is_masked_except_for_the_logged_intake_view(env: Env) -> None:
    e = env
    id_number = make_id("19700101", seq="456")
    t = await e.ticket(id_number=id_number, phone="13912345678")
    case = await e.intake(t)
    no = case["case_no"]
    text = str(await get_case(e, no))
    assert id_number not in text and "13912345678" not in text
    assert case["id_masked"] == id_number[:6] + "********" + id_number[-4:]
    assert (await e.edu.get(f"/api/v1/cases/{no}/identity"))[0] == 403
    full = await e.clerk.ok("GET", f"/api/v1/cases/{no}/identity")
    assert full["id_number"] == id_number and full["phone"] == "13912345678"
    viewed = [x for x in (await get_case(e, no))["timeline"] if x["kind"] == "case.identity_viewed"]
    assert len(viewed) == 1 and viewed[0]["body"]["by"] == "clerk1"
    assert id_number not in str(viewed)


async def test_material_files_are_stored_by_content_hash(env: Env) -> None:
    import hashlib

    import aiohttp

    e = env
    no = (await e.intake())["case_no"]
    content = b"%PDF-1.4 scan of the permit"
    sha = hashlib.sha256(content).hexdigest()
    form = aiohttp.FormData()
    form.add_field("file", content, filename="permit.pdf", content_type="application/pdf")
    got, data = await e.clerk.call("POST", f"/api/v1/cases/{no}/materials/permit", data=form)
    assert got == 201, data
    assert data["file"]["sha256"] == sha and data["file"]["size"] == len(content)
    path = e.config.data_dir / "files" / sha[:2] / sha
    assert path.read_bytes() == content
    # The same bytes as a raw body are stored once.
    got, data = await e.clerk.call(
        "POST",
        f"/api/v1/cases/{no}/materials/board-resolution?name=resolution.pdf",
        data=content,
        headers={"Content-Type": "application/pdf"},
    )
    assert got == 201 and data["file"]["name"] == "resolution.pdf"
    assert len(list((e.config.data_dir / "files").rglob("*"))) == 2  # one dir, one file
    got, _ = await e.clerk.call("POST", f"/api/v1/cases/{no}/materials/x-ray", data=content)
    assert got == 404
    case = await get_case(e, no)
    files = {m["code"]: m["files"] for m in case["materials"]}
    assert [f["sha256"] for f in files["permit"]] == [sha]
    r = await e.edu.session.get(e.edu.base + f"/api/v1/cases/{no}/files/{sha}")
    assert r.status == 200 and await r.read() == content
    assert "case.file_attached" in kinds_of(case)


# --------------------------------------------------------------------------- kinds


async def test_consultations_and_complaints_are_cases_of_their_own(env: Env) -> None:
    e = env
    await e.admin.ok(
        "POST",
        "/api/v1/users",
        {
            "username": "rev_center",
            "password": "reviewer-pass-9",
            "role": "reviewer",
            "department": "center",
        },
        201,
    )
    t = await e.ticket(queue="area:general", item="370000-center-001")
    c = await e.intake(
        t, items=["370000-center-001"], received=["id-document", "related-documents"]
    )
    assert c["kind"] == "consultation" and c["state"] == "accepted"
    assert c["departments"] == ["center"] and c["promised_deadline"] == "2026-09-28"  # 即办
    assert c["deadline"]["status"] == "yellow"
    await refused(
        e,
        e.clerk,
        "/api/v1/cases",
        {"ticket_id": t["id"], "items": ["370000-center-001", SCHOOL_ITEM], "received": []},
        422,
        "of its own",
    )
    cpl = await e.intake(t, items=["370000-env-005"], received=["report"], commitment=True)
    assert cpl["kind"] == "complaint" and cpl["departments"] == ["env"]
    assert cpl["promised_deadline"] == "2026-10-08"  # 3 working days: 29, 30 Sep, 8 Oct
    center = await e.admin.ok("GET", "/api/v1/inbox/center")
    assert [x["case_no"] for x in center["tasks"]] == [c["case_no"]]
    assert (await e.admin.get("/api/v1/inbox/nope"))[0] == 404


@pytest.mark.parametrize(
    "declared,served,disposition",
    [
        ("text/html", "application/octet-stream", "attachment"),
        ("text/html; charset=utf-8", "application/octet-stream", "attachment"),
        ("image/svg+xml", "application/octet-stream", "attachment"),
        ("application/javascript", "application/octet-stream", "attachment"),
        ("text/javascript", "application/octet-stream", "attachment"),
        ("application/xhtml+xml", "application/octet-stream", "attachment"),
        ("application/pdf", "application/pdf", "inline"),
        ("IMAGE/PNG", "image/png", "inline"),
        ("image/jpeg", "image/jpeg", "inline"),
    ],
)
async def test_an_attached_file_is_never_served_as_a_page(
    env: Env, declared: str, served: str, disposition: str
) -> None:
    """Whatever type an upload declared, only a PDF, PNG or JPEG is shown inline (as itself);
    anything else downloads as bytes, and no browser sniffs a type of its own."""
    import hashlib

    e = env
    no = (await e.intake())["case_no"]
    content = b"<html><script>alert(document.cookie)</script></html>"
    got, data = await e.clerk.call(
        "POST",
        f"/api/v1/cases/{no}/materials/permit?name=permit.html",
        data=content,
        headers={"Content-Type": declared},
    )
    assert got == 201, data
    sha = hashlib.sha256(content).hexdigest()
    r = await e.edu.session.get(e.edu.base + f"/api/v1/cases/{no}/files/{sha}")
    assert r.status == 200 and await r.read() == content
    assert r.headers["Content-Type"] == served
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"] == f"{disposition}; filename*=UTF-8''permit.html"
    assert "no-store" in r.headers["Cache-Control"]
