"""Request bodies read with a hard bound, compressed ones inflated off the event loop.

Both services build their application with :data:`HANDLER_ARGS` (aiohttp's parser then leaves
a ``Content-Encoding: gzip`` body as sent) and :func:`encoded_bodies` among their middlewares.
A handler reads a body with :func:`read` (or :func:`read_raw` and later :func:`decode` on a
thread of its own):

- at most ``limit`` bytes are read off the connection (a ``Content-Length`` above it is
  refused before reading);
- gzip (declared, or recognised by its magic bytes) is inflated on a thread, step by step,
  and stops as soon as the output passes ``limit``: a small body that inflates to gigabytes
  costs ``limit`` bytes of output, never more, and the event loop keeps serving meanwhile;
- too much is a 413 ``too_large`` in the one JSON error shape; bad gzip a 422 naming ``body``.

Bodies of other content types than JSON must not be compressed (:func:`encoded_bodies`
answers 415): form and upload handlers read them with aiohttp as sent.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from onestop.errors import ApiError, Invalid

#: ``web.Application(handler_args=...)``: the parser does not inflate bodies on the event loop.
HANDLER_ARGS: Mapping[str, Any] = {"auto_decompress": False}
#: The largest body a handler reads with :func:`read` when it names no limit.
MAX_BODY: web.AppKey[int] = web.AppKey("onestop.max_body", int)
DEFAULT_LIMIT = 1024**2

GZIP_MAGIC = b"\x1f\x8b"
GZIP = "gzip"
_GZIP_NAMES = {"gzip", "x-gzip"}
_PLAIN_NAMES = {"", "identity"}
STEP = 1024**2  # inflated bytes per zlib call (the thread lets go of the GIL in zlib)


class TooLarge(ApiError):
    """413: the body, as sent or inflated, is larger than the service takes."""

    status = 413
    code = "too_large"

    def __init__(self, limit: int, what: str = "request body") -> None:
        super().__init__(f"{what} exceeds {limit} bytes", field="body")


class UnsupportedEncoding(ApiError):
    status = 415
    code = "unsupported_media_type"


def encoding(headers: Mapping[str, str]) -> str | None:
    """The request's ``Content-Encoding``: ``gzip`` or None (none or ``identity``); any other
    is :class:`UnsupportedEncoding`."""
    value = headers.get("Content-Encoding", "").strip().lower()
    if value in _PLAIN_NAMES:
        return None
    if value in _GZIP_NAMES:
        return GZIP
    raise UnsupportedEncoding(
        f"Content-Encoding {value[:40]!r} is not supported; send gzip or no encoding",
        field="Content-Encoding",
    )


def limit_of(request: web.Request) -> int:
    """The service's body limit (``app[MAX_BODY]``), :data:`DEFAULT_LIMIT` if it sets none."""
    return request.app.get(MAX_BODY, DEFAULT_LIMIT)


async def read_raw(request: web.Request, limit: int) -> bytes:
    """The body as it came over the connection (still compressed when it was), at most
    ``limit`` bytes; more is :class:`TooLarge` (the rest is never read into memory)."""
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge(limit)
    if not request.can_read_body:
        return b""
    buf = bytearray()
    async for chunk in request.content.iter_any():
        buf += chunk
        if len(buf) > limit:
            raise TooLarge(limit)
    return bytes(buf)


def inflate(data: bytes, limit: int) -> bytes:
    """Inflate gzip (one member or several) to at most ``limit`` bytes, step by step: past the
    limit is :class:`TooLarge`, broken or truncated gzip :class:`Invalid` (field ``body``)."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while not d.eof:
                want = min(STEP, limit + 1 - len(out))
                chunk = d.decompress(pending, want)
                out += chunk
                if len(out) > limit:
                    raise TooLarge(limit, "decompressed request body")
                pending = d.unconsumed_tail
                if not pending and len(chunk) < want:
                    break  # every byte sent is consumed
        except zlib.error as exc:
            raise Invalid(f"request body is not valid gzip: {exc}", field="body") from None
        if not d.eof:
            raise Invalid("request body is not valid gzip: it ends early", field="body")
        rest = d.unused_data
        if rest and not rest.startswith(GZIP_MAGIC):
            raise Invalid("request body is not valid gzip: data after its end", field="body")
    return bytes(out)


def decode(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body as the client meant it: gzip (declared, or sent without the header and
    recognised by its magic bytes) inflated to at most ``limit`` bytes.  Blocking: call it on
    a worker thread."""
    if content_encoding == GZIP or raw[:2] == GZIP_MAGIC:
        return inflate(raw, limit) if raw else b""
    if len(raw) > limit:
        raise TooLarge(limit)
    return raw


def compressed(raw: bytes, content_encoding: str | None) -> bool:
    return content_encoding == GZIP or raw[:2] == GZIP_MAGIC


async def read(request: web.Request, limit: int | None = None) -> bytes:
    """The request body, at most ``limit`` bytes (default :func:`limit_of`) as sent and as
    inflated; a compressed body is inflated on a thread."""
    limit = limit_of(request) if limit is None else limit
    enc = encoding(request.headers)
    raw = await read_raw(request, limit)
    if not compressed(raw, enc):
        return raw
    return await asyncio.to_thread(decode, raw, enc, limit)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def encoded_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (415) a ``Content-Encoding`` other than gzip, and any on a body that is not JSON
    (forms and uploads are read as sent: they must come unencoded)."""
    if "Content-Encoding" in request.headers and request.can_read_body:
        enc = encoding(request.headers)
        if enc is not None and request.content_type != "application/json":
            raise UnsupportedEncoding(
                f"a {request.content_type} body must not be compressed; only JSON bodies may "
                "be sent with Content-Encoding: gzip",
                field="Content-Encoding",
            )
    return await handler(request)
