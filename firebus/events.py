"""Pydantic models of the event contracts in ``schemas/avro/``.

The ``.avsc`` files are the source of truth; ``tests/firebus/test_models_match_schemas.py`` proves these models
declare the same records, fields, types, optionality, enums and defaults, so the two cannot drift.

An event on the bus is an :class:`Event` — a :class:`Header` plus the body of its type. Callers import the body
classes (``FireReport``, ``Resource`` …): the body's class *is* the event type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firebus.types import Int32, Int64, UtcDatetime


class Record(BaseModel):
    """Base of every model that is an Avro record: immutable, no unknown fields."""

    # Avro doubles can hold infinities and NaN; no measured quantity of a fire, a road or a depot is one.
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64", allow_inf_nan=False
    )


# --- header enums ------------------------------------------------------------------------------------------


class EventType(StrEnum):
    FIRE_REPORT = "fire_report"
    TRAFFIC_CONTROL = "traffic_control"
    CASE_UPDATE = "case_update"
    RISK_WARNING = "risk_warning"
    DIRECTIVE = "directive"
    CONSULTATION = "consultation"
    WORK_UPDATE = "work_update"
    RESOURCE = "resource"


class MessageKind(StrEnum):
    ALERT = "alert"
    UPDATE = "update"
    CANCEL = "cancel"


class Classification(StrEnum):
    """公开 / 内部 / 敏感 / 涉密, in increasing sensitivity."""

    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"
    SECRET = "secret"  # noqa: S105  (a classification level, not a password)


class Audience(StrEnum):
    """Sharing tiers, widest first: the public, member units, the HQ office."""

    PUBLIC = "public"
    MEMBERS = "members"
    HQ = "hq"

    @property
    def rank(self) -> int:
        """0 for the widest tier (public), 2 for the narrowest (hq)."""
        return _AUDIENCE_RANK[self]


_AUDIENCE_RANK = {Audience.PUBLIC: 0, Audience.MEMBERS: 1, Audience.HQ: 2}


class Severity(StrEnum):
    EXTREME = "extreme"
    SEVERE = "severe"
    MODERATE = "moderate"
    MINOR = "minor"
    UNKNOWN = "unknown"


class Urgency(StrEnum):
    IMMEDIATE = "immediate"
    EXPECTED = "expected"
    FUTURE = "future"
    PAST = "past"
    UNKNOWN = "unknown"


# --- header ------------------------------------------------------------------------------------------------


class Publisher(Record):
    unit: str
    person: str
    contact: str | None = None


class Origin(Record):
    """Where a reported-up event comes from (上报来源); see ``schemas/avro/header.avsc``."""

    level: str
    event_id: UUID
    unit: str
    person: str
    public_key: bytes
    signature: bytes
    event: bytes
    reviewer: str
    released_at: UtcDatetime
    policy_version: str
    immediate: list[str] = Field(default_factory=list)
    obligation: str
    due_at: UtcDatetime | None = None
    late_seconds: Int64 = 0


class Header(Record):
    event_id: UUID
    event_type: EventType
    schema_version: Int32
    kind: MessageKind
    references: list[UUID] = Field(default_factory=list)
    incident_id: str | None = None
    publisher: Publisher
    classification: Classification
    audience: Audience
    audience_townships: list[str] = Field(default_factory=list)
    severity: Severity
    urgency: Urgency
    occurred_at: UtcDatetime
    published_at: UtcDatetime
    townships: list[str] = Field(default_factory=list)
    trace_id: str
    signature: bytes = b""
    origin: Origin | None = None


# --- bodies ------------------------------------------------------------------------------------------------


class EventBody(Record):
    """Base of the eight body types; ``event_type`` ties each to its schema."""

    event_type: ClassVar[EventType]


class FireStatus(StrEnum):
    REPORTED = "reported"
    VERIFIED = "verified"
    SUPPRESSING = "suppressing"
    CONTAINED = "contained"
    EXTINGUISHED = "extinguished"
    FALSE_ALARM = "false_alarm"


class FirePlace(Record):
    township: str
    village: str | None = None
    description: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class Deployment(Record):
    unit: str
    personnel: Annotated[Int32, Field(ge=0)]
    vehicles: Annotated[Int32, Field(ge=0)] = 0
    equipment: list[str] = Field(default_factory=list)


class FireThreat(StrEnum):
    """居民区 / 重要设施 / 行政区交界 / 自然保护区、原始林区、森林公园."""

    RESIDENTIAL = "residential"
    FACILITY = "facility"
    BORDER = "border"
    PROTECTED_AREA = "protected_area"


class FireReport(EventBody):
    event_type: ClassVar[EventType] = EventType.FIRE_REPORT

    place: FirePlace
    discovered_at: UtcDatetime
    status: FireStatus
    burned_area_ha: float | None = Field(default=None, ge=0)
    forces: list[Deployment] = Field(default_factory=list)
    deaths: Annotated[Int32, Field(ge=0)] = 0
    injuries: Annotated[Int32, Field(ge=0)] = 0
    suspected_cause: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    serious_injuries: Annotated[Int32, Field(ge=0)] = 0
    threatens: list[FireThreat] = Field(default_factory=list)
    satellite_pixels: Annotated[Int32, Field(ge=0)] | None = None
    needs_support: bool = False
    in_news: bool = False
    extinguished_at: UtcDatetime | None = None


class TrafficMeasure(StrEnum):
    CLOSURE = "closure"
    RESTRICTION = "restriction"
    ESCORT = "escort"


class TrafficControl(EventBody):
    event_type: ClassVar[EventType] = EventType.TRAFFIC_CONTROL

    road: str = Field(min_length=1)
    section: str | None = None
    measure: TrafficMeasure
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None
    reason: str
    detour: str | None = None
    officer_phone: str | None = None


class CaseKind(StrEnum):
    ARSON = "arson"
    ILLEGAL_FIRE_USE = "illegal_fire_use"
    OTHER = "other"


class CaseStatus(StrEnum):
    OPENED = "opened"
    INVESTIGATING = "investigating"
    SOLVED = "solved"
    PENALIZED = "penalized"
    TRANSFERRED = "transferred"
    CLOSED = "closed"


class Suspect(Record):
    name: str
    id_number: str | None = None
    age: Annotated[Int32, Field(ge=0, le=150)] | None = None


class CaseUpdate(EventBody):
    event_type: ClassVar[EventType] = EventType.CASE_UPDATE

    case_number: str = Field(min_length=1)
    case_kind: CaseKind
    status: CaseStatus
    summary: str
    suspects: list[Suspect] = Field(default_factory=list)
    penalty: str | None = None


class SignalColour(StrEnum):
    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


class RiskWarning(EventBody):
    event_type: ClassVar[EventType] = EventType.RISK_WARNING

    danger_level: Annotated[Int32, Field(ge=1, le=5)]
    signal: SignalColour
    area: str
    valid_from: UtcDatetime
    valid_to: UtcDatetime
    measures: list[str] = Field(default_factory=list)


class IssuingLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    FIRE_HQ = "fire_hq"


class Directive(EventBody):
    event_type: ClassVar[EventType] = EventType.DIRECTIVE

    issuing_level: IssuingLevel
    leader: str
    text: str = Field(min_length=1)
    publishable: bool
    related_documents: list[str] = Field(default_factory=list)


class ConsultationPeriod(StrEnum):
    DAILY = "daily"
    FIRE_SEASON = "fire_season"
    SPECIAL = "special"
    EMERGENCY = "emergency"


class Consultation(EventBody):
    event_type: ClassVar[EventType] = EventType.CONSULTATION

    period: ConsultationPeriod
    lead_unit: str | None = None
    judgement: str = Field(min_length=1)
    measures: list[str] = Field(default_factory=list)


class WorkCategory(StrEnum):
    GUIDANCE = "guidance"
    INSPECTION = "inspection"
    PUBLICITY = "publicity"
    KEY_AREA_PROTECTION = "key_area_protection"
    PENALTY = "penalty"
    FACILITY = "facility"
    MEETING = "meeting"
    EXPERIENCE = "experience"


class WorkUpdate(EventBody):
    event_type: ClassVar[EventType] = EventType.WORK_UPDATE

    category: WorkCategory
    title: str = Field(min_length=1)
    text: str


class ResourceKind(StrEnum):
    WATER_POINT = "water_point"
    WATCHTOWER = "watchtower"
    CHECKPOINT = "checkpoint"
    FOREST_ROAD = "forest_road"
    NATURE_RESERVE = "nature_reserve"
    NATURAL_FOREST = "natural_forest"
    PROFESSIONAL_TEAM = "professional_team"
    MATERIAL_DEPOT = "material_depot"
    RESCUE_FORCE = "rescue_force"


class ResourceStatus(StrEnum):
    AVAILABLE = "available"
    IN_USE = "in_use"
    UNAVAILABLE = "unavailable"
    RETIRED = "retired"


class Resource(EventBody):
    event_type: ClassVar[EventType] = EventType.RESOURCE

    resource_id: str = Field(min_length=1)
    resource_kind: ResourceKind
    name: str
    township: str
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    geometry_wkt: str | None = None
    capacity: float | None = Field(default=None, ge=0)
    capacity_unit: str | None = None
    status: ResourceStatus
    contact_phone: str | None = None


BODY_TYPES: dict[EventType, type[EventBody]] = {
    body.event_type: body
    for body in (
        FireReport,
        TrafficControl,
        CaseUpdate,
        RiskWarning,
        Directive,
        Consultation,
        WorkUpdate,
        Resource,
    )
}
"""Every event type's body model."""

BodyT = TypeVar("BodyT", bound=EventBody)


class Event(Record, Generic[BodyT]):
    """One event as it travels: the shared header and the body of its type."""

    header: Header
    body: BodyT

    @model_validator(mode="after")
    def _body_matches_header(self) -> Event[BodyT]:
        if self.body.event_type is not self.header.event_type:
            raise ValueError(
                f"header says {self.header.event_type.value} but the body is a {self.body.event_type.value}"
            )
        return self

    @property
    def event_type(self) -> EventType:
        return self.header.event_type

    def partition_key(self) -> str:
        """Kafka key that keeps an incident's (or a resource's, or an update thread's) events in order."""
        if self.header.incident_id:
            return self.header.incident_id
        if isinstance(self.body, Resource):
            return self.body.resource_id
        if self.header.references:
            return str(self.header.references[0])
        return str(self.header.event_id)

    def log_context(self) -> dict[str, Any]:
        """Key/values every log line about this event carries."""
        return {
            "event_id": str(self.header.event_id),
            "trace_id": self.header.trace_id,
            "event_type": self.header.event_type.value,
        }
