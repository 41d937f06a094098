"""The figures a center is judged by, defined once for the node's overview and the hub's
rollups: both read the same signed log, so both must count it the same way.

Every function here is pure and cheap (the hub calls them for each record it ingests): it
looks at an event's body or at a few values, never at a table.

- **Visit** (跑一次): a ``case.visit`` record of an applicant in person at the window
  (``channel`` ``window``, :func:`is_visit`).  A supplement or a result by post, online or
  courier is no visit.
- **At most one visit** (最多跑一次): a case handed over (``case.handed_over``) after at most
  one visit (:func:`at_most_once`); the share is over the cases handed over
  (:func:`share`).
- **Wait**: seconds from a ticket's ``ticket.issued`` to its *first* ``ticket.called``,
  counted on the day of that call (:func:`wait_seconds`).
- **Service time**: seconds from a ticket's *latest* ``ticket.called`` to its
  ``ticket.finished``, counted on the day of the finish (:func:`service_seconds`).
- **On time** (按期办结): a case decided (``case.approved`` / ``case.rejected``) on or before
  its promised deadline (:func:`on_time`); a decision is late when its record says
  ``on_time`` false (:func:`decided_late`).  The on-time share is over the decisions.
- **Backlog** (在办): cases in :data:`OPEN_STATES`, accepted and not yet decided.
- **Overdue** (超期在办): a case of the backlog whose promised deadline is before the day it
  stands at (:func:`overdue`): today while its clock runs, the day its clock stopped while
  it waits for supplementary materials (:func:`paused_overdue`).
- **Satisfaction** (满意率): the share of ratings at levels 4 (满意) and 5 (非常满意),
  :data:`SATISFIED_LEVELS` (:func:`satisfaction`).  The *not-bad share* counts every rating
  that is not one of the two bad levels (:data:`BAD_LEVELS`, the ones that open a
  follow-up, :func:`not_bad_share`).  A rating whose clerk's appeal an administrator upheld
  (``rating.appeal_decided`` with ``decision`` ``upheld``, :func:`appeal_excludes`) counts in
  no rating figure: not in the total, the levels, the average or the shares
  (:func:`counts_in_figures`); a follow-up rating (追评) changes no figure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

#: The channel of a visit: the applicant in person at the window.
VISIT_CHANNEL = "window"
#: Case states of the backlog (在办): the deadline clock concerns these.
OPEN_STATES = ("accepted", "supplement")
#: Rating levels, 1 (非常不满意) to 5 (非常满意).
LEVELS = (1, 2, 3, 4, 5)
#: Levels that count as satisfied (满意率).
SATISFIED_LEVELS = (4, 5)
#: The bad levels: they open a follow-up (差评回访整改).
BAD_LEVELS = (1, 2)
#: The appeal decision that takes a rating out of the figures (申诉成立).
APPEAL_UPHELD = "upheld"
#: Digits of a share, and of an average level.
SHARE_DIGITS = 4
AVERAGE_DIGITS = 2


# --------------------------------------------------------------------------- visits


def is_visit(body: Mapping[str, Any]) -> bool:
    """Whether a ``case.visit`` record is a visit: ``channel`` ``window``; a record from
    before channels, unless it is a supplement without a ticket (sent, not brought)."""
    if "channel" in body:
        return bool(body["channel"] == VISIT_CHANNEL)
    return not (body.get("purpose") == "supplement" and body.get("ticket_no") is None)


def at_most_once(visits: int | None) -> bool:
    """Whether a case handed over after ``visits`` visits counts as 最多跑一次."""
    return isinstance(visits, int) and visits <= 1


# --------------------------------------------------------------------------- tickets


def _instant(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def seconds(start: str | None, end: str | None) -> int | None:
    """Whole seconds from ``start`` to ``end`` (ISO 8601 instants); None when either is
    missing or unreadable, or ``end`` comes first."""
    if not start or not end:
        return None
    try:
        s = int(round((_instant(end) - _instant(start)).total_seconds()))
    except ValueError:
        return None
    return s if s >= 0 else None


def wait_seconds(issued_at: str | None, first_called_at: str | None) -> int | None:
    """A ticket's wait: from its issue to its first call."""
    return seconds(issued_at, first_called_at)


def service_seconds(latest_called_at: str | None, finished_at: str | None) -> int | None:
    """A ticket's service time: from its latest call to its finish."""
    return seconds(latest_called_at, finished_at)


def mean_seconds(total: int, n: int) -> int | None:
    """An average wait or service time in whole seconds (None without any)."""
    return round(total / n) if n else None


# --------------------------------------------------------------------------- cases


def on_time(decided: dt.date, promised: dt.date) -> bool:
    """Whether a case decided on ``decided`` kept its promised deadline."""
    return decided <= promised


def decided_late(body: Mapping[str, Any]) -> bool:
    """Whether a ``case.approved`` / ``case.rejected`` record is a late decision."""
    return body.get("on_time") is False


def overdue(deadline: dt.date | str, as_of: dt.date | str) -> bool:
    """Whether a case of the backlog standing at ``as_of`` is past its promised deadline.
    Dates or ISO dates (``YYYY-MM-DD`` compare as text)."""
    if isinstance(deadline, str) or isinstance(as_of, str):
        return str(as_of) > str(deadline)
    return as_of > deadline


def paused_overdue(deadline: str, paused_day: str) -> bool:
    """Whether a case whose clock stopped on ``paused_day`` stays overdue while paused: its
    status is frozen at that day."""
    return overdue(deadline, paused_day)


# --------------------------------------------------------------------------- shares


def share(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to :data:`SHARE_DIGITS` (None when ``whole`` is 0)."""
    return round(part / whole, SHARE_DIGITS) if whole else None


def at_most_once_share(one_visit: int, handed_over: int) -> float | None:
    """Cases handed over after at most one visit / cases handed over."""
    return share(one_visit, handed_over)


def on_time_share(decided: int, late: int) -> float | None:
    """Decisions on time / decisions."""
    return share(decided - late, decided)


def ratings(by_level: Mapping[int, int]) -> dict[str, Any]:
    """The rating figures from counts per level (levels outside 1..5 are ignored)."""
    counts = {lv: int(by_level.get(lv) or 0) for lv in LEVELS}
    total = sum(counts.values())
    bad = sum(counts[lv] for lv in BAD_LEVELS)
    score = sum(lv * n for lv, n in counts.items())
    return {
        "total": total,
        "bad": bad,
        "satisfaction": satisfaction(counts),
        "not_bad_share": share(total - bad, total),
        "average": round(score / total, AVERAGE_DIGITS) if total else None,
    }


def counts_in_figures(appeal_state: str | None) -> bool:
    """Whether a rating whose appeal stands at ``appeal_state`` (None: never appealed; open,
    upheld or rejected) counts in the rating figures: all but the upheld."""
    return appeal_state != APPEAL_UPHELD


def appeal_excludes(body: Mapping[str, Any]) -> bool:
    """Whether a ``rating.appeal_decided`` record takes its rating out of the figures."""
    return not counts_in_figures(body.get("decision"))


def satisfaction(by_level: Mapping[int, int]) -> float | None:
    """满意率: ratings at :data:`SATISFIED_LEVELS` / ratings."""
    total = sum(int(by_level.get(lv) or 0) for lv in LEVELS)
    return share(sum(int(by_level.get(lv) or 0) for lv in SATISFIED_LEVELS), total)


def not_bad_share(by_level: Mapping[int, int]) -> float | None:
    """Ratings not at :data:`BAD_LEVELS` / ratings."""
    total = sum(int(by_level.get(lv) or 0) for lv in LEVELS)
    return share(total - sum(int(by_level.get(lv) or 0) for lv in BAD_LEVELS), total)
