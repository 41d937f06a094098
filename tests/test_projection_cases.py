"""The case part as a projection of the signed log: cases, their materials, files, visits and
review tasks are written only by the projectors of their events, and ``onestop node rebuild``
gets the same rows back from the log alone, personal data included (through the node's
recovery key).

Real case work on a real node: intake with missing materials (一次性告知), acceptance,
reviews by two departments (approve, reject, 补正), supplements at the window, by post and
by courier, 容缺受理, a pre-application, a scan uploaded, results picked up and mailed.
While it runs, SQLite refuses any write to the five tables that does not come from a
projector (:func:`guard_writes`), and a write made behind the log's back shows in the
rebuild's comparison.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlite_utils

from node import pii as piim
from node import projection, rebuild
from node import recovery as recoverym
from node.rebuild import RebuildReport
from tests import test_cases_common as common
from tests.conftest import PHONE, make_id
from tests.test_cases_common import SCHOOL_ITEM, SCHOOL_MATERIALS, Env, local

# Fixtures shared by the case tests.
env = common.env
clock = common.clock

CASE_TABLES = ("cases", "case_materials", "case_files", "case_visits", "review_tasks")
CASE_KINDS = ("case.", "review.")


def guard_writes(db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the node's connection refuses (aborts) any INSERT, UPDATE or DELETE on the
    case tables that does not run inside :func:`node.projection.apply`."""
    conn = db.conn
    depth = [0]
    conn.create_function("case_projecting", 0, lambda: depth[0])
    for table in CASE_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TEMP TRIGGER guard_{table}_{op.lower()} BEFORE {op} ON main.{table} "
                f"WHEN NOT case_projecting() BEGIN "
                f"SELECT RAISE(ABORT, '{table} written outside the log'); END"
            )
    real = projection.apply

    def apply(c: sqlite3.Connection, event: dict[str, Any], ctx: projection.Context) -> bool:
        if c is not conn:
            return real(c, event, ctx)
        depth[0] += 1
        try:
            return real(c, event, ctx)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(projection, "apply", apply)


def assert_cases_rebuilt(report: RebuildReport) -> None:
    """The case tables of the rebuild equal the live ones; the whole rebuild does too once
    every part of the node projects its events."""
    ours = [
        f
        for f in report.failures
        if (f.startswith("seq ") and f.split()[2].startswith(CASE_KINDS))
        or f.endswith(("missing cases", "missing review_tasks"))
    ]
    assert not ours, ours
    assert not [k for k in report.unknown if k.startswith(CASE_KINDS)], report.unknown
    tables = {t.table: t for t in report.tables}
    for name in CASE_TABLES:
        t = tables[name]
        assert t.equal, (name, t.missing, t.extra, t.differing)
        assert t.live == t.rebuilt
    if not report.unknown:  # every kind in the log has its projector
        assert report.equal, (report.failures, [t for t in report.tables if not t.equal])


async def upload(e: Env, no: str, code: str, name: str, content: bytes) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name, content_type="application/pdf")
    got, data = await e.clerk.call("POST", f"/api/v1/cases/{no}/materials/{code}", data=form)
    assert got == 201, data
    return dict(data["file"])


async def review(e: Env, no: str, dept: str, body: dict[str, Any]) -> dict[str, Any]:
    actor = {"edu": e.edu, "civil": e.civil}[dept]
    return dict((await actor.ok("POST", f"/api/v1/cases/{no}/reviews/{dept}", body))["case"])


async def supplement(e: Env, no: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict((await e.clerk.ok("POST", f"/api/v1/cases/{no}/supplement", body))["case"])


async def case_work(e: Env) -> dict[str, str]:
    """Four cases through every step; their numbers, and the applicants' ID numbers by case."""
    ids = {
        "a": make_id("19850612", seq="111"),
        "b": make_id("19900101", seq="222"),
        "c": make_id("19751230", seq="333"),
        "d": make_id("19800202", seq="444"),
    }
    out: dict[str, str] = {}

    # A: materials missing at intake (critical ones: not accepted, one-time notice), brought
    # the next day at the window; 补正 by education, answered by post; both approve; a scan
    # is uploaded; the result is picked up with a third ticket.
    t = await e.ticket(id_number=ids["a"])
    a = await e.intake(t, received=["termination-application", "board-resolution", "permit"])
    assert a["state"] == "pending_materials"
    no = a["case_no"]
    await e.finish()
    e.clock.set(local(2026, 9, 29, 10))
    t = await e.ticket(id_number=ids["a"])
    c = await supplement(
        e,
        no,
        {
            "ticket_id": t["id"],
            "received": ["liquidation-report", "student-placement", "legal-rep-id"],
        },
    )
    assert c["state"] == "accepted" and c["visit_count"] == 2
    await e.finish()
    f = await upload(e, no, "permit", f"permit-{PHONE}.pdf", b"%PDF-1.4 scan of the permit")
    assert PHONE not in f["name"] and "138****8000" in f["name"]
    c = await review(
        e,
        no,
        "edu",
        {
            "decision": "supplement",
            "reason": "清算报告缺少盖章，请致电13812345678",
            "materials": ["liquidation-report"],
        },
    )
    assert c["state"] == "supplement"
    # Free text keeps numbers masked, as the events carry it.
    edu = next(x for x in c["tasks"] if x["department"] == "edu")
    assert edu["reason"] == "清算报告缺少盖章，请致电138****5678"
    e.clock.set(local(2026, 10, 9, 14))
    c = await supplement(e, no, {"channel": "post", "received": ["liquidation-report"]})
    assert c["state"] == "accepted" and c["paused_days"] == 3 and c["visit_count"] == 2
    await review(e, no, "edu", {"decision": "approve"})
    c = await review(e, no, "civil", {"decision": "approve", "reason": "同意"})
    assert c["state"] == "approved"
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    t = await e.ticket(id_number=ids["a"])
    h = await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "pickup", "ticket_id": t["id"]}
    )
    assert h["case"]["state"] == "delivered" and h["case"]["visit_count"] == 3
    await e.finish()
    out["a"] = no

    # B: complete at intake, civil affairs rejects (education's task is cancelled), the
    # decision is mailed.
    t = await e.ticket(id_number=ids["b"])
    no = (await e.intake(t))["case_no"]
    await e.finish()
    c = await review(e, no, "civil", {"decision": "reject", "reason": "不符合终止条件"})
    assert c["state"] == "rejected"
    assert {x["department"]: x["state"] for x in c["tasks"]} == {
        "edu": "cancelled",
        "civil": "rejected",
    }
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    await e.clerk.ok(
        "POST", f"/api/v1/cases/{no}/handover", {"method": "mail", "tracking": "SF1234567"}
    )
    out["b"] = no

    # C: 容缺受理 with the legal representative's ID outstanding, sent in by courier.
    t = await e.ticket(id_number=ids["c"])
    minor = [m for m in SCHOOL_MATERIALS if m != "legal-rep-id"]
    c = await e.intake(t, received=minor, commitment=True)
    assert c["state"] == "accepted" and c["missing"] == ["legal-rep-id"]
    no = c["case_no"]
    await e.finish()
    c = await supplement(e, no, {"channel": "courier", "received": ["legal-rep-id"]})
    assert c["state"] == "accepted" and c["missing"] == []
    out["c"] = no

    # D: from an online pre-application, at the window with a ticket of the same person.
    pre = await e.public.ok(
        "POST",
        "/api/v1/preapplications",
        {"id_number": ids["d"], "phone": PHONE, "items": [SCHOOL_ITEM], "materials": minor},
        201,
    )
    t = await e.ticket(id_number=ids["d"])
    got, data = await e.clerk.post(
        "/api/v1/cases",
        {"ticket_id": t["id"], "preapplication_id": pre["preapplication"]["ref"]},
    )
    assert got == 201, data
    assert data["case"]["state"] == "pending_materials"
    await e.finish()
    out["d"] = data["case"]["case_no"]
    return {**{f"{k}_no": v for k, v in out.items()}, **{f"{k}_id": ids[k] for k in out}}


def rows(path: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_case_work_is_rebuilt_from_the_log(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    e = env
    data = Path(e.config.data_dir)
    assert (data / recoverym.RECOVERY_KEY).exists()  # node init made it; not yet exported
    guard_writes(e.db, monkeypatch)
    work = await case_work(e)

    counts = {t: e.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in CASE_TABLES}
    assert counts == {
        "cases": 4,
        "case_materials": 24,
        "case_files": 1,
        "case_visits": 6,  # A: 3 (intake, supplement, pickup); B, C, D: intake
        "review_tasks": 6,  # A, B, C: education and civil affairs; D is not accepted
    }

    out = tmp_path / "rebuilt.db"
    report = rebuild.run(data, out=str(out))
    assert report.personal_compared
    assert_cases_rebuilt(report)
    for kind in ("case.opened", "case.visit", "case.accepted", "case.supplemented"):
        assert report.applied[kind] >= 1, kind
    for kind in ("case.rejected", "case.handed_over", "case.file_attached", "review.cancelled"):
        assert report.applied[kind] >= 1, kind

    # The applicants' numbers came back from the events' sealed copies, not from the tables.
    pii = piim.load(data)
    rebuilt = {r["case_no"]: r for r in rows(out, "SELECT * FROM cases")}
    for key in ("a", "b", "c", "d"):
        case = rebuilt[work[f"{key}_no"]]
        assert pii.decrypt(case["id_enc"]) == work[f"{key}_id"]
        assert pii.decrypt(case["phone_enc"]) == PHONE
        assert case["id_masked"] == work[f"{key}_id"][:6] + "********" + work[f"{key}_id"][-4:]
    live_enc = {r[0] for r in e.db.execute("SELECT id_enc FROM cases").fetchall()}
    assert not live_enc & {r["id_enc"] for r in rebuilt.values()}  # encrypted anew


async def test_rebuild_without_the_recovery_key_keeps_masks_and_links(
    env: Env, tmp_path: Path
) -> None:
    """After the key bundle was exported the node has no recovery key: a rebuild leaves the
    encrypted numbers empty, and everything else still matches."""
    e = env
    data = Path(e.config.data_dir)
    t = await e.ticket()
    no = (await e.intake(t, received=SCHOOL_MATERIALS[:4]))["case_no"]
    await e.finish()
    (data / recoverym.RECOVERY_KEY).unlink()
    out = tmp_path / "rebuilt.db"
    report = rebuild.run(data, out=str(out))
    assert not report.personal_compared
    assert_cases_rebuilt(report)
    [case] = rows(out, "SELECT * FROM cases")
    assert case["case_no"] == no and case["id_enc"] == "" and case["phone_enc"] == ""
    live = e.db.execute("SELECT id_hash, id_masked, phone_masked FROM cases").fetchone()
    assert (case["id_hash"], case["id_masked"], case["phone_masked"]) == tuple(live)


async def test_a_write_outside_the_log_is_refused_and_shows_in_the_rebuild(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    e = env
    data = Path(e.config.data_dir)
    t = await e.ticket()
    no = (await e.intake(t))["case_no"]
    await e.finish()
    assert_cases_rebuilt(rebuild.run(data))

    # Behind the log's back: the rebuild no longer matches, and says where.
    e.db.execute("UPDATE cases SET state = 'approved' WHERE case_no = ?", [no])
    e.db.execute("UPDATE review_tasks SET state = 'approved'")
    e.db.conn.commit()
    report = rebuild.run(data)
    assert not report.equal
    diffs = {t.table: t.differing for t in report.tables if not t.equal}
    assert set(diffs) >= {"cases", "review_tasks"}
    assert any("state live 'approved' != rebuilt 'accepted'" in d for d in diffs["cases"])

    # Under the guard the same write does not even happen.
    guard_writes(e.db, monkeypatch)
    with pytest.raises(sqlite3.IntegrityError, match="cases written outside the log"):
        e.db.execute("UPDATE cases SET state = 'rejected' WHERE case_no = ?", [no])
    e.db.conn.rollback()
