"""The monthly report (统计月报表) as pure functions over a small hand-built season: exact figures, month bounds in
county time, the workbook and CSV files it writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from openpyxl import load_workbook

from consumers.analytics import (
    Facts,
    MonthlyReport,
    ReleaseFact,
    month_window,
    monthly_report,
    release_fact,
    write_report,
)
from firebus.errors import ConfigurationError

ZONE = ZoneInfo("Asia/Shanghai")
NAMES = {"manghe": "芒合镇", "xinzhai": "新寨乡"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def report(
    event_id: str,
    incident: str,
    *,
    occurred: str,
    status: str,
    discovered: str | None = None,
    township: str = "manghe",
    cause: str | None = None,
    area: float | None = None,
    personnel: int = 0,
    vehicles: int = 0,
    release_min: float = 5,
    tier: str = "members",
    event_type: str = "fire_report",
) -> ReleaseFact:
    """A fire report released to ``tier``: published 2 minutes after it occurred, released ``release_min`` later."""
    published = at(occurred) + timedelta(minutes=2)
    released = published + timedelta(minutes=release_min)
    return ReleaseFact(
        event_id=event_id,
        tier=tier,
        event_type=event_type,
        incident_id=incident,
        townships=(township,),
        occurred_at=at(occurred),
        published_at=published,
        decided_at=released,
        reviewer="hq-wang",
        reviewer_kind="human",
        released_at=released,
        fire_status=status,
        discovered_at=at(discovered) if discovered else None,
        burned_area_ha=area,
        suspected_cause=cause,
        personnel=personnel,
        vehicles=vehicles,
    )


A1 = report(
    "a1",
    "fire-a",
    occurred="2026-03-02T01:00",
    discovered="2026-03-02T00:38",
    status="reported",
    cause="祭祀用火",
    personnel=20,
    vehicles=2,
)
SEASON = [
    A1,
    A1,  # a replay delivers it twice
    A1._replace(tier="public", released_at=A1.released_at + timedelta(minutes=10)),
    report("a2", "fire-a", occurred="2026-03-02T05:00", status="extinguished", area=3.5, personnel=45, vehicles=5),
    # Fire B: first reported in March, extinguished on 1 April; its final area and forces count for March.
    report(
        "b1",
        "fire-b",
        occurred="2026-03-10T03:00",
        discovered="2026-03-10T02:22",
        status="contained",
        township="xinzhai",
        cause="农事用火",
        area=1.25,
        personnel=12,
        vehicles=1,
        release_min=12,
    ),
    report(
        "b2",
        "fire-b",
        occurred="2026-04-01T02:00",
        status="extinguished",
        township="xinzhai",
        area=2.0,
        personnel=30,
        vehicles=3,
    ),
    # Fire C: 31 March 16:30 UTC is 1 April 00:30 in the county: an April fire, cause unknown.
    report("c1", "fire-c", occurred="2026-03-31T16:30", discovered="2026-03-31T16:00", status="reported", area=0.2),
    # Fire D: a false alarm in March.
    report("d1", "fire-d", occurred="2026-03-20T06:00", status="reported", cause="烧荒"),
    report("d2", "fire-d", occurred="2026-03-20T07:00", status="false_alarm"),
    # Fire E: 28 February 16:30 UTC is 1 March 00:30 in the county: a March fire.
    report(
        "e1",
        "fire-e",
        occurred="2026-02-28T16:30",
        discovered="2026-02-28T16:00",
        status="extinguished",
        township="xinzhai",
        cause=" 农事用火 ",
        area=0.5,
        personnel=8,
        release_min=3,
    ),
    # Not a fire report: not in the report.
    report("w1", "weather-1", occurred="2026-03-05T00:00", status="reported", event_type="weather_warning"),
]


def season_report(month: str) -> MonthlyReport:
    return monthly_report(Facts.of(SEASON).releases, county="孟连县", month=month, zone=ZONE, townships=NAMES)


def summary_of(month: str) -> dict[str, object]:
    summary = season_report(month).summary
    return dict(zip(summary["项目"], summary["数值"], strict=True))


@pytest.mark.parametrize(
    ("month", "fires", "false_alarms", "area", "personnel", "vehicles"),
    [
        ("2026-03", 3, 1, 6.0, 83, 8),  # A (3.5, 45, 5) + B (2.0, 30, 3) + E (0.5, 8, 0); D is a false alarm
        ("2026-04", 1, 0, 0.2, 0, 0),  # C only: B's April report belongs to March's fire
        ("2026-02", 0, 0, 0.0, 0, 0),  # E occurred on 28 February in UTC but 1 March in the county
    ],
)
def test_the_summary_counts_fires_first_reported_in_the_month_in_county_time(  # noqa: PLR0917  (parametrised)
    month: str, fires: int, false_alarms: int, area: float, personnel: int, vehicles: int
) -> None:
    summary = summary_of(month)
    assert summary["火灾起数"] == fires
    assert summary["误报起数"] == false_alarms
    assert summary["过火面积（公顷）"] == area
    assert summary["出动人员（人次）"] == personnel
    assert summary["出动车辆（台次）"] == vehicles


def test_fires_by_township_and_cause_with_a_total_row() -> None:
    table = season_report("2026-03").by_township_cause
    assert table.values.tolist() == [
        ["新寨乡", "农事用火", 2, 2.5, 38, 3],  # the cause's stray spaces do not make a second cause
        ["芒合镇", "祭祀用火", 1, 3.5, 45, 5],
        ["合计", "", 3, 6.0, 83, 8],
    ]


def test_a_fire_without_a_cause_is_counted_as_unknown() -> None:
    table = season_report("2026-04").by_township_cause
    assert table.values.tolist()[0] == ["芒合镇", "不明", 1, 0.2, 0, 0]


@pytest.mark.parametrize(
    ("incident", "discovered", "published", "released", "to_publish", "to_release"),
    [
        ("fire-a", "2026-03-02 08:38", "2026-03-02 09:02", "2026-03-02 09:07", 24.0, 5.0),  # public tier later
        ("fire-b", "2026-03-10 10:22", "2026-03-10 11:02", "2026-03-10 11:14", 40.0, 12.0),
        ("fire-e", "2026-03-01 00:00", "2026-03-01 00:32", "2026-03-01 00:35", 32.0, 3.0),
    ],
)
def test_timeliness_is_of_the_first_report_in_local_time(  # noqa: PLR0917  (parametrised)
    incident: str, discovered: str, published: str, released: str, to_publish: float, to_release: float
) -> None:
    fires = season_report("2026-03").fires.set_index("火情编号")
    row = fires.loc[incident]
    assert (row["发现时间"], row["首报发布时间"], row["首报放行时间"]) == (discovered, published, released)
    assert (row["发现至发布（分钟）"], row["发布至放行（分钟）"]) == (to_publish, to_release)


def test_the_summary_gives_median_and_longest_reporting_times() -> None:
    summary = summary_of("2026-03")
    assert summary["发现至首报发布，中位数（分钟）"] == 32.0  # 24, 32, 40
    assert summary["发现至首报发布，最长（分钟）"] == 40.0
    assert summary["首报发布至放行，中位数（分钟）"] == 5.0  # 3, 5, 12
    assert summary["首报发布至放行，最长（分钟）"] == 12.0


def test_an_empty_month_still_has_every_table() -> None:
    report = season_report("2025-11")
    assert report.fires.empty
    assert report.by_township_cause.values.tolist() == [["合计", "", 0, 0.0, 0, 0]]
    assert summary_of("2025-11")["发现至首报发布，中位数（分钟）"] == "-"


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2026-03", datetime(2026, 3, 1, tzinfo=ZONE), datetime(2026, 4, 1, tzinfo=ZONE)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=ZONE), datetime(2027, 1, 1, tzinfo=ZONE)),
    ],
)
def test_month_window_is_the_calendar_month_in_county_time(month: str, start: datetime, end: datetime) -> None:
    assert month_window(month, ZONE) == (start, end)


@pytest.mark.parametrize("text", ["2026-13", "March", "2026-03-01", ""])
def test_a_bad_month_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a month"):
        month_window(text, ZONE)


def test_write_report_writes_a_workbook_with_the_title_and_csv_files(tmp_path: Path) -> None:
    written = write_report(season_report("2026-03"), tmp_path)
    assert [path.name for path in written] == [
        "monthly-2026-03.xlsx",
        "monthly-2026-03-summary.csv",
        "monthly-2026-03-by-township-cause.csv",
        "monthly-2026-03-fires.csv",
    ]
    workbook = load_workbook(tmp_path / "monthly-2026-03.xlsx")
    assert workbook.sheetnames == ["汇总", "按乡镇和起因", "火情明细"]
    sheet = workbook["按乡镇和起因"]
    assert sheet["A1"].value == "孟连县森林草原火灾统计月报表（2026年3月）"
    assert "Asia/Shanghai" in str(sheet["A2"].value)
    assert [cell.value for cell in sheet[4]] == [
        "乡镇",
        "起因",
        "火灾起数",
        "过火面积（公顷）",
        "出动人员（人次）",
        "出动车辆（台次）",
    ]
    assert [cell.value for cell in sheet[7]] == ["合计", None, 3, 6.0, 83, 8]
    assert workbook["汇总"]["B5"].value == 3  # 火灾起数
    csv = pd.read_csv(tmp_path / "monthly-2026-03-by-township-cause.csv", encoding="utf-8-sig")
    assert csv["火灾起数"].tolist() == [2, 1, 3]


def test_release_fact_sums_the_forces_of_a_fire_report() -> None:
    """The row builder (archive, tests) reads a fire report's body: forces summed into personnel and vehicles."""
    header = {"townships": ["manghe"], "occurred_at": at("2026-03-02T01:00"), "published_at": at("2026-03-02T01:02")}
    body = {
        "status": "suppressing",
        "discovered_at": at("2026-03-02T00:40"),
        "burned_area_ha": 1.5,
        "suspected_cause": "雷击",
        "forces": [{"unit": "专业队", "personnel": 25, "vehicles": 3}, {"unit": "半专业队", "personnel": 10}],
    }
    decision = {"decided_at": at("2026-03-02T01:05"), "reviewer": "hq-wang", "reviewer_kind": "human"}
    release = {
        "event_id": "e",
        "tier": "members",
        "event_type": "fire_report",
        "incident_id": "fire-x",
        "decision": decision,
        "released_at": at("2026-03-02T01:05"),
    }
    fact = release_fact(release, {"header": header, "body": body})
    assert (fact.personnel, fact.vehicles, fact.burned_area_ha, fact.suspected_cause) == (35, 3, 1.5, "雷击")
    assert fact.discovered_at == at("2026-03-02T00:40")
