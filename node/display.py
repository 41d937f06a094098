"""Live feed for the display board and window pages (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web


class Board:
    """Fan-out of live messages to every connected SSE client."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, message: dict[str, Any]) -> None:
        for q in list(self._subscribers):
            if q.qsize() < 1000:
                q.put_nowait(message)

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    async def stream(self, request: web.Request, hello: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })
        await resp.prepare(request)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(q)
        try:
            await resp.write(_sse(hello))
            while True:
                try:
                    msg = await asyncio.wait_for(q.get(), timeout=15)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if msg.get("type") == "close":
                    break
                await resp.write(_sse(msg))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(q)
        return resp

    def close_all(self) -> None:
        for q in list(self._subscribers):
            q.put_nowait({"type": "close"})


def _sse(msg: dict[str, Any]) -> bytes:
    return f"event: {msg.get('type', 'message')}\ndata: {json.dumps(msg, ensure_ascii=False)}\n\n".encode()
