"""The citizen's side of cases: pre-applications, appointments, status lookup, ratings and
follow-ups, and the SMS outbox."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from node import notify
from node.keys import PII
from node.notify import NOTIFIER, LoggingSender
from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import (
    SCHOOL_ITEM,
    SCHOOL_MATERIALS,
    Env,
    local,
    snapshot,
)

# Fixtures shared by the case tests.
env = common.env
clock = common.clock


async def delivered_case(e: Env) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case taken through to pickup, and its ticket (finished)."""
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    c = await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "pickup", "ticket_id": t["id"]}
    )
    await e.finish()
    return c["case"], t


# --------------------------------------------------------------------------- pre-applications


async def test_preapplication_then_intake_checks_originals_only(env: Env) -> None:
    e = env
    bad = await e.public.post(
        "/api/v1/preapplications",
        {"id_number": "110105194912310021", "phone": "1380013800", "items": ["nope"]},
    )
    assert bad[0] == 422
    assert {x["field"] for x in bad[1]["errors"]} == {"id_number", "phone", "items"}
    assert "校验位" in next(x["message"] for x in bad[1]["errors"] if x["field"] == "id_number")
    assert e.db.execute("SELECT COUNT(*) FROM preapplications").fetchone()[0] == 0

    id_number = make_id("19800202", seq="321")
    pre = (
        await e.public.ok(
            "POST",
            "/api/v1/preapplications",
            {
                "id_number": id_number,
                "phone": PHONE,
                "items": [SCHOOL_ITEM],
                "materials": SCHOOL_MATERIALS,
            },
            201,
        )
    )["preapplication"]
    ref = pre["ref"]
    assert ref.startswith("P") and pre["missing"] == [] and pre["state"] == "submitted"
    assert id_number not in str(pre)
    assert (await e.public.ok("GET", f"/api/v1/preapplications/{ref}"))["preapplication"][
        "ref"
    ] == ref

    # At the window with a ticket of the same person: items and materials come from it.
    t = await e.ticket(id_number=id_number)
    c = (
        await e.clerk.ok(
            "POST", "/api/v1/cases", {"ticket_id": t["id"], "preapplication_id": ref}, 201
        )
    )["case"]
    assert c["state"] == "accepted" and c["preapplication"] == ref
    assert [it["code"] for it in c["items"]] == [SCHOOL_ITEM] and c["visit_count"] == 1
    used = (await e.public.ok("GET", f"/api/v1/preapplications/{ref}"))["preapplication"]
    assert used["state"] == "used" and used["case_no"] == c["case_no"]
    # A pre-application is used once.
    before = snapshot(e.db)
    got, err = await e.clerk.post("/api/v1/cases", {"ticket_id": t["id"], "preapplication_id": ref})
    assert got == 409 and "already used" in err["message"]
    assert snapshot(e.db) == before

    # Another person's ticket cannot use someone's pre-application.
    pre2 = (
        await e.public.ok(
            "POST",
            "/api/v1/preapplications",
            {
                "id_number": id_number,
                "phone": PHONE,
                "items": [SCHOOL_ITEM],
                "materials": SCHOOL_MATERIALS[:5],
            },
            201,
        )
    )["preapplication"]
    assert pre2["missing"] == ["legal-rep-id"] and pre2["missing_critical"] == []
    await e.finish()
    other = await e.ticket(id_number=make_id("19900303", seq="654"))
    got, err = await e.clerk.post(
        "/api/v1/cases", {"ticket_id": other["id"], "preapplication_id": pre2["ref"]}
    )
    assert got == 409 and "different people" in err["message"]
    # Without a ticket (walk-up at the window): still counted as one visit.
    c2 = (
        await e.clerk.ok(
            "POST", "/api/v1/cases", {"preapplication_id": pre2["ref"], "commitment": True}, 201
        )
    )["case"]
    assert c2["state"] == "accepted" and c2["missing"] == ["legal-rep-id"]
    assert c2["visit_count"] == 1 and c2["visits"][0]["ticket_no"] is None


# --------------------------------------------------------------------------- appointments


async def test_appointments_capacity_check_in_and_priority(env: Env) -> None:
    e = env
    day = "2026-09-29"
    slots = await e.public.ok("GET", f"/api/v1/appointments/slots?queue=dept:edu&date={day}")
    assert slots["workday"] is True
    cap = slots["slots"][0]["capacity"]
    assert slots["slots"][0] == {"slot": "09:00", "capacity": cap, "booked": 0, "available": cap}
    refs = []
    for i in range(cap):
        a = await e.public.ok(
            "POST",
            "/api/v1/appointments",
            {
                "queue": "dept:edu",
                "date": day,
                "slot": "09:00",
                "id_number": make_id("19800101", seq=f"{100 + i}"),
                "phone": PHONE,
            },
            201,
        )
        refs.append(a["appointment"]["ref"])
        assert a["appointment"]["state"] == "booked"
    before = snapshot(e.db)
    got, err = await e.public.post(
        "/api/v1/appointments",
        {
            "queue": "dept:edu",
            "date": day,
            "slot": "09:00",
            "id_number": make_id("19800101", seq="999"),
            "phone": PHONE,
        },
    )
    assert got == 409 and err["field"] == "slot" and "full" in err["message"]
    # The same person twice the same day, holidays and unknown slots are refused.
    got, err = await e.public.post(
        "/api/v1/appointments",
        {
            "queue": "dept:edu",
            "date": day,
            "slot": "10:00",
            "id_number": make_id("19800101", seq="100"),
            "phone": PHONE,
        },
    )
    assert got == 409 and err["field"] == "date"
    got, err = await e.public.post(
        "/api/v1/appointments",
        {
            "queue": "dept:edu",
            "date": "2026-10-01",
            "slot": "09:00",
            "id_number": make_id(),
            "phone": PHONE,
        },
    )
    assert got == 422 and err["field"] == "date" and "working day" in err["message"]
    got, err = await e.public.post(
        "/api/v1/appointments",
        {"queue": "dept:edu", "date": day, "slot": "12:00", "id_number": make_id(), "phone": PHONE},
    )
    assert got == 422 and err["field"] == "slot"
    assert snapshot(e.db) == before
    after = await e.public.ok("GET", f"/api/v1/appointments/slots?queue=dept:edu&date={day}")
    assert after["slots"][0]["available"] == 0 and after["slots"][1]["available"] == cap

    # Not today: check-in refused; cancel frees the slot.
    got, err = await e.public.post(f"/api/v1/appointments/{refs[0]}/check-in")
    assert got == 409 and day in err["message"]
    c = await e.public.ok("POST", f"/api/v1/appointments/{refs[-1]}/cancel")
    assert c["appointment"]["state"] == "cancelled"
    assert (await e.public.post(f"/api/v1/appointments/{refs[-1]}/cancel"))[0] == 409

    # On the day, at the kiosk: a priority ticket ahead of walk-ins.
    e.clock.set(local(2026, 9, 29, 8, 50))
    walk_in = await e.public.ok(
        "POST",
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )
    issued = await e.public.ok("POST", f"/api/v1/appointments/{refs[0]}/check-in", None, 201)
    assert issued["priority"] == 1 and issued["priority_reason"] == "appointment"
    assert issued["waiting_ahead"] == 0
    assert (await e.public.post(f"/api/v1/appointments/{refs[0]}/check-in"))[0] == 409
    a = (await e.public.ok("GET", f"/api/v1/appointments/{refs[0]}"))["appointment"]
    assert a["state"] == "checked_in" and a["ticket_no"] == issued["ticket_no"]
    called = await e.clerk.ok("POST", "/api/v1/windows/1/call-next")
    assert called["ticket"]["ticket_no"] == issued["ticket_no"] != walk_in["ticket_no"]
    listed = await e.clerk.ok("GET", f"/api/v1/appointments?date={day}")
    assert len(listed["appointments"]) == cap
    assert all("*" in x["id_masked"] for x in listed["appointments"])
    assert "appointment" in [m["template"] for m in (await e.admin.ok("GET", "/api/v1/sms"))["sms"]]


# --------------------------------------------------------------------------- status


async def test_public_status_reveals_nothing_without_the_phone_digits(env: Env) -> None:
    e = env
    t = await e.ticket(phone="13912345678")
    c = await e.intake(t, received=SCHOOL_MATERIALS[:4])
    no = c["case_no"]
    st = await e.public.ok("GET", f"/api/v1/cases/{no}/status?phone_last4=5678")
    assert st["state"] == "pending_materials" and st["state_name_zh"]
    assert [m["code"] for m in st["missing"]] == ["permit", "legal-rep-id"]
    text = str(st)
    assert "5678" not in text and "id_masked" not in text and "phone" not in text
    wrong = await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=0000")
    nothing = await e.public.get("/api/v1/cases/370102001-20260928-0099/status?phone_last4=5678")
    assert wrong[0] == nothing[0] == 404
    assert wrong[1]["message"] == nothing[1]["message"]
    assert (await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=12"))[0] == 422

    # The HTML pages: a form, and the result.
    r = await e.public.session.get(e.public.base + "/status")
    assert r.status == 200 and "phone_last4" in await r.text()
    r = await e.public.session.get(e.public.base + f"/status?case_no={no}&phone_last4=5678")
    page = await r.text()
    assert r.status == 200 and no in page and "permit" not in page
    assert "中外合作办学许可证正副本" in page and "解放路街道便民服务中心" in page
    r = await e.public.session.get(e.public.base + f"/status/{no}?phone_last4=5678&lang=en")
    assert "Original and duplicate" in await r.text()
    r = await e.public.session.get(e.public.base + f"/status/{no}?phone_last4=1111")
    assert r.status == 404 and "13912345678" not in await r.text()

    # Guessing is cut off after a few wrong tries, for any number, existing or not.
    for _ in range(10):
        await e.public.get("/api/v1/cases/370102001-20260928-0042/status?phone_last4=1234")
    got, err = await e.public.get("/api/v1/cases/370102001-20260928-0042/status?phone_last4=1")
    assert got == 429


# --------------------------------------------------------------------------- ratings


async def test_bad_rating_opens_a_followup_that_is_closed(env: Env) -> None:
    e = env
    case, t = await delivered_case(e)
    no = case["case_no"]
    # The visit: rated with the ticket's token once it is finished.
    r = await e.public.ok("POST", "/api/v1/ratings", {"token": t["token"], "level": 5}, 201)
    assert r["rating"]["level_name_zh"] == "非常满意" and r["rating"]["followup"] is None
    assert (await e.public.post("/api/v1/ratings", {"token": t["token"], "level": 4}))[0] == 409
    # The case: its number and its rating code (from the result SMS).
    code = e.rating_code(no)
    assert (
        await e.public.post("/api/v1/ratings", {"case_no": no, "rating_token": code, "level": 6})
    )[0] == 422
    assert (
        await e.public.post("/api/v1/ratings", {"case_no": no, "rating_token": code, "level": True})
    )[0] == 422
    r = await e.public.ok(
        "POST",
        "/api/v1/ratings",
        {
            "case_no": no,
            "rating_token": code,
            "level": 1,
            "reason": "efficiency",
            "comment": "等了很久，请回电 13812345678",
        },
        201,
    )
    rating = r["rating"]
    assert rating["level_name_zh"] == "非常不满意"
    f = rating["followup"]
    assert f["state"] == "open" and f["case_no"] == no
    # Called back within 1 working day (29 Sep); fixed within 5: 29, 30 Sep, then 8, 9 Oct
    # after the National Day holiday and Saturday 10 Oct, a make-up working day.
    assert f["callback_due"] == "2026-09-29"
    assert f["due_date"] == "2026-10-10"
    assert f["status"] == "green"
    assert (
        await e.public.post("/api/v1/ratings", {"case_no": no, "rating_token": code, "level": 2})
    )[0] == 409
    # The comment in the event log has the number masked.
    body = e.db.execute(
        "SELECT body FROM events WHERE kind = 'rating.given' ORDER BY seq DESC LIMIT 1"
    ).fetchone()[0]
    assert "13812345678" not in body and "138****5678" in body

    listed = await e.clerk.ok("GET", "/api/v1/followups?state=open")
    assert [x["id"] for x in listed["followups"]] == [f["id"]]
    assert (await e.edu.get("/api/v1/followups"))[0] == 403
    e.clock.set(local(2026, 10, 8))
    assert (await e.clerk.ok("GET", "/api/v1/followups"))["followups"][0]["status"] == "yellow"
    assert (await e.clerk.ok("GET", "/api/v1/followups"))["followups"][0]["callback_overdue"]
    before = snapshot(e.db)
    assert (await e.clerk.post(f"/api/v1/followups/{f['id']}/close", {}))[0] == 422
    assert snapshot(e.db) == before
    closed = await e.clerk.ok(
        "POST", f"/api/v1/followups/{f['id']}/close", {"note": "已电话回访，致歉并说明延误原因"}
    )
    assert closed["followup"]["state"] == "closed" and closed["followup"]["on_time"] is True
    before = snapshot(e.db)
    got, err = await e.clerk.post(f"/api/v1/followups/{f['id']}/close", {"note": "again"})
    assert got == 409 and "already closed" in err["message"]
    assert snapshot(e.db) == before
    assert (await e.clerk.post("/api/v1/followups/999/close", {"note": "x"}))[0] == 404

    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["ratings"]["total"] == 2 and ov["ratings"]["bad"] == 1
    assert ov["ratings"]["by_level"] == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}
    assert ov["ratings"]["average"] == 3.0 and ov["ratings"]["followups_open"] == 0


async def test_a_visit_is_rated_after_it_is_finished(env: Env) -> None:
    e = env
    t = await e.ticket()
    got, err = await e.public.post("/api/v1/ratings", {"token": t["token"], "level": 2})
    assert got == 409 and "finished" in err["message"]
    await e.finish()
    got, err = await e.public.post("/api/v1/ratings", {"token": t["token"], "level": 2})
    assert got == 422 and err["field"] == "reason"
    r = await e.public.ok(
        "POST", "/api/v1/ratings", {"token": t["token"], "level": 2, "reason": "attitude"}, 201
    )
    assert r["rating"]["followup"]["ticket_no"] == t["ticket_no"]
    assert (await e.public.post("/api/v1/ratings", {"level": 2}))[0] == 422


# --------------------------------------------------------------------------- SMS


class FailingSender:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, phone: str, text: str) -> None:
        self.calls += 1
        raise ConnectionError(f"gateway refused {phone}")


async def test_sms_outbox_never_holds_a_plain_number(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    e = env
    t = await e.ticket(phone="13912345678")
    no = (await e.intake(t))["case_no"]
    await e.edu.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/edu",
        {"decision": "supplement", "reason": "请补充材料"},
    )
    rows = [dict(r) for r in e.db.execute("SELECT * FROM sms_outbox").fetchall()]
    assert [r["template"] for r in rows] == ["accepted", "supplement"]
    for r in rows:
        assert r["to_masked"] == "139****5678" and r["state"] == "queued"
        assert "13912345678" not in str(r)
        assert e.client.app[PII].decrypt(r["to_enc"]) == "13912345678"
    sender = LoggingSender()
    e.client.app[NOTIFIER].sender = sender
    with caplog.at_level(logging.INFO, logger="onestop.sms"):
        assert await e.flush_sms() == {"sent": 2, "retry": 0, "failed": 0}
    assert [m for m, _ in sender.sent] == ["139****5678", "139****5678"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "139****5678" in logged and "13912345678" not in logged
    assert {r["state"] for r in e.db.execute("SELECT state FROM sms_outbox")} == {"sent"}
    listed = (await e.admin.ok("GET", "/api/v1/sms?state=sent"))["sms"]
    assert len(listed) == 2 and all("to_enc" not in m for m in listed)
    assert (await e.clerk.get("/api/v1/sms"))[0] == 403


async def test_failing_sender_retries_then_gives_up(env: Env) -> None:
    e = env
    await e.intake()
    failing = FailingSender()
    for attempt in range(1, notify.MAX_ATTEMPTS + 1):
        counts = notify.send_pending(e.db, e.client.app[PII], failing, e.clock)
        last = attempt == notify.MAX_ATTEMPTS
        assert counts == {"sent": 0, "retry": 0 if last else 1, "failed": 1 if last else 0}
    row = dict(e.db.execute("SELECT * FROM sms_outbox").fetchone())
    assert row["state"] == "failed" and row["attempts"] == notify.MAX_ATTEMPTS
    assert PHONE not in row["last_error"] and "138****8000" in row["last_error"]
    assert notify.send_pending(e.db, e.client.app[PII], failing, e.clock)["failed"] == 0
    assert failing.calls == notify.MAX_ATTEMPTS
    ev = e.db.execute("SELECT body FROM events WHERE kind = 'sms.failed'").fetchone()[0]
    assert PHONE not in ev


async def test_background_sender_delivers_queued_messages(env: Env) -> None:
    import asyncio

    e = env
    n = e.client.app[NOTIFIER]
    sender = LoggingSender()
    n.sender, n.auto = sender, True
    await e.intake()
    for _ in range(100):
        if sender.sent:
            break
        await asyncio.sleep(0.02)
    assert sender.sent and sender.sent[0][0] == "138****8000"
