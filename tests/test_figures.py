"""One log, one set of figures: the node's overview and the hub's rollups count the same
signed records by the same rules (sync/figures.py).

A node on a pinned clock serves tickets, takes cases that are decided on time and late, one
left overdue and one paused after its deadline passed, hands results over by mail and at the
window, and is rated; its own signed records go to a hub, and every figure both sides show
must agree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from hub import dash
from hub import db as hubdb
from node import db as dbm
from node import signer as signerm
from node import tickets
from sync import figures
from tests import test_cases_common as common
from tests import test_hub_support as support
from tests.conftest import PHONE, make_id
from tests.test_cases_common import Env, local
from tests.test_hub_support import TOWNSHIP, NodeLog, enroll, envelope, push_ok

env = common.env
clock = common.clock
hub_client = support.hub_client
hub_dir = support.hub_dir

DAY1 = dt.date(2026, 9, 28)  # Monday, before Mid-Autumn and National Day
LATER = dt.date(2026, 11, 27)  # Friday: every deadline promised on DAY1 has passed


# --------------------------------------------------------------------------- the node's day


async def issue(e: Env, queue: str = "dept:edu") -> dict[str, Any]:
    body = {"queue": queue, "id_number": make_id(), "phone": PHONE, "item": common.SCHOOL_ITEM}
    return dict(await e.public.ok("POST", "/api/v1/tickets", body, 201))


async def call(e: Env, issued: dict[str, Any]) -> dict[str, Any]:
    called = await e.clerk.ok("POST", "/api/v1/windows/1/call-next")
    assert called["ticket"]["ticket_no"] == issued["ticket_no"], called
    return dict(called["ticket"], token=issued["token"])


async def served(e: Env, wait_min: int, service_min: int) -> dict[str, Any]:
    """A ticket issued now, called ``wait_min`` minutes later; the clock then runs on by
    ``service_min`` minutes (the caller finishes it)."""
    issued = await issue(e)
    e.clock.advance(minutes=wait_min)
    t = await call(e, issued)
    e.clock.advance(minutes=service_min)
    return t


async def approve(e: Env, no: str) -> None:
    for dept, actor in (("edu", e.edu), ("civil", e.civil)):
        await actor.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")


async def build_log(e: Env) -> dict[str, str]:
    """The log of the test; returns the case numbers by role."""
    # DAY1: three cases taken in, each at its own ticket.
    cases = {}
    for name in ("late", "open", "paused"):
        t = await served(e, 4, 6)
        cases[name] = (await e.intake(t))["case_no"]
        await e.finish()
    # LATER: a day of queue work, decisions and ratings.
    e.clock.set(local(LATER.year, LATER.month, LATER.day, 9, 0))
    # Decided after its deadline; picked up at the window: a second visit.
    await approve(e, cases["late"])
    t = await served(e, 3, 5)
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{cases['late']}/handover", {"channel": "window",
                                                            "ticket_id": t["id"]}
    )  # fmt: skip
    await e.finish()
    # Taken in and decided today (on time), the result mailed: one visit.
    t = await served(e, 7, 12)
    cases["on_time"] = (await e.intake(t))["case_no"]
    await e.finish()
    rated = await served(e, 2, 9)
    await e.finish()
    await approve(e, cases["on_time"])
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{cases['on_time']}/handover",
        {"method": "mail", "tracking": "SF1234567"},
    )  # fmt: skip
    # Its clock stops after the deadline passed: it stays overdue while paused.
    await e.civil.ok(
        "POST", f"/api/v1/cases/{cases['paused']}/reviews/civil",
        {"decision": "supplement", "reason": "请补充学生安置落实情况说明"},
    )  # fmt: skip
    # Nobody came to a call; another ticket still waits at the day's end.
    issued = await issue(e)
    e.clock.advance(minutes=1)
    await call(e, issued)
    await e.clerk.ok("POST", "/api/v1/windows/1/no-show")
    await issue(e)
    # Ratings: a visit, a bad visit (a follow-up), a case.
    on_time, late = cases["on_time"], cases["late"]
    for body in ({"token": rated["token"], "level": 5},
                 {"token": t["token"], "level": 2, "reason": "efficiency"},
                 {"case_no": on_time, "rating_token": e.rating_code(on_time), "level": 4},
                 {"case_no": late, "rating_token": e.rating_code(late), "level": 3}):  # fmt: skip
        await e.public.ok("POST", "/api/v1/ratings", body, 201)
    # A bad case rating whose clerk's appeal is upheld: it leaves every rating figure, on
    # both sides (and the case's three ratings before count).
    got = await e.public.ok(
        "POST", "/api/v1/ratings",
        {"case_no": cases["open"], "rating_token": e.rating_code(cases["open"]), "level": 1,
         "reason": "attitude"}, 201,
    )  # fmt: skip
    rid = got["rating"]["id"]
    await e.clerk.ok("POST", f"/api/v1/ratings/{rid}/appeal", {"reason": "评价人误操作"})
    await e.admin.ok(
        "POST", f"/api/v1/ratings/{rid}/appeal/decide", {"decision": "upheld", "note": "监控核实"}
    )
    e.clock.advance(hours=1)
    return cases


async def push_to_hub(e: Env, hub_client: Any, hub_dir: Path) -> None:
    """The node's own signed records and checkpoint, pushed as they are."""
    records = signerm.load_records(e.db)
    with dbm.tx(e.db) as conn:
        cp = signerm.checkpoint(conn, records[-1]["seq"])
    key = signerm.load_node_key(e.config.data_dir)
    assert key is not None
    signer = NodeLog(TOWNSHIP, key=key)
    enroll(hub_dir, signer)
    batch = {"node": TOWNSHIP, "records": records, "checkpoint": cp}
    results = await push_ok(hub_client, envelope(TOWNSHIP, batch), signer)
    [res] = results
    assert (res["stored"], res["rejected"], res["ack_seq"]) == (len(records), [], len(records))


def r_excluded(ov: dict[str, Any]) -> int:
    return int(ov["ratings"]["excluded"])


def hub_figures(hub_dir: Path, start: dt.date, end: dt.date, today: dt.date) -> dict[str, Any]:
    db = hubdb.open_db(hub_dir / "hub.db")
    try:
        return dash.figures(db, TOWNSHIP, dash.Period(start, end, "custom"), today, own=1)
    finally:
        db.close()


# --------------------------------------------------------------------------- the test


async def test_node_overview_and_hub_rollups_give_the_same_figures(
    env: Env, hub_client: Any, hub_dir: Path
) -> None:
    e = env
    cases = await build_log(e)
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["date"] == LATER.isoformat()
    await push_to_hub(e, hub_client, hub_dir)
    day = hub_figures(hub_dir, LATER, LATER, LATER)
    whole = hub_figures(hub_dir, DAY1, LATER, LATER)

    # The queue on the day: waits from issue to first call, service from call to finish.
    tk = ov["tickets"]
    assert (tk["issued"], tk["called"], tk["finished"], tk["no_show"]) == (5, 4, 3, 1)
    assert (tk["wait_n"], tk["wait_sum"]) == (4, (3 + 7 + 2 + 1) * 60)
    assert (tk["service_n"], tk["service_sum"]) == (3, (5 + 12 + 9) * 60)
    pairs = {
        "issued": "tickets_issued", "called": "tickets_called", "finished": "tickets_finished",
        "no_show": "tickets_no_show", "expired": "tickets_expired", "wait_sum": "wait_sum",
        "wait_n": "wait_n", "service_sum": "service_sum", "service_n": "service_n",
        "avg_wait_s": "avg_wait_s", "avg_service_s": "avg_service_s",
    }  # fmt: skip
    assert {k: tk[k] for k in pairs} == {k: day[h] for k, h in pairs.items()}
    # The first day's tickets count on the first day on both sides.
    first = hub_figures(hub_dir, DAY1, DAY1, LATER)
    node_first = tickets.day_figures(e.db, e.config, DAY1.isoformat())
    assert {k: node_first[k] for k in pairs} == {k: first[h] for k, h in pairs.items()}
    assert (node_first["avg_wait_s"], node_first["avg_service_s"]) == (4 * 60, 6 * 60)

    # Visits and 最多跑一次: two handed over, one of them after two visits.
    v = ov["visits"]
    assert (v["completed_cases"], v["at_most_one_visit"]) == (2, 1)
    assert (whole["cases_delivered"], whole["cases_one_visit"]) == (2, 1)
    assert v["at_most_one_visit_share"] == whole["one_visit_share"] == 0.5

    # On time: two decisions, the late one after its deadline.
    d = ov["decisions"]
    assert (d["total"], d["late"]) == (whole["cases_completed"], whole["cases_late"]) == (2, 1)
    assert d["on_time_share"] == whole["on_time_share"] == 0.5

    # Backlog and overdue: the open case and the one paused after its deadline.
    assert ov["deadlines"]["open"] == whole["in_review"] == 2
    assert len(ov["overdue"]) == whole["overdue"] == 2
    assert {o["case_no"] for o in ov["overdue"]} == {cases["open"], cases["paused"]}
    assert ov["deadlines"]["paused"] == 1

    # Satisfaction: 5, 2, 4, 3 (and the 1 whose appeal was upheld counts nowhere).
    assert r_excluded(ov) == 1
    r = ov["ratings"]
    assert r["by_level"] == {str(lv): whole[f"rating_{lv}"] for lv in figures.LEVELS}
    assert r["total"] == whole["ratings"] == 4
    assert r["bad"] == whole["bad_ratings"] == 1
    assert r["satisfaction"] == whole["satisfaction"] == 0.5
    assert r["satisfied_share"] == whole["not_bad_share"] == 0.75
    assert r["average"] == whole["rating_average"] == 3.5


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("body", "visit"),
    [
        ({"channel": "window", "purpose": "pickup"}, True),
        ({"channel": "post", "purpose": "supplement"}, False),
        ({"purpose": "supplement", "ticket_no": None}, False),
        ({"purpose": "supplement", "ticket_no": "A002"}, True),
        ({"purpose": "intake", "ticket_no": "A001"}, True),
    ],
)
def test_what_counts_as_a_visit(body: dict[str, Any], visit: bool) -> None:
    assert figures.is_visit(body) is visit


def test_rules_of_the_figures() -> None:
    assert figures.at_most_once(0) and figures.at_most_once(1)
    assert not figures.at_most_once(2) and not figures.at_most_once(None)
    assert figures.wait_seconds("2026-09-28T01:30:00.000Z", "2026-09-28T01:34:30.400Z") == 270
    assert figures.service_seconds("2026-09-28T01:34:00Z", "2026-09-28T01:30:00Z") is None
    assert figures.service_seconds(None, "2026-09-28T01:30:00Z") is None
    assert figures.mean_seconds(10, 4) == 2 and figures.mean_seconds(0, 0) is None
    promised = dt.date(2026, 10, 20)
    assert figures.on_time(promised, promised)
    assert not figures.on_time(promised + dt.timedelta(days=1), promised)
    assert figures.decided_late({"on_time": False}) and not figures.decided_late({})
    assert figures.overdue(promised, dt.date(2026, 10, 21))
    assert not figures.overdue("2026-10-20", "2026-10-20")
    assert figures.paused_overdue("2026-10-20", "2026-11-27")
    assert figures.on_time_share(3, 1) == 0.6667 and figures.on_time_share(0, 0) is None
    got = figures.ratings({5: 2, 4: 1, 3: 1, 2: 0, 1: 1, 9: 7})
    assert got == {"total": 5, "bad": 1, "satisfaction": 0.6, "not_bad_share": 0.8,
                   "average": 3.6}  # fmt: skip
