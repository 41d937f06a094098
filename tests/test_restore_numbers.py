"""The signed log is the truth: after a restore from a stale replica plus the hub's records, no
ticket number, ticket id, case number or rating id is issued twice, and a recovered ticket
keeps its status token (the QR code on the printed ticket still opens its status page).

The restore is simulated without litestream: a copy of the node's database (the replica,
behind), then the later signed records appended and projected as :func:`node.restore.
recover_from_hub` does with the hub's.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from node import config as cfgm
from node import db as dbm
from node import pii as piim
from node import projection, restore
from node import signer as signerm
from node.app import create_app
from node.keys import DB
from node.replication import readback
from tests import test_cases_common as common
from tests.conftest import CLERK, PHONE, make_id
from tests.test_cases_common import Actor, Env, check_events

# Fixtures shared by the case tests.
env = common.env
clock = common.clock


def numbers_in_log(db: Any) -> dict[str, set[Any]]:
    """Every ticket number (by queue and day), ticket id, case number and rating id the log
    holds."""
    out: dict[str, set[Any]] = {"ticket_no": set(), "ticket": set(), "case": set(), "rating": set()}
    for kind, entity_id, body in db.execute(
        "SELECT kind, entity_id, body FROM events "
        "WHERE kind IN ('ticket.issued', 'case.opened', 'rating.given')"
    ).fetchall():
        b = json.loads(body)
        if kind == "ticket.issued":
            out["ticket_no"].add((b["queue"], b["service_date"], b["ticket_no"]))
            out["ticket"].add(int(entity_id))
        elif kind == "case.opened":
            out["case"].add(b["case_no"])
        else:
            out["rating"].add(b["rating_id"])
    return out


def stale_copy(node: Path, dest: Path) -> Path:
    """The node's data directory with a consistent copy of its database as of now (the
    replica), taken while the node runs."""
    shutil.copytree(node, dest, ignore=shutil.ignore_patterns("node.db*", "litestream*"))
    src = sqlite3.connect(node / "node.db")
    dst = sqlite3.connect(dest / "node.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return dest


def recover(
    data: Path, records: list[dict[str, Any]], skip: frozenset[int] = frozenset()
) -> restore.RestoreReport:
    """Append ``records`` to the copy's log and re-apply them, as a restore does with the
    hub's; records whose seq is in ``skip`` stay unprojected (a failed projection)."""
    cfgm.load(data)  # a node directory
    db = dbm.connect(data / "node.db")
    report = restore.RestoreReport()
    try:
        dbm.migrate(db)
        conn = db.conn
        report.restored_seq = signerm.log_size(conn)
        assert records[0]["seq"] == report.restored_seq + 1
        ctx = projection.Context(pii=piim.load(data), recovery=None, replay=True)
        conn.execute("BEGIN IMMEDIATE")
        for rec in records:
            readback.insert_record(conn, rec)
        for rec in records:
            if rec["seq"] not in skip:
                restore.apply_records(conn, [rec], ctx, report)
        conn.execute("COMMIT")
    finally:
        db.conn.close()
    return report


async def test_restored_node_issues_no_number_twice_and_tickets_keep_tokens(
    env: Env, aiohttp_client: Any, tmp_path: Path
) -> None:
    e = env
    # Before the replica: a visit with a case and a rating.
    t1 = await e.ticket()
    await e.intake(t1)
    await e.finish()
    await e.public.ok("POST", "/api/v1/ratings", {"token": t1["token"], "level": 5}, 201)
    replica = stale_copy(Path(e.config.data_dir), tmp_path / "restored")
    head = signerm.log_size(e.db)

    # After it, lost with the machine but pushed to the hub: another visit, case and rating,
    # and a ticket waiting in another queue.
    t2 = await e.ticket()
    case2 = await e.intake(t2)
    await e.finish()
    r2 = await e.public.ok("POST", "/api/v1/ratings", {"token": t2["token"], "level": 4}, 201)
    t3 = await e.public.ok(
        "POST",
        "/api/v1/tickets",
        {"queue": "dept:civil", "id_number": make_id(), "phone": PHONE},
        201,
    )
    later = signerm.load_records(e.db, after=head)
    issued = [r for r in later if r["event"]["kind"] == "ticket.issued"]
    assert all(r["event"]["body"]["token"] for r in issued)
    lost = numbers_in_log(e.db)
    assert case2["case_no"] in lost["case"] and r2["rating"]["id"] in lost["rating"]

    # Restore: the later records appended; the civil ticket's projection fails (it is in
    # the log only), as a ticket of a queue missing from the catalog would be.
    [t3_issued] = [r for r in issued if r["event"]["body"]["ticket_no"] == t3["ticket_no"]]
    report = recover(replica, later, skip={t3_issued["seq"]})
    assert not report.failed_projections
    assert report.projected["case.opened"] == 1  # the lost case is back in the tables
    assert report.projected["rating.given"] == 1

    app = create_app(cfgm.load(replica), now=e.clock)
    client = await aiohttp_client(app)
    base = str(client.make_url("")).rstrip("/")
    clerk, public = await Actor(base).login(CLERK), Actor(base)
    try:
        # The tickets recovered from the log keep their tokens: the printed QR codes work.
        for t in (t1, t2):
            got, page = await public.get(f"/s/{t['token']}")
            assert got == 200 and t["ticket_no"] in page

        # The next ticket in each queue, the next case and the next rating are new numbers.
        for queue in ("dept:edu", "dept:civil"):
            body = {"queue": queue, "id_number": make_id(), "phone": PHONE}
            new = await public.ok("POST", "/api/v1/tickets", body, 201)
            key = (queue, new["service_date"], new["ticket_no"])
            assert key not in lost["ticket_no"], key
        called = await clerk.ok("POST", "/api/v1/windows/1/call-next")
        tid = called["ticket"]["id"]
        assert tid not in lost["ticket"] and tid > max(lost["ticket"])
        got, data = await clerk.post(
            "/api/v1/cases",
            {"ticket_id": tid, "items": [common.SCHOOL_ITEM], "received": common.SCHOOL_MATERIALS},
        )
        assert got == 201, data
        assert data["case"]["case_no"] not in lost["case"]
        assert data["case"]["case_no"] > case2["case_no"]
        await clerk.ok("POST", "/api/v1/windows/1/finish")
        token = app[DB].execute("SELECT token FROM tickets WHERE id = ?", [tid]).fetchone()[0]
        rating = await public.ok("POST", "/api/v1/ratings", {"token": token, "level": 5}, 201)
        assert rating["rating"]["id"] not in lost["rating"]
        # Nothing in the restored log is there twice, and every body fits its schema.
        now = numbers_in_log(app[DB])
        assert len(now["case"]) == len(lost["case"]) + 1
        assert len(now["rating"]) == len(lost["rating"]) + 1
        assert len(now["ticket_no"]) == len(lost["ticket_no"]) + 2
        check_events(app[DB])
    finally:
        await clerk.session.close()
        await public.session.close()


def test_old_ticket_record_without_token_gets_a_new_one(node_config: cfgm.NodeConfig) -> None:
    """A ``ticket.issued`` written before the token was carried still projects."""
    db = dbm.connect(Path(node_config.data_dir) / "node.db")
    try:
        conn = db.conn
        ctx = projection.Context(pii=piim.load(Path(node_config.data_dir)), replay=True)
        report = restore.RestoreReport()
        body = {"ticket_no": "B007", "queue": "dept:edu", "service_date": "2026-09-28",
                "item": None, "priority": 0, "priority_reason": None}  # fmt: skip
        prefix = conn.execute("SELECT prefix FROM queues WHERE code = 'dept:edu'").fetchone()[0]
        body["ticket_no"] = f"{prefix}007"
        rec = {"seq": 0, "event": {"at": "2026-09-28T01:30:00.000Z", "kind": "ticket.issued",
                                   "entity": "ticket", "entity_id": "41", "body": body}}  # fmt: skip
        conn.execute("BEGIN IMMEDIATE")
        restore.apply_records(conn, [rec], ctx, report)
        conn.execute("COMMIT")
        assert report.projected["ticket.issued"] == 1, report.failed_projections
        token, seq = conn.execute("SELECT token, seq FROM tickets WHERE id = 41").fetchone()
        assert len(token) >= 16 and seq == 7
    finally:
        db.conn.close()
