"""Tables of the case part (办件): cases, materials, review tasks, visits, pre-applications,
appointments, the SMS outbox, ratings (好差评) and their follow-ups.

Listed in :data:`node.db.MIGRATIONS`.  Personal
data follows the tickets table: ``*_enc`` (Fernet), ``id_hash`` (keyed HMAC) and masks.
"""

from __future__ import annotations

import sqlite_utils

CASE_STATES = (
    "pending_materials",  # intake found gaps; not accepted (一次性告知 issued)
    "accepted",  # 受理: review tasks open, the deadline clock runs
    "supplement",  # 补正: a department asked for more; the clock is paused
    "approved",  # every department approved
    "rejected",  # a department rejected
    "result_ready",  # the result waits at the window (统一出件)
    "delivered",  # picked up or mailed: the case is complete
)
TASK_STATES = ("pending", "approved", "rejected", "supplement", "cancelled")
#: A department's review decisions, and the ways a result reaches the applicant.
DECISIONS = ("approve", "reject", "supplement")
HANDOVER_METHODS = ("pickup", "mail")
MATERIAL_STATES = ("received", "missing", "requested")
VISIT_PURPOSES = ("intake", "supplement", "pickup")
#: How a supplement or a result reaches the center or the applicant: only ``window`` (in
#: person at the window) is a visit.  A result goes by ``post`` or ``courier`` as a mailing.
CHANNELS = ("window", "post", "online", "courier")
HANDOVER_CHANNELS = {"window": "pickup", "post": "mail", "courier": "mail"}


def _m010_cases(db: sqlite_utils.Database) -> None:
    states = ",".join(f"'{s}'" for s in CASE_STATES)
    tasks = ",".join(f"'{s}'" for s in TASK_STATES)
    mats = ",".join(f"'{s}'" for s in MATERIAL_STATES)
    purposes = ",".join(f"'{s}'" for s in VISIT_PURPOSES)
    db.executescript(
        f"""
        CREATE TABLE preapplications (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,           -- given to the citizen; brought to the window
            items TEXT NOT NULL,                -- JSON list of item codes
            materials TEXT NOT NULL,            -- JSON list of material codes provided online
            id_enc TEXT NOT NULL, id_hash TEXT NOT NULL, id_masked TEXT NOT NULL,
            phone_enc TEXT NOT NULL, phone_masked TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'submitted' CHECK (state IN ('submitted','used')),
            case_no TEXT,
            lang TEXT NOT NULL DEFAULT 'zh',
            created_at TEXT NOT NULL, used_at TEXT);
        CREATE TABLE appointments (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,           -- shown to the citizen; used at kiosk check-in
            queue TEXT NOT NULL REFERENCES queues(code),
            date TEXT NOT NULL, slot TEXT NOT NULL,
            id_enc TEXT NOT NULL, id_hash TEXT NOT NULL, id_masked TEXT NOT NULL,
            phone_enc TEXT NOT NULL, phone_masked TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'booked'
                CHECK (state IN ('booked','checked_in','cancelled')),
            ticket_id INTEGER REFERENCES tickets(id),
            lang TEXT NOT NULL DEFAULT 'zh',
            created_at TEXT NOT NULL, checked_in_at TEXT, cancelled_at TEXT);
        CREATE INDEX appointments_slot ON appointments (queue, date, slot, state);
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            case_no TEXT NOT NULL UNIQUE,       -- 办件编码: node code-local date-daily sequence
            node_code TEXT NOT NULL, service_date TEXT NOT NULL, seq INTEGER NOT NULL,
            kind TEXT NOT NULL,                 -- item kind: licensing, consultation, ...
            items TEXT NOT NULL,                -- JSON list of item codes
            departments TEXT NOT NULL,          -- JSON list of reviewing departments
            state TEXT NOT NULL CHECK (state IN ({states})),
            outcome TEXT CHECK (outcome IN ('approved','rejected')),
            id_enc TEXT NOT NULL, id_hash TEXT NOT NULL, id_masked TEXT NOT NULL,
            phone_enc TEXT NOT NULL, phone_masked TEXT NOT NULL,
            lang TEXT NOT NULL DEFAULT 'zh',
            preapplication_id INTEGER REFERENCES preapplications(id),
            commitment INTEGER NOT NULL DEFAULT 0,  -- 容缺受理 commitment of the citizen
            catch_up_date TEXT,                 -- when the missing materials are due
            promised_days INTEGER NOT NULL, statutory_days INTEGER NOT NULL,
            accepted_at TEXT, accepted_date TEXT,
            promised_deadline TEXT, statutory_deadline TEXT,
            paused_at TEXT, paused_date TEXT,   -- while in supplement (补正)
            paused_days INTEGER NOT NULL DEFAULT 0,
            decided_at TEXT, decided_date TEXT, reject_reason TEXT,
            result_at TEXT, handed_over_at TEXT,
            handover_method TEXT CHECK (handover_method IN ('pickup','mail')),
            tracking TEXT,
            created_at TEXT NOT NULL, created_by TEXT NOT NULL,
            UNIQUE (node_code, service_date, seq));
        CREATE INDEX cases_state ON cases (state, promised_deadline);
        CREATE INDEX cases_id_hash ON cases (id_hash);
        CREATE TABLE case_materials (
            case_id INTEGER NOT NULL REFERENCES cases(id),
            code TEXT NOT NULL, name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            critical INTEGER NOT NULL, position INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ({mats})),
            received_at TEXT,
            PRIMARY KEY (case_id, code));
        CREATE TABLE case_files (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            material TEXT NOT NULL,
            sha256 TEXT NOT NULL,               -- content address under DATA/files/
            name TEXT NOT NULL, size INTEGER NOT NULL, content_type TEXT NOT NULL,
            uploaded_at TEXT NOT NULL, uploaded_by TEXT NOT NULL);
        CREATE INDEX case_files_case ON case_files (case_id, material);
        CREATE TABLE case_visits (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            ticket_id INTEGER REFERENCES tickets(id),   -- NULL: at the window without a ticket
            purpose TEXT NOT NULL CHECK (purpose IN ({purposes})),
            at TEXT NOT NULL, by TEXT NOT NULL,
            UNIQUE (case_id, ticket_id));
        CREATE INDEX case_visits_ticket ON case_visits (ticket_id);
        CREATE TABLE review_tasks (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            department TEXT NOT NULL REFERENCES departments(code),
            position INTEGER NOT NULL,          -- 0 = lead department
            state TEXT NOT NULL CHECK (state IN ({tasks})),
            reason TEXT, decided_by TEXT, decided_at TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (case_id, department));
        CREATE INDEX review_tasks_inbox ON review_tasks (department, state);
        CREATE TABLE sms_outbox (
            id INTEGER PRIMARY KEY,
            to_masked TEXT NOT NULL, to_enc TEXT NOT NULL,
            template TEXT NOT NULL, text TEXT NOT NULL,
            case_id INTEGER REFERENCES cases(id),
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','sent','failed')),
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            created_at TEXT NOT NULL, sent_at TEXT);
        CREATE INDEX sms_outbox_state ON sms_outbox (state, id);
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            case_id INTEGER UNIQUE REFERENCES cases(id),
            ticket_id INTEGER UNIQUE REFERENCES tickets(id),
            level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
            comment TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            CHECK ((case_id IS NULL) != (ticket_id IS NULL)));
        CREATE TABLE followups (
            id INTEGER PRIMARY KEY,
            rating_id INTEGER NOT NULL UNIQUE REFERENCES ratings(id),
            case_id INTEGER REFERENCES cases(id),
            ticket_id INTEGER REFERENCES tickets(id),
            level INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open','closed')),
            due_date TEXT NOT NULL,
            note TEXT, closed_by TEXT, closed_at TEXT,
            created_at TEXT NOT NULL);
        CREATE INDEX followups_state ON followups (state, due_date);
        -- A case's timeline gathers every event whose body names the case.
        CREATE INDEX events_case_no ON events (json_extract(body, '$.case_no'));
        """
    )


def _m011_visit_channel(db: sqlite_utils.Database) -> None:
    """``case_visits.channel``: ``window`` for every visit; NULL kept on a supplement
    registered without a ticket before channels existed, which is not a visit."""
    db.execute("ALTER TABLE case_visits ADD COLUMN channel TEXT")
    db.execute(
        "UPDATE case_visits SET channel = 'window' "
        "WHERE NOT (purpose = 'supplement' AND ticket_id IS NULL)"
    )


MIGRATIONS = [("010_cases", _m010_cases), ("011_visit_channel", _m011_visit_channel)]
