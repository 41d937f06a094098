"""Request models of the node's JSON API (bodies, query strings, path parameters) and the
models its OpenAPI document shows for the main responses.

Handlers parse with :mod:`onestop.requests`; the document is built from these models by
:mod:`onestop.openapi`.  The models check a request's shape; the domain functions
(:mod:`node.tickets`, :mod:`node.cases`, :mod:`node.ratings` ...) still check what needs the
database or the clock, with their own messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, Field, StrictBool, StrictInt

from node.appointments import SLOTS
from node.cases_db import CASE_STATES, CHANNELS, DECISIONS, HANDOVER_METHODS, TASK_STATES
from node.ratings import APPEAL_DECISIONS, MAX_COMMENT, MAX_NOTE, REASONS
from node.ratings import CHANNELS as RATING_CHANNELS
from node.speech_audio import TICKET_RE
from node.tickets import TICKET_STATES
from node.users import ROLES
from onestop.i18n import lazy_gettext
from onestop.models import Day, Int64, Lang
from onestop.models import LoginRequest as LoginRequest  # shared with the hub
from onestop.requests import Model

if TYPE_CHECKING:  # the choices come from the domain modules' tuples
    TicketState: TypeAlias = str
    CaseState: TypeAlias = str
    TaskState: TypeAlias = str
    TaskFilter: TypeAlias = str
    Decision: TypeAlias = str
    Method: TypeAlias = str
    Channel: TypeAlias = str
    Slot: TypeAlias = str
    Role: TypeAlias = str
    Reason: TypeAlias = str
    RatingChannel: TypeAlias = str
    AppealDecision: TypeAlias = str
else:
    TicketState = Literal[TICKET_STATES]
    CaseState = Literal[CASE_STATES]
    TaskState = Literal[TASK_STATES]
    TaskFilter = Literal[("open", "all", *TASK_STATES)]
    Decision = Literal[DECISIONS]
    Method = Literal[HANDOVER_METHODS]
    Channel = Literal[CHANNELS]
    Slot = Literal[SLOTS]
    Role = Literal[ROLES]
    Reason = Literal[tuple(REASONS)]
    RatingChannel = Literal[tuple(RATING_CHANNELS)]
    AppealDecision = Literal[APPEAL_DECISIONS]

Code = Annotated[str, Field(min_length=1)]
Codes = list[Code]

# -- path parameters ---------------------------------------------------------------------------


class IdPath(Model):
    id: Int64


# -- kiosk, staff, windows ---------------------------------------------------------------------


class TicketRequest(Model):
    """A kiosk's request for a queue ticket."""

    queue: str = Field(examples=["dept:edu"])
    id_number: str = Field(description="resident ID card number, GB 11643-1999, 18 characters")
    phone: str = Field(description="mainland China mobile number")
    item: str | None = Field(None, description="the service item, if the citizen chose one")
    lang: Lang | None = Field(None, description="language of messages, SMS and the printout")
    appointment: StrictBool | None = Field(
        None,
        description="refused when true: an appointment gives priority only when its reference "
        "is checked in (POST /api/v1/appointments/{ref}/check-in)",
    )


class SpeechQuery(Model):
    """A call for the display board to play: only a ticket number and a window are spoken."""

    ticket: str = Field(
        pattern=TICKET_RE.pattern,
        examples=["A023"],
        description="the called ticket's number: queue prefix and serial",
    )
    window: int = Field(ge=1, le=999, description="the window's number")
    lang: Lang = Field("zh", description="zh: Mandarin, en: English")  # fmt: skip


class TicketsQuery(Model):
    state: TicketState | None = None
    date: Day | None = Field(None, description="local service date, default today")


class PriorityRequest(Model):
    priority: StrictBool = Field(description="true: the staff priority lane (绿色通道)")


class NewUser(Model):
    username: str = Field(min_length=1)
    password: str = Field(description="at least 8 characters")
    role: Role
    window: Int64 | None = Field(None, description="the window number a clerk works at")
    department: str | None = Field(None, description="a reviewer's department code")


class NewWindow(Model):
    messages = {"queues": lazy_gettext('queues 必须是队列编码列表，或 ["*"]')}

    number: Int64
    name: str | None = None
    queues: list[str] = Field(description='queue codes, or ["*"] for every queue')


class ResumeRequest(Model):
    ticket_id: Int64 = Field(description="a ticket suspended at this window")


class TransferRequest(Model):
    queue: str | None = Field(None, description="the queue to move the ticket to")
    window: Int64 | None = Field(None, description="the window number to move the ticket to")


# -- cases ---------------------------------------------------------------------------------------


class IntakeRequest(Model):
    """Give ticket_id (the ticket called at or suspended at the window) or preapplication_id
    (its reference), or both for the same person; items and received default to the
    pre-application's."""

    ticket_id: Int64 | None = None
    preapplication_id: str | Int64 | None = Field(None, description="a pre-application reference")
    items: Codes | None = Field(None, description="service item codes; a consultation or "
                                "complaint is a case of its own")  # fmt: skip
    received: Codes | None = Field(None, description="material codes received (originals checked)")
    commitment: StrictBool | None = Field(
        None, description="the citizen commits to bring the missing non-critical materials "
        "(容缺受理)")  # fmt: skip
    catch_up_date: Day | None = Field(
        None, description="when the missing materials are due; no later than the promised "
        "deadline (its default)")  # fmt: skip


class CasesQuery(Model):
    state: CaseState | None = None
    date: Day | None = Field(None, description="local service date of the case")
    department: str | None = None
    limit: Int64 = Field(200, description="at most this many (1 to 1000)")


class SupplementRequest(Model):
    ticket_id: Int64 | None = Field(None, description="the ticket of this visit")
    channel: Channel | None = Field(
        None,
        description="window (in person: a visit), post, online or courier; window when a "
        "ticket is linked, required without one",
    )
    received: Codes = Field(description="codes of the materials brought")
    commitment: StrictBool | None = None
    catch_up_date: Day | None = None


class ReviewRequest(Model):
    decision: Decision
    reason: str | None = Field(None, max_length=2000,
                               description="required to reject or supplement")  # fmt: skip
    materials: Codes | None = Field(None, description="supplement: materials to bring again")


class HandoverRequest(Model):
    method: Method | None = Field(
        None, description="pickup or mail; follows from channel when that is given"
    )
    channel: Channel | None = Field(
        None,
        description="window (pickup: a visit), post or courier (mail); by default window for "
        "pickup and post for mail",
    )
    tracking: str | None = Field(None, max_length=64, description="required for mail")
    ticket_id: Int64 | None = Field(None, description="pickup: the ticket of this visit")


class InboxQuery(Model):
    state: TaskFilter | None = Field(
        None, description="open (default: pending and supplement), all, or a task state"
    )


class MaterialQuery(Model):
    name: str | None = Field(None, description="file name when sending a raw body")


class StatusQuery(Model):
    phone_last4: str = Field(description="last 4 digits of the applicant's mobile",
                             json_schema_extra={"pattern": "^[0-9]{4}$"})  # fmt: skip


# -- ratings, citizens, SMS ----------------------------------------------------------------------


class RatingRequest(Model):
    """A visit (token) or a case (case_no and rating_token): 5 非常满意, 4 满意, 3 基本满意,
    2 不满意, 1 非常不满意."""

    messages = {"level": lazy_gettext("level 必须是 1（非常不满意）到 5（非常满意）")}

    case_no: str | None = None
    rating_token: str | None = Field(
        None,
        description="with case_no: the case's rating code from the result SMS "
        "(e.g. K7QM-2ZP4-XWHD; case and dashes do not matter)",
    )
    phone_last4: str | None = Field(
        None, description="refused: the last digits of a phone no longer rate a case"
    )
    token: str | None = Field(None, description="the ticket's token")
    level: StrictInt = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=MAX_COMMENT)
    reason: Reason | None = Field(
        None,
        description="required with level 2 or 1: attitude 服务态度, efficiency 办事效率, process "
        "办事流程, materials 材料要求, information 信息公开/告知, system 系统/设备, other 其他",
    )
    channel: RatingChannel | None = Field(
        None,
        description="window (the window's evaluator), qr, sms or kiosk; default qr for a "
        "visit, sms for a case",
    )


class WindowNumberPath(Model):
    n: Int64 = Field(description="the window's number (shown above it)")


class RatingIdPath(Model):
    id: Int64


class NoteRequest(Model):
    note: str = Field(min_length=1, max_length=MAX_NOTE)


class AppealRequest(Model):
    reason: str = Field(min_length=1, max_length=MAX_NOTE, description="why it should not count")


class AppealDecisionRequest(Model):
    decision: AppealDecision = Field(description="upheld: the rating leaves the figures")
    note: str = Field(min_length=1, max_length=MAX_NOTE)


class ExportQuery(Model):
    format: Literal["csv", "json"] | None = Field(None, description="default csv")
    from_: Day | None = Field(None, alias="from", description="first local day rated")
    to: Day | None = Field(None, description="last local day rated")


class FollowupsQuery(Model):
    state: Literal["open", "closed", "all"] | None = None


class CloseFollowup(Model):
    note: str = Field(min_length=1, max_length=2000, description="what was done")


class PreapplicationRequest(Model):
    id_number: str
    phone: str
    items: Codes
    materials: Codes | None = None
    lang: Lang | None = None


class SlotsQuery(Model):
    queue: str
    date: Day | None = Field(None, description="default today")


class AppointmentsQuery(Model):
    date: Day | None = Field(None, description="default today")


class AppointmentRequest(Model):
    queue: str = Field(examples=["dept:edu"])
    date: Day
    slot: Slot
    id_number: str
    phone: str
    lang: Lang | None = None


class SmsQuery(Model):
    state: Literal["queued", "sent", "failed"] | None = None


# -- responses (what the document shows; handlers build plain dicts) ---------------------------


class Ticket(BaseModel):
    id: int | None = None
    ticket_no: str | None = Field(None, examples=["A023"])
    queue: str | None = None
    state: TicketState | None = None
    priority: int | None = None
    id_masked: str | None = None
    phone_masked: str | None = None
    window_id: int | None = None
    recalls: int | None = None


class TicketResult(BaseModel):
    ticket: Ticket | None = None


class IssuedTicket(BaseModel):
    ticket_no: str | None = None
    token: str | None = None
    waiting_ahead: int | None = None
    estimated_wait_minutes: int | None = None
    priority: int | None = None
    status_url: str | None = None
    print_url: str | None = None
    status_link: str | None = Field(
        None,
        description="the status page's full address for a QR code (under public_url); null "
        "when no phone could open it (public_url unset, kiosk on a loopback address)",
    )
    where_zh: str | None = Field(None, description="where to wait, in Chinese")
    where_en: str | None = Field(None, description="where to wait, in English")


class Material(BaseModel):
    code: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    critical: bool | None = None
    state: Literal["received", "missing", "requested"] | None = None
    received_at: str | None = None
    files: list[dict[str, Any]] | None = None


class Deadline(BaseModel):
    promised: str | None = None
    statutory: str | None = None
    status: Literal["green", "yellow", "red"] | None = None
    running: bool | None = None
    paused: bool | None = None
    workdays_left: int | None = None
    overdue_workdays: int | None = None
    on_time: bool | None = None
    paused_days: int | None = None
    statutory_overdue: bool | None = None


class Task(BaseModel):
    id: int | None = None
    department: str | None = None
    state: TaskState | None = None
    reason: str | None = None
    decided_by: str | None = None


class Visit(BaseModel):
    ticket_no: str | None = None
    purpose: Literal["intake", "supplement", "pickup"] | None = None
    at: str | None = None


class TimelineEvent(BaseModel):
    seq: int | None = None
    at: str | None = None
    kind: str | None = None
    body: dict[str, Any] | None = None


class Case(BaseModel):
    case_no: str | None = Field(None, examples=["370102001-20261129-0007"])
    kind: str | None = None
    state: CaseState | None = None
    state_name_zh: str | None = None
    state_name_en: str | None = None
    outcome: Literal["approved", "rejected"] | None = None
    items: list[dict[str, Any]] | None = None
    departments: list[str] | None = None
    id_masked: str | None = Field(None, examples=["370102********1234"])
    phone_masked: str | None = Field(None, examples=["138****8000"])
    commitment: bool | None = None
    catch_up_date: str | None = None
    accepted_date: str | None = None
    promised_deadline: str | None = None
    statutory_deadline: str | None = None
    deadline: Deadline | None = None
    visit_count: int | None = None
    materials: list[Material] | None = None
    missing: list[str] | None = None
    tasks: list[Task] | None = None
    visits: list[Visit] | None = None
    timeline: list[TimelineEvent] | None = None


class CaseResult(BaseModel):
    case: Case | None = None


class Identity(BaseModel):
    id_number: str | None = None
    phone: str | None = None


class Appointment(BaseModel):
    ref: str | None = None
    queue: str | None = None
    date: str | None = None
    slot: str | None = None
    state: Literal["booked", "checked_in", "cancelled"] | None = None
    ticket_no: str | None = None


class AppointmentResult(BaseModel):
    appointment: Appointment | None = None


class Followup(BaseModel):
    id: int | None = None
    level: int | None = None
    state: Literal["open", "closed"] | None = None
    stage: Literal["open", "called_back", "closed"] | None = None
    callback_due: str | None = None
    called_back_at: str | None = None
    due_date: str | None = None
    status: Literal["green", "yellow", "red"] | None = None
    case_no: str | None = None
    ticket_no: str | None = None
    note: str | None = None


class FollowupResult(BaseModel):
    followup: Followup | None = None


class Followups(BaseModel):
    followups: list[Followup] | None = None


class Rating(BaseModel):
    id: int | None = None
    level: int | None = None
    reason: str | None = None
    channel: str | None = None
    clerk: str | None = None
    case_no: str | None = None
    ticket_no: str | None = None
    followup_state: str | None = None
    appeal_state: Literal["open", "upheld", "rejected"] | None = None
    counts_in_figures: bool | None = None
    again_level: int | None = None


class RatingResult(BaseModel):
    rating: Rating | None = None


class PromptWindow(BaseModel):
    number: int | None = None
    name: str | None = None
    clerk: str | None = None


class Prompt(BaseModel):
    kind: Literal["visit", "case"] | None = None
    token: str | None = Field(None, description="a visit: the ticket's token")
    ticket_no: str | None = None
    case_no: str | None = None
    rating_code: str | None = Field(None, description="a case: its rating code")
    since: str | None = None
    expires_at: str | None = None


class RatingPrompt(BaseModel):
    window: PromptWindow | None = None
    prompt: Prompt | None = Field(None, description="null: nothing to rate now")


class SmsSent(BaseModel):
    sent: int | None = None
    retry: int | None = None
    failed: int | None = None
