"""The lock on guessing at the citizen's status lookup (case number and phone digits).

Wrong lookups are counted per case number (existing or not) and per client address, each key
with its own expiry (:class:`cachetools.TTLCache`: a key is forgotten
:data:`WINDOW_SECONDS` after its latest wrong try, never because other keys came along).  A
key that reaches its limit is locked in a cache of its own, which only locked keys enter: a
flood of made-up case numbers, one wrong try each, fills the counting cache at most and never
pushes out a real case's lock.  To lock enough other keys to push one out, a client would
first lock itself: it may try :data:`CLIENT_TRIES` times per window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from onestop.errors import ApiError

#: Wrong phone digits accepted per case number within the window before it says 429.
CASE_TRIES = 10
#: Wrong lookups accepted per client address (any case numbers) within the window.
CLIENT_TRIES = 100
#: Seconds a count, and a lock, lasts after the latest wrong try.
WINDOW_SECONDS = 15 * 60
#: Keys each cache holds; beyond that the least recently used key is dropped (its own TTL
#: aside).  Ample for the counts of a flood, and the locks cache fills only with locked keys.
MAX_KEYS = 100_000

Key = tuple[str, str]


class StatusGuard:
    """Counts wrong status lookups per case number and per client, and locks either one."""

    def __init__(
        self,
        *,
        case_tries: int = CASE_TRIES,
        client_tries: int = CLIENT_TRIES,
        window: float = WINDOW_SECONDS,
        maxsize: int = MAX_KEYS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"case": case_tries, "client": client_tries}
        self.counts: TTLCache[Key, int] = TTLCache(maxsize, window, timer)
        self.locked: TTLCache[Key, bool] = TTLCache(maxsize, window, timer)

    @staticmethod
    def _keys(case_no: str, client: str | None) -> tuple[Key, Key]:
        return ("case", case_no), ("client", client or "-")

    def check(self, case_no: str, client: str | None) -> None:
        """The 429 when the case number or the client is locked."""
        case_key, client_key = self._keys(case_no, client)
        if case_key in self.locked:
            raise ApiError(
                "too many wrong attempts for this case number; try again later",
                status=429,
                code="too_many_requests",
                field="phone_last4",
            )
        if client_key in self.locked:
            raise ApiError(
                "too many wrong status lookups from this address; try again later",
                status=429,
                code="too_many_requests",
                field="case_no",
            )

    def fail(self, case_no: str, client: str | None) -> None:
        """Count a wrong lookup against the case number and the client."""
        for key in self._keys(case_no, client):
            n = self.counts.get(key, 0) + 1
            self.counts[key] = n  # the key's own expiry starts again
            if n >= self.limits[key[0]]:
                self.locked[key] = True
