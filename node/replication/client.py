"""The push client: sends the node's signed log (and relayed townships' logs) to the hub.

Protocol: ``docs/sync-protocol.md``.  :class:`PushClient` does one push run: it asks the hub
where it stands (once per process, and after trouble), then sends what the hub has not
acknowledged in gzip batches of :data:`BATCH_SIZE` records, each with a signed checkpoint,
until the hub has everything or stops advancing.  The hub's position (``sync_state``),
receipts (checked with ``DIR/hub.pub``) and rejections are stored in the node database.  The
acknowledged position moves only on a receipt signed by the hub's key for this node and that
position (:func:`sync.receipts.check_receipt`); an answer without one fails the push
(:class:`HubError`) and the records stay in the backlog.

:class:`PushService` runs it in the node server: shortly after new events (debounced), and on
an APScheduler interval job (``sync_interval_seconds``, which also asks the hub again where it
stands), backing off exponentially with jitter
while the hub is unreachable; being offline is normal and logged at info level.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import sqlite_utils

from node import db as dbm
from node import signer as signerm
from node.replication import relay
from node.replication.state import record_rejection, set_state, state, store_receipt
from onestop.clock import utcnow
from sync.canonical import is_sha256_hex
from sync.chain import GENESIS
from sync.receipts import ReceiptError, check_receipt
from sync.requests import sign_request

log = logging.getLogger("onestop.sync")

# Records per batch: fewer round trips (each also signs, sends and checks a checkpoint and a
# receipt) and a longer batch for the hub to spread its signature checks over; 1,000 records
# are about 1.2 MB of JSON, 0.25 MB gzipped (bench/README.md).
BATCH_SIZE = 1000
# gzip level 4: 4% more bytes than level 6 (247 vs 237 B per case record) for 30% less CPU
# (12 vs 17 us per record); level 1 saves another 3.5 us for 13% more bytes.
GZIP_LEVEL = 4
MAX_RECORDS_PER_REQUEST = 2000
DEBOUNCE_SECONDS = 0.3
BACKOFF_MAX_ENV = "ONESTOP_SYNC_BACKOFF_MAX"
BATCH_ENV = "ONESTOP_SYNC_BATCH"
CATALOG_SECONDS_ENV = "ONESTOP_SYNC_CATALOG_SECONDS"
INGEST = "/api/v1/ingest"


class HubUnreachable(Exception):
    """The hub (or relay) could not be reached: normal when offline."""


class HubError(Exception):
    """The hub answered with an error (the JSON error shape); ``hint`` says what to do."""

    def __init__(self, message: str, status: int = 0, code: str = "", hint: str | None = None):
        super().__init__(message)
        self.status, self.code, self.hint = status, code, hint


@dataclass
class PushReport:
    sent: int = 0  # records sent (own and relayed)
    acked: int = 0  # own records newly acknowledged by the hub
    ack_seq: int = 0  # the hub's position for this node
    relayed: int = 0  # relayed records newly acknowledged
    rejected: int = 0
    backlog: int = 0  # own + relayed records the hub has not acknowledged
    requests: int = 0
    alert: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def env_number(name: str, default: Any, kind: Any = float) -> Any:
    """A positive number from the environment (tuning knobs for tests and slow links)."""
    try:
        value = kind(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def encode_body(payload: Any) -> tuple[bytes, bytes]:
    """A request body: the JSON (UTF-8, not ASCII-escaped), which the request signature
    covers, and what is sent: that JSON gzipped at :data:`GZIP_LEVEL`."""
    content = json.dumps(payload, ensure_ascii=False).encode()
    return content, gzip.compress(content, GZIP_LEVEL)


def backlog(db: sqlite_utils.Database) -> int:
    own = signerm.log_size(db) - int(state(db).get("hub_ack_seq") or 0)
    return max(own, 0) + relay.pending_count(db)


# --------------------------------------------------------------------------- the client


class PushClient:
    """One node's connection to its hub (or relay)."""

    def __init__(
        self,
        cfg: Any,
        db: sqlite_utils.Database,
        *,
        batch_size: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.cfg, self.db = cfg, db
        self.hub_url = str(cfg.hub_url or "").rstrip("/")
        self.batch_size = batch_size or env_number(BATCH_ENV, BATCH_SIZE, int)
        self.timeout = timeout
        self._synced = False  # asked the hub where it stands since this process started
        self._diverged = False  # the hub's copy and this log disagree (fork, rollback)
        self._held = False  # the hub quarantined our records: hold them until it agrees again
        self._resume: int | None = None
        self._distrust: str | None = None  # why the hub's last answer was not an acknowledgement
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=5)
            )
        return self._session

    def signed_headers(self, method: str, target: str, body: bytes = b"") -> dict[str, str]:
        """Headers signing this request: method, target (path and query), a fresh nonce and
        the SHA-256 of ``body`` (the content before gzip)."""
        signer = signerm.current_signer(self.db)
        if signer is None:
            raise HubError("this database has no node key")
        return sign_request(signer.key, signer.node_code, method, target, body=body)

    async def request(
        self, method: str, path: str, *, payload: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """Send a signed request; returns (status, parsed JSON or None, response headers)."""
        if not self.hub_url:
            raise HubError("no hub configured", hint="set hub_url in DIR/node.toml")
        content, data = b"", None
        extra = {}
        if payload is not None:
            # Off the event loop: a batch is ~1 MB of JSON to encode and compress, and the node
            # server keeps answering its windows meanwhile (zlib lets go of the GIL).
            content, data = await asyncio.to_thread(encode_body, payload)
            extra = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        hdrs = self.signed_headers(method, path, content)
        hdrs.update(headers or {})
        hdrs.update(extra)
        try:
            async with self._http().request(
                method, self.hub_url + path, data=data, headers=hdrs
            ) as resp:
                raw = await resp.read()
                body: Any = None
                if raw:
                    with contextlib.suppress(ValueError):
                        body = json.loads(raw)
                return resp.status, body, resp.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise HubUnreachable(
                f"{self.hub_url} unreachable: {exc or type(exc).__name__}"
            ) from None

    @staticmethod
    def _error(status: int, body: Any) -> HubError:
        if isinstance(body, dict) and "message" in body:
            return HubError(
                f"hub answered {status}: {body.get('message')}",
                status,
                str(body.get("error") or ""),
                body.get("hint"),
            )
        return HubError(f"hub answered HTTP {status}", status)

    async def position(self, code: str) -> dict[str, Any]:
        path = f"{INGEST}/{code}/position"
        status, body, _ = await self.request("GET", path)
        if status != 200 or not isinstance(body, dict) or type(body.get("ack_seq")) is not int:
            err = self._error(status, body)
            if err.code == "unknown_node":
                err.args = (f"node {code} is not enrolled at {self.hub_url}: {err}",)
                err.hint = err.hint or (
                    f"on the hub: onestop hub enroll --data DIR --code {code} "
                    f"--pubkey {self.cfg.data_dir}/node.pub"
                )
            raise err
        return body

    @staticmethod
    def _bad_receipt(problem: str) -> HubError:
        return HubError(
            problem,
            code="bad_receipt",
            hint="the records stay in the backlog; check that hub_url is the hub and that "
            "DIR/hub.pub is its key (onestop sync status --data DIR)",
        )

    @staticmethod
    def _trusted(
        code: str, receipt: Any, hub_pub: Any, seq: int | None = None, hash_hex: str | None = None
    ) -> dict[str, Any] | str:
        """The hub's receipt for this node (at ``seq``/``hash_hex``), or what is wrong with it."""
        try:
            return check_receipt(receipt, hub_pub, code, seq, hash_hex)
        except ReceiptError as exc:
            return str(exc)

    @staticmethod
    def _agrees(conn: sqlite3.Connection, receipt: dict[str, Any]) -> bool:
        """The receipt's hash is this log's at its seq."""
        return signerm.hash_at(conn, int(receipt["seq"])) == receipt["hash"]

    @staticmethod
    def _keep(conn: sqlite3.Connection, receipt: dict[str, Any], hub_pub: Any) -> tuple[int, str]:
        """Keep a trusted receipt that agrees with this log: the (seq, hash) it acknowledges."""
        store_receipt(conn, receipt, hub_pub, str(receipt["hash"]))
        return int(receipt["seq"]), str(receipt["hash"])

    # -- reconciling with the hub's position --------------------------------------------------

    def _flag(
        self, conn: sqlite3.Connection, code: str, kind: str, message: str, seq: int | None = None
    ) -> None:
        log.warning("sync %s: %s", kind, message)
        self._diverged = True
        record_rejection(conn, code, seq, kind, message)
        set_state(conn, alert=f"{kind}: {message}", last_error=message, last_error_at=utcnow())

    def _reconcile(self, code: str, pos: dict[str, Any], hub_pub: Any) -> None:
        """Resume from the hub's position when it matches this log; flag a fork/rollback.

        The hub's position counts only with its receipt for it; a relay's is where the relay
        stands (sending resumes there) and the acknowledged position moves to the hub's
        receipt it passes on, if any."""
        ack, ack_hash = int(pos["ack_seq"]), pos.get("ack_hash")
        size = signerm.log_size(self.db)
        via_relay = "relay" in pos
        with dbm.tx(self.db) as conn:
            if via_relay:
                set_state(conn, via_relay=str(pos.get("relay") or ""))
                receipt = self._trusted(code, pos.get("receipt"), hub_pub)
            else:
                receipt = self._trusted(code, pos.get("receipt"), hub_pub, ack, ack_hash)
                if isinstance(receipt, str):
                    raise self._bad_receipt(
                        f"the hub's position for this node (seq {ack}) has no valid receipt: "
                        f"{receipt}"
                    )
            if ack == 0 or (ack <= size and signerm.hash_at(conn, ack) == ack_hash):
                prev = int(conn.execute("SELECT hub_ack_seq FROM sync_state").fetchone()[0] or 0)
                if (
                    isinstance(receipt, dict)
                    and self._agrees(conn, receipt)
                    and (receipt["seq"] >= prev or not via_relay)
                ):
                    seq, h = self._keep(conn, receipt, hub_pub)
                    set_state(conn, hub_ack_seq=seq, hub_ack_hash=h if seq else None)
                self._resume = ack
                self._diverged = self._held = False
                return
            st = dict(conn.execute("SELECT hub_ack_seq, hub_ack_hash FROM sync_state").fetchone())
            if ack > size:
                self._flag(
                    conn,
                    code,
                    "rollback",
                    f"the hub holds {ack} records of this node but its log ends at "
                    f"{size}: was the database restored from an old copy?",
                    ack,
                )
            else:
                self._flag(
                    conn,
                    code,
                    "fork",
                    f"the hub's record {ack} differs from this log's: the log was "
                    "rewritten or forked",
                    ack,
                )
            mine = int(st["hub_ack_seq"] or 0)
            ok = mine <= min(ack, size) and signerm.hash_at(conn, mine) == (
                st["hub_ack_hash"] or GENESIS
            )
            # Send from where this log last agreed with the hub, so the hub sees and keeps
            # the divergent records (in quarantine) and raises the alert too.
            self._resume = mine if ok else 0

    # -- one run --------------------------------------------------------------------------------

    def _own_batch(self, code: str, after: int) -> dict[str, Any] | None:
        records = signerm.load_records(self.db, after=after, limit=self.batch_size, code=code)
        if not records:
            return None
        with dbm.tx(self.db) as conn:
            cp = signerm.checkpoint(conn, records[-1]["seq"])
        return {"node": code, "records": records, "checkpoint": cp}

    async def push_once(self, max_requests: int = 10_000, recheck: bool = False) -> PushReport:
        """Push until the hub holds everything, stops advancing, or cannot be reached.

        ``recheck``: ask the hub where it stands first even when this process already did
        (the service's interval job).  Raises :class:`HubError` when the hub's answer carries
        no valid receipt for what it acknowledges."""

        report = PushReport()
        signer = signerm.current_signer(self.db)
        if signer is None:
            raise HubError("this database has no node key")
        code = signer.node_code
        hub_pub = signerm.hub_public_key(self.cfg)
        with dbm.tx(self.db) as conn:
            set_state(conn, last_attempt=utcnow())
        try:
            if not self._synced or self._held or recheck:
                self._reconcile(code, await self.position(code), hub_pub)
                self._synced = True
            while report.requests < max_requests:
                after = (
                    self._resume
                    if self._resume is not None
                    else int(state(self.db).get("hub_ack_seq") or 0)
                )
                batches: list[dict[str, Any]] = []
                own = None if self._held else self._own_batch(code, after)
                if own:
                    batches.append(own)
                room = MAX_RECORDS_PER_REQUEST - (len(own["records"]) if own else 0)
                batches += relay.pending_batches(self.db, self.batch_size, room)
                if not batches:
                    break
                n = sum(len(b["records"]) for b in batches)
                payload = {
                    "node": code,
                    "batches": batches,
                    "backlog": backlog(self.db),
                    "sent_at": utcnow(),
                }
                status, body, _ = await self.request("POST", INGEST, payload=payload)
                report.requests += 1
                report.sent += n
                if (
                    status != 200
                    or not isinstance(body, dict)
                    or not isinstance(body.get("results"), list)
                ):
                    raise self._error(status, body)
                self._distrust = None
                progressed = self._apply(code, body["results"], hub_pub, report, after, own)
                if self._distrust is not None:
                    raise self._bad_receipt(self._distrust)
                if not progressed:
                    break
        except (HubUnreachable, HubError) as exc:
            self._synced = False  # ask where the hub stands again once it answers
            with dbm.tx(self.db) as conn:
                set_state(conn, last_error=str(exc), last_error_at=utcnow())
            report.errors.append(str(exc))
            report.backlog = backlog(self.db)
            report.ack_seq = int(state(self.db).get("hub_ack_seq") or 0)
            raise
        report.backlog = backlog(self.db)
        st = state(self.db)
        report.ack_seq = int(st.get("hub_ack_seq") or 0)
        values: dict[str, Any] = {"last_success": utcnow()}
        if not report.errors and not report.rejected and not report.alert:
            values.update(last_error=None, last_error_at=None)
            if not self._diverged:
                values["alert"] = None
        with dbm.tx(self.db) as conn:
            set_state(conn, **values)
        return report

    def _apply(
        self,
        code: str,
        results: list[Any],
        hub_pub: Any,
        report: PushReport,
        after: int,
        own: dict[str, Any] | None,
    ) -> bool:
        """Store what the hub answered; True when it advanced (worth sending more)."""

        progressed = False
        with dbm.tx(self.db) as conn:
            for res in results:
                if not isinstance(res, dict) or not isinstance(res.get("node"), str):
                    continue
                if res["node"] != code:
                    moved, n_rej = relay.apply_hub_result(conn, res, hub_pub)
                    report.relayed += moved
                    report.rejected += n_rej
                    progressed = progressed or moved > 0
                    continue
                progressed = self._apply_own(conn, code, res, hub_pub, report, after) or progressed
        return progressed

    def _apply_own(
        self,
        conn: sqlite3.Connection,
        code: str,
        res: dict[str, Any],
        hub_pub: Any,
        report: PushReport,
        after: int,
    ) -> bool:
        ack, ack_hash = res.get("ack_seq"), res.get("ack_hash")
        if type(ack) is not int or ack < 0:
            report.errors.append("hub answer without a valid ack_seq")
            return False
        if "relay" in res:
            set_state(conn, via_relay=str(res.get("relay") or ""))
        local = signerm.hash_at(conn, ack)
        progressed = False
        if ack and (local is None or not is_sha256_hex(ack_hash) or local != ack_hash):
            self._flag(
                conn,
                code,
                "fork" if local else "rollback",
                f"the hub acknowledged seq {ack} with hash {str(ack_hash)[:12]}…, "
                f"the log here has {str(local)[:12]}…",
                ack,
            )
            report.alert = "fork" if local else "rollback"
        else:
            via_relay = "relay" in res
            if via_relay:  # the relay's position; the hub's receipt (if any) is older
                receipt = self._trusted(code, res.get("receipt"), hub_pub)
            else:
                receipt = self._trusted(code, res.get("receipt"), hub_pub, ack, ack_hash)
            if isinstance(receipt, str) and not via_relay:
                problem = f"the hub acknowledged seq {ack} without a valid receipt: {receipt}"
                log.warning("sync: %s", problem)
                report.errors.append(problem)
                set_state(conn, last_error=problem, last_error_at=utcnow())
                self._distrust = problem
                return False
            prev = int(conn.execute("SELECT hub_ack_seq FROM sync_state").fetchone()[0] or 0)
            if (
                isinstance(receipt, dict)
                and self._agrees(conn, receipt)
                and (receipt["seq"] >= prev or not via_relay)
            ):
                got, h = self._keep(conn, receipt, hub_pub)
                set_state(conn, hub_ack_seq=got, hub_ack_hash=h if got else None)
                report.acked += max(got - max(prev, after), 0)
            set_state(
                conn,
                sent_total=conn.execute("SELECT sent_total FROM sync_state").fetchone()[0]
                + max(ack - after, 0),
            )
            progressed = ack > after and not res.get("rejected")
            self._resume = ack
            self._diverged = False
            conn.execute(
                "UPDATE sync_rejections SET resolved = 1 WHERE node = ? AND "
                "seq IS NOT NULL AND seq <= ? AND reason NOT IN ('fork', 'rollback')",
                [code, ack],
            )
        for rej in res.get("rejected") or []:
            if not isinstance(rej, dict):
                continue
            seq = rej.get("seq") if type(rej.get("seq")) is int else None
            reason = str(rej.get("reason") or "rejected")
            message = str(rej.get("message") or "")
            record_rejection(conn, code, seq, reason, message)
            report.rejected += 1
            text = f"hub rejected seq {seq}: {reason}: {message}"
            set_state(conn, last_error=text, last_error_at=utcnow())
            log.warning("sync: %s", text)
        alert = res.get("alert")
        if alert:
            kind = str(alert.get("kind") if isinstance(alert, dict) else alert)
            message = str(alert.get("message") if isinstance(alert, dict) else "") or (
                f"the hub flagged this node's log: {kind}"
            )
            self._flag(conn, code, kind, message)
            report.alert = kind
            progressed = False
            if kind in ("fork", "rollback"):
                self._held = True  # the hub keeps the evidence; don't send it again and again
        return progressed
