"""Routes of the case part and their OpenAPI description.

:func:`setup_case_routes` is called by :func:`node.routes.setup_routes`; importing this module
adds :func:`case_paths` to :data:`node.openapi.EXTRA_PATHS`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import openapi
from node.cases import api as h
from node.cases.views import setup_case_pages
from node.cases_db import CASE_STATES, TASK_STATES
from node.keys import CLOCK, DB, PII
from node.notify import NOTIFIER, Notifier
from node.openapi import _op, _path_param


def setup_case_routes(app: web.Application) -> None:
    r = app.router
    a = "/api/v1"
    r.add_post(f"{a}/cases", h.create_case)
    r.add_get(f"{a}/cases", h.list_cases)
    r.add_get(f"{a}/cases/{{case_no}}", h.case_detail)
    r.add_get(f"{a}/cases/{{case_no}}/identity", h.case_identity)
    r.add_get(f"{a}/cases/{{case_no}}/notice", h.case_notice)
    r.add_get(f"{a}/cases/{{case_no}}/status", h.case_status)
    r.add_post(f"{a}/cases/{{case_no}}/materials/{{code}}", h.upload_material)
    r.add_get(f"{a}/cases/{{case_no}}/files/{{sha256}}", h.download_file)
    r.add_post(f"{a}/cases/{{case_no}}/reviews/{{department}}", h.review)
    r.add_post(f"{a}/cases/{{case_no}}/supplement", h.supplement)
    r.add_post(f"{a}/cases/{{case_no}}/result", h.result)
    r.add_post(f"{a}/cases/{{case_no}}/handover", h.handover)
    r.add_get(f"{a}/inbox/{{department}}", h.inbox)
    r.add_get(f"{a}/overview", h.overview)
    r.add_post(f"{a}/ratings", h.create_rating)
    r.add_get(f"{a}/followups", h.list_followups)
    r.add_post(f"{a}/followups/{{id}}/close", h.close_followup)
    r.add_post(f"{a}/preapplications", h.create_preapplication)
    r.add_get(f"{a}/preapplications/{{ref}}", h.get_preapplication)
    r.add_get(f"{a}/appointments/slots", h.appointment_slots)
    r.add_get(f"{a}/appointments", h.list_appointments)
    r.add_post(f"{a}/appointments", h.create_appointment)
    r.add_get(f"{a}/appointments/{{ref}}", h.get_appointment)
    r.add_post(f"{a}/appointments/{{ref}}/check-in", h.check_in)
    r.add_post(f"{a}/appointments/{{ref}}/cancel", h.cancel_appointment)
    r.add_get(f"{a}/sms", h.list_sms)
    r.add_post(f"{a}/sms/send", h.send_sms)
    # Pages: the citizen's status lookup and the printable one-time notice.
    r.add_get("/status", h.status_form, name="case_status_form")
    r.add_get("/status/{case_no}", h.status_page, name="case_status_page")
    r.add_get("/cases/{case_no}/notice", h.notice_page, name="case_notice_page")
    # Staff pages: intake, case list and detail, review inbox, overview (node.cases.views).
    setup_case_pages(app)

    app[NOTIFIER] = Notifier()
    app[h.STATUS_GUARD] = h.StatusGuard()
    app.on_startup.append(_start_sender)
    app.on_shutdown.append(_stop_sender)


async def _start_sender(app: web.Application) -> None:
    app[NOTIFIER].start(app[DB], app[PII], app[CLOCK])


async def _stop_sender(app: web.Application) -> None:
    await app[NOTIFIER].stop()


# --------------------------------------------------------------------------- OpenAPI

_CASE_NO = {
    "type": "string",
    "pattern": r"^\d{2,12}-\d{8}-\d{4,}$",
    "example": "370102001-20261129-0007",
}
_CODES = {"type": "array", "items": {"type": "string"}}
_DATE = {"type": "string", "format": "date"}
_MATERIAL = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "name_zh": {"type": "string"},
        "name_en": {"type": "string"},
        "critical": {"type": "boolean"},
        "state": {"enum": ["received", "missing", "requested"]},
        "received_at": {"type": ["string", "null"]},
        "files": {"type": "array", "items": {"type": "object"}},
    },
}
_DEADLINE = {
    "type": ["object", "null"],
    "properties": {
        "promised": _DATE,
        "statutory": _DATE,
        "status": {"enum": ["green", "yellow", "red", None]},
        "running": {"type": "boolean"},
        "paused": {"type": "boolean"},
        "workdays_left": {"type": "integer"},
        "overdue_workdays": {"type": "integer"},
        "on_time": {"type": "boolean"},
        "paused_days": {"type": "integer"},
        "statutory_overdue": {"type": "boolean"},
    },
}
_CASE = {
    "type": "object",
    "properties": {
        "case_no": _CASE_NO,
        "kind": {"type": "string"},
        "state": {"enum": list(CASE_STATES)},
        "state_name_zh": {"type": "string"},
        "state_name_en": {"type": "string"},
        "outcome": {"enum": ["approved", "rejected", None]},
        "items": {"type": "array", "items": {"type": "object"}},
        "departments": _CODES,
        "id_masked": {"type": "string", "example": "370102********1234"},
        "phone_masked": {"type": "string", "example": "138****8000"},
        "commitment": {"type": "boolean"},
        "catch_up_date": {"type": ["string", "null"]},
        "accepted_date": {"type": ["string", "null"]},
        "promised_deadline": {"type": ["string", "null"]},
        "statutory_deadline": {"type": ["string", "null"]},
        "deadline": _DEADLINE,
        "visit_count": {"type": "integer"},
        "materials": {"type": "array", "items": _MATERIAL},
        "missing": _CODES,
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "department": {"type": "string"},
                    "state": {"enum": list(TASK_STATES)},
                    "reason": {"type": ["string", "null"]},
                    "decided_by": {"type": ["string", "null"]},
                },
            },
        },
        "visits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "ticket_no": {"type": ["string", "null"]},
                    "purpose": {"enum": ["intake", "supplement", "pickup"]},
                    "at": {"type": "string"},
                },
            },
        },
        "timeline": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "seq": {"type": "integer"},
                    "at": {"type": "string"},
                    "kind": {"type": "string"},
                    "body": {"type": "object"},
                },
            },
        },
    },
}
_CASE_RESULT = {"type": "object", "properties": {"case": _CASE}}
_ISSUED = {
    "type": "object",
    "properties": {
        "ticket_no": {"type": "string"},
        "token": {"type": "string"},
        "waiting_ahead": {"type": "integer"},
        "priority": {"type": "integer"},
        "status_url": {"type": "string"},
        "print_url": {"type": "string"},
    },
}
_APPOINTMENT = {
    "type": "object",
    "properties": {
        "appointment": {
            "type": "object",
            "properties": {
                "ref": {"type": "string"},
                "queue": {"type": "string"},
                "date": _DATE,
                "slot": {"type": "string"},
                "state": {"enum": ["booked", "checked_in", "cancelled"]},
                "ticket_no": {"type": ["string", "null"]},
            },
        }
    },
}
_FOLLOWUP = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "level": {"type": "integer"},
        "state": {"enum": ["open", "closed"]},
        "due_date": _DATE,
        "status": {"enum": ["green", "yellow", "red", None]},
        "case_no": {"type": ["string", "null"]},
        "ticket_no": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"]},
    },
}


def _q(
    name: str, kind: str = "string", required: bool = False, description: str | None = None
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": kind},
    }
    if description:
        p["description"] = description
    return p


def case_paths() -> dict[str, Any]:
    cn = [_path_param("case_no", "string")]
    ref = [_path_param("ref", "string")]
    intake_body = {
        "type": "object",
        "required": ["items"],
        "description": "Give ticket_id (the ticket called at or suspended at the window) or "
        "preapplication_id (its reference), or both for the same person. "
        "items and received default to the pre-application's.",
        "properties": {
            "ticket_id": {"type": "integer"},
            "preapplication_id": {"type": ["string", "integer"]},
            "items": {
                **_CODES,
                "description": "service item codes; a consultation or "
                "complaint is a case of its own",
            },
            "received": {**_CODES, "description": "material codes received (originals checked)"},
            "commitment": {
                "type": "boolean",
                "description": "the citizen commits to bring "
                "the missing non-critical materials (容缺受理)",
            },
            "catch_up_date": {
                **_DATE,
                "description": "when the missing materials are due; "
                "no later than the promised deadline (its default)",
            },
        },
    }
    return {
        "/api/v1/cases": {
            "post": _op(
                "Open a case at the window (intake, 一次性告知, 容缺受理)",
                tag="cases",
                ok=201,
                body=intake_body,
                ok_schema=_CASE_RESULT,
                errors=(409, 422),
            ),
            "get": _op(
                "Cases, newest first (reviewers: their department's)",
                tag="cases",
                errors=(422,),
                params=[
                    _q("state", description=", ".join(CASE_STATES)),
                    _q("date", description="local service date YYYY-MM-DD"),
                    _q("department"),
                    _q("limit", "integer"),
                ],
            ),
        },
        "/api/v1/cases/{case_no}": {
            "get": _op(
                "One case: items, materials, review tasks, visits, deadline, timeline of events",
                tag="cases",
                ok_schema=_CASE_RESULT,
                errors=(404,),
                params=cn,
            )
        },
        "/api/v1/cases/{case_no}/identity": {
            "get": _op(
                "Full ID and phone number for checking at the window (the viewing is logged as "
                "case.identity_viewed)",
                tag="cases",
                errors=(404,),
                params=cn,
                ok_schema={
                    "type": "object",
                    "properties": {"id_number": {"type": "string"}, "phone": {"type": "string"}},
                },
            )
        },
        "/api/v1/cases/{case_no}/notice": {
            "get": _op(
                "The latest one-time notice (一次性告知) of missing materials; printable at "
                "/cases/{case_no}/notice",
                tag="cases",
                errors=(404,),
                params=cn,
            )
        },
        "/api/v1/cases/{case_no}/status": {"get": _status_op()},
        "/api/v1/cases/{case_no}/materials/{code}": {"post": _attach_op()},
        "/api/v1/cases/{case_no}/files/{sha256}": {"get": _download_op()},
        "/api/v1/cases/{case_no}/reviews/{department}": {
            "post": _op(
                "A department's review decision (parallel; approve all to approve the case, one "
                "reject rejects it, supplement pauses the clock)",
                tag="review",
                ok_schema=_CASE_RESULT,
                errors=(404, 409, 422),
                params=[*cn, _path_param("department", "string")],
                body={
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {"enum": ["approve", "reject", "supplement"]},
                        "reason": {
                            "type": "string",
                            "description": "required to reject or supplement",
                        },
                        "materials": {
                            **_CODES,
                            "description": "supplement: materials to bring again",
                        },
                    },
                },
            )
        },
        "/api/v1/cases/{case_no}/supplement": {
            "post": _op(
                "Materials brought to the window: resumes a paused case (补正), completes a case "
                "waiting for materials, or catches up 容缺 materials",
                tag="cases",
                ok_schema=_CASE_RESULT,
                errors=(404, 409, 422),
                params=cn,
                body={
                    "type": "object",
                    "required": ["received"],
                    "properties": {
                        "ticket_id": {"type": "integer", "description": "the ticket of this visit"},
                        "received": _CODES,
                        "commitment": {"type": "boolean"},
                        "catch_up_date": _DATE,
                    },
                },
            )
        },
        "/api/v1/cases/{case_no}/result": {
            "post": _op(
                "The result is ready at the results window (统一出件); the applicant gets an SMS",
                tag="cases",
                ok_schema=_CASE_RESULT,
                errors=(404, 409),
                params=cn,
            )
        },
        "/api/v1/cases/{case_no}/handover": {
            "post": _op(
                "Hand the result over: picked up (a visit) or mailed",
                tag="cases",
                ok_schema=_CASE_RESULT,
                errors=(404, 409, 422),
                params=cn,
                body={
                    "type": "object",
                    "required": ["method"],
                    "properties": {
                        "method": {"enum": ["pickup", "mail"]},
                        "tracking": {"type": "string", "description": "required for mail"},
                        "ticket_id": {
                            "type": "integer",
                            "description": "pickup: the ticket of this visit",
                        },
                    },
                },
            )
        },
        "/api/v1/inbox/{department}": {
            "get": _op(
                "A department's review tasks with deadline status (green/yellow/red), most "
                "urgent first",
                tag="review",
                errors=(404, 422),
                params=[
                    _path_param("department", "string"),
                    _q(
                        "state",
                        description="open (default: pending and supplement), all, or a task state",
                    ),
                ],
            )
        },
        "/api/v1/overview": {
            "get": _op(
                "Counts by deadline status, overdue cases, visits (at most one visit) and ratings",
                tag="cases",
            )
        },
        "/api/v1/ratings": {
            "post": _op(
                "Rate a finished visit (ticket token) or a case (case_no and phone_last4): "
                "5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意; 1-2 open a follow-up",
                tag="citizen",
                staff=False,
                ok=201,
                errors=(404, 409, 422),
                body={
                    "type": "object",
                    "required": ["level"],
                    "properties": {
                        "case_no": _CASE_NO,
                        "phone_last4": {"type": "string"},
                        "token": {"type": "string"},
                        "level": {"type": "integer", "minimum": 1, "maximum": 5},
                        "comment": {"type": "string", "maxLength": 500},
                    },
                },
            )
        },
        "/api/v1/followups": {
            "get": _op(
                "Follow-ups of bad ratings with their deadline status",
                tag="ratings",
                errors=(422,),
                params=[_q("state", description="open, closed or all")],
                ok_schema={
                    "type": "object",
                    "properties": {"followups": {"type": "array", "items": _FOLLOWUP}},
                },
            )
        },
        "/api/v1/followups/{id}/close": {
            "post": _op(
                "Close a follow-up with what was done",
                tag="ratings",
                errors=(404, 409, 422),
                params=[_path_param("id")],
                ok_schema={"type": "object", "properties": {"followup": _FOLLOWUP}},
                body={
                    "type": "object",
                    "required": ["note"],
                    "properties": {"note": {"type": "string"}},
                },
            )
        },
        "/api/v1/preapplications": {
            "post": _op(
                "Pre-apply online (网上预审); bring the reference to the window",
                tag="citizen",
                staff=False,
                ok=201,
                errors=(422,),
                body={
                    "type": "object",
                    "required": ["id_number", "phone", "items"],
                    "properties": {
                        "id_number": {"type": "string"},
                        "phone": {"type": "string"},
                        "items": _CODES,
                        "materials": _CODES,
                        "lang": {"enum": ["zh", "en"]},
                    },
                },
            )
        },
        "/api/v1/preapplications/{ref}": {
            "get": _op(
                "A pre-application's checklist (no personal data)",
                tag="citizen",
                staff=False,
                errors=(404,),
                params=ref,
            )
        },
        "/api/v1/appointments/slots": {
            "get": _op(
                "Bookable half-hour slots of a queue on a day with remaining capacity",
                tag="citizen",
                staff=False,
                errors=(422,),
                params=[_q("queue", required=True), _q("date", description="YYYY-MM-DD")],
            )
        },
        "/api/v1/appointments": {
            "post": _op(
                "Book an appointment (预约)",
                tag="citizen",
                staff=False,
                ok=201,
                errors=(409, 422),
                ok_schema=_APPOINTMENT,
                body={
                    "type": "object",
                    "required": ["queue", "date", "slot", "id_number", "phone"],
                    "properties": {
                        "queue": {"type": "string", "example": "dept:edu"},
                        "date": _DATE,
                        "slot": {"type": "string", "example": "09:00"},
                        "id_number": {"type": "string"},
                        "phone": {"type": "string"},
                        "lang": {"enum": ["zh", "en"]},
                    },
                },
            ),
            "get": _op(
                "Appointments of a day (masked)",
                tag="window",
                params=[_q("date", description="YYYY-MM-DD, default today")],
            ),
        },
        "/api/v1/appointments/{ref}": {
            "get": _op(
                "An appointment's state",
                tag="citizen",
                staff=False,
                errors=(404,),
                params=ref,
                ok_schema=_APPOINTMENT,
            )
        },
        "/api/v1/appointments/{ref}/check-in": {
            "post": _op(
                "Check in at the kiosk on the day: issues a priority ticket",
                tag="citizen",
                staff=False,
                ok=201,
                errors=(404, 409),
                params=ref,
                ok_schema=_ISSUED,
            )
        },
        "/api/v1/appointments/{ref}/cancel": {
            "post": _op(
                "Cancel an appointment",
                tag="citizen",
                staff=False,
                errors=(404, 409),
                params=ref,
                ok_schema=_APPOINTMENT,
            )
        },
        "/api/v1/sms": {
            "get": _op(
                "The SMS outbox (numbers masked)",
                tag="admin",
                errors=(422,),
                params=[_q("state", description="queued, sent or failed")],
            )
        },
        "/api/v1/sms/send": {
            "post": _op(
                "Send queued SMS now through the node's sender",
                tag="admin",
                ok_schema={
                    "type": "object",
                    "properties": {
                        "sent": {"type": "integer"},
                        "retry": {"type": "integer"},
                        "failed": {"type": "integer"},
                    },
                },
            )
        },
    }


def _status_op() -> dict[str, Any]:
    op = _op(
        "Public case status for the applicant (no personal data); a wrong number or "
        "phone both answer 404",
        tag="citizen",
        staff=False,
        errors=(404, 422),
        params=[
            _path_param("case_no", "string"),
            _q("phone_last4", required=True, description="last 4 digits of the applicant's mobile"),
        ],
    )
    op["responses"]["429"] = {
        "description": "Too many wrong attempts for this case number",
        "content": {"application/json": {"schema": openapi.ERROR}},
    }
    return op


def _download_op() -> dict[str, Any]:
    op = _op(
        "Download an attached file",
        tag="cases",
        errors=(404,),
        params=[_path_param("case_no", "string"), _path_param("sha256", "string")],
    )
    op["responses"]["200"] = {
        "description": "the file",
        "content": {"application/octet-stream": {}},
    }
    return op


def _attach_op() -> dict[str, Any]:
    op = _op(
        "Attach a scan of a material (stored by SHA-256 content hash); multipart "
        "field 'file' or the raw body with ?name=",
        tag="cases",
        ok=201,
        errors=(404, 422),
        params=[
            _path_param("case_no", "string"),
            _path_param("code", "string"),
            _q("name", description="file name when sending a raw body"),
        ],
    )
    op["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    return op

