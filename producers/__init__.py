"""The firebus client library: what a department system imports to publish typed, signed events.

    from producers import Draft, FirebusClient, FireReport, FirePlace, FireStatus, Classification, ...

    async with FirebusClient(settings=Settings(), unit="forestry", person="张三") as client:
        receipt = await client.publish(Draft(body=FireReport(...), classification=Classification.INTERNAL, ...))

Event types are the body classes, imported — never spelled as strings.
"""

from firebus.events import (
    Audience,
    CaseKind,
    CaseStatus,
    CaseUpdate,
    Classification,
    Consultation,
    ConsultationPeriod,
    Deployment,
    Directive,
    FirePlace,
    FireReport,
    FireStatus,
    IssuingLevel,
    MessageKind,
    Resource,
    ResourceKind,
    ResourceStatus,
    RiskWarning,
    Severity,
    SignalColour,
    Suspect,
    TrafficControl,
    TrafficMeasure,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from producers._blocking import BlockingFirebusClient
from producers._client import FirebusClient, Receipt
from producers._drafts import Draft, draft_from_mapping, load_draft
from producers._review import ReviewDesk, fold_items
from producers._simulate import SeasonSimulator, SimulationReport, publish_season, simulated_events
from producers._units import UnitClients, draft_json_schemas

__all__ = [
    "Audience",
    "BlockingFirebusClient",
    "CaseKind",
    "CaseStatus",
    "CaseUpdate",
    "Classification",
    "Consultation",
    "ConsultationPeriod",
    "Deployment",
    "Directive",
    "Draft",
    "FirePlace",
    "FireReport",
    "FireStatus",
    "FirebusClient",
    "IssuingLevel",
    "MessageKind",
    "Receipt",
    "Resource",
    "ResourceKind",
    "ResourceStatus",
    "ReviewDesk",
    "RiskWarning",
    "SeasonSimulator",
    "Severity",
    "SignalColour",
    "SimulationReport",
    "Suspect",
    "TrafficControl",
    "TrafficMeasure",
    "UnitClients",
    "Urgency",
    "WorkCategory",
    "WorkUpdate",
    "draft_from_mapping",
    "draft_json_schemas",
    "fold_items",
    "load_draft",
    "publish_season",
    "simulated_events",
]
