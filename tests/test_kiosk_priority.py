"""Priority (绿色通道) at the kiosk comes only from what the node can check: the age in the ID
number, a booked appointment checked in on its day, or a window clerk's flag.  A kiosk request
that claims an appointment is refused, naming the field.  The ticket's QR code links under the
node's ``public_url`` (not whatever Host a browser sent) and is never cached publicly."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
import segno

from node import appointments, tickets
from node import config as cfgm
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


# --------------------------------------------------------------------------- the ticket's QR


def qr_svg(url: str) -> bytes:
    """The QR code the node draws for ``url`` (the same segno settings)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=8, border=2)
    return buf.getvalue()


async def test_the_qr_code_links_under_public_url_and_is_not_cached_publicly(
    aiohttp_client: Any, node_config: cfgm.NodeConfig, clock: common.Clock
) -> None:
    cfg = dataclasses.replace(node_config, public_url="https://zwfw.example.gov.cn/hall/")
    e = await common.make_env(aiohttp_client, cfg.validate(), clock)
    try:
        t = await e.public.ok(
            "POST", "/api/v1/tickets", {"queue": "dept:edu", "id_number": make_id(),
                                        "phone": PHONE}, 201,
        )  # fmt: skip
        # Whatever Host the kiosk's browser (or anyone) sends, the code names public_url.
        r = await e.public.session.get(
            e.public.base + f"/t/{t['token']}/qr.svg", headers={"Host": "evil.example"}
        )
        assert r.status == 200
        assert await r.read() == qr_svg(f"https://zwfw.example.gov.cn/hall/s/{t['token']}")
        assert r.headers["Cache-Control"] == "private, no-store"
        r = await e.public.session.get(
            e.public.base + f"/t/{t['token']}/print", headers={"Host": "evil.example"}
        )
        page = await r.text()
        inline = segno.make(f"https://zwfw.example.gov.cn/hall/s/{t['token']}", error="m")
        assert inline.svg_inline(scale=4, border=2, omitsize=True) in page
        assert "evil.example" not in page
    finally:
        for a in e.actors:
            await a.session.close()


async def test_without_public_url_the_qr_code_takes_the_kiosks_address(env: Env) -> None:
    e = env
    t = await e.public.ok(
        "POST", "/api/v1/tickets", {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )  # fmt: skip
    r = await e.public.session.get(
        e.public.base + f"/t/{t['token']}/qr.svg", headers={"Host": "10.20.0.7:8080"}
    )
    assert await r.read() == qr_svg(f"http://10.20.0.7:8080/s/{t['token']}")
    assert r.headers["Cache-Control"] == "private, no-store"
    assert "public" not in r.headers["Cache-Control"]


@pytest.mark.parametrize(
    "value", ["ftp://zwfw.example.gov.cn", "zwfw.example.gov.cn", "https://", "https://a/?x=1",
              "https://user@a", "https://a:99999"],
)  # fmt: skip
def test_public_url_is_checked_naming_the_setting(tmp_path: Path, value: str) -> None:
    cfg = cfgm.NodeConfig(data_dir=tmp_path, code="370102001", name="x", public_url=value)
    with pytest.raises(cfgm.ConfigError) as exc:
        cfg.validate()
    assert exc.value.field == "public_url"
