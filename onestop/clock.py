"""Time: UTC instants for records, local dates (Asia/Shanghai) for what people see.

The one clock seam: services take a :data:`Now` (``create_app(config, now=...)``) and tests pin
it; :func:`utcnow` and :func:`iso` are the only formatters of stored timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

Now = Callable[[], dt.datetime]


def system_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime, timespec: str = "milliseconds") -> str:
    """An instant as stored: UTC, RFC 3339 with a ``Z`` (``2026-11-29T10:00:00.000Z``)."""
    return t.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utcnow(now: Now = system_now) -> str:
    """The current instant of ``now`` as stored (:func:`iso`)."""
    return iso(now())


def parse(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def local_date(t: dt.datetime, tz: str) -> dt.date:
    """The service date: the calendar day in the center's time zone, never UTC's."""
    return t.astimezone(ZoneInfo(tz)).date()
