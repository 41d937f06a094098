"""Where each queue waits in the hall and when it takes tickets.

A center sets them per queue in ``node.toml`` (``[queues."dept:edu"]``, see
``etc/node.toml``):

* ``where_zh`` / ``where_en``: where to wait (area, floor, window group), printed on the slip
  and shown on the kiosk; without it the slip names the windows serving the queue
  ("请到 3、4 号窗口附近等候").
* ``hours``: when the queue takes tickets on working days (:mod:`node.workdays`), local
  time, e.g. ``"08:30-12:00,13:30-17:00"``; empty: any time, any day.
* ``cutoff``: the local time after which no more tickets are issued that day ("16:30").

:func:`check_open` is what issuing a ticket asks; :func:`queue_state` what the kiosk shows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from node import workdays
from onestop.config import ConfigError
from onestop.errors import Conflict
from onestop.i18n import _, lazy_gettext

KEYS = ("where_zh", "where_en", "hours", "cutoff")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_QUEUE_CODE = re.compile(r"(dept|area):[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class QueueHall:
    where_zh: str = ""
    where_en: str = ""
    hours: tuple[tuple[dt.time, dt.time], ...] = ()
    cutoff: dt.time | None = None

    @property
    def hours_text(self) -> str:
        return ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in self.hours)


def _time(value: str, field: str) -> dt.time:
    m = _TIME.fullmatch(value.strip())
    if not m:
        raise ConfigError(field, f"must be a local time HH:MM (24 hours), got {value!r}")
    return dt.time(int(m[1]), int(m[2]))


def parse(raw: Any) -> dict[str, QueueHall]:
    """The ``queues`` setting checked: a table of queue code -> its settings; a bad entry
    raises :class:`ConfigError` naming it (``queues.dept:edu.hours``)."""
    if not isinstance(raw, dict):
        raise ConfigError("queues", 'must be a table of queue codes, e.g. [queues."dept:edu"]')
    out: dict[str, QueueHall] = {}
    for code, entry in raw.items():
        where = f"queues.{code}"
        if not _QUEUE_CODE.fullmatch(str(code)):
            raise ConfigError(where, "queue codes are dept:<code> or area:<code>")
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be a table with where_zh, where_en, hours, cutoff")
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", f"unknown; one of {', '.join(KEYS)}")
        for key in KEYS:
            if not isinstance(entry.get(key, ""), str):
                raise ConfigError(f"{where}.{key}", "must be a string")
        hours: list[tuple[dt.time, dt.time]] = []
        text = entry.get("hours", "").strip()
        for part in filter(None, (p.strip() for p in text.split(","))):
            start, sep, end = part.partition("-")
            if not sep:
                raise ConfigError(f"{where}.hours", f"ranges are HH:MM-HH:MM, got {part!r}")
            a, b = _time(start, f"{where}.hours"), _time(end, f"{where}.hours")
            if b <= a or (hours and a < hours[-1][1]):
                raise ConfigError(
                    f"{where}.hours", f"ranges must run forward and in order, got {text!r}"
                )
            hours.append((a, b))
        cutoff = entry.get("cutoff", "").strip()
        out[str(code)] = QueueHall(
            where_zh=entry.get("where_zh", "").strip(),
            where_en=entry.get("where_en", "").strip(),
            hours=tuple(hours),
            cutoff=_time(cutoff, f"{where}.cutoff") if cutoff else None,
        )
    return out


#: Why a queue takes no ticket now (the ``reason`` of the error and of the kiosk's button).
CLOSED_TEXTS = {
    "not_workday": lazy_gettext("今日非工作日，暂停取号"),
    "before_hours": lazy_gettext("尚未开始取号"),
    "between_hours": lazy_gettext("午间暂停取号"),
    "after_hours": lazy_gettext("今日已停止取号"),
    "after_cutoff": lazy_gettext("今日已停止取号"),
}


def closed_reason(hall: QueueHall | None, t: dt.datetime, tz: str) -> str | None:
    """Why the queue takes no ticket at instant ``t`` (a key of :data:`CLOSED_TEXTS`), or
    None when it is open."""
    if hall is None or (not hall.hours and hall.cutoff is None):
        return None
    local = t.astimezone(ZoneInfo(tz))
    now = local.time().replace(second=0, microsecond=0)
    if hall.hours and not workdays.is_workday(local.date()):
        return "not_workday"
    if hall.cutoff is not None and now >= hall.cutoff:
        return "after_cutoff"
    if hall.hours:
        if any(a <= now < b for a, b in hall.hours):
            return None
        if now < hall.hours[0][0]:
            return "before_hours"
        if now >= hall.hours[-1][1]:
            return "after_hours"
        return "between_hours"
    return None


def check_open(halls: dict[str, QueueHall], queue: str, t: dt.datetime, tz: str, lang: str) -> None:
    """Raise a 409 naming ``queue`` when it takes no ticket at ``t``."""
    hall = halls.get(queue)
    reason = closed_reason(hall, t, tz)
    if reason is None or hall is None:
        return
    hours = hall.hours_text
    msg = CLOSED_TEXTS[reason].text(lang)
    detail = []
    if hours:
        shown = hours.replace(",", ", " if lang == "en" else "、")
        detail.append(_("取号时间 {hours}", lang, hours=shown))
    if hall.cutoff is not None:
        cutoff = hall.cutoff.strftime("%H:%M")
        detail.append(_("{time} 停止取号", lang, time=cutoff))
    if detail:
        en = lang == "en"
        inner = ("; " if en else "；").join(detail)
        msg += f" ({inner})" if en else f"（{inner}）"
    raise Conflict(msg, field="queue", code="queue_closed")


Windows = list[tuple[int, list[str]]]


def hall_windows(db: sqlite_utils.Database) -> Windows:
    """The number and queues of every window not closed for good."""
    return [
        (int(number), json.loads(queues))
        for number, queues in db.execute(
            "SELECT number, queues FROM windows WHERE status != 'closed' ORDER BY number"
        ).fetchall()
    ]


def where_text(halls: dict[str, QueueHall], windows: Windows, queue: str, lang: str) -> str:
    """Where a citizen of ``queue`` waits, in ``lang``: the setting (``where_en`` on English
    pages when set), else the windows serving the queue (a 综合窗口 serves every queue)."""
    hall = halls.get(queue)
    if hall is not None and (hall.where_zh or hall.where_en):
        if lang == "en":
            return hall.where_en or hall.where_zh
        return hall.where_zh or hall.where_en
    numbers = [n for n, qs in windows if "*" in qs or queue in qs]
    if not numbers:
        return ""
    sep = ", " if lang == "en" else "、"
    return _("请到 {windows} 号窗口附近等候", lang, windows=sep.join(map(str, numbers)))


def kiosk_state(halls: dict[str, QueueHall], queue: str, t: dt.datetime, tz: str) -> dict[str, Any]:
    """What the kiosk's button of ``queue`` shows: open or why not, hours and cut-off."""
    hall = halls.get(queue)
    reason = closed_reason(hall, t, tz)
    return {
        "open": reason is None,
        "closed_reason": reason,
        "hours": hall.hours_text if hall else "",
        "cutoff": f"{hall.cutoff:%H:%M}" if hall and hall.cutoff else "",
    }
