"""zh-CN SMS texts per event type: the facts that matter, the publisher, a reference, never more than allowed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consumers.sms.segmentation import segment
from consumers.sms.templates import Texts
from firebus.codec import event_model
from firebus.county import County
from firebus.events import (
    CaseKind,
    CaseStatus,
    CaseUpdate,
    Consultation,
    ConsultationPeriod,
    Directive,
    Event,
    EventBody,
    FireStatus,
    IssuingLevel,
    MessageKind,
    Resource,
    ResourceKind,
    ResourceStatus,
    RiskWarning,
    SignalColour,
    Suspect,
    TrafficControl,
    TrafficMeasure,
)
from firebus.records import NearbyResource
from tests.consumers.sms.samples import AT, fire_event, fire_report, header, release_of

LATER = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)  # 10:00 local


@pytest.fixture
def texts(county: County) -> Texts:
    return Texts(county=county, max_parts=4)


def event_of(body: EventBody, **header_changes: Any) -> Event[Any]:
    return event_model(body.event_type)(header=header(type(body), **header_changes), body=body)


def test_a_fire_report_reads_what_where_status_when_forces_publisher_and_reference(texts: Texts) -> None:
    """The fire report text is exactly the agreed sentence, in local time, with incident and event reference."""
    event = fire_event()
    text = texts.render(event, release_of(event))
    assert text == (
        "【阳城县森防指】火情：蟒河镇桑林村后山，正在扑救（严重），发现于3月14日18:02。过火约2.5公顷。"
        f"出动35人4车（县林业局）。（县林业局发布，编号YC-2026-0314-01·{event.header.event_id.hex[:8]}）"
    )


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [(MessageKind.ALERT, "火情："), (MessageKind.UPDATE, "更新：火情："), (MessageKind.CANCEL, "撤销：")],
)
def test_updates_and_cancels_say_so_first(texts: Texts, kind: MessageKind, prefix: str) -> None:
    """An update or a cancel is marked as such right after the sender tag."""
    event = fire_event(kind=kind)
    assert texts.render(event, release_of(event)).startswith(f"【阳城县森防指】{prefix}")


@pytest.mark.parametrize(
    ("status", "words"),
    [(FireStatus.CONTAINED, "已控制"), (FireStatus.EXTINGUISHED, "已扑灭"), (FireStatus.FALSE_ALARM, "误报")],
)
def test_fire_status_in_chinese(texts: Texts, status: FireStatus, words: str) -> None:
    """Each fire status reads in Chinese."""
    event = fire_event(fire_report(status=status))
    assert words in texts.render(event, release_of(event))


def test_casualties_cause_and_the_nearest_available_resource_are_told(texts: Texts) -> None:
    """Deaths and injuries, the suspected cause and the nearest available resource appear when known."""
    event = fire_event(fire_report(deaths=1, injuries=2, suspected_cause="上坟烧纸"))
    nearby = [
        NearbyResource(
            resource_id="w1",
            resource_kind=ResourceKind.WATER_POINT,
            name="桑林水库",
            township="manghe",
            status=ResourceStatus.AVAILABLE,
            distance_km=1.24,
        ),
        NearbyResource(
            resource_id="w0",
            resource_kind=ResourceKind.WATER_POINT,
            name="干涸池",
            township="manghe",
            status=ResourceStatus.UNAVAILABLE,
            distance_km=0.3,
        ),
    ]
    release = release_of(event).model_copy(update={"nearby_resources": nearby})
    text = texts.render(event, release)
    assert "伤亡：死亡1人，受伤2人。" in text
    assert "疑似原因：上坟烧纸。" in text
    assert "最近：取水点桑林水库1.2公里。" in text
    assert "干涸池" not in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            TrafficControl(
                road="S331",
                section="蟒河段",
                measure=TrafficMeasure.CLOSURE,
                starts_at=AT,
                ends_at=LATER,
                reason="火场周边扑救",
                detour="经横河绕行",
            ),
            "交通管控：S331蟒河段封闭，3月14日18:02至3月15日10:00。原因：火场周边扑救。绕行：经横河绕行。",
        ),
        (
            CaseUpdate(
                case_number="阳公刑〔2026〕31号",
                case_kind=CaseKind.ARSON,
                status=CaseStatus.SOLVED,
                summary="嫌疑人已到案",
                suspects=[Suspect(name="张某某", id_number="140522")],
            ),
            "案件：阳公刑〔2026〕31号（放火）已破案。嫌疑人已到案。",
        ),
        (
            RiskWarning(
                danger_level=4,
                signal=SignalColour.ORANGE,
                area="全县",
                valid_from=AT,
                valid_to=LATER,
                measures=["严禁野外用火", "加强巡护"],
            ),
            "火险预警：全县4级橙色预警，3月14日18:02至3月15日10:00。措施：严禁野外用火；加强巡护。",
        ),
        (
            Directive(
                issuing_level=IssuingLevel.CITY, leader="王市长", text="全力扑救，确保人员安全", publishable=True
            ),
            "指示批示（市领导王市长）：全力扑救，确保人员安全。",
        ),
        (
            Consultation(period=ConsultationPeriod.EMERGENCY, judgement="风力加大，火势有蔓延可能"),
            "会商研判（应急时段）：风力加大，火势有蔓延可能。",
        ),
        (
            Resource(
                resource_id="t9",
                resource_kind=ResourceKind.WATCHTOWER,
                name="云蒙山瞭望台",
                township="xihe",
                status=ResourceStatus.IN_USE,
            ),
            "基础数据：瞭望台云蒙山瞭望台（西河乡）使用中。",
        ),
    ],
    ids=["traffic_control", "case_update", "risk_warning", "directive", "consultation", "resource"],
)
def test_each_type_has_its_template(texts: Texts, body: EventBody, expected: str) -> None:
    """Every other event type renders its own facts between the sender tag and the publisher."""
    event = event_of(body, incident_id=None)
    text = texts.render(event, release_of(event))
    assert text == f"【阳城县森防指】{expected}（县林业局发布，编号{event.header.event_id.hex[:8]}）"


def test_suspects_never_appear(texts: Texts) -> None:
    """Even in the HQ tier, where the event still names suspects, the SMS text does not."""
    body = CaseUpdate(
        case_number="C1",
        case_kind=CaseKind.ARSON,
        status=CaseStatus.OPENED,
        summary="已立案侦查",
        suspects=[Suspect(name="张某某", id_number="140522199001011234")],
    )
    event = event_of(body)
    text = texts.render(event, release_of(event))
    assert "张某某" not in text
    assert "140522" not in text


@pytest.mark.parametrize("max_parts", [1, 2, 4])
def test_a_long_text_is_cut_to_the_parts_allowed_keeping_publisher_and_reference(
    county: County, max_parts: int
) -> None:
    """A report with a very long cause is cut with … to the parts allowed; publisher and reference stay."""
    texts = Texts(county=county, max_parts=max_parts)
    event = fire_event(fire_report(suspected_cause="野外吸烟引燃枯草" * 60))
    text = texts.render(event, release_of(event))
    assert len(segment(text)) <= max_parts
    assert "…（县林业局发布，编号YC-2026-0314-01·" in text
