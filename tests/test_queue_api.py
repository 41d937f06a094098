"""Kiosk tickets and window actions through the real HTTP API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from node import db as dbm
from tests.conftest import CLERK, CLERK2, PHONE, login, make_id


async def take(client: Any, queue: str = "dept:edu", **kw: Any) -> dict[str, Any]:
    body = {"queue": queue, "id_number": kw.pop("id_number", make_id()), "phone": PHONE, **kw}
    r = await client.post("/api/v1/tickets", json=body)
    assert r.status == 201, await r.text()
    return dict(await r.json())


def count_tickets(client: Any) -> int:
    from node.keys import DB

    return int(client.app[DB].execute("SELECT COUNT(*) FROM tickets").fetchone()[0])


async def test_issue_ticket_numbers_and_people_ahead(client: Any) -> None:
    r = await client.get("/api/v1/queues")
    queues = {q["code"]: q for q in (await r.json())["queues"]}
    prefix = queues["dept:edu"]["prefix"]
    a = await take(client)
    b = await take(client)
    assert a["ticket_no"] == f"{prefix}001" and b["ticket_no"] == f"{prefix}002"
    assert (a["waiting_ahead"], b["waiting_ahead"]) == (0, 1)
    assert b["estimated_wait_minutes"] > 0
    other = await take(client, "area:agri")
    assert other["ticket_no"].endswith("001") and other["waiting_ahead"] == 0
    r = await client.get("/api/v1/queues")
    assert {q["code"]: q["waiting"] for q in (await r.json())["queues"]}["dept:edu"] == 2


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("id_number", "11010519491231002Y", "17"),
        ("id_number", "110105194912310021", "校验位"),
        ("id_number", "110105194913310028", "出生日期"),
        ("id_number", "990105194912310021", "地区"),
        ("phone", "01012345678", "固定电话"),
        ("phone", "1380013800", "手机"),
    ],
)
async def test_bad_input_names_the_field_and_creates_nothing(
    client: Any, field: str, value: str, needle: str
) -> None:
    body = {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE, field: value}
    r = await client.post("/api/v1/tickets", json=body)
    assert r.status == 422
    err = await r.json()
    assert err["field"] == field and needle in err["message"]
    assert count_tickets(client) == 0


async def test_several_bad_fields_are_all_named_in_english(client: Any) -> None:
    r = await client.post(
        "/api/v1/tickets", json={"queue": "nope", "id_number": "1", "phone": "x", "lang": "en"}
    )
    assert r.status == 422
    err = await r.json()
    assert {e["field"] for e in err["errors"]} == {"queue", "id_number", "phone"}
    assert "18 characters" in [e for e in err["errors"] if e["field"] == "id_number"][0]["message"]


async def test_item_must_belong_to_queue(client: Any) -> None:
    cat = await (await client.get("/api/v1/catalog")).json()
    agri_item = next(
        i for i in cat["items"] if i["area"] == "agri" and "edu" not in i["departments"]
    )
    r = await client.post(
        "/api/v1/tickets",
        json={
            "queue": "dept:edu",
            "id_number": make_id(),
            "phone": PHONE,
            "item": agri_item["code"],
        },
    )
    assert r.status == 422 and (await r.json())["field"] == "item"
    ok = await take(client, "area:agri", item=agri_item["code"])
    assert ok["ticket_no"]


async def call(client: Any, window: int, headers: dict[str, str]) -> Any:
    return await client.post(f"/api/v1/windows/{window}/call-next", headers=headers)


async def test_elderly_and_staff_priority_called_first(client: Any) -> None:
    h = await login(client)
    first = await take(client)
    old = await take(client, id_number=make_id("19400101"))
    assert old["priority"] == 1 and old["priority_reason"] == "elderly"
    assert old["waiting_ahead"] == 0
    third = await take(client)
    r = await call(client, 2, h)
    assert (await r.json())["ticket"]["ticket_no"] == old["ticket_no"]
    await client.post("/api/v1/windows/2/finish", headers=h)
    # staff flag on the third ticket puts it before the first
    tickets = (await (await client.get("/api/v1/tickets?state=waiting", headers=h)).json())[
        "tickets"
    ]
    tid = next(t["id"] for t in tickets if t["ticket_no"] == third["ticket_no"])
    r = await client.post(f"/api/v1/tickets/{tid}/priority", json={"priority": True}, headers=h)
    assert r.status == 200
    r = await call(client, 2, h)
    assert (await r.json())["ticket"]["ticket_no"] == third["ticket_no"]
    await client.post("/api/v1/windows/2/finish", headers=h)
    r = await call(client, 2, h)
    assert (await r.json())["ticket"]["ticket_no"] == first["ticket_no"]


async def test_window_actions_and_event_log(client: Any) -> None:
    from node.keys import DB

    h = await login(client, CLERK)  # bound to window 1 (comprehensive)
    t = await take(client)
    r = await call(client, 1, h)
    cur = (await r.json())["ticket"]
    assert cur["ticket_no"] == t["ticket_no"] and cur["state"] == "called"
    assert "*" in cur["id_masked"] and cur["phone_masked"] == "138****8000"
    # one ticket at a time
    r = await call(client, 1, h)
    assert r.status == 409 and "finish" in (await r.json())["message"]
    for _ in range(3):
        assert (await client.post("/api/v1/windows/1/recall", headers=h)).status == 200
    r = await client.post("/api/v1/windows/1/recall", headers=h)
    assert r.status == 409 and (await r.json())["field"] == "recalls"
    r = await client.post("/api/v1/windows/1/suspend", headers=h)
    assert (await r.json())["ticket"]["state"] == "suspended"
    detail = await (await client.get("/api/v1/windows/1", headers=h)).json()
    assert detail["window"]["current"] is None and len(detail["window"]["suspended"]) == 1
    r = await client.post("/api/v1/windows/1/resume", json={"ticket_id": cur["id"]}, headers=h)
    assert (await r.json())["ticket"]["state"] == "called"
    r = await client.post("/api/v1/windows/1/finish", headers=h)
    assert (await r.json())["ticket"]["state"] == "done"
    r = await client.post("/api/v1/windows/1/finish", headers=h)
    assert r.status == 409
    t2 = await take(client)
    await call(client, 1, h)
    r = await client.post("/api/v1/windows/1/no-show", headers=h)
    assert (await r.json())["ticket"]["state"] == "no_show"
    kinds = [
        row["kind"]
        for row in dbm.rows(
            client.app[DB], "SELECT kind FROM events WHERE entity = 'ticket' ORDER BY seq"
        )
    ]
    assert kinds == [
        "ticket.issued",
        "ticket.called",
        *["ticket.recalled"] * 3,
        "ticket.suspended",
        "ticket.resumed",
        "ticket.finished",
        "ticket.issued",
        "ticket.called",
        "ticket.no_show",
    ]
    times = [row["at"] for row in dbm.rows(client.app[DB], "SELECT at FROM events ORDER BY seq")]
    assert times == sorted(times) and all(x.endswith("Z") for x in times)
    # the event log never holds personal data
    bodies = " ".join(r["body"] for r in dbm.rows(client.app[DB], "SELECT body FROM events"))
    assert make_id() not in bodies and PHONE not in bodies
    assert t2["ticket_no"]
    # the log is append-only
    with pytest.raises(Exception, match="append-only"):
        client.app[DB].execute("DELETE FROM events")


async def test_transfer_keeps_place_and_priority(client: Any) -> None:
    h = await login(client)
    early = await take(client, "dept:edu")
    later = await take(client, "area:agri")
    await call(client, 2, h)  # window 2 serves edu/civil
    r = await client.post("/api/v1/windows/2/transfer", json={"queue": "area:agri"}, headers=h)
    moved = (await r.json())["ticket"]
    assert moved["queue"] == "area:agri" and moved["state"] == "waiting"
    # the transferred ticket was issued before `later`, so window 3 calls it first
    r = await call(client, 3, h)
    assert (await r.json())["ticket"]["ticket_no"] == early["ticket_no"]
    r = await client.post("/api/v1/windows/3/transfer", json={"window": 1}, headers=h)
    assert (await r.json())["ticket"]["target_window"] == 1
    # window 3 can't get it back; window 1 gets it before `later`
    r = await call(client, 3, h)
    assert (await r.json())["ticket"]["ticket_no"] == later["ticket_no"]
    r = await call(client, 1, h)
    assert (await r.json())["ticket"]["ticket_no"] == early["ticket_no"]
    r = await client.post("/api/v1/windows/1/transfer", json={"queue": "nope"}, headers=h)
    assert r.status == 422 and (await r.json())["field"] == "queue"


async def test_simultaneous_call_next_never_hands_out_a_ticket_twice(client: Any) -> None:
    h = await login(client)
    for n in range(10, 22):
        r = await client.post("/api/v1/windows", json={"number": n, "queues": ["*"]}, headers=h)
        assert r.status == 201
    wins = [
        w["id"]
        for w in (await (await client.get("/api/v1/windows", headers=h)).json())["windows"]
        if w["number"] >= 10
    ]
    issued = [await take(client, q) for q in ("dept:edu", "dept:civil", "area:agri") * 12]
    got: list[str] = []
    for _round in range(4):
        results = await asyncio.gather(*(call(client, w, h) for w in wins))
        for r in results:
            body = await r.json()
            if body["ticket"]:
                got.append(body["ticket"]["ticket_no"] + body["ticket"]["queue"])
        await asyncio.gather(*(client.post(f"/api/v1/windows/{w}/finish", headers=h) for w in wins))
    assert len(got) == len(set(got)) == len(issued)


def _call_in_process(args: tuple[str, int, int]) -> list[int]:
    from node import config, windows
    from node import db as dbm2

    data, window_id, n = args
    cfg = config.load(data)
    db = dbm2.connect(cfg.db_path)
    out = []
    for _ in range(n):
        t = windows.call_next(db, cfg, window_id, "p")
        if t is None:
            break
        out.append(t["id"])
        windows.finish(db, window_id, "p")
    return out


async def test_call_next_is_atomic_across_processes(client: Any, node_config: Any) -> None:
    import multiprocessing

    h = await login(client)
    for n in range(30, 36):
        await client.post("/api/v1/windows", json={"number": n, "queues": ["*"]}, headers=h)
    ids = [
        w["id"]
        for w in (await (await client.get("/api/v1/windows", headers=h)).json())["windows"]
        if w["number"] >= 30
    ]
    for i in range(60):
        await take(client, id_number=make_id(seq=f"{i:03d}"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(ids)) as pool:
        results = await asyncio.get_running_loop().run_in_executor(
            None, pool.map, _call_in_process, [(str(node_config.data_dir), w, 20) for w in ids]
        )
    flat = [t for r in results for t in r]
    assert len(flat) == len(set(flat)) == 60


async def test_window_user_bound_to_one_window(client: Any) -> None:
    h = await login(client, CLERK)
    r = await call(client, 2, h)
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    h2 = await login(client, CLERK2)  # not bound: may use any window
    assert (await call(client, 2, h2)).status == 200


async def test_staff_endpoints_need_login_and_csrf(client: Any) -> None:
    r = await client.post("/api/v1/windows/1/call-next")
    assert r.status == 401 and (await r.json())["field"] == "session"
    await login(client)
    r = await client.post("/api/v1/windows/1/call-next")  # session but no CSRF token
    assert r.status == 403 and (await r.json())["field"] == "csrf_token"
    r = await client.post("/api/v1/login", json={"username": "admin", "password": "wrong-pass"})
    assert r.status == 401


async def test_clerk_cannot_add_users(client: Any) -> None:
    h = await login(client, CLERK)
    r = await client.post(
        "/api/v1/users",
        json={"username": "x", "password": "longenough", "role": "admin"},
        headers=h,
    )
    assert r.status == 403


async def test_window_pause_blocks_calls(client: Any) -> None:
    h = await login(client)
    await take(client)
    r = await client.post("/api/v1/windows/1/pause", headers=h)
    assert (await r.json())["window"]["status"] == "paused"
    r = await call(client, 1, h)
    assert r.status == 409 and "paused" in (await r.json())["message"]
    await client.post("/api/v1/windows/1/open", headers=h)
    assert (await call(client, 1, h)).status == 200


async def test_display_stream_announces_calls(client: Any) -> None:
    h = await login(client)
    t = await take(client)
    resp = await client.get("/api/v1/display/stream")
    assert resp.headers["Content-Type"].startswith("text/event-stream")

    async def read_event(kind: str) -> dict[str, Any]:
        event = None
        while True:
            line = (await resp.content.readline()).decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == kind:
                return dict(json.loads(line[5:]))

    hello = await asyncio.wait_for(read_event("state"), 5)
    assert {w["number"] for w in hello["windows"]} == {1, 2, 3}
    await call(client, 2, h)
    msg = await asyncio.wait_for(read_event("call"), 5)
    assert msg["ticket_no"] == t["ticket_no"] and msg["window"] == 2
    assert msg["speech_zh"].endswith("号到二号窗口办理")
    resp.close()


async def test_public_status_has_no_personal_data(client: Any) -> None:
    t = await take(client)
    r = await client.get(f"/api/v1/tickets/status/{t['token']}")
    body = await r.text()
    assert r.status == 200 and t["ticket_no"] in body
    assert make_id()[:6] not in body and "138" not in body
    r = await client.get("/api/v1/tickets/status/nope")
    assert r.status == 404


def test_sequences_reset_at_local_midnight_not_utc(node_config: Any) -> None:
    from node import pii, tickets

    db = dbm.connect(node_config.db_path)
    p = pii.load(node_config.data_dir)
    data = {"queue": "dept:edu", "id_number": make_id(), "phone": PHONE}
    # 23:59 in Shanghai is 15:59 UTC; 00:00 local the next day is still the same UTC date.
    before = dt.datetime(2026, 11, 28, 15, 59, tzinfo=dt.UTC)
    after = dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
    a = tickets.issue(db, node_config, p, data, lambda: before)
    b = tickets.issue(db, node_config, p, data, lambda: before)
    c = tickets.issue(db, node_config, p, data, lambda: after)
    assert [x.ticket["seq"] for x in (a, b, c)] == [1, 2, 1]
    assert (a.ticket["service_date"], c.ticket["service_date"]) == ("2026-11-28", "2026-11-29")
    # yesterday's waiting tickets are not "ahead" today
    assert c.waiting_ahead == 0


def test_id_numbers_encrypted_at_rest(node_config: Any) -> None:
    from node import pii, tickets

    db = dbm.connect(node_config.db_path)
    p = pii.load(node_config.data_dir)
    idn = make_id()
    tickets.issue(db, node_config, p, {"queue": "dept:edu", "id_number": idn, "phone": PHONE})
    raw = node_config.db_path.read_bytes() + (
        node_config.db_path.with_suffix(".db-wal").read_bytes()
        if node_config.db_path.with_suffix(".db-wal").exists()
        else b""
    )
    assert idn.encode() not in raw and PHONE.encode() not in raw
    row = dbm.one(db, "SELECT * FROM tickets")
    assert (
        row
        and p.decrypt(row["id_enc"]) == idn
        and row["id_masked"] == idn[:6] + "********" + idn[-4:]
    )


async def test_window_conflicts_speak_the_clients_language(client: Any) -> None:
    h = await login(client)
    await take(client)
    await call(client, 1, h)
    r = await call(client, 1, {**h, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status == 409 and "正在办理" in (await r.json())["message"]
    r = await call(client, 1, {**h, "Accept-Language": "en-GB"})
    assert "still serving" in (await r.json())["message"]


async def test_a_login_does_not_stall_the_kiosk(client: Any) -> None:
    """scrypt runs off the event loop: a kiosk request sent during a login finishes first."""
    done: list[str] = []

    async def log_in() -> None:
        r = await client.post(
            "/api/v1/login", json={"username": "admin", "password": "admin-pass-1"}
        )
        assert r.status == 200
        done.append("login")

    async def kiosk() -> None:
        await asyncio.sleep(0.005)  # the login's hashing has started
        assert (await client.get("/api/v1/queues")).status == 200
        done.append("kiosk")

    await asyncio.gather(log_in(), kiosk())
    assert done == ["kiosk", "login"]
