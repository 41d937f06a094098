"""Login throttling: after 5 wrong passwords an account is locked from that address for 1 s,
doubling to 15 min; answered 429 with Retry-After and a message saying how long to wait."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from hub import config as hubcfg
from node import config as cfgm
from onestop import sessions
from onestop.throttle import LoginThrottle, TooManyAttempts
from tests import test_hub_support as support
from tests.conftest import ADMIN, CLERK
from tests.test_hub_support import HUB_ADMIN, HUB_NOW, add_hub_user, check_error_shape
from tests.test_pages import csrf_of

hub_dir = support.hub_dir


class Clock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def wrong(user: tuple[str, str] = ADMIN) -> dict[str, str]:
    return {"username": user[0], "password": "not-" + user[1]}


def right(user: tuple[str, str] = ADMIN) -> dict[str, str]:
    return {"username": user[0], "password": user[1]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def node(aiohttp_client: Any, node_config: cfgm.NodeConfig, clock: Clock) -> Any:
    from node.app import create_app

    app = create_app(node_config)
    app[sessions.THROTTLE] = LoginThrottle(clock=clock)
    return await aiohttp_client(app)


# -- the policy -----------------------------------------------------------------------------------


def test_lock_grows_from_one_second_to_the_cap(clock: Clock) -> None:
    t = LoginThrottle(clock=clock)
    for _ in range(4):
        t.failed("admin", "10.0.0.1")
    t.check("admin", "10.0.0.1")  # four wrong passwords: still free
    waits = []
    for _ in range(14):
        t.failed("admin", "10.0.0.1")
        with pytest.raises(TooManyAttempts) as e:
            t.check("admin", "10.0.0.1")
        waits.append(e.value.retry_after)
        clock.t += e.value.retry_after  # wait it out: then the next try is let through
        t.check("admin", "10.0.0.1")
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert max(waits) == waits[-1] == 900  # capped at 15 min
    assert e.value.message_in("en") == "Too many failed logins: wait 15 min and try again"
    assert e.value.message_in("zh") == "登录失败次数过多，请15分钟后再试"


def test_keys_account_from_address_account_anywhere_and_address(clock: Clock) -> None:
    t = LoginThrottle(clock=clock)
    for _ in range(5):
        t.failed("admin", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        t.check("admin", "10.0.0.1")
    t.check("admin", "10.0.0.2")  # the same account from elsewhere: not yet
    t.check("clerk1", "10.0.0.1")  # another account from this address: not yet
    # Guessing spread over many addresses or many usernames is slowed as well.
    for i in range(15):
        t.failed("admin", f"10.0.1.{i}")
    with pytest.raises(TooManyAttempts):
        t.check("admin", "10.0.0.9")
    for i in range(15):
        t.failed(f"user{i}", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        t.check("someone", "10.0.0.1")


def test_success_forgets_the_account_and_memory_is_bounded(clock: Clock) -> None:
    t = LoginThrottle(clock=clock, max_keys=50)
    for _ in range(4):
        t.failed("admin", "10.0.0.1")
    t.succeeded("admin", "10.0.0.1")
    for _ in range(4):
        t.failed("admin", "10.0.0.1")
    t.check("admin", "10.0.0.1")  # counted afresh: four again, not eight
    for i in range(1000):
        t.failed(f"user{i}", f"10.1.{i // 250}.{i % 250}")
    assert len(t._counts) <= 50
    clock.t += 3601  # counts are forgotten an hour after the last failure
    assert len(t._counts) == 0


# -- the node's login -----------------------------------------------------------------------------


async def test_forty_wrong_passwords_then_the_right_one(node: Any, clock: Clock) -> None:
    statuses = [(await node.post("/api/v1/login", json=wrong())).status for _ in range(40)]
    # Five are checked; then the lock answers without looking at the password.
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    r = await node.post("/api/v1/login", json=right())
    assert r.status == 429
    problem = await r.json()
    check_error_shape(problem, 429)
    assert problem["error"] == "too_many_requests" and problem["field"] == "password"
    assert r.headers["Retry-After"] == "1"
    assert problem["message"] == "Too many failed logins: wait 1 s and try again"
    assert "Set-Cookie" not in r.headers
    r = await node.post("/api/v1/login", json=right(), headers={"Accept-Language": "zh-CN"})
    assert (await r.json())["message"] == "登录失败次数过多，请1秒后再试"

    clock.t += 1  # the lock ran out: the right password logs in
    r = await node.post("/api/v1/login", json=right())
    assert r.status == 200, await r.text()
    # ... and the account starts afresh: four wrong passwords are not locked.
    for _ in range(4):
        assert (await node.post("/api/v1/login", json=wrong())).status == 401
    assert (await node.post("/api/v1/login", json=right())).status == 200


async def test_a_parallel_burst_gets_no_more_checks(node: Any, clock: Clock) -> None:
    """Thirty guesses sent at once: only five passwords are checked, as if sent in turn."""
    answers = await asyncio.gather(*(node.post("/api/v1/login", json=wrong())
                                     for _ in range(30)))  # fmt: skip
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 25
    clock.t += 1
    for _ in range(3):  # once past the free five, one check at a time
        answers = await asyncio.gather(*(node.post("/api/v1/login", json=wrong())
                                         for _ in range(10)))  # fmt: skip
        assert sorted(r.status for r in answers).count(401) <= 1
        clock.t += 900
    assert (await node.post("/api/v1/login", json=right())).status == 200


async def test_the_lock_doubles_after_it_runs_out(node: Any, clock: Clock) -> None:
    for _ in range(5):
        await node.post("/api/v1/login", json=wrong())
    clock.t += 1
    assert (await node.post("/api/v1/login", json=wrong())).status == 401
    r = await node.post("/api/v1/login", json=right())
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    clock.t += 2
    assert (await node.post("/api/v1/login", json=right())).status == 200


async def test_another_account_from_the_same_address_still_logs_in(node: Any) -> None:
    for _ in range(6):
        await node.post("/api/v1/login", json=wrong(ADMIN))
    assert (await node.post("/api/v1/login", json=right(ADMIN))).status == 429
    assert (await node.post("/api/v1/login", json=right(CLERK))).status == 200


async def test_login_form_says_how_long_to_wait(node: Any, clock: Clock) -> None:
    for _ in range(5):
        await node.post("/api/v1/login", json=wrong())
    clock.t += 1
    await node.post("/api/v1/login", json=wrong())  # locked for 2 s now
    token = await csrf_of(node)
    form = {**right(), "csrf_token": token}
    r = await node.post("/login", data=form, allow_redirects=False)
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    html = await r.text()
    m = re.search(r'id="login-error">([^<]+)<', html)
    assert m and m.group(1) == "登录失败次数过多，请2秒后再试"  # the node's pages: zh-CN
    r = await node.post("/login?lang=en", data=form, allow_redirects=False)
    assert "Too many failed logins: wait 2 s and try again" in await r.text()
    clock.t += 2
    r = await node.post("/login", data=form, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/admin"


# -- the hub's login ------------------------------------------------------------------------------


async def test_hub_login_is_throttled(aiohttp_client: Any, hub_dir: Path, clock: Clock) -> None:
    from hub.app import create_app

    add_hub_user(hub_dir, *HUB_ADMIN, "admin", "37")
    app = create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW)
    app[sessions.THROTTLE] = LoginThrottle(clock=clock)
    hub = await aiohttp_client(app)
    for _ in range(5):
        assert (await hub.post("/api/v1/login", json=wrong(HUB_ADMIN))).status == 401
    r = await hub.post("/api/v1/login", json=right(HUB_ADMIN))
    assert r.status == 429 and r.headers["Retry-After"] == "1"
    check_error_shape(await r.json(), 429)
    token = await csrf_of(hub)
    r = await hub.post("/login", data={**right(HUB_ADMIN), "csrf_token": token},
                       allow_redirects=False)  # fmt: skip
    assert r.status == 429 and "Retry-After" in r.headers
    clock.t += 1
    assert (await hub.post("/api/v1/login", json=right(HUB_ADMIN))).status == 200
