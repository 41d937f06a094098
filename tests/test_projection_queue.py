"""The queue's tables are projections of the signed log: a day of tickets (issued, called,
recalled, finished, no-show, suspended, resumed, transferred, priority, expired at the day's
close), appointments (booked, cancelled, checked in), pre-applications (submitted, used) and
windows, driven through the node's API, rebuild from the log alone into the same rows
(``onestop node rebuild``, :mod:`node.rebuild`), personal data included through the node's
recovery key; and a restore from the hub's records gives tickets back their token, masks and
numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from node import config as cfgm
from node import daybreak, projection, rebuild, recovery, restore
from node import db as dbm
from node import pii as piim
from node import signer as signerm
from node.replication import readback
from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import (
    SCHOOL_ITEM,
    SCHOOL_MATERIALS,
    Env,
    check_events,
    check_no_plain_numbers,
    local,
)
from tests.test_restore_numbers import stale_copy

# Fixtures shared by the case tests.
env = common.env
clock = common.clock

#: The tables of the queue part: each is rebuilt row for row.
QUEUE_TABLES = ("windows", "tickets", "appointments", "preapplications")
#: The kinds of the queue part: each has a projector.
QUEUE_KINDS = (
    "ticket.issued", "ticket.called", "ticket.recalled", "ticket.finished", "ticket.no_show",
    "ticket.suspended", "ticket.resumed", "ticket.transferred", "ticket.priority_set",
    "ticket.expired", "appointment.booked", "appointment.cancelled", "appointment.checked_in",
    "preapplication.submitted", "preapplication.used", "window.created", "window.paused",
    "window.open",
)  # fmt: skip

OTHER_PHONE = "13912345678"


def assert_rebuilt(report: rebuild.RebuildReport) -> None:
    """The rebuild matches the live tables.  Every queue table must match, personal data
    compared; a table of another part of the node whose events are not projected yet (its
    rows missing from the rebuild) is allowed to differ, and then only it, with the foreign
    keys pointing at it: once every part is projected the whole report must be equal."""
    assert report.personal_compared, "the template node has no recovery key"
    assert not [f for f in report.failures if not f.startswith("foreign key:")], report.failures
    assert not set(QUEUE_KINDS) & set(report.unknown), report.unknown
    by = {t.table: t for t in report.tables}
    assert set(by) >= set(QUEUE_TABLES)
    for table in QUEUE_TABLES:
        d = by[table]
        assert d.equal, (table, d.missing[:5], d.extra[:5], d.differing[:5])
        assert d.live == d.rebuilt > 0, table
    pending = {t.table for t in report.tables if not t.equal}
    for f in report.failures:
        assert f.rsplit(" ", 1)[-1] in pending, f
    if not pending:
        assert report.equal


async def ticket_id(e: Env, token: str) -> int:
    return int(e.db.execute("SELECT id FROM tickets WHERE token = ?", [token]).fetchone()[0])


async def take(e: Env, queue: str, id_number: str, phone: str = PHONE) -> dict[str, Any]:
    body = {"queue": queue, "id_number": id_number, "phone": phone}
    out: dict[str, Any] = await e.public.ok("POST", "/api/v1/tickets", body, 201)
    return out


async def a_day_at_the_center(e: Env) -> dict[str, Any]:
    """Every queue operation once or more; returns the citizens' numbers by ticket token and
    by appointment / pre-application reference."""
    people: dict[str, tuple[str, str]] = {}

    async def ticket(queue: str, birth: str, seq: str, phone: str = PHONE) -> dict[str, Any]:
        id_number = make_id(birth, seq=seq)
        t = await take(e, queue, id_number, phone)
        people[t["token"]] = (id_number, phone)
        return t

    elderly = await ticket("dept:edu", "19400101", "111")
    assert elderly["priority_reason"] == "elderly"
    a = await ticket("dept:edu", "19850612", "222", OTHER_PHONE)
    b = await ticket("dept:edu", "19900303", "333")
    c = await ticket("dept:civil", "19750505", "444")
    d = await ticket("area:agri", "19820808", "555", OTHER_PHONE)
    late = await ticket("dept:edu", "19950909", "666")
    # Staff puts b in the priority lane, and late in it and out again.
    await e.clerk.ok("POST", f"/api/v1/tickets/{await ticket_id(e, b['token'])}/priority",
                     {"priority": True})  # fmt: skip
    lid = await ticket_id(e, late["token"])
    await e.clerk.ok("POST", f"/api/v1/tickets/{lid}/priority", {"priority": True})
    await e.clerk.ok("POST", f"/api/v1/tickets/{lid}/priority", {"priority": False})

    w = "/api/v1/windows/1"
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == elderly["ticket_no"]
    e.clock.advance(minutes=1)
    await e.clerk.ok("POST", f"{w}/recall")
    await e.clerk.ok("POST", f"{w}/recall")
    e.clock.advance(minutes=5)
    await e.clerk.ok("POST", f"{w}/finish")
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == b["ticket_no"]
    await e.clerk.ok("POST", f"{w}/suspend")
    e.clock.advance(minutes=1)
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == a["ticket_no"]
    e.clock.advance(minutes=2)
    await e.clerk.ok("POST", f"{w}/no-show")
    await e.clerk.ok("POST", f"{w}/resume", {"ticket_id": await ticket_id(e, b["token"])})
    e.clock.advance(minutes=3)
    await e.clerk.ok("POST", f"{w}/transfer", {"queue": "dept:civil"})
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == b["ticket_no"]  # in civil now, still first
    await e.clerk.ok("POST", f"{w}/suspend")  # still suspended at the day's close
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == c["ticket_no"]
    await e.clerk.ok("POST", f"{w}/transfer", {"window": 2})
    called = await e.clerk.ok("POST", f"{w}/call-next")
    assert called["ticket"]["ticket_no"] == d["ticket_no"]  # still called at the close
    await e.admin.ok("POST", "/api/v1/windows/3/pause")
    await e.admin.ok("POST", "/api/v1/windows/3/open")
    await e.admin.ok("POST", "/api/v1/windows/3/pause")

    # Appointments: one checked in today, one cancelled, one left booked.
    refs: dict[str, tuple[str, str]] = {}

    async def book(date: str, slot: str, birth: str, phone: str = PHONE) -> str:
        id_number = make_id(birth, seq="777")
        body = {"queue": "dept:edu", "date": date, "slot": slot, "id_number": id_number,
                "phone": phone, "lang": "en"}  # fmt: skip
        ref = (await e.public.ok("POST", "/api/v1/appointments", body, 201))["appointment"]["ref"]
        refs[ref] = (id_number, phone)
        return str(ref)

    today = await book("2026-09-28", "10:00", "19600101")
    cancelled = await book("2026-09-29", "09:00", "19700202", OTHER_PHONE)
    await book("2026-09-30", "14:00", "19880303")
    await e.public.ok("POST", f"/api/v1/appointments/{cancelled}/cancel")
    checked = await e.public.ok("POST", f"/api/v1/appointments/{today}/check-in", None, 201)
    assert checked["priority_reason"] == "appointment"
    people[checked["token"]] = refs[today]

    # Pre-applications: one used at the window (a walk-up case), one still submitted.
    for materials in (SCHOOL_MATERIALS, SCHOOL_MATERIALS[:5]):
        id_number = make_id("19800202", seq="888")
        body = {"id_number": id_number, "phone": PHONE, "items": [SCHOOL_ITEM],
                "materials": materials}  # fmt: skip
        pre = (await e.public.ok("POST", "/api/v1/preapplications", body, 201))["preapplication"]
        refs[pre["ref"]] = (id_number, PHONE)
    used = next(iter(r for r in refs if r.startswith("P")))
    case = await e.clerk.ok(
        "POST", "/api/v1/cases", {"preapplication_id": used, "commitment": True}, 201
    )
    assert case["case"]["preapplication"] == used

    # The day's close, just after midnight: every open ticket of the day expires.
    e.clock.set(local(2026, 9, 29, 0, 1))
    closed = daybreak.close_day(e.db, e.config, e.clock)
    assert {t["from_state"] for t in closed} == {"waiting", "called", "suspended"}
    return {"people": people, "refs": refs}


async def test_the_queue_tables_rebuild_from_the_log(env: Env) -> None:
    e = env
    data = Path(e.config.data_dir)
    assert (data / recovery.RECOVERY_KEY).exists(), "node init makes the recovery key"
    await a_day_at_the_center(e)
    check_events(e.db)
    check_no_plain_numbers(e.db)
    report = rebuild.run(data)
    for kind in QUEUE_KINDS:
        assert report.applied[kind] > 0, kind
    states = {r[0] for r in e.db.execute("SELECT DISTINCT state FROM tickets").fetchall()}
    assert states == {"done", "no_show", "expired"}, states
    assert_rebuilt(report)


async def test_rebuilt_rows_hold_the_same_people_and_tokens(env: Env, tmp_path: Path) -> None:
    """Row by row, read back: the rebuilt tickets, appointments and pre-applications keep
    their tokens, references, masks and keyed hashes, and with the recovery key their full
    numbers; a write that bypassed the log shows as a difference."""
    e = env
    data = Path(e.config.data_dir)
    seen = await a_day_at_the_center(e)
    out = tmp_path / "rebuilt.db"
    pii = piim.load(data)
    source = sqlite3.connect(data / "node.db")
    try:
        report = rebuild.rebuild_into(source, out, pii, recovery.private_key(data))
    finally:
        source.close()
    assert_rebuilt(report)
    rebuilt = sqlite3.connect(out)
    rebuilt.row_factory = sqlite3.Row
    try:
        for token, (id_number, phone) in seen["people"].items():
            row = rebuilt.execute("SELECT * FROM tickets WHERE token = ?", [token]).fetchone()
            assert row is not None, token
            live = e.db.execute("SELECT * FROM tickets WHERE token = ?", [token]).fetchone()
            assert pii.decrypt(row["id_enc"]) == id_number
            assert pii.decrypt(row["phone_enc"]) == phone
            assert row["id_hash"] == pii.keyed_hash(id_number)
            assert row["id_masked"] == live["id_masked"] == id_number[:6] + "*" * 8 + id_number[-4:]
            assert row["phone_masked"] == live["phone_masked"] == phone[:3] + "****" + phone[-4:]
            keep = ("id", "ticket_no", "state", "queue", "priority", "priority_reason",
                    "window_id", "target_window", "order_at", "created_at", "called_at",
                    "finished_at", "recalls", "lang", "seq")  # fmt: skip
            assert {k: row[k] for k in keep} == {k: live[k] for k in keep}
        for ref, (id_number, phone) in seen["refs"].items():
            table = "appointments" if ref.startswith("Y") else "preapplications"
            row = rebuilt.execute(f"SELECT * FROM {table} WHERE ref = ?", [ref]).fetchone()
            live = e.db.execute(f"SELECT * FROM {table} WHERE ref = ?", [ref]).fetchone()
            assert row is not None and dict(row).keys() == dict(live).keys(), ref
            assert pii.decrypt(row["id_enc"]) == id_number
            assert pii.decrypt(row["phone_enc"]) == phone
            plain = {k: row[k] for k in row.keys() if not k.endswith("_enc")}
            assert plain == {k: live[k] for k in plain}, ref
    finally:
        rebuilt.close()

    # A change written to a table without its event is not in the log: the rebuild says so.
    with dbm.tx(e.db) as conn:
        conn.execute("UPDATE tickets SET recalls = 9 WHERE id = 1")
    diff = {t.table: t for t in rebuild.run(data).tables}["tickets"]
    assert diff.differing == ["1: recalls live 9 != rebuilt 2"]


async def test_restore_gives_tickets_back_their_token_masks_and_numbers(
    env: Env, tmp_path: Path
) -> None:
    """The hub's records re-applied after a stale replica: with the recovery key still on the
    node the recovered tickets are the live ones, numbers included; without it they keep
    token, masks and keyed hash, and their numbers are empty."""
    e = env
    data = Path(e.config.data_dir)
    replica_with = stale_copy(data, tmp_path / "with-key")
    replica_without = stale_copy(data, tmp_path / "without-key")
    (replica_without / recovery.RECOVERY_KEY).unlink()
    head = signerm.log_size(e.db)
    seen = await a_day_at_the_center(e)
    later = signerm.load_records(e.db, after=head)
    pii = piim.load(data)

    for replica in (replica_with, replica_without):
        key = recovery.private_key(replica)
        cfgm.load(replica)  # a node directory
        db = dbm.connect(replica / "node.db")
        try:
            conn = db.conn
            report = restore.RestoreReport()
            ctx = projection.Context(pii=piim.load(replica), recovery=key, replay=True)
            conn.execute("BEGIN IMMEDIATE")
            for rec in later:
                readback.insert_record(conn, rec)
            for rec in later:
                restore.apply_records(conn, [rec], ctx, report)
            conn.execute("COMMIT")
            assert not report.failed_projections
            for kind in QUEUE_KINDS:
                if kind != "window.created":  # the windows were made before the replica
                    assert report.projected[kind] > 0, kind
            for token, (id_number, phone) in seen["people"].items():
                row = db.execute("SELECT * FROM tickets WHERE token = ?", [token]).fetchone()
                live = e.db.execute("SELECT * FROM tickets WHERE token = ?", [token]).fetchone()
                assert row is not None, token
                assert row["id_masked"] == live["id_masked"] and row["id_hash"] == live["id_hash"]
                assert row["phone_masked"] == live["phone_masked"]
                assert (row["state"], row["finished_at"]) == (live["state"], live["finished_at"])
                want = (id_number, phone) if key is not None else ("", "")
                assert (pii.decrypt(row["id_enc"]), pii.decrypt(row["phone_enc"])) == want
        finally:
            db.conn.close()


def test_event_bodies_carry_every_column(node_config: cfgm.NodeConfig) -> None:
    """A ticket issued straight through :func:`node.tickets.issue` carries in its event every
    value of its row but the encrypted numbers, which travel sealed to the recovery key."""
    from node import projection, tickets

    data = Path(node_config.data_dir)
    db = dbm.connect(data / "node.db")
    try:
        pii = piim.load(data)
        t0 = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)
        id_number = make_id("19400101")
        issued = tickets.issue(
            db, node_config, pii, {"queue": "dept:edu", "id_number": id_number,
                                   "phone": PHONE, "lang": "en"}, lambda: t0,
        )  # fmt: skip
        body = json.loads(
            db.execute("SELECT body FROM events WHERE kind = 'ticket.issued'").fetchone()[0]
        )
        t = issued.ticket
        assert body["token"] == t["token"] and body["seq"] == t["seq"] and body["lang"] == "en"
        assert body["id_masked"] == t["id_masked"] and body["phone_masked"] == t["phone_masked"]
        assert body["id_hash"] == t["id_hash"] == pii.keyed_hash(id_number)
        assert id_number not in json.dumps(body) and PHONE not in json.dumps(body)
        key = recovery.private_key(data)
        assert key is not None
        ctx = projection.Context(recovery=key)
        assert ctx.plain(body, "id") == id_number and ctx.plain(body, "phone") == PHONE
    finally:
        db.conn.close()


@pytest.mark.parametrize("kind", ["ticket.called", "ticket.finished", "appointment.cancelled"])
def test_an_event_for_a_missing_row_fails_its_replay(kind: str) -> None:
    """A projector never creates what an earlier event did not: the replay reports it."""
    from node import projection

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE windows (id INTEGER PRIMARY KEY, number INTEGER)")
    conn.execute("INSERT INTO windows VALUES (1, 1)")
    conn.execute(
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, state TEXT, window_id INTEGER, "
        "target_window INTEGER, called_at TEXT, finished_at TEXT, recalls INTEGER)"
    )
    conn.execute(
        "CREATE TABLE appointments (id INTEGER PRIMARY KEY, state TEXT, cancelled_at TEXT)"
    )
    ev = {"seq": 1, "at": "2026-09-28T01:30:00.000Z", "kind": kind, "entity": kind.split(".")[0],
          "entity_id": "5", "body": {"window": 1}}  # fmt: skip
    with pytest.raises(projection.ProjectionError):
        projection.apply(conn, ev, projection.Context(replay=True))
