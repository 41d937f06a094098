"""The day's close: at local midnight earlier days' open tickets end with a signed
``ticket.expired`` (node/daybreak.py); kept queues keep theirs out of the new day's line; the
hub counts expired tickets apart from served and no-show ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub import dash, rollups
from hub import db as hubdb
from hub.keys import DB as HUB_DB
from node import config as cfgm
from node import daybreak, tickets
from node import db as dbm
from node.app import create_app
from node.keys import DB
from node.replication.verify import verify_node
from onestop import db as coredb
from tests import test_hub_support as support
from tests.conftest import CLERK, PHONE, login, make_id
from tests.test_cases_common import Clock, check_events, local
from tests.test_hub_support import (
    TOWNSHIP,
    NodeLog,
    enroll,
    envelope,
    push_ok,
    ticket_body,
)

# Fixtures shared by the hub tests.
hub_client = support.hub_client
hub_dir = support.hub_dir

# Monday 30 November 2026, 09:30 in Jinan; its midnight is 16:00 UTC.
DAY1 = local(2026, 11, 30)
MIDNIGHT = local(2026, 12, 1, 0, 0)


def expired_events(db: Any) -> list[dict[str, Any]]:
    return [
        {**json.loads(r["body"]), "entity_id": r["entity_id"], "sig": r["sig"], "at": r["at"]}
        for r in db.execute(
            "SELECT entity_id, body, sig, at FROM events WHERE kind = 'ticket.expired' ORDER BY seq"
        ).fetchall()
    ]


async def take(client: Any, queue: str, birth: str = "19850612") -> dict[str, Any]:
    r = await client.post(
        "/api/v1/tickets", json={"queue": queue, "id_number": make_id(birth), "phone": PHONE}
    )
    assert r.status == 201, await r.text()
    data: dict[str, Any] = await r.json()
    return data


async def window(client: Any, headers: dict[str, str], action: str) -> dict[str, Any]:
    r = await client.post(f"/api/v1/windows/1/{action}", headers=headers)
    assert r.status == 200, await r.text()
    data: dict[str, Any] = await r.json()
    return data


def state_of(db: Any, ticket_no: str, service_date: str) -> str:
    row = db.execute(
        "SELECT state FROM tickets WHERE ticket_no = ? AND service_date = ?",
        [ticket_no, service_date],
    ).fetchone()
    return str(row[0])


async def day_one(client: Any) -> dict[str, str]:
    """Window 1 suspends A001 and is serving A002 when the day ends; A003 and B001 wait."""
    headers = await login(client, CLERK)
    a1 = await take(client, "dept:edu")
    await window(client, headers, "call-next")
    await window(client, headers, "suspend")
    a2 = await take(client, "dept:edu")
    await window(client, headers, "call-next")
    a3 = await take(client, "dept:edu")
    b1 = await take(client, "dept:civil")
    return {"suspended": a1["ticket_no"], "called": a2["ticket_no"],
            "waiting": a3["ticket_no"], "civil": b1["ticket_no"]}  # fmt: skip


async def test_midnight_job_expires_the_days_open_tickets_with_signed_events(
    aiohttp_client: Any, node_config: cfgm.NodeConfig, node_dir: Path
) -> None:
    clock = Clock(DAY1)
    client = await aiohttp_client(create_app(node_config, now=clock))
    db = client.app[DB]
    nos = await day_one(client)
    job = client.app[daybreak.DAY_CLOSE].job
    assert job is not None and job.scheduler.running
    assert expired_events(db) == []  # the start-up catch-up found nothing of an earlier day
    # The cron job fires at 00:00 in Asia/Shanghai: 16:00 UTC of the day before.
    [scheduled] = job.scheduler.get_jobs()
    fire = scheduled.trigger.get_next_fire_time(None, DAY1)
    assert fire == MIDNIGHT and fire.astimezone(dt.UTC).hour == 16

    clock.set(local(2026, 11, 30, 23, 59))
    assert await job.run() == []  # still day 1
    clock.set(MIDNIGHT)
    closed = await scheduled.func()
    assert {c["ticket_no"] for c in closed} == set(nos.values())
    for no in nos.values():
        assert state_of(db, no, "2026-11-30") == "expired"
    evs = expired_events(db)
    assert {(e["ticket_no"], e["from_state"]) for e in evs} == {
        (nos["suspended"], "suspended"), (nos["called"], "called"),
        (nos["waiting"], "waiting"), (nos["civil"], "waiting"),
    }  # fmt: skip
    assert all(e["reason"] == "day_closed" and e["service_date"] == "2026-11-30" for e in evs)
    assert all(e["sig"] and e["at"] == "2026-11-30T16:00:00.000Z" for e in evs)
    assert {e["queue"] for e in evs} == {"dept:edu", "dept:civil"}
    check_events(db)
    # Closing again changes nothing.
    n = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert await job.run() == []
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == n
    # The new day's first ticket has nobody ahead.
    clock.set(local(2026, 12, 1, 8, 30))
    new = await take(client, "dept:edu")
    assert new["ticket_no"].endswith("001") and new["waiting_ahead"] == 0
    assert new["estimated_wait_minutes"] == 0
    old = dbm.one(db, "SELECT token FROM tickets WHERE ticket_no = ? AND service_date = ?",
                  [nos["waiting"], "2026-11-30"])  # fmt: skip
    assert old is not None
    r = await client.get(f"/api/v1/tickets/status/{old['token']}")
    assert r.status == 200 and (await r.json())["state"] == "expired"
    r = await client.get(f"/s/{old['token']}")
    assert r.status == 200 and "当日未办理" in await r.text()
    await client.close()
    assert verify_node(node_dir) == 0  # the signed log, closes included, verifies


async def test_kept_queue_keeps_waiting_and_suspended_but_never_ahead_of_a_new_day(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    cfg = dataclasses.replace(node_config, keep_overnight_queues="dept:edu").validate()
    clock = Clock(DAY1)
    client = await aiohttp_client(create_app(cfg, now=clock))
    db = client.app[DB]
    nos = await day_one(client)
    clock.set(MIDNIGHT)
    closed = daybreak.close_day(db, cfg, clock)
    # A ticket still called at a window expires even in a kept queue; other queues close.
    assert {(c["ticket_no"], c["from_state"]) for c in closed} == {
        (nos["called"], "called"), (nos["civil"], "waiting"),
    }  # fmt: skip
    assert state_of(db, nos["waiting"], "2026-11-30") == "waiting"
    assert state_of(db, nos["suspended"], "2026-11-30") == "suspended"
    # Day two: the kept ticket is not ahead of anyone, nor in the counts or estimates.
    clock.set(local(2026, 12, 1, 9, 0))
    first = await take(client, "dept:edu")
    assert first["waiting_ahead"] == 0 and first["estimated_wait_minutes"] == 0
    second = await take(client, "dept:edu")
    assert second["waiting_ahead"] == 1
    r = await client.get(f"/api/v1/tickets/status/{second['token']}")
    assert r.status == 200 and (await r.json())["waiting_ahead"] == 1
    overview = {q["code"]: q for q in tickets.queue_overview(db, cfg, clock)}
    assert overview["dept:edu"]["waiting"] == 2
    kept = dbm.one(db, "SELECT * FROM tickets WHERE ticket_no = ? AND service_date = ?",
                   [nos["waiting"], "2026-11-30"])  # fmt: skip
    assert kept is not None
    assert tickets.waiting_ahead(db, kept) == 0  # alone in its own day's line
    # The next midnight keeps it again (still kept, still not called).
    clock.set(local(2026, 12, 2, 0, 0))
    again = daybreak.close_day(db, cfg, clock)
    assert {c["ticket_no"] for c in again} == set()  # day two's tickets wait in a kept queue
    assert state_of(db, nos["waiting"], "2026-11-30") == "waiting"
    check_events(db)
    await client.close()


async def test_start_up_catches_up_a_midnight_missed_while_off(
    aiohttp_client: Any, node_config: cfgm.NodeConfig
) -> None:
    clock = Clock(DAY1)
    client = await aiohttp_client(create_app(node_config, now=clock))
    nos = await day_one(client)
    await client.close()  # the node is off over midnight
    clock.set(local(2026, 12, 2, 8, 0))  # back two days later
    client = await aiohttp_client(create_app(node_config, now=clock))
    db = client.app[DB]
    for no in nos.values():
        assert state_of(db, no, "2026-11-30") == "expired"
    evs = expired_events(db)
    assert len(evs) == 4 and all(e["at"] == "2026-12-02T00:00:00.000Z" for e in evs)
    check_events(db)
    # The window is free again: a new call gets the new day's ticket, not day one's.
    new = await take(client, "dept:edu")
    headers = await login(client, CLERK)
    called = await window(client, headers, "call-next")
    assert called["ticket"]["ticket_no"] == new["ticket_no"]
    await client.close()


def test_kept_queues_setting_is_checked(tmp_path: Path) -> None:
    good = {"code": "370102001", "name": "x", "level": "township"}
    cfg = cfgm.NodeConfig(data_dir=tmp_path, keep_overnight_queues=" dept:edu, area:agri ", **good)
    assert cfg.validate().kept_queues == {"dept:edu", "area:agri"}
    with pytest.raises(cfgm.ConfigError) as exc:
        dataclasses.replace(cfg, keep_overnight_queues="dept:edu,EDU").validate()
    assert exc.value.field == "keep_overnight_queues" and "EDU" in str(exc.value)


def test_migration_rebuilds_tickets_with_expired_and_keeps_rows(tmp_path: Path) -> None:
    db = dbm.connect(tmp_path / "old.db")
    coredb.migrate(db, [m for m in dbm.MIGRATIONS if m[0] != "030_ticket_expired"])
    db.execute("INSERT INTO queues (code, kind, ref, prefix, name_zh, name_en) "
               "VALUES ('dept:edu', 'department', 'edu', 'A', '教育', 'Education')")  # fmt: skip
    db.execute(
        "INSERT INTO tickets (token, service_date, queue, issued_queue, seq, ticket_no, id_enc,"
        " id_hash, id_masked, phone_enc, phone_masked, state, order_at, created_at) VALUES"
        " ('tk', '2026-11-30', 'dept:edu', 'dept:edu', 1, 'A001', 'e', 'h', 'm', 'e', 'm',"
        " 'waiting', 'o', 'c')"
    )
    db.execute("INSERT INTO ratings (ticket_id, level, created_at) VALUES (1, 5, 'c')")
    before = [tuple(r) for r in db.execute("SELECT * FROM tickets").fetchall()]
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'tickets' ORDER BY name"
    ).fetchall()
    assert dbm.migrate(db) == ["030_ticket_expired"]
    assert [tuple(r) for r in db.execute("SELECT * FROM tickets").fetchall()] == before
    after = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'tickets' AND type = 'index' "
        "ORDER BY name"
    ).fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in indexes if r[0] != "tickets"]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("UPDATE tickets SET state = 'expired'")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE tickets SET state = 'gone'")


async def test_hub_accepts_expired_tickets_and_counts_them_apart(
    hub_client: Any, hub_dir: Path
) -> None:
    log = NodeLog(TOWNSHIP)
    log.add(entity_id="1", body=ticket_body(1))
    log.add(
        kind="ticket.called",
        entity_id="1",
        body={"ticket_no": "A001", "queue": "dept:edu", "window": 1, "by": "clerk1"},
    )
    log.add(entity_id="2", body=ticket_body(2))
    for tid, no, state in (("1", "A001", "called"), ("2", "A002", "waiting")):
        log.add(kind="ticket.expired", entity_id=tid,
                body={"ticket_no": no, "queue": "dept:edu", "service_date": "2026-11-29",
                      "from_state": state, "reason": "day_closed"})  # fmt: skip
    enroll(hub_dir, log)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch()))
    assert res["ack_seq"] == 5 and res["rejected"] == [], res
    db = hub_client.app[HUB_DB]
    row = hubdb.one(db, "SELECT * FROM rollup_day WHERE area = ? AND self = 1", [TOWNSHIP])
    assert row is not None
    assert (row["tickets_issued"], row["tickets_called"], row["tickets_expired"]) == (2, 1, 2)
    assert (row["tickets_finished"], row["tickets_no_show"]) == (0, 0)
    assert dash.derive(row)["tickets_expired"] == 2
    before = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == before
    for path in (f"/api/v1/dash/{TOWNSHIP}", f"/dash/{TOWNSHIP}"):
        r = await hub_client.get(path)
        assert r.status == 200, (path, await r.text())
