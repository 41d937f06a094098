"""Shared helpers of the case tests: a node with a settable clock, staff sessions of their own,
and the check that every event body written validates against its JSON Schema.

(No tests here; the file is named test_cases_* so it belongs to the case tests.)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from jsonschema import Draft202012Validator

import schemas
from node import config as cfgm
from node import ratings
from node.keys import DB, PII
from tests.conftest import ADMIN, CLERK, PHONE, make_id

EVENT_SCHEMAS = Path(schemas.__file__).parent / "events"
TZ = ZoneInfo("Asia/Shanghai")
SCHOOL_ITEM = "370000-edu-001"  # 中外合作办学机构终止: education (lead) and civil affairs
SCHOOL_MATERIALS = [
    "termination-application",
    "board-resolution",
    "liquidation-report",
    "student-placement",
    "permit",
    "legal-rep-id",
]
REVIEWER_EDU = ("rev_edu", "reviewer-pass-1")
REVIEWER_CIVIL = ("rev_civil", "reviewer-pass-2")
REVIEWER_AGRI = ("rev_agri", "reviewer-pass-3")
# Kinds written by the queue, window, catalog and case parts: each needs a schema.
COVERED_PREFIXES = (
    "case.",
    "review.",
    "preapplication.",
    "appointment.",
    "sms.",
    "rating.",
    "followup.",
    "ticket.",
    "window.",
    "catalog.",
)


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 30) -> dt.datetime:
    """An instant given in the center's local time."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


class Clock:
    """A settable clock for ``create_app(config, now=clock)``."""

    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t.astimezone(dt.UTC)

    def set(self, t: dt.datetime) -> None:
        self.t = t

    def advance(self, **kw: float) -> None:
        self.t += dt.timedelta(**kw)


class Actor:
    """A browser of its own (cookie jar) against the test server, logged in as someone."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.headers: dict[str, str] = {}

    async def login(self, user: tuple[str, str]) -> Actor:
        r = await self.session.post(
            self.base + "/api/v1/login", json={"username": user[0], "password": user[1]}
        )
        assert r.status == 200, await r.text()
        self.headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
        return self

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kw.pop("headers", {})}
        if body is not None:
            kw["json"] = body
        async with self.session.request(method, self.base + path, headers=headers, **kw) as r:
            text = await r.text()
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = text
            return r.status, data

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body, **kw)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = await self.call(method, path, body)
        assert got == status, (method, path, got, data)
        return data


@dataclass
class Env:
    client: Any
    clock: Clock
    config: cfgm.NodeConfig
    admin: Actor
    clerk: Actor
    edu: Actor
    civil: Actor
    public: Actor
    actors: list[Actor] = field(default_factory=list)

    @property
    def db(self) -> Any:
        return self.client.app[DB]

    async def ticket(
        self,
        queue: str = "dept:edu",
        id_number: str | None = None,
        phone: str = PHONE,
        item: str | None = SCHOOL_ITEM,
    ) -> dict[str, Any]:
        """A citizen takes a ticket and window 1 (clerk1, 综合窗口) calls it."""
        body: dict[str, Any] = {"queue": queue, "id_number": id_number or make_id(), "phone": phone}
        if item:
            body["item"] = item
        issued = await self.public.ok("POST", "/api/v1/tickets", body, 201)
        called = await self.clerk.ok("POST", "/api/v1/windows/1/call-next")
        assert called["ticket"]["ticket_no"] == issued["ticket_no"], called
        return dict(called["ticket"], token=issued["token"])

    def rating_code(self, case_no: str) -> str:
        """The case's rating code, as the result SMS gives it to the applicant."""
        return ratings.shown_code(ratings.case_code(self.client.app[PII], case_no))

    async def finish(self) -> None:
        await self.clerk.ok("POST", "/api/v1/windows/1/finish")

    async def intake(
        self, ticket: dict[str, Any] | None = None, status: int = 201, **body: Any
    ) -> Any:
        ticket = ticket or await self.ticket()
        payload = {
            "ticket_id": ticket["id"],
            "items": [SCHOOL_ITEM],
            "received": SCHOOL_MATERIALS,
            **body,
        }
        got, data = await self.clerk.post("/api/v1/cases", payload)
        assert got == status, data
        return data["case"] if status == 201 else data

    async def flush_sms(self) -> dict[str, int]:
        return dict(await self.admin.ok("POST", "/api/v1/sms/send"))


async def make_env(aiohttp_client: Any, config: cfgm.NodeConfig, clock: Clock) -> Env:
    from node.app import create_app
    from node.notify import NOTIFIER

    app = create_app(config, now=clock)
    client = await aiohttp_client(app)
    app[NOTIFIER].auto = False  # tests send the outbox explicitly: no background surprises
    base = str(client.make_url("")).rstrip("/")
    actors = [Actor(base) for _ in range(5)]
    admin, clerk, edu, civil, public = actors
    await admin.login(ADMIN)
    for user, dept in ((REVIEWER_EDU, "edu"), (REVIEWER_CIVIL, "civil"), (REVIEWER_AGRI, "agri")):
        await admin.ok(
            "POST",
            "/api/v1/users",
            {"username": user[0], "password": user[1], "role": "reviewer", "department": dept},
            201,
        )
    await clerk.login(CLERK)
    await edu.login(REVIEWER_EDU)
    await civil.login(REVIEWER_CIVIL)
    return Env(client, clock, config, admin, clerk, edu, civil, public, actors)


@pytest.fixture
def clock() -> Clock:
    # Monday 28 September 2026, 09:30 in Jinan: just before Mid-Autumn/National Day.
    return Clock(local(2026, 9, 28))


@pytest.fixture
async def env(
    aiohttp_client: Any, node_config: cfgm.NodeConfig, clock: Clock
) -> AsyncIterator[Env]:
    e = await make_env(aiohttp_client, node_config, clock)
    yield e
    try:
        check_events(e.db)
        check_no_plain_numbers(e.db)
    finally:
        for a in e.actors:
            await a.session.close()


# --------------------------------------------------------------------------- checks


@cache
def event_validator(kind: str) -> Draft202012Validator | None:
    path = EVENT_SCHEMAS / f"{kind}.schema.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_events(db: Any) -> list[str]:
    """Every event body validates against schemas/events/<kind>.schema.json."""
    problems = []
    kinds = []
    for row in db.execute("SELECT seq, kind, body FROM events ORDER BY seq").fetchall():
        kind = row["kind"]
        kinds.append(kind)
        v = event_validator(kind)
        if v is None:
            if kind.startswith(COVERED_PREFIXES):
                problems.append(f"#{row['seq']} {kind}: no schema")
            continue
        body = json.loads(row["body"])
        for err in v.iter_errors(body):
            problems.append(f"#{row['seq']} {kind}: {'/'.join(map(str, err.path))}: {err.message}")
    assert not problems, "\n".join(problems)
    return kinds


_PLAIN = re.compile(r"(?<![0-9])(1[3-9][0-9]{9}|[0-9]{17}[0-9X])(?![0-9])")


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, skipping hex digests (id_hash, sha256, signatures)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in ("id_hash", "sha256") for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if isinstance(value, str | int) else []


def check_no_plain_numbers(db: Any) -> None:
    """No event body and no outbox row carries a full phone or ID number."""
    for row in db.execute("SELECT kind, body FROM events").fetchall():
        for text in _strings(json.loads(row["body"])):
            assert not _PLAIN.search(text), (row["kind"], row["body"])
    for row in db.execute("SELECT to_masked, text, template FROM sms_outbox").fetchall():
        assert not _PLAIN.search(row["to_masked"] + row["text"]), dict(row)


def snapshot(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare before and after a refused request."""
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        n: [tuple(r) for r in db.execute(f'SELECT * FROM "{n}"').fetchall()] for n in sorted(names)
    }
