"""The OpenAPI 3.1 document of the node's JSON API, served at ``/api/v1/openapi.json``.

A test checks that every route under ``/api/v1`` appears here and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onestop import __version__

ERROR = {"$ref": "#/components/schemas/Error"}


def _err(*codes: int) -> dict[str, Any]:
    text = {400: "Bad request", 401: "Login required", 403: "Role or CSRF token not allowed",
            404: "Not found", 409: "Not allowed in the current state",
            422: "Invalid input; `field` names the offending field"}
    return {str(c): {"description": text[c],
                     "content": {"application/json": {"schema": ERROR}}} for c in codes}


def _op(summary: str, *, tag: str, body: dict[str, Any] | None = None, ok: int = 200,
        ok_schema: dict[str, Any] | None = None, errors: tuple[int, ...] = (),
        staff: bool = True, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "tags": [tag],
        "responses": {str(ok): {"description": "OK", "content": {"application/json": {
            "schema": ok_schema or {"type": "object"}}}}, **_err(*errors)},
    }
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    if staff:
        op["security"] = [{"session": [], "csrf": []}]
        op["responses"].update(_err(401, 403))
    else:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


TICKET = {"type": "object", "properties": {
    "id": {"type": "integer"}, "ticket_no": {"type": "string", "example": "A023"},
    "queue": {"type": "string"}, "state": {"type": "string",
                                          "enum": ["waiting", "called", "suspended", "done",
                                                   "no_show"]},
    "priority": {"type": "integer"}, "id_masked": {"type": "string"},
    "phone_masked": {"type": "string"}, "window_id": {"type": ["integer", "null"]},
    "recalls": {"type": "integer"}}}
TICKET_RESULT = {"type": "object", "properties": {"ticket": TICKET}}


def spec(*features: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The node's OpenAPI document: the queue API here, plus the paths of each feature."""
    win = [_path_param("id")]
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": _op("This document", tag="meta", staff=False)},
        "/api/v1/queues": {"get": _op("Open queues with waiting counts and wait estimates",
                                      tag="kiosk", staff=False)},
        "/api/v1/catalog": {"get": _op("Departments, functional areas and service items",
                                       tag="kiosk", staff=False)},
        "/api/v1/tickets": {
            "post": _op("Issue a queue ticket (kiosk)", tag="kiosk", staff=False, ok=201,
                        body={"$ref": "#/components/schemas/TicketRequest"},
                        ok_schema={"$ref": "#/components/schemas/IssuedTicket"},
                        errors=(422,)),
            "get": _op("Today's tickets (masked personal data)", tag="window", errors=(422,),
                       params=[{"name": "state", "in": "query", "schema": {"type": "string"}},
                               {"name": "date", "in": "query",
                                "schema": {"type": "string", "format": "date"}}]),
        },
        "/api/v1/tickets/status/{token}": {"get": _op(
            "Public status of a ticket (no personal data)", tag="kiosk", staff=False,
            errors=(404,), params=[_path_param("token", "string")])},
        "/api/v1/tickets/{id}/priority": {"post": _op(
            "Set or clear the staff priority flag (绿色通道)", tag="window",
            body={"type": "object", "required": ["priority"],
                  "properties": {"priority": {"type": "boolean"}}},
            ok_schema=TICKET_RESULT, errors=(404, 409, 422), params=[_path_param("id")])},
        "/api/v1/display": {"get": _op("Display board state", tag="display", staff=False)},
        "/api/v1/display/stream": {"get": {
            "summary": "Display board live feed (server-sent events: state, call, queues)",
            "tags": ["display"], "security": [],
            "responses": {"200": {"description": "text/event-stream",
                                  "content": {"text/event-stream": {}}}}}},
        "/api/v1/login": {"post": _op(
            "Log in; sets the session cookie and returns the CSRF token", tag="staff",
            staff=False, errors=(401, 422),
            body={"type": "object", "required": ["username", "password"],
                  "properties": {"username": {"type": "string"},
                                 "password": {"type": "string"}}})},
        "/api/v1/logout": {"post": _op("Log out", tag="staff")},
        "/api/v1/me": {"get": _op("The logged-in user and CSRF token", tag="staff")},
        "/api/v1/users": {
            "get": _op("Staff accounts", tag="admin"),
            "post": _op("Add a staff account", tag="admin", ok=201, errors=(409, 422),
                        body={"type": "object", "required": ["username", "password", "role"],
                              "properties": {
                                  "username": {"type": "string"},
                                  "password": {"type": "string", "minLength": 8},
                                  "role": {"enum": ["admin", "window", "reviewer"]},
                                  "window": {"type": "integer"},
                                  "department": {"type": "string"}}}),
        },
        "/api/v1/windows": {
            "get": _op("Windows with their current ticket", tag="window"),
            "post": _op("Add a window", tag="admin", ok=201, errors=(409, 422),
                        body={"type": "object", "required": ["number", "queues"],
                              "properties": {"number": {"type": "integer"},
                                             "name": {"type": "string"},
                                             "queues": {"type": "array",
                                                        "items": {"type": "string"}}}}),
        },
        "/api/v1/windows/{id}": {"get": _op("One window: current and suspended tickets",
                                            tag="window", errors=(404,), params=win)},
        "/api/v1/windows/{id}/call-next": {"post": _op(
            "Call the next ticket (atomic across windows)", tag="window",
            ok_schema=TICKET_RESULT, errors=(404, 409), params=win)},
        "/api/v1/windows/{id}/recall": {"post": _op(
            "Recall the current ticket (limited count)", tag="window",
            ok_schema=TICKET_RESULT, errors=(404, 409), params=win)},
        "/api/v1/windows/{id}/no-show": {"post": _op(
            "Mark the current ticket no-show (弃号)", tag="window", ok_schema=TICKET_RESULT,
            errors=(404, 409), params=win)},
        "/api/v1/windows/{id}/suspend": {"post": _op(
            "Suspend the current ticket (挂起)", tag="window", ok_schema=TICKET_RESULT,
            errors=(404, 409), params=win)},
        "/api/v1/windows/{id}/resume": {"post": _op(
            "Resume a suspended ticket", tag="window", ok_schema=TICKET_RESULT,
            errors=(404, 409, 422), params=win,
            body={"type": "object", "required": ["ticket_id"],
                  "properties": {"ticket_id": {"type": "integer"}}})},
        "/api/v1/windows/{id}/transfer": {"post": _op(
            "Transfer the current ticket to a queue or a window; it keeps its place",
            tag="window", ok_schema=TICKET_RESULT, errors=(404, 409, 422), params=win,
            body={"type": "object", "properties": {"queue": {"type": "string"},
                                                   "window": {"type": "integer"}}})},
        "/api/v1/windows/{id}/finish": {"post": _op(
            "Finish the current ticket", tag="window", ok_schema=TICKET_RESULT,
            errors=(404, 409), params=win)},
    }
    for action, text in (("pause", "Pause the window (暂停服务)"), ("open", "Reopen the window"),
                         ("close", "Close the window for the day")):
        paths[f"/api/v1/windows/{{id}}/{action}"] = {"post": _op(
            text, tag="window", errors=(404, 422), params=win)}
    for extra in features:
        for path, item in extra().items():
            paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {"title": "onestop node API", "version": __version__,
                 "description": "Kiosk, queue, window and case API of a service center node. "
                                "Every error has the Error shape."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "onestop_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
            "schemas": {
                "Error": {"type": "object",
                          "required": ["ok", "status", "error", "message", "field", "errors",
                                       "hint"],
                          "properties": {
                              "ok": {"const": False}, "status": {"type": "integer"},
                              "error": {"type": "string"}, "message": {"type": "string"},
                              "field": {"type": ["string", "null"]},
                              "errors": {"type": "array", "items": {
                                  "type": "object", "properties": {
                                      "field": {"type": "string"},
                                      "message": {"type": "string"}}}},
                              "hint": {"type": ["string", "null"]}}},
                "TicketRequest": {"type": "object", "required": ["queue", "id_number", "phone"],
                                  "properties": {
                                      "queue": {"type": "string", "example": "dept:edu"},
                                      "id_number": {"type": "string",
                                                    "description": "GB 11643-1999, 18 chars"},
                                      "phone": {"type": "string",
                                                "description": "mainland China mobile"},
                                      "item": {"type": "string"},
                                      "lang": {"enum": ["zh", "en"]}}},
                "IssuedTicket": {"type": "object", "properties": {
                    "ticket_no": {"type": "string"}, "token": {"type": "string"},
                    "waiting_ahead": {"type": "integer"},
                    "estimated_wait_minutes": {"type": "integer"},
                    "priority": {"type": "integer"}, "status_url": {"type": "string"},
                    "print_url": {"type": "string"}}},
            },
        },
    }

