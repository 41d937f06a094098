"""Dashboard rollups, maintained as records arrive.

:func:`apply` runs inside ingest's store step (the same ``BEGIN IMMEDIATE`` transaction that
stores the records), so the figures never disagree with the records the hub holds.
:func:`rebuild` recomputes everything from the ``records`` table (``onestop hub rollups
rebuild``; also after an upgrade that changes how figures are counted) and
:func:`bulk_load` feeds records from any iterator (benchmarks generating a large hub).

Tables (created by migration ``002_dashboards`` in :mod:`hub.db`):

``rollup_day_item (area, self, day, dept, item, <counters>)`` and
``rollup_day (area, self, day, <counters>)``
    ``area`` is a division code, ``self`` 1 for the center at exactly that code and 0 for
    every center whose code starts with it (the subtree, the center itself included): a
    record of node 370102001 adds to ``(370102001, 1)`` and to ``(37, 0)``, ``(3701, 0)``,
    ``(370102, 0)``, ``(370102001, 0)``.  ``day`` is the local date (the hub's
    ``timezone``, Asia/Shanghai) of the event's ``at``.  Counters (:data:`METRICS`):

    - ``tickets_issued`` / ``tickets_called`` (first call only) / ``tickets_finished`` /
      ``tickets_no_show`` / ``tickets_expired`` (the day closed on the ticket while it
      waited, was called or suspended: neither served nor no-show, counted on the day of the
      close); ``wait_sum``/``wait_n`` seconds from issue to first call (on the
      day of the call), ``service_sum``/``service_n`` seconds from the latest call to finish.
    - ``cases_received`` (``case.opened``, every kind), ``cases_accepted``,
      ``cases_completed`` = ``cases_approved`` + ``cases_rejected`` (办结: the decision),
      ``cases_late`` (decided after the promised deadline: ``on_time`` false),
      ``cases_delivered`` (``case.handed_over``) and ``cases_one_visit`` (handed over after
      at most one visit: 最多跑一次), ``complaints`` (cases of kind ``complaint``).  Visits
      are the case's ``case.visit`` records (:func:`sync.figures.is_visit`): only an
      applicant in person at the window; a supplement or result by post, online or courier
      is no visit.  Every rule of a figure is :mod:`sync.figures`, shared with the node.
    - ``rating_1`` … ``rating_5`` (``rating.given``; a ``rating.appeal_decided`` that upholds
      the clerk's appeal takes its rating back out, on the day it was given:
      :func:`sync.figures.appeal_excludes`), ``followups_opened``,
      ``followups_closed``, ``followups_late`` (closed after their due date).

    Tickets count under their queue's department (``dept:edu`` → ``edu``; an area queue
    under the lead department of the ticket's service item, from the latest catalog) and
    item; cases under their lead department and first item; ratings and follow-ups under
    the rated case or visit.

``rollup_open (area, self, dept, item, deadline, n)``
    Cases accepted and not yet decided (在办), by promised deadline (``9999-12-31`` while
    the clock is paused for supplementary materials, unless it stopped when the case was
    already overdue: the status freezes at that day).  Overdue = deadline before today
    (:func:`sync.figures.overdue`), read against the clock at page time.

``rollup_tickets``, ``rollup_cases``, ``rollup_followups``
    Per-entity state the counters need (issue and call times, a case's department, item,
    state, deadline key and visits so far).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from hub import catalog as catalogm
from hub import db as hubdb
from sync import figures

METRICS = hubdb.ROLLUP_METRICS
_IDX = {m: i for i, m in enumerate(METRICS)}
PAUSED = "9999-12-31"
DEFAULT_TZ = "Asia/Shanghai"
TZ_META = "rollups.timezone"
CODE_LENGTHS = (2, 4, 6, 9)
FLUSH_EVERY = 50_000

#: Record kinds that change a figure (others are skipped cheaply).
KINDS = frozenset({
    "ticket.issued", "ticket.called", "ticket.finished", "ticket.no_show", "ticket.expired",
    "case.opened", "case.accepted", "case.supplement_requested", "case.supplemented",
    "case.approved", "case.rejected", "case.handed_over", "case.visit",
    "rating.given", "rating.appeal_decided", "followup.opened", "followup.closed",
})  # fmt: skip


def areas(code: str) -> list[str]:
    """The division codes whose subtree holds ``code``: its prefixes, then itself."""
    return [code[:n] for n in CODE_LENGTHS if n < len(code)] + [code]


def timezone(db: sqlite_utils.Database) -> str:
    return hubdb.get_meta(db, TZ_META) or DEFAULT_TZ


def _parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- catalog lookups


def _lead_departments(catalog: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for it in catalog.get("items") or []:
        if isinstance(it, dict) and it.get("code") and it.get("departments"):
            out[str(it["code"])] = str(it["departments"][0])
    return out


_catalog_cache: dict[str, Any] = {"id": None, "items": {}}


def item_departments(db: sqlite_utils.Database) -> dict[str, str]:
    """Service item code -> lead department, from the latest published catalog (else the
    catalog onestop ships)."""
    cid = catalogm.latest_id(db)
    key = (hubdb.database_file(db), cid)
    if _catalog_cache["id"] != key:
        items = _lead_departments(catalogm.seed())
        if cid:
            items.update(_lead_departments(catalogm.catalog_at(db, cid)))
        _catalog_cache.update(id=key, items=items)
    return dict(_catalog_cache["items"])


# --------------------------------------------------------------------------- the processor


class Rollup:
    """Turns records into counter deltas and entity state, and writes them (:meth:`flush`).

    Entity state is read through from the database and cached; deltas are summed in memory
    until :meth:`flush`.  Must be used inside one write transaction.
    """

    def __init__(self, db: sqlite_utils.Database, tz: str | None = None) -> None:
        self.db = db
        self.tz = ZoneInfo(tz or timezone(db))
        self.deltas: dict[tuple[str, str, str, str], list[int]] = {}
        self.open: dict[tuple[str, str, str, str], int] = {}
        self.tickets: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.ticket_nos: dict[tuple[str, str], str] = {}
        self.cases: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.followups: dict[tuple[str, str], tuple[str, str]] = {}
        self.dirty_tickets: set[tuple[str, str]] = set()
        self.dirty_cases: set[tuple[str, str]] = set()
        self.dirty_followups: set[tuple[str, str]] = set()
        self.newest: dict[str, str] = {}
        self.items = item_departments(db)
        self.pending = 0
        self._days: dict[str, str] = {}

    # -- helpers ---------------------------------------------------------------------------
    def day(self, at: str) -> str:
        key = at[:16] if at.endswith("Z") else at
        d = self._days.get(key)
        if d is None:
            d = _parse(at).astimezone(self.tz).date().isoformat()
            if len(self._days) > 100_000:
                self._days.clear()
            self._days[key] = d
        return d

    def add(self, node: str, at: str, dept: str, item: str, **counts: int) -> None:
        key = (node, self.day(at), dept, item)
        vec = self.deltas.get(key)
        if vec is None:
            vec = self.deltas[key] = [0] * len(METRICS)
        for name, n in counts.items():
            vec[_IDX[name]] += n

    def move_open(self, node: str, dept: str, item: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        if old is not None:
            k = (node, dept, item, old)
            self.open[k] = self.open.get(k, 0) - 1
        if new is not None:
            k = (node, dept, item, new)
            self.open[k] = self.open.get(k, 0) + 1

    def ticket(self, node: str, tid: str) -> dict[str, Any] | None:
        key = (node, tid)
        if key not in self.tickets:
            self.tickets[key] = hubdb.one(
                self.db,
                "SELECT ticket_no, dept, item, issued_at, called_at, served_at FROM "
                "rollup_tickets WHERE node = ? AND ticket_id = ?",
                [node, tid],
            )
        return self.tickets[key]

    def ticket_by_no(self, node: str, ticket_no: str | None, at: str) -> tuple[str, str]:
        """(dept, item) of the latest ticket with this number issued by ``at``."""
        if not ticket_no:
            return "", ""
        tid = self.ticket_nos.get((node, ticket_no))
        cached = self.tickets.get((node, tid)) if tid else None
        if cached is not None and (cached["issued_at"] or "") <= at:
            return cached["dept"], cached["item"]
        row = hubdb.one(
            self.db,
            "SELECT dept, item FROM rollup_tickets WHERE node = ? AND ticket_no = ? AND "
            "issued_at <= ? ORDER BY issued_at DESC LIMIT 1",
            [node, ticket_no, at],
        )
        return (row["dept"], row["item"]) if row else ("", "")

    def put_ticket(self, node: str, tid: str, state: dict[str, Any]) -> None:
        self.tickets[(node, tid)] = state
        self.ticket_nos[(node, state["ticket_no"])] = tid
        self.dirty_tickets.add((node, tid))

    def case(self, node: str, case_no: str | None) -> dict[str, Any] | None:
        if not case_no:
            return None
        key = (node, case_no)
        if key not in self.cases:
            self.cases[key] = hubdb.one(
                self.db,
                "SELECT dept, item, kind, state, deadline, visits FROM rollup_cases WHERE node = ? "
                "AND case_no = ?",
                [node, case_no],
            )
        return self.cases[key]

    def _case_or_new(self, node: str, case_no: str) -> dict[str, Any]:
        c = self.case(node, case_no)
        if c is None:  # a case the hub never saw opened (should not happen: logs are whole)
            c = {"dept": "", "item": "", "kind": "", "state": "pending_materials",
                 "deadline": None, "visits": None}  # fmt: skip
            self.cases[(node, case_no)] = c
        self.dirty_cases.add((node, case_no))
        return c

    def rated(self, node: str, body: Mapping[str, Any], at: str) -> tuple[str, str]:
        c = self.case(node, body.get("case_no"))
        if c is not None:
            return c["dept"], c["item"]
        return self.ticket_by_no(node, body.get("ticket_no"), at)

    # -- records ---------------------------------------------------------------------------
    def record(
        self, node: str, kind: str, entity_id: str, at: str, body: Mapping[str, Any]
    ) -> None:
        newest = self.newest.get(node)
        if newest is None or at > newest:
            self.newest[node] = at
        if kind not in KINDS:
            return
        self.pending += 1
        getattr(self, "_" + kind.replace(".", "_"))(node, entity_id, at, body)

    def _ticket_issued(self, node: str, tid: str, at: str, b: Mapping[str, Any]) -> None:
        queue = str(b.get("queue") or "")
        item = str(b.get("item") or "")
        dept = queue[5:] if queue.startswith("dept:") else self.items.get(item, "")
        self.put_ticket(node, tid, {"ticket_no": str(b.get("ticket_no") or ""), "dept": dept,
                                    "item": item, "issued_at": at, "called_at": None,
                                    "served_at": None})  # fmt: skip
        self.add(node, at, dept, item, tickets_issued=1)

    def _known_ticket(self, node: str, tid: str, b: Mapping[str, Any]) -> dict[str, Any]:
        t = self.ticket(node, tid)
        if t is None:
            queue = str(b.get("queue") or "")
            t = {"ticket_no": str(b.get("ticket_no") or ""),
                 "dept": queue[5:] if queue.startswith("dept:") else "", "item": "",
                 "issued_at": None, "called_at": None, "served_at": None}  # fmt: skip
        else:
            t = dict(t)
        return t

    def _ticket_called(self, node: str, tid: str, at: str, b: Mapping[str, Any]) -> None:
        t = self._known_ticket(node, tid, b)
        if t["called_at"] is None:
            t["called_at"] = at
            wait = figures.wait_seconds(t["issued_at"], at)
            counts = {"tickets_called": 1}
            if wait is not None:
                counts.update(wait_sum=wait, wait_n=1)
            self.add(node, at, t["dept"], t["item"], **counts)
        t["served_at"] = at
        self.put_ticket(node, tid, t)

    def _ticket_finished(self, node: str, tid: str, at: str, b: Mapping[str, Any]) -> None:
        t = self._known_ticket(node, tid, b)
        counts = {"tickets_finished": 1}
        service = figures.service_seconds(t["served_at"], at)
        if service is not None:
            counts.update(service_sum=service, service_n=1)
        self.add(node, at, t["dept"], t["item"], **counts)

    def _ticket_no_show(self, node: str, tid: str, at: str, b: Mapping[str, Any]) -> None:
        t = self._known_ticket(node, tid, b)
        self.add(node, at, t["dept"], t["item"], tickets_no_show=1)

    def _ticket_expired(self, node: str, tid: str, at: str, b: Mapping[str, Any]) -> None:
        t = self._known_ticket(node, tid, b)
        self.add(node, at, t["dept"], t["item"], tickets_expired=1)

    def _case_opened(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        case_no = str(b.get("case_no") or eid)
        depts, items = b.get("departments") or [""], b.get("items") or [""]
        c: dict[str, Any] = {"dept": str(depts[0]), "item": str(items[0]),
                             "kind": str(b.get("kind") or ""), "state": "pending_materials",
                             "deadline": None, "visits": 0}  # fmt: skip
        self.cases[(node, case_no)] = c
        self.dirty_cases.add((node, case_no))
        counts = {"cases_received": 1}
        if c["kind"] == "complaint":
            counts["complaints"] = 1
        self.add(node, at, c["dept"], c["item"], **counts)

    def _case_accepted(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        new = str(b.get("promised_deadline") or PAUSED)
        self.move_open(node, c["dept"], c["item"], c["deadline"], new)
        c.update(state="accepted", deadline=new)
        self.add(node, at, c["dept"], c["item"], cases_accepted=1)

    def _case_supplement_requested(
        self, node: str, eid: str, at: str, b: Mapping[str, Any]
    ) -> None:
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        if c["deadline"] is not None:
            # The status freezes at the day the clock stops: overdue then, overdue while paused.
            day = str(b.get("paused_date") or self.day(at))
            stays = c["deadline"] != PAUSED and figures.paused_overdue(c["deadline"], day)
            new = c["deadline"] if stays else PAUSED
            self.move_open(node, c["dept"], c["item"], c["deadline"], new)
            c.update(state="supplement", deadline=new)

    def _case_supplemented(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        if b.get("from_state") != "supplement":
            return  # from pending materials a case.accepted follows; 容缺 catch-up: no change
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        if c["deadline"] is not None:
            new = str(b.get("promised_deadline") or c["deadline"])
            self.move_open(node, c["dept"], c["item"], c["deadline"], new)
            c.update(state="accepted", deadline=new)

    def _decided(self, node: str, eid: str, at: str, b: Mapping[str, Any], outcome: str) -> None:
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        self.move_open(node, c["dept"], c["item"], c["deadline"], None)
        c.update(state=outcome, deadline=None)
        counts = {"cases_completed": 1, f"cases_{outcome}": 1}
        if figures.decided_late(b):
            counts["cases_late"] = 1
        self.add(node, at, c["dept"], c["item"], **counts)

    def _case_approved(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        self._decided(node, eid, at, b, "approved")

    def _case_rejected(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        self._decided(node, eid, at, b, "rejected")

    def _case_handed_over(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        c["state"] = "delivered"
        visits = c.get("visits")
        if not visits:  # no case.visit seen (a case known before the hub counted them)
            visits = b.get("visits")
        one = figures.at_most_once(visits)
        self.add(node, at, c["dept"], c["item"], cases_delivered=1, cases_one_visit=int(one))

    def _case_visit(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        if not figures.is_visit(b):
            return
        c = self._case_or_new(node, str(b.get("case_no") or eid))
        if c.get("visits") is not None:
            c["visits"] += 1

    def _rating_given(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        level = b.get("level")
        if isinstance(level, bool) or level not in figures.LEVELS:
            return
        dept, item = self.rated(node, b, at)
        self.add(node, at, dept, item, **{f"rating_{level}": 1})

    def _rating_appeal_decided(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        level = b.get("level")
        if not figures.appeal_excludes(b) or isinstance(level, bool) or level not in figures.LEVELS:
            return
        rated_at = str(b.get("rated_at") or at)
        dept, item = self.rated(node, b, rated_at)
        self.add(node, rated_at, dept, item, **{f"rating_{level}": -1})

    def _followup_opened(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        dept, item = self.rated(node, b, at)
        fid = str(b.get("followup_id") or eid)
        self.followups[(node, fid)] = (dept, item)
        self.dirty_followups.add((node, fid))
        self.add(node, at, dept, item, followups_opened=1)

    def _followup_closed(self, node: str, eid: str, at: str, b: Mapping[str, Any]) -> None:
        fid = str(b.get("followup_id") or eid)
        ref = self.followups.get((node, fid))
        if ref is None:
            row = hubdb.one(
                self.db,
                "SELECT dept, item FROM rollup_followups WHERE node = ? AND followup_id = ?",
                [node, fid],
            )
            ref = (row["dept"], row["item"]) if row else self.rated(node, b, at)
        late = int(b.get("on_time") is False)
        self.add(node, at, ref[0], ref[1], followups_closed=1, followups_late=late)

    # -- writing ---------------------------------------------------------------------------
    def flush(self) -> None:
        db = self.db
        if self.dirty_tickets:
            db.conn.executemany(
                "INSERT OR REPLACE INTO rollup_tickets (node, ticket_id, ticket_no, dept, item, "
                "issued_at, called_at, served_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(n, tid, t["ticket_no"], t["dept"], t["item"], t["issued_at"], t["called_at"],
                  t["served_at"])
                 for (n, tid) in self.dirty_tickets
                 if (t := self.tickets[(n, tid)]) is not None],
            )  # fmt: skip
        if self.dirty_cases:
            db.conn.executemany(
                "INSERT OR REPLACE INTO rollup_cases (node, case_no, dept, item, kind, state, "
                "deadline, visits) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(n, no, c["dept"], c["item"], c["kind"], c["state"], c["deadline"],
                  c.get("visits"))
                 for (n, no) in self.dirty_cases
                 if (c := self.cases[(n, no)]) is not None],
            )  # fmt: skip
        if self.dirty_followups:
            db.conn.executemany(
                "INSERT OR REPLACE INTO rollup_followups (node, followup_id, dept, item) "
                "VALUES (?, ?, ?, ?)",
                [(n, fid, *self.followups[(n, fid)]) for (n, fid) in self.dirty_followups],
            )
        write_deltas(db, self.deltas)
        write_open(db, self.open)
        if self.newest:
            db.conn.executemany(
                "UPDATE nodes SET newest_at = ? WHERE code = ? AND "
                "(newest_at IS NULL OR newest_at < ?)",
                [(at, node, at) for node, at in self.newest.items()],
            )
        self.deltas, self.open, self.newest = {}, {}, {}
        self.dirty_tickets, self.dirty_cases, self.dirty_followups = set(), set(), set()
        self.pending = 0

    def forget(self) -> None:
        """Drop cached entity state (after a flush; bounds memory on long loads)."""
        self.tickets.clear()
        self.ticket_nos.clear()
        self.cases.clear()
        self.followups.clear()


_COLS = ", ".join(METRICS)
_QS = ", ".join("?" * len(METRICS))
_ADD = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)


def tree_rows(node: str) -> list[tuple[str, int]]:
    """The (area, self) rows a node's figures add to."""
    return [(node, 1)] + [(a, 0) for a in areas(node)]


def _sum_into(store: dict[Any, list[int]], key: Any, vec: Sequence[int]) -> None:
    acc = store.get(key)
    if acc is None:
        store[key] = list(vec)
    else:
        for i, v in enumerate(vec):
            if v:
                acc[i] += v


def write_deltas(
    db: sqlite_utils.Database, deltas: Mapping[tuple[str, str, str, str], Sequence[int]]
) -> None:
    """Add per-node deltas ``{(node, day, dept, item): counters}`` to the node's own rows and
    to every subtree row above it (:func:`tree_rows`)."""
    fine: dict[tuple[str, int, str, str, str], list[int]] = {}
    daily: dict[tuple[str, int, str], list[int]] = {}
    for (node, day, dept, item), vec in deltas.items():
        for area, own in tree_rows(node):
            _sum_into(fine, (area, own, day, dept, item), vec)
            _sum_into(daily, (area, own, day), vec)
    if fine:
        db.conn.executemany(
            f"INSERT INTO rollup_day_item (area, self, day, dept, item, {_COLS}) VALUES "
            f"(?, ?, ?, ?, ?, {_QS}) ON CONFLICT (area, self, day, dept, item) DO UPDATE SET "
            f"{_ADD}",
            [(*k, *v) for k, v in fine.items()],
        )
    if daily:
        db.conn.executemany(
            f"INSERT INTO rollup_day (area, self, day, {_COLS}) VALUES (?, ?, ?, {_QS}) "
            f"ON CONFLICT (area, self, day) DO UPDATE SET {_ADD}",
            [(*k, *v) for k, v in daily.items()],
        )


def write_open(db: sqlite_utils.Database, moves: Mapping[tuple[str, str, str, str], int]) -> None:
    """Add ``{(node, dept, item, deadline): change}`` to ``rollup_open`` up the tree."""
    rows: dict[tuple[str, int, str, str, str], int] = {}
    for (node, dept, item, deadline), n in moves.items():
        if not n:
            continue
        for area, own in tree_rows(node):
            k = (area, own, dept, item, deadline)
            rows[k] = rows.get(k, 0) + n
    rows = {k: n for k, n in rows.items() if n}
    if not rows:
        return
    db.conn.executemany(
        "INSERT INTO rollup_open (area, self, dept, item, deadline, n) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (area, self, dept, item, deadline) DO UPDATE SET n = n + excluded.n",
        [(*k, n) for k, n in rows.items()],
    )
    db.conn.executemany(
        "DELETE FROM rollup_open WHERE area = ? AND self = ? AND dept = ? AND item = ? AND "
        "deadline = ? AND n = 0",
        list(rows),
    )


# --------------------------------------------------------------------------- entry points


def apply(db: sqlite_utils.Database, code: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Count verified records of node ``code`` (wire format, ``record["event"]``) into the
    rollups.  Call inside the transaction that stores them (:func:`hub.ingest.store.insert_records`)."""
    r = Rollup(db)
    for rec in records:
        ev = rec["event"]
        body = ev.get("body")
        r.record(code, ev["kind"], str(ev["entity_id"]), ev["at"],
                 body if isinstance(body, Mapping) else {})  # fmt: skip
    r.flush()


Row = tuple[str, str, str, str, Any]  # node, at, kind, entity_id, body (JSON text or dict)


def bulk_load(db: sqlite_utils.Database, records: Iterable[Row | Mapping[str, Any]],
              tz: str | None = None) -> int:  # fmt: skip
    """Add records to the rollups in one transaction; returns how many were read.

    ``records`` yields ``(node, at, kind, entity_id, body)`` tuples (``body`` JSON text or a
    dict) or wire records (``{"node", "event": {...}}``), each node's in seq order.  Existing
    rollups are added to, not replaced (see :func:`rebuild`).
    """
    n = 0
    with hubdb.tx(db):
        r = Rollup(db, tz)
        for rec in records:
            if isinstance(rec, Mapping):
                ev = rec["event"]
                node, at, kind, eid, body = rec["node"], ev["at"], ev["kind"], ev["entity_id"], ev[
                    "body"]  # fmt: skip
            else:
                node, at, kind, eid, body = rec
            n += 1
            if kind not in KINDS:
                r.record(node, kind, str(eid), at, {})
                continue
            if isinstance(body, str):
                try:
                    body = json.loads(body)
                except ValueError:
                    body = {}
            r.record(node, kind, str(eid), at, body if isinstance(body, Mapping) else {})
            if r.pending >= FLUSH_EVERY:
                r.flush()
                r.forget()
        r.flush()
    return n


ROLLUP_TABLES = ("rollup_day_item", "rollup_day", "rollup_open", "rollup_tickets",
                 "rollup_cases", "rollup_followups")  # fmt: skip


def stored_rows(db: sqlite_utils.Database, page: int = 20_000) -> Iterator[Row]:
    """Every stored record as a :data:`Row`, node by node in seq order."""
    for (node,) in db.execute("SELECT code FROM nodes ORDER BY code").fetchall():
        after = 0
        while True:
            chunk = db.execute(
                "SELECT seq, at, kind, entity_id, body FROM records WHERE node = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                [node, after, page],
            ).fetchall()
            if not chunk:
                break
            for _seq, at, kind, eid, body in chunk:
                yield node, at, kind, eid, body if kind in KINDS else None
            after = chunk[-1][0]


def rebuild(db: sqlite_utils.Database, tz: str | None = None) -> int:
    """Recompute every rollup from the ``records`` table (one transaction); returns the
    number of records read.  ``tz`` (default: the time zone the rollups were made with, else
    Asia/Shanghai) becomes the rollups' time zone."""
    with hubdb.tx(db):
        zone = tz or timezone(db)
        ZoneInfo(zone)
        for t in ROLLUP_TABLES:
            db.execute(f"DELETE FROM {t}")
        db.execute("UPDATE nodes SET newest_at = NULL")
        hubdb.set_meta(db, TZ_META, zone)
        return bulk_load(db, stored_rows(db), zone)


def snapshot(db: sqlite_utils.Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row, sorted (tests compare incremental and rebuilt rollups)."""
    out = {}
    for t in ROLLUP_TABLES:
        rows = [tuple(r) for r in db.execute(f"SELECT * FROM {t}").fetchall()]
        if t == "rollup_open":
            rows = [r for r in rows if r[-1]]
        out[t] = sorted(rows, key=repr)
    out["newest_at"] = sorted(
        tuple(r) for r in db.execute("SELECT code, newest_at FROM nodes").fetchall()
    )
    return out
