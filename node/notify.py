"""SMS notifications through an outbox (table ``sms_outbox``) and a pluggable sender.

Domain code calls :func:`queue` inside its own transaction, so a message exists exactly when
the state change that caused it does.  :func:`send_pending` hands queued messages to a
:class:`Sender`; the default :class:`LoggingSender` only writes a log line with the number
masked.  A real SMS gateway implements the same one-method protocol.

The outbox keeps the number Fernet-encrypted (``to_enc``) and masked (``to_masked``); it never
holds the plain number, and neither do the ``sms.*`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from typing import Any, Protocol

import sqlite_utils
from aiohttp import web

from node import db as dbm
from node import events
from node.pii import Pii
from onestop import identity
from onestop.clock import Now, iso, system_now, utcnow

log = logging.getLogger("onestop.sms")

#: After this many failed attempts a message is marked ``failed`` and left alone.
MAX_ATTEMPTS = 5
#: Seconds between outbox sweeps of the background sender (it also wakes on new messages).
SEND_INTERVAL = 5.0


_PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """Free text with any mainland mobile or resident ID number in it masked.

    Used for every free-text field that goes into an event (reasons, comments, notes,
    gateway errors): people type numbers into comment boxes.
    """
    text = _ID_RE.sub(lambda m: identity.mask_id(m.group(1)), text)
    return _PHONE_RE.sub(lambda m: identity.mask_phone(m.group(0)), text)


class Sender(Protocol):
    """Delivers one text to one mainland mobile number; raises on failure."""

    def send(self, phone: str, text: str) -> None: ...


class LoggingSender:
    """Development sender: logs the message with the number masked and reports success."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (masked number, text), for tests and demos

    def send(self, phone: str, text: str) -> None:
        masked = identity.mask_phone(phone)
        self.sent.append((masked, text))
        log.info("SMS to %s: %s", masked, text)


def queue(
    conn: sqlite3.Connection,
    to_enc: str,
    to_masked: str,
    template: str,
    text: str,
    *,
    case_id: int | None = None,
    case_no: str | None = None,
    at: str | None = None,
) -> int:
    """Add a message to the outbox inside the caller's transaction; returns its id.

    ``to_enc`` is the Fernet-encrypted number (as kept on tickets and cases) and
    ``to_masked`` its mask; the plain number is never needed here.
    """
    at = at or utcnow()
    masked = to_masked
    cur = conn.execute(
        "INSERT INTO sms_outbox (to_masked, to_enc, template, text, case_id, state, attempts,"
        " created_at) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?)",
        [masked, to_enc, template, text, case_id, at],
    )
    sms_id = int(cur.lastrowid or 0)
    body: dict[str, Any] = {"sms_id": sms_id, "to_masked": masked, "template": template}
    if case_no is not None:
        body["case_no"] = case_no
    events.append(conn, "sms.queued", "sms", sms_id, body, at=at)
    return sms_id


def send_pending(
    db: sqlite_utils.Database,
    pii: Pii,
    sender: Sender,
    now: Now = system_now,
    limit: int = 100,
) -> dict[str, int]:
    """Try every queued message once; returns counts of sent, retried and failed messages."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    pending = dbm.rows(
        db,
        "SELECT o.id, o.to_enc, o.text, o.attempts, c.case_no FROM sms_outbox o "
        "LEFT JOIN cases c ON c.id = o.case_id WHERE o.state = 'queued' ORDER BY o.id LIMIT ?",
        [limit],
    )
    for msg in pending:
        error = None
        try:
            sender.send(pii.decrypt(msg["to_enc"]), msg["text"])
        except Exception as exc:  # noqa: BLE001 - any gateway failure is retried later
            error = redact(f"{type(exc).__name__}: {exc}"[:500])
        at = iso(now())
        attempts = msg["attempts"] + 1
        ref = {"case_no": msg["case_no"]} if msg["case_no"] else {}
        with dbm.tx(db) as conn:
            row = conn.execute("SELECT state FROM sms_outbox WHERE id = ?", [msg["id"]]).fetchone()
            if row is None or row[0] != "queued":
                continue  # another sweep got there first
            if error is None:
                conn.execute(
                    "UPDATE sms_outbox SET state = 'sent', attempts = ?, sent_at = ?, "
                    "last_error = NULL WHERE id = ?",
                    [attempts, at, msg["id"]],
                )
                events.append(
                    conn,
                    "sms.sent",
                    "sms",
                    msg["id"],
                    {"sms_id": msg["id"], "attempts": attempts, **ref},
                    at=at,
                )
                counts["sent"] += 1
            else:
                state = "failed" if attempts >= MAX_ATTEMPTS else "queued"
                conn.execute(
                    "UPDATE sms_outbox SET state = ?, attempts = ?, last_error = ? WHERE id = ?",
                    [state, attempts, error, msg["id"]],
                )
                log.warning("SMS %d attempt %d failed: %s", msg["id"], attempts, error)
                if state == "failed":
                    events.append(
                        conn,
                        "sms.failed",
                        "sms",
                        msg["id"],
                        {
                            "sms_id": msg["id"],
                            "attempts": attempts,
                            "error": redact(error[:200]),
                            **ref,
                        },
                        at=at,
                    )
                    counts["failed"] += 1
                else:
                    counts["retry"] += 1
    return counts


def public(msg: dict[str, Any]) -> dict[str, Any]:
    """An outbox row without the encrypted number."""
    return {k: v for k, v in msg.items() if k != "to_enc"}


# --------------------------------------------------------------------------- in the app


class Notifier:
    """The node's sender and its background sweep (started by the case routes)."""

    def __init__(self, sender: Sender | None = None, interval: float = SEND_INTERVAL) -> None:
        self.sender: Sender = sender or LoggingSender()
        self.interval = interval
        self.auto = True  # set False to send only through POST /api/v1/sms/send
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self, db: sqlite_utils.Database, pii: Pii, now: Now) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if not self.auto:
                continue
            try:
                send_pending(db, pii, self.sender, now)
            except Exception:  # noqa: BLE001 - keep sweeping
                log.exception("SMS sweep failed")

    def start(self, db: sqlite_utils.Database, pii: Pii, now: Now) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(db, pii, now))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


NOTIFIER = web.AppKey("notifier", Notifier)
