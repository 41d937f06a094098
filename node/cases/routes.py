"""Routes of the case part.

:func:`setup_case_routes` is called by :func:`node.routes.setup_routes`; the handlers
(:mod:`node.cases_api`) describe themselves for the OpenAPI document.
"""

from __future__ import annotations

from aiohttp import web

from node.cases import api as h
from node.cases.views import setup_case_pages
from node.keys import CLOCK, DB, PII
from node.notify import NOTIFIER, Notifier


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
