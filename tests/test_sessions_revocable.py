"""Staff sessions are server-side: a copied cookie dies with logout, revocation, a changed
password or a disabled account, and lives through a restart (node and hub)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils

from hub import config as hubcfg
from hub import staff
from node import auth
from node import config as cfgm
from onestop import session_store, sessions
from onestop.passwords import hash_password
from onestop.session_store import SessionStore
from tests import test_hub_support as support
from tests.conftest import ADMIN, CLERK, login
from tests.test_hub_support import HUB_ADMIN, HUB_NOW, add_hub_user, check_error_shape

hub_client = support.hub_client
hub_dir = support.hub_dir

NODE_COOKIE = "onestop_session"


def cookie_of(client: Any, name: str) -> str:
    """The session cookie the client's jar holds (what a thief would copy)."""
    for morsel in client.session.cookie_jar:
        if morsel.key == name:
            return str(morsel.value)
    raise AssertionError(f"no {name} cookie")


async def with_cookie(client: Any, path: str, name: str, value: str) -> Any:
    """GET ``path`` sending only the given session cookie (the jar is emptied first)."""
    client.session.cookie_jar.clear()
    return await client.get(path, headers={"Cookie": f"{name}={value}"}, allow_redirects=False)


async def fresh_login(client: Any, user: tuple[str, str], name: str) -> str:
    client.session.cookie_jar.clear()
    await login(client, user)
    return cookie_of(client, name)


# -- logout -------------------------------------------------------------------------------------


async def test_node_cookie_copied_before_logout_is_refused_after(client: Any) -> None:
    headers = await login(client)
    copied = cookie_of(client, NODE_COOKIE)
    assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, copied)).status == 200

    r = await client.post("/api/v1/logout",
                          headers={**headers, "Cookie": f"{NODE_COOKIE}={copied}"})  # fmt: skip
    assert r.status == 200, await r.text()

    r = await with_cookie(client, "/api/v1/me", NODE_COOKIE, copied)
    assert r.status == 401
    check_error_shape(await r.json(), 401)
    r = await with_cookie(client, "/admin", NODE_COOKIE, copied)
    assert r.status == 302 and r.headers["Location"].startswith("/login")


async def test_node_page_logout_ends_the_session(client: Any) -> None:
    headers = await login(client)
    copied = cookie_of(client, NODE_COOKIE)
    r = await client.post("/logout", data={"csrf_token": headers["X-CSRF-Token"]},
                          allow_redirects=False)  # fmt: skip
    assert r.status == 302
    assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, copied)).status == 401


async def test_hub_cookie_copied_before_logout_is_refused_after(hub_client: Any) -> None:
    copied = cookie_of(hub_client, staff.COOKIE)
    me = await hub_client.get("/api/v1/me")
    assert me.status == 200
    csrf = (await me.json())["csrf_token"]
    r = await hub_client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert r.status == 200, await r.text()

    r = await with_cookie(hub_client, "/api/v1/me", staff.COOKIE, copied)
    assert r.status == 401
    check_error_shape(await r.json(), 401)
    r = await with_cookie(hub_client, "/dash", staff.COOKIE, copied)
    assert r.status == 302 and r.headers["Location"].startswith("/login")


# -- revocation ---------------------------------------------------------------------------------


async def test_revoke_user_ends_every_session_of_that_user_only(
    client: Any, node_config: cfgm.NodeConfig
) -> None:
    first = await fresh_login(client, ADMIN, NODE_COOKIE)
    second = await fresh_login(client, ADMIN, NODE_COOKIE)
    clerk = await fresh_login(client, CLERK, NODE_COOKIE)
    for cookie in (first, second, clerk):
        assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, cookie)).status == 200

    assert auth.revoke_user(node_config, ADMIN[0]) == 2  # as the CLI would, from outside

    for cookie in (first, second):
        assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, cookie)).status == 401
    assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, clerk)).status == 200
    assert auth.STAFF.revoke_user(client.app, CLERK[0]) == 1  # from inside the service
    assert (await with_cookie(client, "/api/v1/me", NODE_COOKIE, clerk)).status == 401


async def test_hub_revoke_user(hub_client: Any, hub_dir: Path) -> None:
    copied = cookie_of(hub_client, staff.COOKIE)
    assert staff.revoke_user(hubcfg.load(hub_dir), HUB_ADMIN[0]) == 1
    assert (await with_cookie(hub_client, "/api/v1/me", staff.COOKIE, copied)).status == 401


async def test_changed_password_or_disabled_account_ends_sessions(
    hub_client: Any, hub_dir: Path
) -> None:
    """Whatever changes the password or disables the account, the sessions begun before end
    (the hub's users table is its own state: changed here as an admin action would)."""
    db = sqlite_utils.Database(sqlite3.connect(hub_dir / "hub.db", isolation_level=None))
    copied = cookie_of(hub_client, staff.COOKIE)
    db.execute("UPDATE users SET password_hash = ? WHERE username = ?",
               [hash_password("another-pass-1"), HUB_ADMIN[0]])  # fmt: skip
    assert (await with_cookie(hub_client, "/api/v1/me", staff.COOKIE, copied)).status == 401
    store = hub_client.app[sessions.STORE]
    assert store.count(HUB_ADMIN[0]) == 0  # the refused session was deleted

    r = await hub_client.post("/api/v1/login", json={"username": HUB_ADMIN[0],
                                                     "password": "another-pass-1"})  # fmt: skip
    assert r.status == 200
    copied = cookie_of(hub_client, staff.COOKIE)
    db.execute("UPDATE users SET disabled = 1 WHERE username = ?", [HUB_ADMIN[0]])
    assert (await with_cookie(hub_client, "/api/v1/me", staff.COOKIE, copied)).status == 401
    assert store.count(HUB_ADMIN[0]) == 0


# -- where sessions live -------------------------------------------------------------------------


async def test_a_session_outlives_a_restart(aiohttp_client: Any,
                                            node_config: cfgm.NodeConfig) -> None:  # fmt: skip
    from node.app import create_app

    first = await aiohttp_client(create_app(node_config))
    await login(first)
    copied = cookie_of(first, NODE_COOKIE)
    await first.close()  # the service stops ...

    second = await aiohttp_client(create_app(node_config))  # ... and starts again
    r = await with_cookie(second, "/api/v1/me", NODE_COOKIE, copied)
    assert r.status == 200
    assert (await r.json())["user"]["username"] == ADMIN[0]


async def test_hub_session_outlives_a_restart(aiohttp_client: Any, hub_dir: Path) -> None:
    from hub.app import create_app

    add_hub_user(hub_dir, *HUB_ADMIN, "admin", "37")
    first = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    await login(first, HUB_ADMIN)
    copied = cookie_of(first, staff.COOKIE)
    await first.close()
    second = await aiohttp_client(create_app(hubcfg.load(hub_dir), now=lambda: HUB_NOW))
    assert (await with_cookie(second, "/api/v1/me", staff.COOKIE, copied)).status == 200


async def test_cookie_holds_only_a_random_id_stored_hashed(
    client: Any, node_config: cfgm.NodeConfig
) -> None:
    await login(client)
    sid = cookie_of(client, NODE_COOKIE)
    assert len(sid) >= 40 and ADMIN[0] not in sid
    path = node_config.data_dir / session_store.FILE
    rows = sqlite3.connect(path).execute("SELECT id_hash, username FROM sessions").fetchall()
    assert rows == [(hashlib.sha256(sid.encode()).hexdigest(), ADMIN[0])]
    assert sid.encode() not in path.read_bytes()
    # Not case data: node.db (every table a projection of the log) holds no session.
    tables = {r[0] for r in sqlite3.connect(node_config.db_path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
    assert not any("session" in t for t in tables)


async def test_cookie_flags(client: Any) -> None:
    r = await client.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    # Behind the TLS proxy the cookie is Secure.
    r = await client.post("/api/v1/login", json={"username": ADMIN[0], "password": ADMIN[1]},
                          headers={"X-Forwarded-Proto": "https"})  # fmt: skip
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_expired_sessions_are_refused_and_purged(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SessionStore(tmp_path / session_store.FILE, clock=lambda: now[0])
    old = store.create("admin", {"user": "admin"}, max_age=60)
    now[0] += 30
    young = store.create("admin", {"user": "admin"}, max_age=60)
    assert store.load(old) == {"user": "admin"}
    now[0] += 31  # the first has run out
    assert store.load(old) is None and store.load(young) is not None
    assert store.purge() == 1
    assert store.count() == 1
    now[0] += 3600
    reopened = SessionStore(tmp_path / session_store.FILE, clock=lambda: now[0])  # purges
    assert reopened.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    store.close()
    reopened.close()


# -- the JSON login takes JSON only ---------------------------------------------------------------


async def test_json_login_refuses_other_content_types(client: Any, hub_client: Any) -> None:
    """A cross-site form can post text/plain, never application/json (login CSRF)."""
    body = '{"username": "admin", "password": "admin-pass-1"}'
    for c in (client, hub_client):
        c.session.cookie_jar.clear()
        for ctype in ("text/plain", "application/x-www-form-urlencoded"):
            r = await c.post("/api/v1/login", data=body, headers={"Content-Type": ctype})
            assert r.status == 415, await r.text()
            problem = await r.json()
            check_error_shape(problem, 415)
            assert problem["error"] == "unsupported_media_type"
            assert problem["field"] == "Content-Type"
            assert "Set-Cookie" not in r.headers
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert {"415", "429"} <= set(spec["paths"]["/api/v1/login"]["post"]["responses"])
