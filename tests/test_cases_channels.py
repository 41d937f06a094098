"""Channels of supplements and handovers: only an applicant in person at the window is a
visit (最多跑一次), on the node and on the hub alike; records from before channels keep
their meaning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cases.visits import visit_count
from tests import test_cases_common as common
from tests import test_hub_support as support
from tests.test_cases_common import Env, check_events, snapshot
from tests.test_hub_support import TOWNSHIP, NodeLog, enroll, envelope, push_ok

env = common.env
clock = common.clock
hub_client = support.hub_client
hub_dir = support.hub_dir


async def supplemented_case(e: Env, channel: str) -> str:
    """Intake with a ticket, civil affairs asks for a material, which comes by ``channel``
    (with a new ticket at the window), both approve, and the result is mailed."""
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.finish()
    await e.civil.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/civil",
        {"decision": "supplement", "reason": "请补充学生安置落实情况说明"},
    )
    body: dict[str, Any] = {"received": ["student-placement"], "channel": channel}
    if channel == "window":
        body["ticket_id"] = (await e.ticket())["id"]
    c = (await e.clerk.ok("POST", f"/api/v1/cases/{no}/supplement", body))["case"]
    assert c["state"] == "accepted"
    if channel == "window":
        await e.finish()
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    h = await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "mail", "tracking": "SF1234567"}
    )
    assert h["case"]["state"] == "delivered"
    return no


def events_of(e: Env, kind: str) -> list[dict[str, Any]]:
    rows = e.db.execute("SELECT body FROM events WHERE kind = ? ORDER BY seq", [kind]).fetchall()
    return [json.loads(r[0]) for r in rows]


@pytest.mark.parametrize(
    ("channel", "visits", "share"), [("post", 1, 1.0), ("online", 1, 1.0), ("window", 2, 0.0)]
)
async def test_only_a_supplement_at_the_window_is_a_visit(
    env: Env, channel: str, visits: int, share: float
) -> None:
    e = env
    no = await supplemented_case(e, channel)
    c = (await e.admin.ok("GET", f"/api/v1/cases/{no}"))["case"]
    assert c["visit_count"] == visits and len(c["visits"]) == visits
    assert [v["purpose"] for v in c["visits"]] == ["intake", "supplement"][:visits]
    ov = await e.admin.ok("GET", "/api/v1/overview")
    assert ov["visits"]["total"] == visits and ov["visits"]["completed_cases"] == 1
    assert ov["visits"]["at_most_one_visit"] == int(share)
    assert ov["visits"]["at_most_one_visit_share"] == share
    [sup] = events_of(e, "case.supplemented")
    assert sup["channel"] == channel
    assert sup["ticket_no"] is None if channel != "window" else sup["ticket_no"]
    [hand] = events_of(e, "case.handed_over")
    assert (hand["method"], hand["channel"], hand["visits"]) == ("mail", "post", visits)
    assert [v["channel"] for v in events_of(e, "case.visit")] == ["window"] * visits
    check_events(e.db)


async def test_a_handover_by_courier_adds_no_visit_and_pickup_does(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.clerk.ok("POST", "/api/v1/windows/1/suspend")
    for dept, actor in (("edu", e.edu), ("civil", e.civil)):
        await actor.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    h = await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"channel": "courier", "tracking": "YT99"}
    )
    assert h["case"]["visit_count"] == 1 and h["case"]["handover_method"] == "mail"
    [hand] = events_of(e, "case.handed_over")
    assert (hand["method"], hand["channel"], hand["visits"]) == ("mail", "courier", 1)
    # A second case picked up at the window without its intake ticket: a second visit.
    await e.clerk.ok("POST", "/api/v1/windows/1/resume", {"ticket_id": t["id"]})
    await e.finish()
    no2 = (await e.intake())["case_no"]
    await e.finish()
    for dept, actor in (("edu", e.edu), ("civil", e.civil)):
        await actor.ok("POST", f"/api/v1/cases/{no2}/reviews/{dept}", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no2}/result")
    h2 = await e.clerk.ok("POST", f"/api/v1/cases/{no2}/handover", {"channel": "window"})
    assert h2["case"]["visit_count"] == 2 and h2["case"]["handover_method"] == "pickup"
    check_events(e.db)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("supplement", {"received": ["student-placement"], "channel": "fax"}, "channel"),
        ("supplement", {"received": ["student-placement"]}, "channel"),
        ("handover", {"channel": "pigeon", "tracking": "X1"}, "channel"),
        ("handover", {"channel": "online"}, "channel"),
        ("handover", {"method": "pickup", "channel": "post"}, "channel"),
    ],
)
async def test_unknown_or_unfitting_channel_is_422_naming_channel(
    env: Env, path: str, body: dict[str, Any], field: str
) -> None:
    e = env
    no = (await e.intake())["case_no"]
    before = snapshot(e.db)
    got, data = await e.clerk.post(f"/api/v1/cases/{no}/{path}", body)
    assert got == 422, data
    fields = {x.get("field") for x in data["errors"]} | {data.get("field")}
    assert field in fields, data
    assert snapshot(e.db) == before


async def test_supplement_by_post_with_a_ticket_is_refused(env: Env) -> None:
    e = env
    t = await e.ticket()
    no = (await e.intake(t, received=[]))["case_no"]
    got, data = await e.clerk.post(
        f"/api/v1/cases/{no}/supplement",
        {"received": ["student-placement"], "channel": "post", "ticket_id": t["id"]},
    )
    assert got == 422 and data["field"] == "ticket_id", data


async def test_old_supplement_without_ticket_is_no_visit_after_upgrade(env: Env) -> None:
    """A supplement registered without a ticket before channels (a case_visits row with no
    channel, as migration 011 leaves it) is not counted."""
    e = env
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    [case_id] = e.db.execute("SELECT id FROM cases WHERE case_no = ?", [no]).fetchone()
    e.db.execute(
        "INSERT INTO case_visits (case_id, ticket_id, purpose, at, by) "
        "VALUES (?, NULL, 'supplement', '2026-09-28T02:00:00.000Z', 'clerk1')",
        [case_id],
    )
    e.db.conn.commit()
    assert visit_count(e.db, case_id) == 1


# --------------------------------------------------------------------------- the hub


async def push_node_log(e: Env, hub_client: Any, hub_dir: Path) -> dict[str, Any]:
    """The node's log, re-signed as a township's log, pushed to a hub; its figures."""
    log = NodeLog(TOWNSHIP)
    for kind, entity, eid, body in e.db.execute(
        "SELECT kind, entity, entity_id, body FROM events ORDER BY seq"
    ).fetchall():
        log.add(kind, json.loads(body), entity, eid)
    enroll(hub_dir, log)
    results = await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    assert all(r.get("status") in ("ok", "accepted", None) for r in results), results
    r = await hub_client.get(f"/api/v1/dash/{TOWNSHIP}?from=2026-11-29&to=2026-11-29")
    assert r.status == 200, await r.text()
    figures: dict[str, Any] = (await r.json())["figures"]
    return figures


@pytest.mark.parametrize(("channel", "share"), [("post", 1.0), ("window", 0.0)])
async def test_hub_counts_only_window_visits(
    env: Env, hub_client: Any, hub_dir: Path, channel: str, share: float
) -> None:
    e = env
    await supplemented_case(e, channel)
    f = await push_node_log(e, hub_client, hub_dir)
    assert f["cases_delivered"] == 1 and f["cases_one_visit"] == int(share)
    assert f["one_visit_share"] == share


def old_case(log: NodeLog, no: str, supplement_ticket: str | None) -> None:
    """A case logged before channels: intake visit, supplement (with or without a ticket:
    the old node logged a case.visit either way), picked up at the window."""
    log.add("case.opened", {"case_no": no, "kind": "licensing", "items": ["x"],
            "departments": ["edu"], "id_masked": "370102********1234", "id_hash": "a" * 64,
            "phone_masked": "138****8000", "ticket_no": "A001", "preapplication_id": None,
            "received": [], "missing": [], "by": "clerk1"}, "case", no)  # fmt: skip
    log.add("case.visit", {"case_no": no, "ticket_no": "A001", "purpose": "intake",
                           "visits": 1, "by": "clerk1"}, "case", no)  # fmt: skip
    log.add("case.visit", {"case_no": no, "ticket_no": supplement_ticket,
                           "purpose": "supplement", "visits": 2, "by": "clerk1"},
            "case", no)  # fmt: skip
    log.add("case.supplemented", {"case_no": no, "received": ["permit"], "still_missing": [],
            "ticket_no": supplement_ticket, "by": "clerk1", "from_state": "supplement",
            "state": "accepted"}, "case", no)  # fmt: skip
    log.add("case.handed_over", {"case_no": no, "method": "mail", "tracking": "SF1",
            "ticket_no": None, "visits": 2, "by": "clerk1"}, "case", no)  # fmt: skip


async def test_hub_reads_records_from_before_channels(hub_client: Any, hub_dir: Path) -> None:
    """Old records: a supplement linked to a ticket was a visit, one without was none (even
    though the old node counted it in the handover's visits)."""
    log = NodeLog(TOWNSHIP)
    old_case(log, "370102001-20261120-0001", None)
    old_case(log, "370102001-20261120-0002", "A002")
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    r = await hub_client.get(f"/api/v1/dash/{TOWNSHIP}?from=2026-11-29&to=2026-11-29")
    f = (await r.json())["figures"]
    assert (f["cases_delivered"], f["cases_one_visit"], f["one_visit_share"]) == (2, 1, 0.5)
