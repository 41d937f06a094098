"""The servers' log: one setup for ``node serve`` and ``hub serve``, and the access log.

:func:`configure` sends every log line (sync progress, warnings, the access log) to stderr,
at the configured level, as readable text or as JSON lines (one object per line: ``time`` in
UTC, ``level``, ``logger``, ``message`` and the record's extra fields).  Whatever the format,
a full ID number or mainland mobile number in a line is masked before it is written
(``370102********1234``, ``138****8000``): the log is no place for personal data.

:func:`setup_access_log` adds the access middleware: one line per request with method, path,
status, duration and a request id.  The id comes from the client's ``X-Request-Id`` when that
is a sane token, else it is new; it is answered in ``X-Request-Id``.  Query values are kept
only for a short list of harmless parameters (``state``, ``date``, ...); any other value is
written as ``*``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

from aiohttp import web

from onestop import metrics as metricsm

access_log = logging.getLogger("onestop.access")

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

# Query parameters whose values are safe to log; every other value is logged as "*".
SAFE_QUERY = frozenset({
    "after", "autoprint", "date", "department", "format", "from", "lang", "level", "limit",
    "node", "page", "period", "preset", "queue", "show", "state", "table", "to",
})  # fmt: skip

# An 18-character ID number (GB 11643) and a mainland mobile number, optionally +86.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])(\+?86)?(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")

# Attributes every LogRecord has; anything else on a record is an extra field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with full ID and mobile numbers masked (region/prefix and last four kept)."""
    text = _ID_RE.sub(lambda m: f"{m[1]}********{m[2][-4:]}", text)
    return _PHONE_RE.sub(lambda m: f"{m[1] or ''}{m[2]}****{m[3]}", text)


def _utc(created: float) -> str:
    t = dt.datetime.fromtimestamp(created, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-11-29T10:00:00.123Z INFO onestop.sync: message``, tracebacks below."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in ``exc`` (the line stays one line)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(out, ensure_ascii=False, default=str))


_installed: logging.Handler | None = None


def configure(
    level: str = "info", fmt: str = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level`` in ``fmt`` (text or json); replaces an earlier
    setup by this function, so calling it again (tests) never doubles the lines."""
    global _installed
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The scheduler says "Running job ..." at info on every tick: only its problems matter.
    logging.getLogger("apscheduler").setLevel(
        logging.DEBUG if level == "debug" else logging.WARNING
    )
    logging.captureWarnings(True)
    _installed = handler
    return handler


# -- the access log ---------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id(incoming: str | None) -> str:
    """The client's id when it is a sane token (letters, digits, ``._:-``, at most 64), else a
    new one; an id that looks like an ID or phone number is never taken over."""
    if incoming and _SANE_ID.fullmatch(incoming) and redact(incoming) == incoming:
        return incoming
    return secrets.token_hex(8)


def logged_path(request: web.Request) -> str:
    """The path, with query values of anything but :data:`SAFE_QUERY` parameters hidden."""
    if not request.query:
        return request.path
    parts = [f"{k}={v if k in SAFE_QUERY else '*'}" for k, v in request.query.items()]
    return f"{request.path}?{'&'.join(parts)}"


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    finally:
        seconds = time.perf_counter() - started
        if access_log.isEnabledFor(logging.INFO):
            _log_access(request, status, seconds, rid)
        metricsm.observe_request(request, status, seconds)


def _log_access(request: web.Request, status: int, seconds: float, rid: str) -> None:
    path = logged_path(request)
    ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %d %.1f ms id=%s", request.method, path, status, ms, rid,
        extra={"method": request.method, "path": path, "status": status, "duration_ms": ms,
               "request_id": rid, "remote": request.remote},
    )  # fmt: skip


async def _answer_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers[REQUEST_ID_HEADER] = rid


def setup_access_log(app: web.Application) -> None:
    """Put the access middleware first (outside the error middleware, so it sees the final
    status) and answer every response, streams included, with its ``X-Request-Id``."""
    app.middlewares.insert(0, access_middleware)
    app.on_response_prepare.append(_answer_request_id)
