"""Ratings, follow-ups, the SMS outbox, staff accounts and the catalog are projections of the
signed log: real operations on a real node, then ``rebuild.run`` builds every table again
from the log alone and compares it row by row with the live one (personal data by its clear
value, opened with the node's recovery key).

Other parts of the node may still write their tables directly while their events gain
projectors; as long as some kind in the log has none, these tests compare the tables of this
part (leaving out the links into the others' rows); once every kind has one, the whole
database.
"""

from __future__ import annotations

import copy
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import schemas
from hub.ingest.schemas import event_problem
from node import config as cfgm
from node import db as dbm
from node import notify, rebuild, recovery
from node.app import create_app
from node.catalog import import_catalog
from node.keys import PII
from node.projection import PROJECTORS
from schemas.catalog import load_catalog, seed_path
from sync import sealing
from tests import test_cases_common as common
from tests.conftest import ADMIN, CLERK, run_cli
from tests.test_cases_common import Env

env = common.env
clock = common.clock

#: The tables this part of the node writes, and the kinds that write them.
TABLES = ("ratings", "followups", "sms_outbox", "users", "departments", "areas", "items", "queues")
KINDS = (
    "rating.given",
    "followup.opened",
    "followup.called_back",
    "followup.closed",
    "rating.appealed",
    "rating.appeal_decided",
    "rating.followed_up",
    "sms.queued",
    "sms.retry",
    "sms.sent",
    "sms.failed",
    "user.created",
    "catalog.imported",
)


def describe(report: rebuild.RebuildReport) -> str:
    lines = [f"unknown kinds: {dict(report.unknown)}", *report.failures]
    for t in report.tables:
        if not t.equal:
            lines.append(f"{t.table}: missing {t.missing[:5]} extra {t.extra[:5]}")
            lines += t.differing[:5]
    return "\n".join(lines)


#: Columns that point into the tables of other parts; a message whose case is not in the
#: tables is kept without the link (as after a restore of a log whose cases failed).
LINKS = {"sms_outbox": ("case_id",)}


def unlinked(table: str, difference: str) -> bool:
    """A difference only in a link to a row of another part that the rebuild lacks."""
    key, _, rest = difference.partition(": ")
    column = rest.split(" ", 1)[0]
    return column in LINKS.get(table, ()) and rest.endswith("rebuilt None")


def assert_rebuilds(data: Path, out: Path | None = None) -> rebuild.RebuildReport:
    """The log rebuilds the live tables (personal data compared through the recovery key)."""
    assert (data / recovery.RECOVERY_KEY).exists(), "the test node keeps its recovery key"
    report = rebuild.run(data, str(out) if out else "")
    assert report.personal_compared
    if not report.unknown:  # every kind in the log has its projector: the whole database
        assert report.equal, describe(report)
        return report
    for t in report.tables:
        if t.table in TABLES:
            assert not (t.missing or t.extra), describe(report)
            assert [d for d in t.differing if not unlinked(t.table, d)] == [], describe(report)

    def elsewhere(failure: str) -> bool:  # a foreign key into a table not yet projected
        return failure.startswith("foreign key:") and failure.rsplit(" ", 1)[1] not in TABLES

    assert [f for f in report.failures if not elsewhere(f)] == [], describe(report)
    return report


def log_events(db: Any, kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(kinds))
    rows = db.execute(
        f"SELECT at, kind, entity, entity_id, body FROM events WHERE kind IN ({marks}) "
        "ORDER BY seq",
        list(kinds),
    ).fetchall()
    return [
        {"at": r[0], "kind": r[1], "entity": r[2], "entity_id": r[3], "body": json.loads(r[4])}
        for r in rows
    ]


def assert_hub_accepts(db: Any) -> None:
    """Every event of this part passes the hub's check (schema and event shape)."""
    problems = [(ev["kind"], event_problem(ev)) for ev in log_events(db)]
    assert [p for p in problems if p[1]] == []


def test_every_kind_here_has_a_projector() -> None:
    assert [k for k in KINDS if k not in PROJECTORS] == []


# --------------------------------------------------------------------------- staff accounts


async def test_a_user_added_by_the_cli_logs_in_on_a_node_rebuilt_from_the_log(
    node_dir: Path, tmp_path: Path, aiohttp_client: Any
) -> None:
    new = ("rev_new", "reviewer-pass-9")
    assert (
        run_cli(
            "node",
            "user",
            "add",
            "--data",
            str(node_dir),
            "--username",
            new[0],
            "--role",
            "reviewer",
            "--department",
            "edu",
            stdin=new[1] + "\n",
        )  # fmt: skip
        == 0
    )
    rebuilt = tmp_path / "rebuilt.db"
    report = assert_rebuilds(node_dir, rebuilt)
    assert report.applied["user.created"] == 4  # admin, clerk1, clerk2 (init), rev_new

    db = sqlite3.connect(node_dir / "node.db")
    try:
        bodies = [ev["body"] for ev in log_events(db, ("user.created",))]
    finally:
        db.close()
    mine = next(b for b in bodies if b["username"] == new[0])
    assert mine["role"] == "reviewer" and mine["department"] == "edu" and mine["window"] is None
    assert mine["password_hash"].startswith("scrypt$") and new[1] not in json.dumps(bodies)
    assert next(b for b in bodies if b["username"] == CLERK[0])["window"] == 1

    # The rebuilt database alone, served: the staff of the log log in with their passwords.
    other = tmp_path / "other"
    shutil.copytree(node_dir, other, ignore=shutil.ignore_patterns("node.db*", "rebuild-*"))
    shutil.copy(rebuilt, other / "node.db")

    client = await aiohttp_client(create_app(cfgm.load(other)))
    for user in (new, ADMIN, CLERK):
        r = await client.post("/api/v1/login", json={"username": user[0], "password": user[1]})
        assert r.status == 200, await r.text()
        me = (await r.json())["user"]
        assert me["username"] == user[0]
    r = await client.post("/api/v1/login", json={"username": new[0], "password": "wrong-pass-1"})
    assert r.status == 401


def test_a_table_written_around_the_log_is_caught(node_dir: Path) -> None:
    """The comparison is not vacuous: a row changed without its event shows as a difference."""
    assert_rebuilds(node_dir)
    db = sqlite3.connect(node_dir / "node.db")
    try:
        db.execute("UPDATE users SET role = 'admin' WHERE username = 'clerk2'")
        db.execute("UPDATE queues SET active = 0 WHERE code = 'dept:edu'")
        db.commit()
    finally:
        db.close()
    report = rebuild.run(node_dir)
    bad = {t.table: t.differing for t in report.tables if not t.equal}
    assert set(bad) == {"users", "queues"}
    assert any("role" in d for d in bad["users"]) and any("active" in d for d in bad["queues"])


def test_a_password_hash_never_reads_as_a_phone_number(monkeypatch: pytest.MonkeyPatch) -> None:
    from node import users

    drawn = iter(["scrypt$16384$8$1$/13812345678/==$x", "scrypt$16384$8$1$abc=$def="])
    monkeypatch.setattr(users, "hash_password", lambda password: next(drawn))
    assert users.password_hash("whatever-1") == "scrypt$16384$8$1$abc=$def="


# --------------------------------------------------------------------------- the catalog


def test_catalog_imports_rebuild_departments_areas_items_and_queues(node_dir: Path) -> None:
    seed = load_catalog(seed_path())
    changed = copy.deepcopy(seed)
    changed["version"] = seed["version"] + "-b"
    changed["departments"] = [
        {"code": "grain", "name_zh": "省粮食和储备局", "name_en": "Grain and Reserves Bureau"}
    ] + [d for d in changed["departments"] if d["code"] != "sport"]
    changed["items"] = [i for i in changed["items"] if "sport" not in i["departments"]]
    changed["areas"] = [a for a in changed["areas"] if a["code"] != "safety"]
    changed["items"] = [i for i in changed["items"] if i["area"] != "safety"]
    changed["items"][0]["name_en"] = "Renamed in place"
    db = dbm.connect(node_dir / "node.db")
    try:
        counts = import_catalog(db, changed)
        assert counts["queues_created"] == 1 and counts["queues_deactivated"] == 2
        counts = import_catalog(db, seed)  # and back: reactivated, grain deactivated
        assert counts["queues_reactivated"] == 2 and counts["queues_deactivated"] == 1
        queues = {
            r["code"]: (r["prefix"], r["active"]) for r in dbm.rows(db, "SELECT * FROM queues")
        }
        assert queues["dept:grain"][1] == 0 and queues["dept:sport"][1] == 1
        assert_hub_accepts(db)
        sizes = [
            len(r[0].encode())
            for r in db.execute("SELECT body FROM events WHERE kind = 'catalog.imported'")
        ]
    finally:
        db.conn.close()
    assert len(sizes) == 3
    assert max(sizes) < 1024**2  # the shipped catalog's event: well inside one push
    report = assert_rebuilds(node_dir)
    assert report.applied["catalog.imported"] == 3
    # A fresh node from the log alone has the version of the last import.
    rebuilt = node_dir / "again.db"
    rebuild.run(node_dir, str(rebuilt))
    conn = sqlite3.connect(rebuilt)
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
        got = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT code, prefix, active FROM queues")}
    finally:
        conn.close()
    assert version == (seed["version"],) and got == queues


def test_the_catalog_event_schema_holds_the_catalog_schema() -> None:
    """``catalog.imported`` embeds the catalog's own schema (a copy, so the event schema
    stands alone): every catalog a node accepts makes an event the hub accepts."""
    catalog = schemas.load("catalog")
    event = json.loads(
        (Path(schemas.__file__).parent / "events" / "catalog.imported.schema.json").read_text()
    )
    skip = ("$schema", "$id", "$defs", "title", "description")
    embedded = {k: v for k, v in event["$defs"]["catalog"].items() if k != "description"}
    assert embedded == {k: v for k, v in catalog.items() if k not in skip}
    for name, definition in catalog["$defs"].items():
        assert event["$defs"][name] == definition, name


def test_catalog_import_into_a_directory_of_no_node(tmp_path: Path) -> None:
    """``onestop node catalog import`` into a bare directory: the event is still what makes
    the rows (no signing key, so the log holds it unsigned)."""
    data = tmp_path / "bare"
    assert run_cli("node", "catalog", "import", str(seed_path()), "--data", str(data)) == 0
    db = dbm.connect(data / "node.db")
    try:
        n = db.execute("SELECT COUNT(*) FROM queues").fetchone()[0]
        kinds = [r[0] for r in db.execute("SELECT kind FROM events")]
    finally:
        db.conn.close()
    seed = load_catalog(seed_path())
    assert n == len(seed["areas"]) + len(seed["departments"]) and kinds == ["catalog.imported"]


# --------------------------------------------------------------------------- ratings and SMS


class FlakySender:
    """Fails the first ``failures`` attempts of every message, then delivers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries: dict[str, int] = {}
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        n = self.tries[text] = self.tries.get(text, 0) + 1
        if n <= self.failures:
            raise ConnectionError(f"gateway busy for {phone}")
        self.sent.append((phone, text))


async def test_ratings_followups_and_the_outbox_rebuild_from_the_log(env: Env) -> None:
    e = env
    phone = "13912345678"
    # A visit, finished and rated badly: a follow-up, closed.
    visit = await e.ticket(phone=phone)
    await e.finish()
    r = await e.public.ok(
        "POST",
        "/api/v1/ratings",
        {"token": visit["token"], "level": 2, "comment": "等太久", "reason": "efficiency"},
        201,
    )
    visit_followup = r["rating"]["followup"]
    await e.admin.ok(
        "POST", f"/api/v1/followups/{visit_followup['id']}/callback", {"note": "已致电说明"}
    )
    await e.clerk.ok(
        "POST",
        f"/api/v1/followups/{visit_followup['id']}/close",
        {"note": "已回访，回电 13812345678 说明"},
    )
    # The clerk appeals, the appeal is upheld; the citizen rates the fixed service once more.
    rid = r["rating"]["id"]
    await e.clerk.ok("POST", f"/api/v1/ratings/{rid}/appeal", {"reason": "叫号系统故障所致"})
    await e.admin.ok(
        "POST", f"/api/v1/ratings/{rid}/appeal/decide", {"decision": "upheld", "note": "属实"}
    )
    await e.public.ok(
        "POST", "/api/v1/ratings/follow-up", {"token": visit["token"], "level": 4}, 201
    )
    # A case: accepted (an SMS), a supplement asked for (an SMS naming a phone number).
    t = await e.ticket(phone=phone)
    no = (await e.intake(t))["case_no"]
    await e.finish()
    await e.edu.ok(
        "POST",
        f"/api/v1/cases/{no}/reviews/edu",
        {"decision": "supplement", "reason": "请补充材料，或致电 13800138000"},
    )
    r = await e.public.ok(
        "POST",
        "/api/v1/ratings",
        {
            "case_no": no,
            "rating_token": e.rating_code(no),
            "level": 1,
            "reason": "attitude",
            "comment": "请回电 13812345678",
        },
        201,
    )
    assert r["rating"]["followup"]["state"] == "open"
    assert r["rating"]["comment"] == "请回电 138****5678"  # kept as the event carries it

    # The outbox: the first message fails once, then goes; the second keeps failing.
    pii = e.client.app[PII]
    assert notify.send_pending(e.db, pii, FlakySender(1), e.clock, limit=1) == {
        "sent": 0, "retry": 1, "failed": 0,
    }  # fmt: skip
    assert notify.send_pending(e.db, pii, FlakySender(0), e.clock, limit=1)["sent"] == 1
    always = FlakySender(notify.MAX_ATTEMPTS)
    assert notify.send_pending(e.db, pii, always, e.clock)["retry"] == 1

    # Rebuilt while the second still waits: the rebuilt outbox sends it to the citizen.
    data = e.config.data_dir
    report = assert_rebuilds(data, data / "rebuilt-1.db")
    assert report.applied["sms.retry"] == 2 and report.applied["sms.sent"] == 1
    conn = dbm.connect(data / "rebuilt-1.db")
    try:
        rebuilt_sender = FlakySender(0)
        assert notify.send_pending(conn, pii, rebuilt_sender, e.clock)["sent"] == 1
    finally:
        conn.conn.close()
    assert [p for p, _ in rebuilt_sender.sent] == [phone]
    assert "138****8000" in rebuilt_sender.sent[0][1]

    for _ in range(notify.MAX_ATTEMPTS - 1):
        notify.send_pending(e.db, pii, always, e.clock)
    rows = [dict(x) for x in e.db.execute("SELECT * FROM sms_outbox ORDER BY id")]
    assert [(x["template"], x["state"]) for x in rows] == [
        ("accepted", "sent"),
        ("supplement", "failed"),
    ]
    assert rows[0]["attempts"] == 2 and rows[0]["last_error"] is None
    assert rows[1]["attempts"] == notify.MAX_ATTEMPTS and "139****5678" in rows[1]["last_error"]
    assert "13800138000" not in rows[1]["text"] and "138****8000" in rows[1]["text"]
    assert all(pii.decrypt(x["to_enc"]) == phone for x in rows)

    # The events carry the number sealed to the recovery key, never in the clear.
    key = recovery.private_key(data)
    assert key is not None
    queued = [ev["body"] for ev in log_events(e.db, ("sms.queued",))]
    assert [sealing.unseal(key, b["to_recovery"]).decode() for b in queued] == [phone, phone]
    assert all(b["to_masked"] == "139****5678" for b in queued)
    assert_hub_accepts(e.db)
    assert {ev["kind"] for ev in log_events(e.db)} == set(KINDS)

    out = data / "rebuilt-2.db"
    report = assert_rebuilds(data, out)
    for kind in KINDS[:7]:  # the ratings' kinds
        assert report.applied[kind] >= 1, kind
    assert report.applied["sms.queued"] == 2 and report.applied["sms.failed"] == 1
    conn = dbm.connect(out)
    try:
        ratings = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        states = sorted(r[0] for r in conn.execute("SELECT state FROM followups"))
        appeal = conn.execute(
            "SELECT appeal_state, again_level FROM ratings WHERE appeal_state IS NOT NULL"
        ).fetchall()
    finally:
        conn.conn.close()
    assert ratings == 2 and states == ["closed", "open"]
    assert [tuple(x) for x in appeal] == [("upheld", 4)]


def test_queue_sms_without_a_node_secret_refuses() -> None:
    db = dbm.connect(":memory:")
    dbm.migrate(db)
    with pytest.raises(RuntimeError, match="no secret"), dbm.tx(db) as conn:
        notify.queue(conn, "x", "139****5678", "accepted", "hello")
