"""Login throttling: growing lockouts after repeated wrong passwords.

Failures are counted for three keys: the account from this client address (locked after
:data:`ACCOUNT_CLIENT_FREE` failures), the account from anywhere and the client address
whatever the account (each after :data:`WIDE_FREE`, so guessing spread over many addresses
or over many usernames is slowed too).  A locked key refuses logins for 1 s, doubling with
each further failure up to :data:`CAP` (15 min); a refused login is answered 429 with a
``Retry-After`` and is not counted again, and a correct password is never refused once the
lock has run out.  Passwords being checked count too, so a burst of parallel guesses gets no
more checks than one at a time: at most the free number, and once past it one at a time.  A
successful login forgets the account's counts.  Counts live in bounded
:class:`cachetools.TTLCache` maps and are forgotten :data:`FORGET` seconds after the last
failure; the clock is injectable (tests).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator

from cachetools import TTLCache

from onestop.errors import ApiError
from onestop.i18n import LazyText, lazy_gettext

ACCOUNT_CLIENT_FREE = 5
WIDE_FREE = 20
BASE = 1.0
CAP = 15 * 60.0
FORGET = 3600.0
MAX_KEYS = 10_000

Clock = Callable[[], float]
Key = tuple[str, ...]


class TooManyAttempts(ApiError):
    """429: too many wrong passwords; ``retry_after`` is whole seconds to wait."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(wait_message(retry_after), field="password")


def wait_message(seconds: int) -> LazyText:
    """How long to wait, in the catalog (zh-CN msgid, English translation)."""
    if seconds > 90:
        return lazy_gettext("登录失败次数过多，请{n}分钟后再试", n=math.ceil(seconds / 60))
    return lazy_gettext("登录失败次数过多，请{n}秒后再试", n=seconds)


@dataclasses.dataclass
class _Count:
    failures: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Failure counts of one service's logins."""

    def __init__(self, clock: Clock = time.monotonic, *,
                 account_client_free: int = ACCOUNT_CLIENT_FREE, wide_free: int = WIDE_FREE,
                 base: float = BASE, cap: float = CAP, forget: float = FORGET,
                 max_keys: int = MAX_KEYS) -> None:  # fmt: skip
        self._clock = clock
        self._free = {"account@client": account_client_free, "account": wide_free,
                      "client": wide_free}  # fmt: skip
        self._base, self._cap = base, cap
        self._counts: TTLCache[Key, _Count] = TTLCache(maxsize=max_keys, ttl=forget, timer=clock)
        self._busy: collections.Counter[Key] = collections.Counter()  # checks in progress

    @staticmethod
    def _keys(username: str, client: str) -> list[Key]:
        return [("account@client", username, client), ("account", username), ("client", client)]

    def check(self, username: str, client: str) -> None:
        """Raise :class:`TooManyAttempts` while any key of this login is locked (or has as
        many checks in progress as it may still fail)."""
        now, wait = self._clock(), 0.0
        for key in self._keys(username, client):
            count, busy = self._counts.get(key) or _Count(), self._busy[key]
            wait = max(wait, count.locked_until - now)
            if busy and count.failures + busy >= self._free[key[0]]:
                wait = max(wait, self._base)
        if wait > 0:
            raise TooManyAttempts(max(1, math.ceil(wait)))

    @contextlib.contextmanager
    def attempt(self, username: str, client: str) -> Iterator[None]:
        """:meth:`check`, then hold this login's keys busy while its password is checked
        (call :meth:`failed` or :meth:`succeeded` inside)."""
        self.check(username, client)
        keys = self._keys(username, client)
        self._busy.update(keys)
        try:
            yield
        finally:
            self._busy.subtract(keys)
            for key in keys:
                if self._busy[key] <= 0:
                    del self._busy[key]

    def failed(self, username: str, client: str) -> None:
        """Count a wrong password; a key past its free failures is locked."""
        now = self._clock()
        for key in self._keys(username, client):
            count = self._counts.get(key) or _Count()
            count.failures += 1
            over = count.failures - self._free[key[0]]
            if over >= 0:
                count.locked_until = now + min(self._cap, self._base * 2 ** min(over, 32))
            self._counts[key] = count  # (re)starts the time to forget it

    def succeeded(self, username: str, client: str) -> None:
        """A correct login: forget the account's counts (the address's stay)."""
        for key in self._keys(username, client)[:2]:
            self._counts.pop(key, None)
