"""Spoken calls rendered by the node, for boards whose browser has no voice of its own.

A stock Chromium on Linux often has no speech-synthesis voice at all
(``speechSynthesis.getVoices()`` is empty), so a board that relied on it would chime and stay
silent.  The board then fetches ``GET /api/v1/display/speech?ticket=A023&window=3&lang=zh`` and
plays the WAV the node renders with espeak-ng (Debian's ``espeak-ng``: Mandarin voice ``cmn``,
English ``en-us``).  Only a ticket number and a window number are ever spoken, so the text is
built here from :mod:`node.speech` and never taken from the request; answers are cached (a
call is usually spoken twice, by every board in the hall).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import OrderedDict

from node.speech import announce_en, announce_zh
from onestop.errors import ApiError, NotFound

#: espeak-ng voice per page language.
VOICES = {"zh": "cmn", "en": "en-us"}
#: Words per minute: a little slower than espeak-ng's 175, as a caller in a hall speaks.
RATE = 150
#: Ticket numbers the board speaks: a queue prefix and a serial (``A023``, ``AG105``).
TICKET_RE = re.compile(r"[A-Z]{1,3}[0-9]{1,4}")
#: Rendered calls kept in memory (about 250 KB each).
CACHE_SIZE = 64
#: Seconds one rendering may take before the board gives up on it.
TIMEOUT = 10.0

INSTALL_HINT = "install espeak-ng on the node (Debian: apt-get install espeak-ng)"


class Unavailable(ApiError):
    """503: the node could not render the call just now; the board shows it without sound."""

    status = 503
    code = "unavailable"


class Renderer:
    """Renders ``announce_zh``/``announce_en`` texts to WAV bytes with espeak-ng."""

    def __init__(self, program: str | None) -> None:
        self.program = program  # None: this node cannot speak (the board stays with the chime)
        self._cache: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()
        self._lock = asyncio.Lock()

    @classmethod
    def find(cls) -> Renderer:
        """The renderer with the espeak-ng on PATH, if any."""
        return cls(shutil.which("espeak-ng"))

    @property
    def available(self) -> bool:
        return self.program is not None

    @staticmethod
    def text(ticket_no: str, window: int, lang: str) -> str:
        return announce_en(ticket_no, window) if lang == "en" else announce_zh(ticket_no, window)

    async def wav(self, ticket_no: str, window: int, lang: str) -> bytes:
        if self.program is None:
            raise NotFound("this node has no speech synthesizer", hint=INSTALL_HINT)
        key = (ticket_no, window, lang)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        async with self._lock:  # one espeak-ng at a time: calls come seconds apart
            if key in self._cache:
                return self._cache[key]
            data = await self._render(self.text(ticket_no, window, lang), VOICES[lang])
            self._cache[key] = data
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return data

    async def _render(self, text: str, voice: str) -> bytes:
        assert self.program is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                self.program, "-v", voice, "-s", str(RATE), "--stdout", text,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as e:
            raise Unavailable(
                f"the speech synthesizer did not start: {e}", hint=INSTALL_HINT
            ) from e
        try:
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise Unavailable(f"the speech synthesizer took more than {TIMEOUT:g} s") from None
        if proc.returncode != 0 or not out.startswith(b"RIFF"):
            detail = err.decode(errors="replace").strip()[:200] or f"exit {proc.returncode}"
            raise Unavailable(f"the speech synthesizer failed: {detail}")
        return out
