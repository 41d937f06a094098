"""Event schemas (schemas/events/<kind>.schema.json): valid, complete and strict.

The ``env`` fixture of the case tests validates every event body each test writes; this file
checks the schemas themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import (
    COVERED_PREFIXES,
    EVENT_SCHEMAS,
    Env,
    check_events,
    event_validator,
)

# Fixtures shared by the case tests.
env = common.env
clock = common.clock

NODE = Path(__file__).resolve().parent.parent / "node"
_PREFIXES = "|".join(re.escape(p) for p in COVERED_PREFIXES)
KIND = re.compile(rf"""["']((?:{_PREFIXES})[a-z_]+)["']""")

FILE_NAME = re.compile(r"\.(json|html|py|js|css|svg|toml|key|pub|db)$")


def schema_files() -> list[Path]:
    return sorted(EVENT_SCHEMAS.glob("*.schema.json"))


def test_every_schema_is_a_valid_strict_draft_2020_12_schema() -> None:
    files = schema_files()
    assert len(files) >= 40
    for path in files:
        kind = path.name[: -len(".schema.json")]
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"urn:onestop:schemas:events:{kind}", path.name
        assert schema["type"] == "object" and schema["additionalProperties"] is False, kind
        assert set(schema["required"]) <= set(schema["properties"]), kind
        assert schema.get("description"), kind


def test_every_event_kind_in_the_code_has_a_schema() -> None:
    kinds = set()
    for path in NODE.rglob("*.py"):
        kinds |= set(KIND.findall(path.read_text(encoding="utf-8")))
    # window.{status} is built from the status name.
    kinds |= {"window.open", "window.paused", "window.closed"}
    kinds = {k for k in kinds if not FILE_NAME.search(k)}
    missing = sorted(k for k in kinds if event_validator(k) is None)
    assert not missing, missing
    for k in (
        "case.opened",
        "case.accepted",
        "case.notice_issued",
        "review.decided",
        "case.approved",
        "case.rejected",
        "case.supplement_requested",
        "case.supplemented",
        "case.result_ready",
        "case.handed_over",
        "rating.given",
        "followup.opened",
        "followup.closed",
        "case.identity_viewed",
        "ticket.issued",
        "ticket.called",
        "ticket.recalled",
        "ticket.no_show",
        "ticket.suspended",
        "ticket.resumed",
        "ticket.transferred",
        "ticket.finished",
        "ticket.priority_set",
        "window.created",
        "catalog.imported",
        "sms.queued",
        "sms.sent",
        "appointment.booked",
        "appointment.checked_in",
        "preapplication.submitted",
    ):
        assert k in kinds, k


@pytest.mark.parametrize(
    "kind,body",
    [
        # A full phone or ID number never fits: masks have fixed shapes, extra fields are refused.
        (
            "case.opened",
            {
                "case_no": "370102001-20261129-0007",
                "kind": "licensing",
                "items": ["x"],
                "departments": ["edu"],
                "id_masked": "370102198506121234",
                "id_hash": "0" * 64,
                "phone_masked": "138****8000",
                "ticket_no": "A001",
                "preapplication_id": None,
                "received": [],
                "missing": [],
                "by": "c",
            },
        ),
        ("sms.queued", {"sms_id": 1, "to_masked": "13800138000", "template": "accepted"}),
        (
            "case.identity_viewed",
            {
                "case_no": "370102001-20261129-0007",
                "by": "c",
                "role": "window",
                "id_masked": "370102********1234",
                "id_number": "x",
            },
        ),
        ("case.approved", {"case_no": "2026-0001", "decided_date": "2026-10-01", "on_time": True}),
        (
            "rating.given",
            {
                "rating_id": 1,
                "case_no": None,
                "ticket_no": "A001",
                "level": 0,
                "level_name": "满意",
                "comment": "",
            },
        ),
    ],
)
def test_schemas_refuse_bad_bodies(kind: str, body: dict[str, object]) -> None:
    v = event_validator(kind)
    assert v is not None
    assert list(v.iter_errors(body)), f"{kind} accepted {body}"


def test_schemas_accept_good_bodies() -> None:
    v = event_validator("case.opened")
    assert v is not None
    v.validate(
        {
            "case_no": "370102001-20261129-0007",
            "kind": "licensing",
            "items": ["370000-edu-001"],
            "departments": ["edu", "civil"],
            "id_masked": "370102********123X",
            "id_hash": "ab" * 32,
            "phone_masked": "138****8000",
            "ticket_no": "B012",
            "preapplication_id": None,
            "received": ["permit"],
            "missing": [],
            "by": "clerk1",
        }
    )
    t = event_validator("ticket.transferred")
    assert t is not None
    t.validate({"ticket_no": "A001", "from_window": 1, "by": "clerk1", "to_queue": "dept:edu"})
    assert list(t.iter_errors({"ticket_no": "A001", "from_window": 1, "by": "clerk1"}))


async def test_ticket_and_window_event_bodies_match_their_schemas(env: Env) -> None:
    """Drive every window action once; the env fixture and check_events validate the log."""
    e = env
    first = await e.public.ok(
        "POST",
        "/api/v1/tickets",
        {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE},
        201,
    )
    await e.clerk.ok("POST", "/api/v1/windows/1/call-next")
    await e.clerk.ok("POST", "/api/v1/windows/1/recall")
    await e.clerk.ok("POST", "/api/v1/windows/1/transfer", {"queue": "dept:civil"})
    await e.clerk.ok("POST", "/api/v1/windows/1/call-next")
    await e.clerk.ok("POST", "/api/v1/windows/1/transfer", {"window": 2})
    called = await e.admin.ok("POST", "/api/v1/windows/2/call-next")
    assert called["ticket"]["ticket_no"] == first["ticket_no"]
    await e.admin.ok("POST", "/api/v1/windows/2/no-show")
    await e.public.ok(
        "POST",
        "/api/v1/tickets",
        {"queue": "area:agri", "id_number": make_id(), "phone": PHONE},
        201,
    )
    waiting = (await e.clerk.ok("GET", "/api/v1/tickets?state=waiting"))["tickets"][0]
    await e.clerk.ok("POST", f"/api/v1/tickets/{waiting['id']}/priority", {"priority": True})
    for action in ("pause", "open", "close"):
        await e.admin.ok("POST", f"/api/v1/windows/3/{action}")
    kinds = set(check_events(e.db))
    for k in (
        "ticket.issued",
        "ticket.called",
        "ticket.recalled",
        "ticket.transferred",
        "ticket.no_show",
        "ticket.priority_set",
        "window.created",
        "window.paused",
        "window.open",
        "window.closed",
        "catalog.imported",
    ):
        assert k in kinds, k
