"""Live feed for the display board and window pages (server-sent events).

Calls (``call`` messages: the board speaks them) go out at once.  The board's full state
(``state``: every window and the last calls, several queries) and the "waiting counts
changed" nudge (``queues``) are coalesced: a burst of window actions or kiosk tickets yields
one message per :attr:`Board.interval` (200 ms), computed once at send time and encoded once
for every subscriber, and nothing at all is computed while no client listens (a new client
gets the current state as its first message).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("onestop.display")

# Message types sent at most once per interval (latest wins): the state is computed when sent.
COALESCED = ("state", "queues")


class Board:
    """Fan-out of live messages to every connected SSE client."""

    def __init__(
        self, state: Callable[[], dict[str, Any]] | None = None, interval: float = 0.2
    ) -> None:
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self.state_source = state  # the board's full state (set by the app)
        self.interval = interval
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._makers: dict[str, Callable[[], dict[str, Any]]] = {}
        self._last: dict[str, float] = {}

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every client; ``queues`` nudges are coalesced."""
        kind = message.get("type")
        if kind in COALESCED:
            self._coalesce(str(kind), lambda: message)
        else:
            self._send(_sse(message))

    def publish_state(self) -> None:
        """The windows or the last calls changed: send the board's state (coalesced)."""
        if self.state_source is not None:
            self._coalesce("state", self.state_source)

    def _coalesce(self, kind: str, make: Callable[[], dict[str, Any]]) -> None:
        if not self._subscribers:
            return
        self._makers[kind] = make  # the latest wins
        if kind in self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script): send now
            self._flush(kind)
            return
        due = max(loop.time(), self._last.get(kind, float("-inf")) + self.interval)
        self._pending[kind] = loop.call_at(due, self._flush, kind)

    def _flush(self, kind: str) -> None:
        self._pending.pop(kind, None)
        make = self._makers.pop(kind, None)
        try:
            self._last[kind] = asyncio.get_running_loop().time()
        except RuntimeError:
            pass
        if make is None or not self._subscribers:
            return
        try:
            data = _sse(make())
        except Exception:  # noqa: BLE001 - a board update never takes the node down
            log.exception("display: cannot build the %s message", kind)
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        for q in list(self._subscribers):
            if q.qsize() < 1000:
                q.put_nowait(data)

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    async def stream(self, request: web.Request, hello: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._subscribers.add(q)
        try:
            await resp.write(_sse(hello))
            while True:
                try:
                    data = await asyncio.wait_for(q.get(), timeout=15)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if data is None:  # close_all
                    break
                await resp.write(data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(q)
        return resp

    def close_all(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        self._makers.clear()
        for q in list(self._subscribers):
            q.put_nowait(None)


def _sse(msg: dict[str, Any]) -> bytes:
    return f"event: {msg.get('type', 'message')}\ndata: {json.dumps(msg, ensure_ascii=False)}\n\n".encode()
