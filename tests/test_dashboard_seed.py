"""A busy province for dashboard pages: signed logs of many centers over the last days, pushed
through the hub's real ingest (:func:`hub.ingest.batch.ingest_batch`: verified, stored, rolled up).

(No tests here; the browser test and manual looks import :func:`seed_province`.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization as ser

from hub import config as hubcfg
from hub import db as hubdb
from hub import identity
from hub.ingest.batch import ingest_batch, raise_alert
from onestop import divisions as divm
from sync.chain import GENESIS, make_record
from sync.keys import Ed25519PrivateKey
from tests.conftest import run_cli

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1]


def _items() -> list[tuple[str, str, str]]:
    """(item code, lead department, kind) of the shipped catalog's items."""
    cat = json.loads((ROOT / "schemas" / "seed" / "catalog.json").read_text("utf-8"))
    return [(i["code"], i["departments"][0], i["kind"]) for i in cat["items"]]


def pick_centers(rng: random.Random) -> list[dict[str, str]]:
    """Every city center, two counties of each city and three townships of the first."""
    rows = divm.load()
    kids: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        kids.setdefault(r["parent_code"], []).append(r)
    out = [r for r in rows if r["level"] == "province"]
    for city in kids["37"]:
        out.append(city)
        counties = kids.get(city["code"], [])[:2]
        out += counties
        for county in counties[:1]:
            out += kids.get(county["code"], [])[:3]
    return out


class Log:
    def __init__(self, code: str, rng: random.Random) -> None:
        self.code, self.rng = code, rng
        self.key = Ed25519PrivateKey.generate()
        self.records: list[dict[str, Any]] = []
        self.prev = GENESIS
        self.ticket_id = 0
        self.followup = 0
        self.rating = 0

    def add(self, at: dt.datetime, kind: str, entity: str, eid: str, body: dict[str, Any]) -> None:
        ev = {"seq": len(self.records) + 1, "kind": kind, "entity": entity, "entity_id": eid,
              "at": at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace(
                  "+00:00", "Z"), "body": body}  # fmt: skip
        rec = make_record(self.code, ev, self.prev, self.key)
        self.prev = rec["hash"]
        self.records.append(rec)


def _case_body(no: str, item: str, dept: str, kind: str, n: int) -> dict[str, Any]:
    h = hashlib.sha256(no.encode()).hexdigest()
    return {"case_no": no, "kind": kind, "items": [item], "departments": [dept],
            "id_masked": "370102********" + f"{n % 1000:03d}1", "id_hash": h,
            "phone_masked": "138****8000", "ticket_no": None, "preapplication_id": None,
            "received": [], "missing": [], "by": "clerk1"}  # fmt: skip


def day_events(log: Log, day: dt.date, busy: float, now: dt.datetime,
               items: list[tuple[str, str, str]]) -> None:  # fmt: skip
    rng = log.rng
    base = dt.datetime(day.year, day.month, day.day, 8, 45, tzinfo=TZ)
    end = min(base + dt.timedelta(hours=8, minutes=30), now - dt.timedelta(minutes=2))
    if end <= base:
        return
    span = (end - base).total_seconds()
    n_tickets = int(rng.randint(6, 18) * busy)
    n_cases = max(1, int(rng.randint(1, 4) * busy))
    for i in range(n_tickets):
        log.ticket_id += 1
        tid = str(log.ticket_id)
        item, dept, _ = rng.choice(items)
        t0 = base + dt.timedelta(seconds=span * (i + rng.random()) / max(1, n_tickets))
        if t0 >= end:
            break
        no = f"A{i + 1:03d}"
        log.add(t0, "ticket.issued", "ticket", tid, {
            "ticket_no": no, "queue": f"dept:{dept}", "service_date": day.isoformat(),
            "item": item, "priority": 0, "priority_reason": None})  # fmt: skip
        t1 = t0 + dt.timedelta(seconds=rng.randint(90, 1500))
        if t1 >= end:
            continue
        log.add(
            t1,
            "ticket.called",
            "ticket",
            tid,
            {"ticket_no": no, "queue": f"dept:{dept}", "window": 1 + i % 6, "by": "clerk1"},
        )
        t2 = t1 + dt.timedelta(seconds=rng.randint(120, 900))
        if t2 >= end:
            continue
        kind = "ticket.no_show" if rng.random() < 0.06 else "ticket.finished"
        log.add(
            t2,
            kind,
            "ticket",
            tid,
            {"ticket_no": no, "queue": f"dept:{dept}", "window": 1 + i % 6, "by": "clerk1"},
        )
        if kind == "ticket.finished" and rng.random() < 0.35:
            log.rating += 1
            level = rng.choices([5, 4, 3, 2, 1], [70, 20, 6, 3, 1])[0]
            at = t2 + dt.timedelta(seconds=30)
            if at < end:
                _rate(log, at, level, None, no, end)
    for k in range(n_cases):
        item, dept, ikind = rng.choice(items)
        no = f"{log.code}-{day.strftime('%Y%m%d')}-{k + 1:04d}"
        t0 = base + dt.timedelta(seconds=span * (k + rng.random()) / n_cases)
        if t0 >= end:
            break
        log.add(t0, "case.opened", "case", no, _case_body(no, item, dept, ikind, k))
        promised = day + dt.timedelta(days=rng.choice([0, 1, 3, 5, 10]))
        if rng.random() < 0.05:
            promised = day - dt.timedelta(days=1)  # a few run late
        log.add(t0 + dt.timedelta(seconds=60), "case.accepted", "case", no, {
            "case_no": no, "accepted_date": day.isoformat(),
            "promised_deadline": promised.isoformat(),
            "statutory_deadline": (promised + dt.timedelta(days=10)).isoformat(),
            "departments": [dept], "missing": [], "commitment": False, "catch_up_date": None,
            "by": "clerk1"})  # fmt: skip
        done = t0 + dt.timedelta(hours=rng.uniform(0.5, 60))
        if done >= now or rng.random() < 0.2:
            continue
        ddate = done.astimezone(TZ).date()
        outcome = "case.rejected" if rng.random() < 0.08 else "case.approved"
        body: dict[str, Any] = {"case_no": no, "decided_date": ddate.isoformat(),
                                "on_time": ddate <= promised}  # fmt: skip
        if outcome == "case.rejected":
            body.update(department=dept, reason="材料不符合法定形式")
        log.add(done, outcome, "case", no, body)
        handed = done + dt.timedelta(hours=rng.uniform(0.2, 20))
        if handed < now and rng.random() < 0.8:
            log.add(handed, "case.handed_over", "case", no, {
                "case_no": no, "method": "mail" if rng.random() < 0.6 else "pickup",
                "tracking": "SF1234567890", "ticket_no": None,
                "visits": 1 if rng.random() < 0.93 else 2, "by": "clerk1"})  # fmt: skip
            if rng.random() < 0.5 and handed + dt.timedelta(minutes=5) < now:
                level = rng.choices([5, 4, 3, 2, 1], [75, 18, 4, 2, 1])[0]
                _rate(log, handed + dt.timedelta(minutes=5), level, no, None, now)


def _rate(log: Log, at: dt.datetime, level: int, case_no: str | None, ticket_no: str | None,
          end: dt.datetime) -> None:  # fmt: skip
    names = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
    log.rating += 1
    rid = log.rating
    log.add(at, "rating.given", "rating", str(rid), {
        "rating_id": rid, "case_no": case_no, "ticket_no": ticket_no, "level": level,
        "level_name": names[level], "comment": ""})  # fmt: skip
    if level <= 2:
        log.followup += 1
        fid = log.followup
        due = (at.astimezone(TZ).date() + dt.timedelta(days=3)).isoformat()
        log.add(at, "followup.opened", "followup", str(fid), {
            "followup_id": fid, "rating_id": rid, "case_no": case_no, "ticket_no": ticket_no,
            "level": level, "due_date": due})  # fmt: skip
        closed = at + dt.timedelta(hours=log.rng.uniform(1, 30))
        if closed < end and log.rng.random() < 0.7:
            log.add(closed, "followup.closed", "followup", str(fid), {
                "followup_id": fid, "case_no": case_no, "ticket_no": ticket_no,
                "note": "已电话回访", "by": "clerk1", "on_time": True})  # fmt: skip


def seed_province(hub_dir: Path, now: dt.datetime | None = None, days: int = 10,
                  seed: int = 7) -> dict[str, Any]:  # fmt: skip
    """Enroll a set of centers at the hub in ``hub_dir`` and ingest ``days`` days of their
    activity; a few are offline, one has a fork alert, one an unknown code."""
    now = now or dt.datetime.now(dt.UTC)
    rng = random.Random(seed)
    cfg = hubcfg.load(hub_dir)
    db = hubdb.open_db(cfg.db_path)
    ident = identity.load(cfg)
    items = [i for i in _items() if i[2] in ("licensing", "handling", "acceptance")][:40]
    centers = pick_centers(rng) + [{"code": "370102999", "name": "某开发区便民服务中心",
                                    "level": "township"}]  # fmt: skip
    today = now.astimezone(TZ).date()
    logs = []
    for c in centers:
        log = Log(c["code"], rng)
        busy = {"province": 2.5, "city": 1.8, "county": 1.2}.get(c["level"], 0.8)
        busy *= rng.uniform(0.6, 1.4)
        for d in range(days - 1, -1, -1):
            day_events(log, today - dt.timedelta(days=d), busy, now, items)
        pub = log.key.public_key().public_bytes(ser.Encoding.PEM,
                                                ser.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
        path = hub_dir.parent / f"seed-{c['code']}.pub"
        path.write_bytes(pub)
        assert run_cli("hub", "enroll", "--data", str(hub_dir), "--code", c["code"], "--pubkey",
                       str(path), "--name", c["name"]) == 0  # fmt: skip
        logs.append(log)
    iso = now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for log in logs:
        for i in range(0, len(log.records), 2000):
            batch = {"node": log.code, "records": log.records[i : i + 2000]}
            res = ingest_batch(db, ident, batch, sender=log.code, now=iso)
            assert not res.rejected, res.rejected[:2]
        backlog = rng.choice([0, 0, 0, 0, 3, 12])
        db.execute("UPDATE nodes SET reported_backlog = ? WHERE code = ?", [backlog, log.code])
    # A few centers went quiet; one shows a fork.
    quiet = [log.code for log in logs if len(log.code) == 9][3:6]
    old = (now - dt.timedelta(hours=3)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
    for code in quiet:
        db.execute("UPDATE nodes SET last_contact = ? WHERE code = ?",
                   [old.replace("+00:00", "Z"), code])  # fmt: skip
    raise_alert(db, quiet[0], "fork", "seq 40 differs from the hub's copy", iso)
    db.conn.close()
    return {"centers": [log.code for log in logs], "records": sum(len(x.records) for x in logs),
            "quiet": quiet}  # fmt: skip
