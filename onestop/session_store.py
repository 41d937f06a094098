"""Staff sessions kept server-side, so that logging out (or losing an account) ends them.

A logged-in session is a row of ``sessions.db``, a small SQLite file of its own in the data
directory (node and hub alike): not case data, so it stays out of the node's projected
``node.db`` and of its backups, and a rebuild of ``node.db`` never touches it.  The browser's
cookie carries only the session id (256 random bits from :mod:`secrets`); the file holds its
SHA-256, never the id, so a copy of the file lets nobody in.  Rows outlive a restart of the
service (staff stay logged in) and are deleted on logout, on :func:`revoke_user` (password
change, disabled account: callable from another process such as the CLI) and once expired.

A visitor not logged in yet (the login page's CSRF token) gets a session held in memory only
(a bounded :class:`cachetools.TTLCache`), so pages seen before a login never write to disk.

:class:`ServerStorage` plugs both into aiohttp-session.  The cookie is always ``HttpOnly`` and
``SameSite=Strict``, and ``Secure`` when the request came over TLS (``request.secure``, or
``X-Forwarded-Proto: https`` from the TLS proxy in front).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from cachetools import TTLCache

from onestop import db as dbm

FILE = "sessions.db"
#: Pre-login sessions held in memory: how many at most, and for how many seconds.
ANON_MAX = 10_000
ANON_TTL = 3600

Clock = Callable[[], float]


def path_in(data_dir: Path) -> Path:
    """The session file of a service's data directory."""
    return Path(data_dir) / FILE


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """The ``sessions`` table of one ``sessions.db``; ``clock`` gives Unix seconds."""

    def __init__(self, path: Path, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self.db = dbm.connect(self.path)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sessions (
                id_hash TEXT PRIMARY KEY,          -- SHA-256 of the cookie's session id
                username TEXT NOT NULL,
                data TEXT NOT NULL,                -- JSON: user, csrf, password fingerprint
                created_at REAL NOT NULL,          -- Unix seconds
                expires_at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username);
            CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);
            """
        )
        self.purge()

    def create(self, username: str, data: dict[str, Any], max_age: int) -> str:
        """A new session for ``username``; returns its id (for the cookie only)."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        self.purge()
        self.db.execute(
            "INSERT INTO sessions (id_hash, username, data, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [_digest(sid), username, json.dumps(data), now, now + max_age],
        )
        return sid

    def load(self, sid: str) -> dict[str, Any] | None:
        """The data of a live session, or None (unknown, revoked or expired)."""
        row = self.db.execute(
            "SELECT data FROM sessions WHERE id_hash = ? AND expires_at > ?",
            [_digest(sid), self._clock()],
        ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return data if isinstance(data, dict) else None

    def update(self, sid: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE sessions SET data = ? WHERE id_hash = ?", [json.dumps(data), _digest(sid)]
        )

    def delete(self, sid: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id_hash = ?", [_digest(sid)])

    def revoke_user(self, username: str) -> int:
        """End every session of ``username``; returns how many there were."""
        return self.db.execute("DELETE FROM sessions WHERE username = ?", [username]).rowcount

    def count(self, username: str | None = None) -> int:
        """Live sessions (of ``username`` when given)."""
        sql = "SELECT count(*) FROM sessions WHERE expires_at > ?"
        args: list[float | str] = [self._clock()]
        if username is not None:
            sql, args = sql + " AND username = ?", [*args, username]
        return int(self.db.execute(sql, args).fetchone()[0])

    def purge(self) -> int:
        """Delete expired sessions; returns how many."""
        return self.db.execute(
            "DELETE FROM sessions WHERE expires_at <= ?", [self._clock()]
        ).rowcount

    def close(self) -> None:
        self.db.conn.close()


def revoke_user(data_dir: Path, username: str) -> int:
    """End every session of ``username`` of the service whose data directory is
    ``data_dir`` (from any process: the CLI while the service runs)."""
    store = SessionStore(path_in(data_dir))
    try:
        return store.revoke_user(username)
    finally:
        store.close()


def is_tls(request: web.Request) -> bool:
    """Whether the browser reached us over TLS (directly, or through a TLS proxy)."""
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or proto == "https"


class ServerStorage(AbstractStorage):
    """aiohttp-session storage: logged-in sessions in a :class:`SessionStore`, pre-login ones
    in memory; the cookie holds only the id."""

    def __init__(self, store: SessionStore, *, cookie_name: str, max_age: int,
                 anon_max: int = ANON_MAX, anon_ttl: float = ANON_TTL) -> None:  # fmt: skip
        super().__init__(cookie_name=cookie_name, max_age=max_age, httponly=True,
                         samesite="Strict")  # fmt: skip
        self.store = store
        self._anon: TTLCache[str, dict[str, Any]] = TTLCache(maxsize=anon_max, ttl=anon_ttl)

    def _session(self, sid: str, data: dict[str, Any]) -> Session:
        # Expiry is the store's business: aiohttp-session's own age check is left out.
        return Session(sid, data={"created": int(time.time()), "session": data}, new=False,
                       max_age=None)  # fmt: skip

    async def load_session(self, request: web.Request) -> Session:
        sid = self.load_cookie(request)
        if sid:
            anon = self._anon.get(_digest(sid))
            if anon is not None:
                return self._session(sid, dict(anon))
            data = self.store.load(sid)
            if data is not None:
                return self._session(sid, data)
        return Session(None, data=None, new=True, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse,
                           session: Session) -> None:  # fmt: skip
        sid = session.identity
        old = self.load_cookie(request)
        if old and old != sid:  # a login replaced the visitor's session: forget the old one
            self._forget(old)
        data = dict(session)
        if session.empty:
            if sid:
                self._forget(str(sid))
            self._cookie(request, response, "")
        elif data.get("user"):
            if sid is None or session.new:
                max_age = session.max_age or self.max_age or 0
                sid = self.store.create(str(data["user"]), data, max_age)
                self._cookie(request, response, sid, max_age)
            else:
                self.store.update(str(sid), data)
        else:
            if sid is None or session.new:
                sid = secrets.token_urlsafe(32)
                self._cookie(request, response, sid)
            self._anon[_digest(str(sid))] = data

    def _forget(self, sid: str) -> None:
        self._anon.pop(_digest(sid), None)
        self.store.delete(sid)

    def _cookie(self, request: web.Request, response: web.StreamResponse, value: str,
                max_age: int | None = None) -> None:  # fmt: skip
        if not value:
            response.del_cookie(self.cookie_name, path="/", secure=is_tls(request),
                                httponly=True, samesite="Strict")  # fmt: skip
            return
        response.set_cookie(self.cookie_name, value, max_age=max_age, path="/",
                            secure=is_tls(request), httponly=True, samesite="Strict")  # fmt: skip
