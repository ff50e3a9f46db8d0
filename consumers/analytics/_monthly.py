"""The monthly statistics report (统计月报表) to the level above: pure functions from :class:`Facts` to its tables,
and the tables out as one ``.xlsx`` workbook (the format government offices exchange) and CSV files.

A fire is a fire-report incident whose first report occurred in the month (county time); its later reports count
for it even when they fall in the next month. Per fire: the township of its first report; its cause, burned area
and status as its latest report that gives them says; its forces as the most any one report deployed (each report
lists the forces on the fire then, so a sum over reports would count the same crews again). Reporting timeliness
is of the first report: minutes from ``discovered_at`` to the report's publication, and from publication to its
first release (to any tier). A fire whose latest status is a false alarm is counted apart, not as a fire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from consumers.analytics._facts import Facts
from consumers.analytics._statistics import NO_TOWNSHIP, releases_frame
from firebus.errors import ConfigurationError
from firebus.labels import ZH_NAMES

UNKNOWN_CAUSE = "不明"
TOTAL = "合计"

FIRE_COLUMNS = [
    "火情编号",
    "乡镇",
    "起因",
    "状态",
    "发现时间",
    "首报发布时间",
    "首报放行时间",
    "发现至发布（分钟）",
    "发布至放行（分钟）",
    "过火面积（公顷）",
    "出动人员（人）",
    "出动车辆（台）",
]
BY_TOWNSHIP_COLUMNS = ["乡镇", "起因", "火灾起数", "过火面积（公顷）", "出动人员（人次）", "出动车辆（台次）"]
SUMMARY_COLUMNS = ["项目", "数值"]

SHEETS = (("汇总", "summary"), ("按乡镇和起因", "by_township_cause"), ("火情明细", "fires"))
"""The workbook's sheets, in order: sheet name → :class:`MonthlyReport` field (and CSV file suffix)."""


@dataclass(frozen=True)
class MonthlyReport:
    """One county's month: the tables, with zh-CN headings and local times, and what the title names."""

    county: str
    month: str
    zone: ZoneInfo
    summary: pd.DataFrame
    by_township_cause: pd.DataFrame
    fires: pd.DataFrame

    @property
    def title(self) -> str:
        year, month = self.month.split("-")
        return f"{self.county}森林草原火灾统计月报表（{year}年{int(month)}月）"

    @property
    def note(self) -> str:
        return f"时间为当地时间（{self.zone.key}）；统计当月首报的火情，误报不计入火灾起数"


def month_window(text: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``YYYY-MM`` → the month's first instant and the next month's, in ``zone`` (the county's)."""
    try:
        first = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ConfigurationError(f"{text!r} is not a month (YYYY-MM, e.g. 2026-03)") from None
    following = (
        first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
    )
    return first.replace(tzinfo=zone), following.replace(tzinfo=zone)


def fires_of(releases: pl.DataFrame) -> pd.DataFrame:
    """One row per fire-report incident of deduplicated releases (English columns, UTC instants): see the
    module's rules."""
    reports = releases.filter((pl.col("event_type") == "fire_report") & pl.col("incident_id").is_not_null())
    # One row per report: its first release to any tier.
    events = (
        reports.group_by("event_id", maintain_order=True)
        .agg(pl.all().first(), first_released_at=pl.col("released_at").min())
        .sort(["incident_id", "occurred_at", "published_at", "event_id"])
    )
    columns = [
        "incident_id",
        "township",
        "cause",
        "status",
        "discovered_at",
        "published_at",
        "released_at",
        "burned_area_ha",
        "personnel",
        "vehicles",
        "reported_at",
    ]
    if events.is_empty():
        return pd.DataFrame(columns=columns)
    fires = events.group_by("incident_id", maintain_order=True).agg(
        township=pl.col("townships").first().list.first().fill_null(NO_TOWNSHIP),
        cause=pl.col("suspected_cause").str.strip_chars().replace("", None).drop_nulls().last(),
        status=pl.col("fire_status").last(),
        discovered_at=pl.col("discovered_at").first(),
        published_at=pl.col("published_at").first(),
        released_at=pl.col("first_released_at").first(),
        burned_area_ha=pl.col("burned_area_ha").drop_nulls().last(),
        personnel=pl.col("personnel").max(),
        vehicles=pl.col("vehicles").max(),
        reported_at=pl.col("occurred_at").first(),
    )
    return fires.select(columns).sort("incident_id").to_pandas()


def monthly_report(
    releases: pl.DataFrame,
    *,
    county: str,
    month: str,
    zone: ZoneInfo,
    townships: Mapping[str, str] | None = None,
) -> MonthlyReport:
    """The report of ``month`` (``YYYY-MM``) from fact releases (:attr:`Facts.releases`, duplicates allowed) that
    include at least every report from the month's start on; ``townships`` maps ids to names for the tables."""
    start, end = month_window(month, zone)
    names = dict(townships or {})
    every = fires_of(releases_frame(Facts(releases=releases)))
    reported = pd.to_datetime(every["reported_at"], utc=True)
    in_month = every[(reported >= start) & (reported < end)]
    false_alarms = in_month[in_month["status"] == "false_alarm"]
    fires = in_month[in_month["status"] != "false_alarm"].copy()
    fires["township"] = fires["township"].map(lambda township: names.get(township, township))
    fires["cause"] = fires["cause"].fillna(UNKNOWN_CAUSE)
    fires["to_publish_min"] = _minutes(fires["published_at"], fires["discovered_at"])
    fires["to_release_min"] = _minutes(fires["released_at"], fires["published_at"])
    return MonthlyReport(
        county=county,
        month=month,
        zone=zone,
        summary=_summary(fires, len(false_alarms)),
        by_township_cause=_by_township_cause(fires),
        fires=_fire_table(fires, zone),
    )


def _minutes(later: pd.Series, earlier: pd.Series) -> pd.Series:
    elapsed = pd.to_datetime(later, utc=True) - pd.to_datetime(earlier, utc=True)
    return (elapsed.dt.total_seconds() / 60).round(1)


def _local(instants: pd.Series, zone: ZoneInfo) -> pd.Series:
    local = pd.to_datetime(instants, utc=True).dt.tz_convert(zone.key)
    return local.dt.strftime("%Y-%m-%d %H:%M").where(local.notna(), "")


def _fire_table(fires: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "火情编号": fires["incident_id"],
            "乡镇": fires["township"],
            "起因": fires["cause"],
            "状态": fires["status"].map(lambda status: ZH_NAMES.get(status, status)),
            "发现时间": _local(fires["discovered_at"], zone),
            "首报发布时间": _local(fires["published_at"], zone),
            "首报放行时间": _local(fires["released_at"], zone),
            "发现至发布（分钟）": fires["to_publish_min"],
            "发布至放行（分钟）": fires["to_release_min"],
            "过火面积（公顷）": fires["burned_area_ha"].astype(float).round(2),
            "出动人员（人）": fires["personnel"].fillna(0).astype(int),
            "出动车辆（台）": fires["vehicles"].fillna(0).astype(int),
        },
        columns=FIRE_COLUMNS,
    )
    return table.sort_values(["首报发布时间", "火情编号"]).reset_index(drop=True)


def _by_township_cause(fires: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "乡镇": township,
            "起因": cause,
            "火灾起数": len(group),
            "过火面积（公顷）": round(float(group["burned_area_ha"].fillna(0).sum()), 2),
            "出动人员（人次）": int(group["personnel"].fillna(0).sum()),
            "出动车辆（台次）": int(group["vehicles"].fillna(0).sum()),
        }
        for (township, cause), group in fires.groupby(["township", "cause"], sort=True)
    ]
    table = pd.DataFrame(rows, columns=BY_TOWNSHIP_COLUMNS)
    total = {
        "乡镇": TOTAL,
        "起因": "",
        "火灾起数": int(table["火灾起数"].sum()),
        "过火面积（公顷）": round(float(table["过火面积（公顷）"].sum()), 2),
        "出动人员（人次）": int(table["出动人员（人次）"].sum()),
        "出动车辆（台次）": int(table["出动车辆（台次）"].sum()),
    }
    return pd.concat([table, pd.DataFrame([total], columns=BY_TOWNSHIP_COLUMNS)], ignore_index=True)


def _summary(fires: pd.DataFrame, false_alarms: int) -> pd.DataFrame:
    def median(values: pd.Series) -> float | str:
        present = values.dropna()
        return round(float(present.median()), 1) if not present.empty else "-"

    def longest(values: pd.Series) -> float | str:
        present = values.dropna()
        return round(float(present.max()), 1) if not present.empty else "-"

    rows: list[tuple[str, object]] = [
        ("火灾起数", len(fires)),
        ("误报起数", false_alarms),
        ("过火面积（公顷）", round(float(fires["burned_area_ha"].fillna(0).sum()), 2)),
        ("出动人员（人次）", int(fires["personnel"].fillna(0).sum())),
        ("出动车辆（台次）", int(fires["vehicles"].fillna(0).sum())),
        ("发现至首报发布，中位数（分钟）", median(fires["to_publish_min"])),
        ("发现至首报发布，最长（分钟）", longest(fires["to_publish_min"])),
        ("首报发布至放行，中位数（分钟）", median(fires["to_release_min"])),
        ("首报发布至放行，最长（分钟）", longest(fires["to_release_min"])),
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def report_stem(report: MonthlyReport) -> str:
    return f"monthly-{report.month}"


def write_report(report: MonthlyReport, directory: Path) -> list[Path]:
    """``monthly-YYYY-MM.xlsx`` (one sheet per table, the title and the time zone above each) and one
    ``monthly-YYYY-MM-<table>.csv`` per table (UTF-8 with BOM, which spreadsheet programs read as UTF-8); returns
    the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    written = []
    for sheet_name, field in SHEETS:
        frame: pd.DataFrame = getattr(report, field)
        sheet = workbook.create_sheet(sheet_name)
        sheet.append([report.title])
        sheet.append([report.note])
        sheet.append([])
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append([_cell(value) for value in row])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(len(frame.columns), 1))
        sheet["A1"].font = Font(bold=True, size=14)
        sheet["A1"].alignment = Alignment(horizontal="center")
        for cell in sheet[4]:
            cell.font = Font(bold=True)
        for index, heading in enumerate(frame.columns, start=1):
            width = max([len(str(heading)), *(len(str(value)) for value in frame.iloc[:, index - 1])])
            sheet.column_dimensions[sheet.cell(row=4, column=index).column_letter].width = 2 * width + 2
        path = directory / f"{report_stem(report)}-{field.replace('_', '-')}.csv"
        frame.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    workbook_path = directory / f"{report_stem(report)}.xlsx"
    workbook.save(workbook_path)
    return [workbook_path, *written]


def _cell(value: object) -> object:
    """A value as openpyxl stores it: numpy scalars as Python numbers, NaN as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value
