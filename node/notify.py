"""SMS notifications through an outbox (table ``sms_outbox``) and a pluggable sender.

Domain code calls :func:`queue_sms` (or :func:`queue`, given the number encrypted) inside its
own transaction, so a message exists exactly when the state change that caused it does.  Every
change of the outbox is an event (``sms.queued``, ``sms.retry``, ``sms.sent``, ``sms.failed``;
:mod:`node.projectors.sms`).  :func:`send_pending` hands queued messages to a
:class:`Sender`; the default :class:`LoggingSender` only writes a log line with the number
masked.  A real SMS gateway implements the same one-method protocol.

The outbox keeps the number Fernet-encrypted (``to_enc``) and masked (``to_masked``); it never
holds the plain number, and neither do the ``sms.*`` events: ``sms.queued`` carries it masked
and sealed to the node's recovery key (``to_recovery``), and the text with any phone or ID
number in it masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils
from aiohttp import web
from cryptography.fernet import InvalidToken

from node import db as dbm
from node import events, numbers, recovery
from node import pii as piim
from node.pii import Pii
from node.projection import Personal
from onestop import identity
from onestop.clock import Now, iso, system_now, utcnow

log = logging.getLogger("onestop.sms")

#: After this many failed attempts a message is marked ``failed`` and left alone.
MAX_ATTEMPTS = 5
#: The longest text an outbox message (and its ``sms.queued`` event) holds.
MAX_TEXT = 2000
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
) -> int | None:
    """Add a message to the outbox inside the caller's transaction; returns its id.

    ``to_enc`` is the Fernet-encrypted number (as kept on tickets and cases), opened here
    with the node's secret for :func:`queue_sms`; ``to_masked`` is its mask (the message
    takes the mask of the number itself).  A number that did not survive a restore (a
    record from the hub with no recovery key to open it: the column is empty) gets no
    message: None, and the log says so; the case goes on.
    """
    pii = node_pii(conn)
    try:
        phone = pii.decrypt(to_enc) if to_enc else ""
    except InvalidToken:
        phone = ""
    if not phone:
        log.warning("no SMS %s to %s: the number is not on this node", template, to_masked)
        return None
    return queue_sms(
        conn,
        pii,
        phone,
        template,
        text,
        case_id=case_id,
        case_no=case_no,
        at=at,
    )


def queue_sms(
    conn: sqlite3.Connection,
    pii: Pii,
    phone: str,
    template: str,
    text: str,
    *,
    case_id: int | None = None,
    case_no: str | None = None,
    at: str | None = None,
) -> int:
    """Queue a text to ``phone`` inside the caller's transaction (its ``sms.queued`` event);
    returns the message's id.

    The event carries the number masked and sealed to the node's recovery key; the outbox
    keeps it encrypted with ``pii``.  A phone or ID number in ``text`` is masked, and the
    text is cut at :data:`MAX_TEXT` characters.
    """
    sms_id = numbers.next_id(conn, "sms_outbox")
    body: dict[str, Any] = {
        "sms_id": sms_id,
        "to_masked": identity.mask_phone(phone),
        "template": template,
        "text": redact(text)[:MAX_TEXT],
        "case_id": case_id,
        "to_recovery": _sealed(conn, phone),
    }
    if case_no is not None:
        body["case_no"] = case_no
    events.append(
        conn,
        "sms.queued",
        "sms",
        sms_id,
        body,
        at=at or utcnow(),
        personal=Personal(pii, {"to": phone}),
    )
    return sms_id


def _sealed(conn: sqlite3.Connection, phone: str) -> str | None:
    """``phone`` sealed to the node's recovery key; sealed again in the rare case the random
    bytes spell something the event log would refuse as a phone or ID number."""
    while True:
        sealed = recovery.seal_in(conn, phone)
        if sealed is None or events.personal_data_in(sealed) is None:
            return sealed


def node_pii(conn: sqlite3.Connection) -> Pii:
    """The secret of the node whose database ``conn`` is (it sits beside the database)."""
    path = dbm.database_file(conn)
    if path is None:
        raise RuntimeError("an in-memory database belongs to no node: no secret to read")
    secret = path.parent / piim.SECRET_FILE
    return _pii_at(str(secret.parent), secret.stat().st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _pii_at(data_dir: str, stamp: int) -> Pii:
    return piim.load(Path(data_dir))


def send_pending(
    db: sqlite_utils.Database,
    pii: Pii,
    sender: Sender,
    now: Now = system_now,
    limit: int = 100,
) -> dict[str, int]:
    """Try every queued message once; returns counts of sent, retried and failed messages.

    Each attempt is an event: ``sms.sent``, ``sms.retry`` (failed, tried again later) or
    ``sms.failed`` (failed for the last time).
    """
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
                log.warning("SMS %d attempt %d failed: %s", msg["id"], attempts, error)
                last = attempts >= MAX_ATTEMPTS
                events.append(
                    conn,
                    "sms.failed" if last else "sms.retry",
                    "sms",
                    msg["id"],
                    {"sms_id": msg["id"], "attempts": attempts, "error": error, **ref},
                    at=at,
                )
                counts["failed" if last else "retry"] += 1
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
