"""Time on the node: UTC instants for records, local dates (Asia/Shanghai) for sequences."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

Now = Callable[[], dt.datetime]


def system_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def local_date(t: dt.datetime, tz: str) -> dt.date:
    """The service date: the calendar day in the center's time zone, never UTC's."""
    return t.astimezone(ZoneInfo(tz)).date()
