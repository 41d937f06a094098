"""Priority (绿色通道) at the kiosk comes only from what the node can check: the age in the ID
number, a booked appointment checked in on its day, or a window clerk's flag.  A kiosk request
that claims an appointment is refused, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from node import appointments, tickets
from node.keys import CONFIG, PII
from onestop.errors import Invalid
from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import Env, local

env = common.env
clock = common.clock


def count_tickets(e: Env) -> int:
    return int(e.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])


async def book(e: Env, day: str, id_number: str) -> str:
    body = {"queue": "dept:edu", "date": day, "slot": "10:00", "id_number": id_number,
            "phone": PHONE}  # fmt: skip
    return str((await e.public.ok("POST", "/api/v1/appointments", body, 201))["appointment"]["ref"])


async def test_a_claimed_appointment_is_refused_naming_the_field(env: Env) -> None:
    e = env
    body: dict[str, Any] = {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE}
    got, err = await e.public.post("/api/v1/tickets", {**body, "appointment": True})
    assert got == 422, err
    assert err["field"] == "appointment"
    assert "check-in" in err["hint"] and "/api/v1/appointments/" in err["hint"]
    assert count_tickets(e) == 0
    got, err = await e.public.post("/api/v1/tickets", {**body, "appointment": "yes"})
    assert got == 422 and err["field"] == "appointment"
    assert count_tickets(e) == 0
    # Saying no is harmless; a walk-in of 40 gets no priority either way.
    plain = await e.public.ok("POST", "/api/v1/tickets", {**body, "appointment": False}, 201)
    assert plain["priority"] == 0 and plain["priority_reason"] is None


async def test_the_domain_function_gives_no_priority_for_a_claim(env: Env) -> None:
    """Whatever reaches :func:`tickets.issue` (not only the API's body model), a claimed
    appointment does not make a priority ticket."""
    e = env
    app = e.client.app
    data = {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE, "appointment": True}
    with pytest.raises(Invalid) as exc:
        tickets.issue(e.db, app[CONFIG], app[PII], data, e.clock)
    assert exc.value.field == "appointment"
    assert count_tickets(e) == 0


async def test_a_checked_in_appointment_and_age_give_priority(env: Env) -> None:
    e = env
    ref = await book(e, "2026-09-29", make_id("19800101", seq="101"))
    e.clock.set(local(2026, 9, 29, 9, 40))
    walk_in = await e.public.ok(
        "POST", "/api/v1/tickets", {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )  # fmt: skip
    assert walk_in["priority"] == 0
    # 70 on the day (elderly_age): priority by the ID number's birth date, not by a claim.
    elderly = await e.public.ok(
        "POST", "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id("19560929", seq="202"), "phone": PHONE}, 201,
    )  # fmt: skip
    assert elderly["priority"] == 1 and elderly["priority_reason"] == "elderly"
    younger = await e.public.ok(
        "POST", "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id("19560930", seq="203"), "phone": PHONE}, 201,
    )  # fmt: skip
    assert younger["priority"] == 0
    issued = await e.public.ok("POST", f"/api/v1/appointments/{ref}/check-in", None, 201)
    assert issued["priority"] == 1 and issued["priority_reason"] == "appointment"
    assert issued["queue"] == "dept:edu"
    # A reference checks in once, and only a booked one does.
    got, err = await e.public.post(f"/api/v1/appointments/{ref}/check-in")
    assert got == 409 and err["field"] == "ref"
    got, err = await e.public.post("/api/v1/appointments/YAAAAAAAA/check-in")
    assert got == 404 and err["field"] == "ref"
    # Called before the walk-ins: the elderly first (earlier), then the appointment.
    order = []
    for _ in range(3):
        order.append((await e.clerk.ok("POST", "/api/v1/windows/1/call-next"))["ticket"])
        await e.finish()
    assert [t["ticket_no"] for t in order] == [
        elderly["ticket_no"], issued["ticket_no"], walk_in["ticket_no"]
    ]  # fmt: skip


async def test_an_appointment_of_another_day_gives_no_ticket(env: Env) -> None:
    e = env
    ref = await book(e, "2026-09-29", make_id("19800101", seq="111"))
    got, err = await e.public.post(f"/api/v1/appointments/{ref}/check-in")
    assert got == 409 and err["field"] == "ref" and "2026-09-29" in err["message"]
    assert count_tickets(e) == 0
    with pytest.raises(Exception, match="2026-09-29"):
        appointments.check_in(e.db, e.client.app[CONFIG], e.client.app[PII], ref, e.clock)


async def test_only_a_logged_in_clerk_flags_priority(env: Env) -> None:
    e = env
    t = await e.public.ok(
        "POST", "/api/v1/tickets", {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )  # fmt: skip
    tid = e.db.execute("SELECT id FROM tickets WHERE token = ?", [t["token"]]).fetchone()[0]
    got, _ = await e.public.post(f"/api/v1/tickets/{tid}/priority", {"priority": True})
    assert got in (401, 403)
    r = await e.clerk.ok("POST", f"/api/v1/tickets/{tid}/priority", {"priority": True})
    assert r["ticket"]["priority"] == 1
