"""One JSON error shape for every service.

Every error any onestop service answers with has this body::

    {"ok": false, "status": 422, "error": "invalid", "message": "...",
     "field": "id_number", "errors": [{"field": "id_number", "message": "..."}],
     "hint": "onestop node ..."}

``field`` and ``hint`` may be null; ``errors`` lists every offending field when there are
several.  The middleware turns aiohttp's own HTTP errors and unexpected exceptions into the
same shape, so a client never has to parse HTML or plain text.

A message is English, or a catalog message (:func:`onestop.i18n.lazy_gettext`) that is
answered in Chinese to a client that asks for it (:func:`prefers_zh`) and in English otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from onestop.i18n import LazyText

log = logging.getLogger("onestop.errors")


class ApiError(Exception):
    """An error with an HTTP status a client can act on."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | LazyText,
        *,
        field: str | None = None,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        self.text = message if isinstance(message, LazyText) else None
        self.message = message.text("en") if isinstance(message, LazyText) else message
        super().__init__(self.message)
        self.field = field
        self.hint = hint
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.errors = (
            errors
            if errors is not None
            else ([{"field": field, "message": self.message}] if field else [])
        )

    def message_in(self, lang: str) -> str:
        """The message in ``lang`` (``zh`` or ``en``); an English-only message as raised."""
        return self.text.text(lang) if self.text is not None else self.message

    def errors_in(self, lang: str) -> list[dict[str, str]]:
        if self.text is None:
            return self.errors
        message = self.message_in(lang)
        return [dict(e, message=message) if e.get("message") == self.message else e
                for e in self.errors]  # fmt: skip


class Invalid(ApiError):
    """422: a field of the request is missing or wrong."""

    status = 422
    code = "invalid"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the request is well formed but not allowed in the current state."""

    status = 409
    code = "conflict"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


def invalid_fields(errors: dict[str, str]) -> Invalid:
    """An Invalid naming several fields at once; the first is the headline."""
    items = [{"field": k, "message": v} for k, v in errors.items()]
    first = items[0]
    return Invalid(first["message"], field=first["field"], errors=items)


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    hint: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "ok": False,
        "status": status,
        "error": code,
        "message": message,
        "field": field,
        "errors": errors or [],
        "hint": hint,
    }


def prefers_zh(request: web.Request) -> bool:
    """Whether the client asked for Chinese (``?lang=zh``, the ``lang`` cookie, or
    ``Accept-Language``); API messages are English otherwise."""
    lang = request.query.get("lang") or request.cookies.get("lang")
    if lang:
        return lang == "zh"
    return request.headers.get("Accept-Language", "").lower().startswith("zh")


def error_response(exc: ApiError, request: web.Request | None = None) -> web.Response:
    lang = "zh" if request is not None and prefers_zh(request) else "en"
    return web.json_response(
        error_body(
            exc.status,
            exc.code,
            exc.message_in(lang),
            field=exc.field,
            hint=exc.hint,
            errors=exc.errors_in(lang),
        ),
        status=exc.status,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as the one JSON shape (API paths) or a plain page (HTML paths)."""
    try:
        return await handler(request)
    except ApiError as exc:
        if wants_json(request):
            return error_response(exc, request)
        message = exc.message_in("zh" if prefers_zh(request) else "en")
        return _html_error(request, exc.status, message, exc.hint)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if not wants_json(request):
            if exc.status in (401, 403):
                raise
            return _html_error(request, exc.status, exc.reason, None)
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return web.json_response(
            error_body(exc.status, _HTTP_CODES.get(exc.status, "error"), message or exc.reason),
            status=exc.status,
        )
    except BadHttpMessage as exc:  # a malformed part of a body (a multipart header, ...)
        bad = ApiError(f"malformed request: {exc.message}"[:300], field="body")
        if wants_json(request):
            return error_response(bad, request)
        return _html_error(request, 400, bad.message_in("en"), None)
    except Exception:  # noqa: BLE001 - a node never crashes on one request
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json(request):
            return web.json_response(
                error_body(500, "internal", "internal error; the request was not applied"),
                status=500,
            )
        return _html_error(request, 500, "internal error", None)


def _html_error(request: web.Request, status: int, message: str, hint: str | None) -> web.Response:

    body = (
        "<!doctype html><meta charset=utf-8><title>onestop</title>"
        "<body style='font-family:sans-serif;padding:2em'>"
        f"<h1>{status}</h1><p>{escape(message)}</p>"
        + (f"<p><code>{escape(hint)}</code></p>" if hint else "")
        + "<p><a href='/'>&larr;</a></p></body>"
    )
    return web.Response(text=body, status=status, content_type="text/html")


class CliError(Exception):
    """A command failed in a way the user can fix; ``hint`` is the next command to run."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code
