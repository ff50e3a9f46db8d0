"""The statistics: plain functions from :class:`Facts` to pandas data frames; no Kafka, no database.

The facts' columns are deduplicated in polars and handed to pandas through Arrow; the statistics then work on
columns (group-bys, joins, quantiles), one row per deduplicated release or audit record.

Times are event time. Days are calendar days in the county's time zone (:attr:`Statistics.zone`). Durations are
in minutes (fire lifecycle) or seconds (review and delivery latency). Releases count once per ``(event_id, tier)``
and audit records once per ``audit_id``, so a replay or a re-delivery never counts twice; counts by type, township
and day are of distinct released events (an event released to two tiers is one event).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

import pandas as pd
import polars as pl

from consumers.analytics._facts import Facts

NO_TOWNSHIP = "(none)"
STAGES = ("verified", "contained", "extinguished")
"""Fire lifecycle milestones after the first report, in order."""

_SUMMARY_COLUMNS = ["count", "p50", "p90", "max"]


@dataclass(frozen=True)
class Statistics:
    """Every statistic, as data frames (one CSV file each, named after the field), and the zone of its days."""

    zone: ZoneInfo
    counts_by_type: pd.DataFrame
    counts_by_township: pd.DataFrame
    counts_by_day: pd.DataFrame
    lifecycle: pd.DataFrame
    lifecycle_summary: pd.DataFrame
    review_latency: pd.DataFrame
    review_latency_by_type: pd.DataFrame
    review_latency_by_reviewer_kind: pd.DataFrame
    delivery_latency_by_sink: pd.DataFrame
    rejections: pd.DataFrame

    def frames(self) -> dict[str, pd.DataFrame]:
        """Name → data frame, in declaration order."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name != "zone"}


def releases_frame(facts: Facts) -> pl.DataFrame:
    """One row per ``(event_id, tier)``: the first of any duplicates."""
    return facts.releases.unique(subset=["event_id", "tier"], keep="first", maintain_order=True)


def audits_frame(facts: Facts) -> pd.DataFrame:
    """One row per ``audit_id``."""
    return facts.audits.unique(subset=["audit_id"], keep="first", maintain_order=True).to_pandas()


def events_frame(releases: pl.DataFrame) -> pl.DataFrame:
    """One row per released event (its tiers collapsed)."""
    return releases.unique(subset=["event_id"], keep="first", maintain_order=True)


def _counted(frame: pl.DataFrame, by: str) -> pd.DataFrame:
    """Rows per ``by``, most first, then by ``by``."""
    counted = frame.group_by(by).agg(events=pl.len().cast(pl.Int64))
    return counted.sort(["events", by], descending=[True, False]).to_pandas()


def summary(values: pd.Series, *, decimals: int = 1) -> dict[str, float]:
    """Count, median, 90th percentile and maximum of ``values`` (NaN ignored)."""
    present = values.dropna().astype(float)
    if present.empty:
        return {"count": 0, "p50": float("nan"), "p90": float("nan"), "max": float("nan")}
    return {
        "count": int(present.size),
        "p50": round(float(present.quantile(0.5)), decimals),
        "p90": round(float(present.quantile(0.9)), decimals),
        "max": round(float(present.max()), decimals),
    }


def grouped_summary(frame: pd.DataFrame, by: str, value: str) -> pd.DataFrame:
    """:func:`summary` of ``value`` per ``by``, sorted by ``by``."""
    rows = [{by: key, **summary(group[value])} for key, group in frame.groupby(by, sort=True)]
    return pd.DataFrame(rows, columns=[by, *_SUMMARY_COLUMNS])


def counts_by_type(events: pl.DataFrame) -> pd.DataFrame:
    return _counted(events, "event_type")


def counts_by_township(events: pl.DataFrame) -> pd.DataFrame:
    """An event naming several townships counts in each; one naming none counts under ``(none)``."""
    townships = pl.col("townships")
    named = pl.when(townships.list.len() > 0).then(townships).otherwise(pl.lit([NO_TOWNSHIP]))
    return _counted(events.select(township=named).explode("township"), "township")


def counts_by_day(events: pl.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """Events per calendar day of their ``occurred_at`` in ``zone`` (the county's)."""
    if events.is_empty():
        return pd.DataFrame({"day": pd.Series(dtype=str), "events": pd.Series(dtype=int)})
    days = events.select(day=pl.col("occurred_at").dt.convert_time_zone(zone.key).dt.strftime("%Y-%m-%d"))
    return days.group_by("day").agg(events=pl.len().cast(pl.Int64)).sort("day").to_pandas()


def lifecycle(events: pl.DataFrame) -> pd.DataFrame:
    """Per fire incident: first report, first verified / contained / extinguished, and minutes to each."""
    columns = ["incident_id", "reported_at", *(f"{s}_at" for s in STAGES), *(f"to_{s}_min" for s in STAGES)]
    fires = events.filter((pl.col("event_type") == "fire_report") & pl.col("incident_id").is_not_null()).to_pandas()
    if fires.empty:
        return pd.DataFrame(columns=columns)
    occurred = pd.to_datetime(fires["occurred_at"], utc=True)
    fires = fires.assign(occurred=occurred)
    result = fires.groupby("incident_id")["occurred"].min().rename("reported_at").to_frame()
    for stage in STAGES:
        reached = fires[fires["fire_status"] == stage].groupby("incident_id")["occurred"].min()
        result[f"{stage}_at"] = reached.reindex(result.index)
    for stage in STAGES:
        elapsed = result[f"{stage}_at"] - result["reported_at"]
        result[f"to_{stage}_min"] = (elapsed.dt.total_seconds() / 60).round(1)
    return result.reset_index()[columns].sort_values("incident_id").reset_index(drop=True)


def lifecycle_summary(per_incident: pd.DataFrame) -> pd.DataFrame:
    """Minutes from first report to each milestone: incidents that reached it, p50, p90, max."""
    rows = [
        {"stage": f"report → {stage}", **summary(per_incident[f"to_{stage}_min"])}
        if not per_incident.empty
        else {"stage": f"report → {stage}", **summary(pd.Series(dtype=float))}
        for stage in STAGES
    ]
    return pd.DataFrame(rows, columns=["stage", *_SUMMARY_COLUMNS])


def review_latency(events: pl.DataFrame) -> pd.DataFrame:
    """Per released event: seconds from ``published_at`` to the decision's ``decided_at``."""
    columns = ["event_id", "event_type", "reviewer", "reviewer_kind", "latency_s"]
    if events.is_empty():
        return pd.DataFrame(columns=columns)
    elapsed = (pl.col("decided_at") - pl.col("published_at")).dt.total_microseconds() / 1e6
    frame = events.select(*columns[:-1], latency_s=elapsed.round(3))
    return frame.sort("event_id").to_pandas()


def delivery_latency_by_sink(releases: pl.DataFrame, audits: pd.DataFrame) -> pd.DataFrame:
    """Per sink: seconds from ``released_at`` to the sink's first ``delivered`` audit of that ``(event, tier)``."""
    delivered = audits[(audits["action"] == "delivered") & audits["sink"].notna()]
    if delivered.empty or releases.is_empty():
        return pd.DataFrame(columns=["sink", *_SUMMARY_COLUMNS])
    first = delivered.groupby(["event_id", "tier", "sink"], as_index=False)["at"].min()
    released = releases.select("event_id", "tier", "released_at").to_pandas()
    joined = first.merge(released, on=["event_id", "tier"], how="inner")
    elapsed = pd.to_datetime(joined["at"], utc=True) - pd.to_datetime(joined["released_at"], utc=True)
    return grouped_summary(joined.assign(latency_s=elapsed.dt.total_seconds()), "sink", "latency_s")


def rejections(audits: pd.DataFrame) -> pd.DataFrame:
    """Intake rejections (by reason code), quarantines and review rejections (by reason), most frequent first."""
    columns = ["action", "reason", "count"]
    intake = audits[audits["action"].isin(["rejected", "quarantined"])]
    review = audits[(audits["action"] == "decided") & (audits["verdict"] == "reject")]
    reasons = pd.concat(
        [
            intake.assign(reason=intake["reason"].fillna("").map(_reason_code)),
            review.assign(action="review_rejected", reason=review["reason"].fillna("")),
        ]
    )
    if reasons.empty:
        return pd.DataFrame(columns=columns)
    counted = reasons.groupby(["action", "reason"]).size().rename("count").reset_index()
    return counted.sort_values(["count", "action", "reason"], ascending=[False, True, True]).reset_index(drop=True)


def _reason_code(reason: str) -> str:
    """``"schema_invalid: header.severity ..."`` → ``"schema_invalid"``; other reasons stay whole."""
    code, separator, _rest = reason.partition(":")
    return code.strip() if separator and code.strip().isidentifier() else reason


def compute(facts: Facts, *, zone: ZoneInfo) -> Statistics:
    """Every statistic of ``facts`` (deduplicated here); days are calendar days in ``zone`` (the county's)."""
    releases = releases_frame(facts)
    audits = audits_frame(facts)
    events = events_frame(releases)
    per_incident = lifecycle(events)
    latency = review_latency(events)
    return Statistics(
        zone=zone,
        counts_by_type=counts_by_type(events),
        counts_by_township=counts_by_township(events),
        counts_by_day=counts_by_day(events, zone),
        lifecycle=per_incident,
        lifecycle_summary=lifecycle_summary(per_incident),
        review_latency=latency,
        review_latency_by_type=grouped_summary(latency, "event_type", "latency_s"),
        review_latency_by_reviewer_kind=grouped_summary(latency, "reviewer_kind", "latency_s"),
        delivery_latency_by_sink=delivery_latency_by_sink(releases, audits),
        rejections=rejections(audits),
    )
