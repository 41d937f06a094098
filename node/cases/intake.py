"""At the window: opening a case from the ticket being served (or an online pre-application),
materials brought on a later visit (补正 or still missing), and the logged look at the
applicant's full ID and phone number.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, numbers, recovery, workdays
from node import pii as piim
from node.cases import acceptance
from node.cases.common import get, int_field, material_names, materials
from node.cases.notices import issue_notice
from node.cases.visits import link_visit, same_person, ticket_at_window
from node.cases_db import CHANNELS
from node.config import NodeConfig
from node.items import checklist, code_list, departments_of, validate_items, validate_materials
from node.pii import Pii
from node.projection import Personal
from node.signer import seal_for_hub
from onestop.clock import Now, iso, local_date, system_now
from onestop.errors import Conflict, Invalid, invalid_fields


def intake(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
    pii: Pii | None = None,
) -> dict[str, Any]:
    """Open a case at the window; returns the new case row (see :func:`.queries.detail`).

    With a hub sealing key, the ``case.opened`` event carries the full ID number sealed to the
    hub (``id_sealed``) so the hub can link a person's cases; relays can't read it.  The ID and
    phone number are also sealed to the node's recovery key (``id_recovery``,
    ``phone_recovery``), so a rebuild from the log gets them back.  ``pii``: the node's local
    secret (read from the data directory when not given).
    """
    if pii is None:
        pii = piim.load(cfg.data_dir)
    errors: dict[str, str] = {}
    ticket_id = data.get("ticket_id")
    pre_ref = data.get("preapplication_id")
    if ticket_id is None and pre_ref is None:
        errors["ticket_id"] = (
            "give ticket_id (the ticket served at the window) or preapplication_id"
        )
    tid = None
    if ticket_id is not None:
        try:
            tid = int_field(ticket_id, "ticket_id")
        except Invalid as exc:
            errors["ticket_id"] = exc.message
    pre = None
    if pre_ref is not None:
        try:
            pre = _preapplication(db, pre_ref)
        except Invalid as exc:
            errors["preapplication_id"] = exc.message
    item_codes = code_list(data, "items", errors)
    if item_codes is None and pre is not None and "items" not in errors:
        item_codes = list(pre["items"])
    items = validate_items(db, item_codes, errors)
    received = code_list(data, "received", errors)
    if received is None and "received" not in errors:
        received = list(pre["materials"]) if pre is not None else []
    received = validate_materials(received, items, "received", errors)
    if errors:
        raise invalid_fields(errors)

    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    check = checklist(items)
    got = set(received)
    gaps = [m for m in check if m["code"] not in got]
    promised_days = max(it["promised_days"] for it in items)
    statutory_days = max(it["statutory_days"] for it in items)
    accept, commitment, catch_up = acceptance.decide(gaps, data, today, promised_days)

    with dbm.tx(db) as conn:
        ticket = ticket_at_window(db, tid, user) if tid is not None else None
        if pre is not None:
            pre = dbm.one(db, "SELECT * FROM preapplications WHERE id = ?", [pre["id"]])
            assert pre is not None
            if pre["state"] != "submitted":
                raise Conflict(
                    f"pre-application {pre['ref']} was already used for case {pre['case_no']}",
                    field="preapplication_id",
                )
            if ticket is not None and ticket["id_hash"] != pre["id_hash"]:
                raise Conflict(
                    f"ticket {ticket['ticket_no']} ({ticket['id_masked']}) and pre-application "
                    f"{pre['ref']} ({pre['id_masked']}) are for different people",
                    field="preapplication_id",
                )
        person = ticket if ticket is not None else pre
        assert person is not None
        lang = person["lang"] if person.get("lang") in ("zh", "en") else cfg.default_lang
        day = today.isoformat()
        # Beyond the log's case numbers too: a restore may leave cases in the log only.
        seq = numbers.next_case_seq(conn, cfg.code, day)
        case_no = f"{cfg.code}-{today:%Y%m%d}-{seq:04d}"
        kind = items[0]["kind"]
        depts = departments_of(items)
        plain = _plain_person(pii, person)
        events.append(
            conn,
            "case.opened",
            "case",
            case_no,
            {
                "case_no": case_no,
                "case_id": numbers.next_id(conn, "cases"),
                "kind": kind,
                "items": [it["code"] for it in items],
                "departments": depts,
                "id_masked": person["id_masked"],
                "id_hash": person["id_hash"],
                "phone_masked": person["phone_masked"],
                "lang": lang,
                "ticket_no": ticket["ticket_no"] if ticket else None,
                "preapplication_id": pre["id"] if pre is not None else None,
                "promised_days": promised_days,
                "statutory_days": statutory_days,
                "materials": [
                    {**m, "state": "received" if m["code"] in got else "missing"} for m in check
                ],
                "received": [m["code"] for m in check if m["code"] in got],
                "missing": [m["code"] for m in gaps],
                "by": user["username"],
                **_sealed_id(cfg, plain.get("id")),
                **_recovery(conn, plain),
            },
            at=at,
            personal=Personal(pii, plain),
        )
        case = get(db, case_no)
        link_visit(conn, db, case, ticket, "intake", user["username"], at)
        if pre is not None:
            events.append(
                conn,
                "preapplication.used",
                "preapplication",
                pre["id"],
                {"preapplication_id": pre["id"], "case_no": case_no},
                at=at,
            )
        if accept:
            acceptance.accept(
                conn,
                db,
                cfg,
                case,
                today,
                at,
                user["username"],
                commitment=commitment,
                catch_up=catch_up,
            )
        if gaps:
            issue_notice(
                conn,
                case,
                "intake",
                gaps,
                at,
                accepted=accept,
                catch_up_date=catch_up.isoformat() if catch_up else None,
            )
    return get(db, case_no)


def _preapplication(db: sqlite_utils.Database, ref: Any) -> dict[str, Any]:
    if isinstance(ref, int) and not isinstance(ref, bool):
        pre = dbm.one(db, "SELECT * FROM preapplications WHERE id = ?", [ref])
    elif isinstance(ref, str) and ref:
        pre = dbm.one(db, "SELECT * FROM preapplications WHERE ref = ?", [ref.strip().upper()])
    else:
        raise Invalid(
            "preapplication_id must be the reference of a pre-application",
            field="preapplication_id",
        )
    if pre is None:
        raise Invalid(f"no pre-application {ref}", field="preapplication_id")
    pre["items"] = json.loads(pre["items"])
    pre["materials"] = json.loads(pre["materials"])
    return pre


def _plain_person(pii: Pii, person: dict[str, Any]) -> dict[str, str]:
    """The applicant's ID and phone number in the clear (the ticket's or pre-application's),
    those it has."""
    out = {}
    for name in ("id", "phone"):
        enc = person[f"{name}_enc"]
        value = pii.decrypt(enc) if enc else ""
        if value:
            out[name] = value
    return out


def _recovery(conn: sqlite3.Connection, plain: dict[str, str]) -> dict[str, str]:
    """The numbers sealed to the node's recovery key, for a node rebuilt from its log."""
    out = {}
    for name, value in plain.items():
        sealed = recovery.seal_in(conn, value)
        if sealed is not None:
            out[f"{name}_recovery"] = sealed
    return out


def _sealed_id(cfg: NodeConfig, id_number: str | None) -> dict[str, str]:
    if not id_number:
        return {}
    sealed = seal_for_hub(cfg, id_number)
    return {"id_sealed": sealed} if sealed else {}


def supplement(
    db: sqlite_utils.Database,
    cfg: NodeConfig,
    case_no: str,
    data: dict[str, Any],
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """Materials brought on a later visit (or the same one), or sent by post, online or
    courier (``channel``; ``window`` when a ticket is linked): only ``window`` is a visit.

    * ``supplement`` (补正): every requested material must come; the review resumes and the
      deadlines move by the working days the clock was paused.
    * ``pending_materials``: the materials are recorded; the case is accepted when nothing
      is missing, or with 容缺 when only non-critical ones are and the citizen commits;
      otherwise a new notice lists what is still missing.
    * ``accepted`` or ``approved`` with 容缺 materials outstanding: they are recorded (the
      result of an approved case waits for them).
    """
    errors: dict[str, str] = {}
    tid = None
    if data.get("ticket_id") is not None:
        try:
            tid = int_field(data["ticket_id"], "ticket_id")
        except Invalid as exc:
            errors["ticket_id"] = exc.message
    channel = data.get("channel")
    if channel is None and data.get("ticket_id") is not None:
        channel = "window"
    if channel is None:
        errors["channel"] = "channel is required without a ticket: window, post, online or courier"
    elif channel not in CHANNELS:
        errors["channel"] = "channel must be window, post, online or courier"
    elif channel != "window" and data.get("ticket_id") is not None:
        errors["ticket_id"] = f"ticket_id applies to a supplement at the window, not by {channel}"
    received = code_list(data, "received", errors)
    if received is None and "received" not in errors:
        errors["received"] = "received is required: the codes of the materials brought"
    if errors:
        raise invalid_fields(errors)
    assert received is not None
    t = now()
    at = iso(t)
    today = local_date(t, cfg.timezone)
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        mats = {m["code"]: m for m in materials(db, case["id"])}
        unknown = [c for c in received if c not in mats]
        if unknown:
            raise Invalid(
                f"material {', '.join(unknown)} is not on the checklist of case {case_no}",
                field="received",
            )
        outstanding = [m for m in mats.values() if m["state"] != "received"]
        if case["state"] in ("accepted", "approved") and not outstanding:
            raise Conflict(
                f"case {case_no} is {case['state']} with every material in; "
                "materials are supplemented when a department asks (补正)",
                field="state",
            )
        if case["state"] not in ("supplement", "pending_materials", "accepted", "approved"):
            raise Conflict(
                f"case {case_no} is {case['state']}: there is nothing to supplement", field="state"
            )
        if case["state"] == "supplement":
            requested = [m for m in mats.values() if m["state"] == "requested"]
            lacking = [m for m in requested if m["code"] not in received]
            if lacking:
                raise Invalid(
                    f"requested material still missing: {material_names(lacking)}", field="received"
                )
        if not received:
            raise Invalid("received needs at least one material code", field="received")
        ticket = ticket_at_window(db, tid, user) if tid is not None else None
        if ticket is not None:
            same_person(case, ticket)
        if channel == "window":
            link_visit(conn, db, case, ticket, "supplement", user["username"], at)
        # What stays missing once the materials brought are in (case.supplemented records them).
        still = [m for m in mats.values() if m["state"] != "received" and m["code"] not in received]
        body: dict[str, Any] = {
            "case_no": case_no,
            "received": received,
            "still_missing": [m["code"] for m in still],
            "ticket_no": ticket["ticket_no"] if ticket else None,
            "by": user["username"],
            "from_state": case["state"],
            "channel": channel,
        }
        if case["state"] == "supplement":
            paused = max(
                0, workdays.workdays_between(dt.date.fromisoformat(case["paused_date"]), today)
            )
            promised = workdays.add_workdays(
                dt.date.fromisoformat(case["promised_deadline"]), paused
            )
            statutory = workdays.add_workdays(
                dt.date.fromisoformat(case["statutory_deadline"]), paused
            )
            for task in dbm.rows(
                db,
                "SELECT id, department FROM review_tasks "
                "WHERE case_id = ? AND state = 'supplement'",
                [case["id"]],
            ):
                events.append(
                    conn,
                    "review.reopened",
                    "review_task",
                    task["id"],
                    {"case_no": case_no, "task_id": task["id"], "department": task["department"]},
                    at=at,
                )
            body.update(
                {
                    "paused_workdays": paused,
                    "promised_deadline": promised.isoformat(),
                    "statutory_deadline": statutory.isoformat(),
                    "state": "accepted",
                }
            )
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
        elif case["state"] == "pending_materials":
            accept, commitment, catch_up = acceptance.decide(
                still, data, today, case["promised_days"]
            )
            body["state"] = "accepted" if accept else "pending_materials"
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
            if accept:
                acceptance.accept(
                    conn,
                    db,
                    cfg,
                    case,
                    today,
                    at,
                    user["username"],
                    commitment=commitment,
                    catch_up=catch_up,
                )
            if still:
                issue_notice(
                    conn,
                    case,
                    "still_missing",
                    still,
                    at,
                    accepted=accept,
                    catch_up_date=catch_up.isoformat() if catch_up else None,
                )
        else:  # accepted or approved: 容缺 materials caught up
            body["state"] = case["state"]
            events.append(conn, "case.supplemented", "case", case_no, body, at=at)
    return get(db, case_no)


def view_identity(
    db: sqlite_utils.Database,
    pii: Pii,
    case_no: str,
    user: dict[str, Any],
    now: Now = system_now,
) -> dict[str, Any]:
    """The full ID and phone number for checking at intake; the viewing is logged."""
    at = iso(now())
    with dbm.tx(db) as conn:
        case = get(db, case_no)
        events.append(
            conn,
            "case.identity_viewed",
            "case",
            case_no,
            {
                "case_no": case_no,
                "id_masked": case["id_masked"],
                "by": user["username"],
                "role": user["role"],
            },
            at=at,
        )
    return {
        "case_no": case_no,
        "id_number": pii.decrypt(case["id_enc"]),
        "phone": pii.decrypt(case["phone_enc"]),
        "id_masked": case["id_masked"],
        "phone_masked": case["phone_masked"],
    }
