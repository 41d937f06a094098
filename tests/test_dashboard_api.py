"""Hub dashboard API in-process: the OpenAPI document covers every route, rollups follow a
case's deadline (overdue at read time, paused while supplementing), and bulk loading equals
ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from hub import db as hubdb
from hub import rollups
from hub.keys import DB
from tests import test_hub_support as support
from tests.test_hub_support import NodeLog, enroll, envelope, push_ok, ticket_body

hub_client = support.hub_client
hub_dir = support.hub_dir
TOWN = "370102001"


async def test_openapi_document_is_valid_and_complete(hub_client: Any) -> None:
    r = await hub_client.get("/api/v1/openapi.json")
    spec = await r.json()
    validate(spec)
    documented = {(p, m.upper()) for p, item in spec["paths"].items() for m in item}
    routes = set()
    for route in hub_client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/api/v1") or route.method == "HEAD":
            continue
        routes.add((path, route.method))
    assert routes == documented, routes ^ documented


def case_log(log: NodeLog, no: str, deadline: str) -> None:
    opened = {"case_no": no, "kind": "licensing", "items": ["370000-edu-001"],
              "departments": ["edu", "civil"], "id_masked": "370102********1234",
              "id_hash": "a" * 64, "phone_masked": "138****8000", "ticket_no": None,
              "preapplication_id": None, "received": [], "missing": [], "by": "clerk1"}  # fmt: skip
    log.add("case.opened", opened, "case", no)
    log.add("case.accepted", {"case_no": no, "accepted_date": "2026-11-20",
                              "promised_deadline": deadline, "statutory_deadline": deadline,
                              "departments": ["edu", "civil"], "missing": [],
                              "commitment": False, "catch_up_date": None, "by": "clerk1"},
            "case", no)  # fmt: skip


async def test_open_cases_overdue_and_paused(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWN)
    log.add("ticket.issued", ticket_body(1), "ticket", "1")
    case_log(log, "370102001-20261120-0001", "2026-11-24")  # overdue on 2026-11-29 (AT)
    case_log(log, "370102001-20261120-0002", "2099-01-10")
    case_log(log, "370102001-20261120-0003", "2026-11-21")
    log.add("case.supplement_requested", {"case_no": "370102001-20261120-0003",
            "department": "civil", "reason": "补正", "materials": ["permit"],
            "paused_date": "2026-11-21"}, "case", "370102001-20261120-0003")  # fmt: skip
    enroll(hub_dir, log)
    await push_ok(hub_client, envelope(TOWN, log.batch()))
    for code in ("37", "3701", "370102", TOWN):
        r = await hub_client.get(f"/api/v1/dash/{code}?from=2026-11-29&to=2026-11-29")
        f = (await r.json())["figures"]
        assert (f["in_review"], f["overdue"], f["cases_accepted"]) == (3, 1, 3), code
    # Supplemented: the clock runs again with the moved deadline (now also past).
    log.add("case.supplemented", {"case_no": "370102001-20261120-0003", "received": ["permit"],
            "still_missing": [], "ticket_no": None, "by": "clerk1", "from_state": "supplement",
            "state": "accepted", "paused_workdays": 2, "promised_deadline": "2026-11-25",
            "statutory_deadline": "2026-11-25"}, "case", "370102001-20261120-0003")  # fmt: skip
    log.add("case.approved", {"case_no": "370102001-20261120-0001", "decided_date": "2026-11-29",
                              "on_time": False}, "case", "370102001-20261120-0001")  # fmt: skip
    await push_ok(hub_client, envelope(TOWN, log.batch(len(log.records) - 1)))
    r = await hub_client.get(f"/api/v1/dash/{TOWN}/departments")
    [edu] = [d for d in (await r.json())["departments"] if d["code"] == "edu"]
    assert (edu["in_review"], edu["overdue"], edu["cases_late"]) == (2, 1, 1)
    # Loading the same records in bulk gives the same rollups as ingest did.
    db = hub_client.app[DB]
    incremental = rollups.snapshot(db)
    assert rollups.rebuild(db) == len(log.records)
    assert rollups.snapshot(db) == incremental
    with hubdb.tx(db):
        for t in rollups.ROLLUP_TABLES:
            db.execute(f"DELETE FROM {t}")
    rollups.bulk_load(db, ({"node": TOWN, **r} for r in log.records))
    assert rollups.snapshot(db) == incremental


async def test_period_and_scope_errors(hub_client: Any) -> None:
    for q, field in (("preset=year", "preset"), ("from=2026-11-30&to=2026-11-01", "from"),
                     ("from=2020-01-01&to=2026-11-01", "from"), ("to=x", "to")):  # fmt: skip
        r = await hub_client.get(f"/api/v1/dash/37?{q}")
        assert r.status == 422 and (await r.json())["field"] == field, q
    r = await hub_client.get("/api/v1/dash/99")
    assert r.status == 404  # the province scope reads every code; this one is nowhere
    r = await hub_client.get("/api/v1/dash/3799")
    assert r.status == 404 and (await r.json())["field"] == "code"
    r = await hub_client.get("/api/v1/dash/37/children?format=xml")
    assert r.status == 422
    r = await hub_client.get("/api/v1/users")
    assert r.status == 200 and [u["username"] for u in (await r.json())["users"]] == ["hubadmin"]
