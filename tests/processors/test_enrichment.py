"""Fire-report enrichment: haversine distances against known values, and the nearest usable resource of each kind.

Resources are :class:`~firebus.events.Resource` bodies around a fire in 蟒河镇; events have a fixed header.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firebus.events import (
    Audience,
    Classification,
    Event,
    EventBody,
    FirePlace,
    FireReport,
    FireStatus,
    Header,
    MessageKind,
    Publisher,
    Resource,
    ResourceKind,
    ResourceStatus,
    Severity,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from firebus.records import NearbyResource
from processors.enrichment import EARTH_MEAN_RADIUS_KM, enrich_fire_report, haversine_km, nearest_by_kind

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
FIRE = (35.25, 112.38)
"""A fire near 押水村, 蟒河镇."""

DEGREE_KM = math.pi * EARTH_MEAN_RADIUS_KM / 180
"""One degree of a great circle: ≈ 111.195 km."""


def resource(
    resource_id: str,
    kind: ResourceKind,
    lat: float | None,
    lon: float | None,
    *,
    status: ResourceStatus = ResourceStatus.AVAILABLE,
    phone: str | None = None,
) -> Resource:
    """A resource body in 蟒河镇 with the given kind, position and status."""
    return Resource(
        resource_id=resource_id,
        resource_kind=kind,
        name=f"资源 {resource_id}",
        township="manghe",
        lat=lat,
        lon=lon,
        status=status,
        contact_phone=phone,
    )


def event_of(body: EventBody) -> Event[Any]:
    """An event carrying ``body`` with a fixed header."""
    header = Header(
        event_id=UUID("00000000-0000-4000-8000-000000000002"),
        event_type=body.event_type,
        schema_version=1,
        kind=MessageKind.ALERT,
        publisher=Publisher(unit="forestry", person="张三"),
        classification=Classification.INTERNAL,
        audience=Audience.MEMBERS,
        severity=Severity.MODERATE,
        urgency=Urgency.IMMEDIATE,
        occurred_at=NOW,
        published_at=NOW,
        trace_id="trace-enrichment-test",
    )
    return Event[Any](header=header, body=body)


def fire_report(lat: float | None, lon: float | None) -> Event[Any]:
    """A fire report event at the given place."""
    place = FirePlace(township="manghe", village="押水村", lat=lat, lon=lon)
    return event_of(FireReport(place=place, discovered_at=NOW, status=FireStatus.REPORTED))


RESOURCES = [
    resource("wp-far", ResourceKind.WATER_POINT, 35.30, 112.38),
    resource("wp-near", ResourceKind.WATER_POINT, 35.26, 112.38, phone="13800002222"),
    resource("wp-closed", ResourceKind.WATER_POINT, 35.2501, 112.38, status=ResourceStatus.UNAVAILABLE),
    resource("wp-retired", ResourceKind.WATER_POINT, 35.2502, 112.38, status=ResourceStatus.RETIRED),
    resource("wt-1", ResourceKind.WATCHTOWER, 35.25, 112.45),
    resource("team-busy", ResourceKind.PROFESSIONAL_TEAM, 35.20, 112.38, status=ResourceStatus.IN_USE),
    resource("road-1", ResourceKind.FOREST_ROAD, None, None),
    resource("depot-nolon", ResourceKind.MATERIAL_DEPOT, 35.2501, None),
    resource("depot-1", ResourceKind.MATERIAL_DEPOT, 35.35, 112.48),
]


# --- haversine -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat1", "lon1", "lat2", "lon2"),
    [
        (0.0, 0.0, 1.0, 0.0),
        (35.0, 112.0, 36.0, 112.0),
        (-45.5, -70.0, -44.5, -70.0),
        (89.0, 10.0, 90.0, 10.0),
        (0.0, 0.0, 0.0, 1.0),
        (0.0, 179.5, 0.0, -179.5),
    ],
)
def test_one_degree_along_a_great_circle(lat1: float, lon1: float, lat2: float, lon2: float):
    """One degree of latitude anywhere (or of longitude on the equator, across the antimeridian too) is ≈ 111.19 km."""
    assert haversine_km(lat1, lon1, lat2, lon2) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(lat1, lon1, lat2, lon2) == pytest.approx(DEGREE_KM, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((39.9042, 116.4074), (31.2304, 121.4737), 1067.0),  # Beijing – Shanghai
        ((51.5074, -0.1278), (40.7128, -74.0060), 5570.0),  # London – New York
        ((48.8566, 2.3522), (51.5074, -0.1278), 344.0),  # Paris – London
    ],
)
def test_known_distances(a: tuple[float, float], b: tuple[float, float], km: float):
    """Known city-to-city distances are reproduced within 1%."""
    assert haversine_km(*a, *b) == pytest.approx(km, rel=0.01)


def test_antipodes_are_half_a_circumference_apart():
    """Two antipodal points are π·R apart, the largest possible distance."""
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_MEAN_RADIUS_KM)
    assert haversine_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_MEAN_RADIUS_KM)


latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)


@given(latitudes, longitudes, latitudes, longitudes)
def test_haversine_is_symmetric_and_bounded(lat1: float, lon1: float, lat2: float, lon2: float):
    """The distance from A to B equals the distance from B to A and lies between 0 and π·R."""
    there = haversine_km(lat1, lon1, lat2, lon2)
    back = haversine_km(lat2, lon2, lat1, lon1)
    assert there == pytest.approx(back, abs=1e-9)
    assert 0.0 <= there <= math.pi * EARTH_MEAN_RADIUS_KM + 1e-9


@given(latitudes, longitudes)
def test_haversine_zero_distance(lat: float, lon: float):
    """A point is zero kilometres from itself."""
    assert haversine_km(lat, lon, lat, lon) == 0.0


# --- nearest_by_kind -------------------------------------------------------------------------------------------


def test_nearest_usable_resource_of_each_kind():
    """Each kind gets its single nearest usable located resource, nearest first."""
    nearby = nearest_by_kind(*FIRE, RESOURCES)
    assert [n.resource_id for n in nearby] == ["wp-near", "team-busy", "wt-1", "depot-1"]
    assert [n.distance_km for n in nearby] == sorted(n.distance_km for n in nearby)
    assert len({n.resource_kind for n in nearby}) == len(nearby)


def test_nearby_resource_fields_are_copied_and_rounded():
    """A NearbyResource copies the resource's identity, position and phone, with the distance rounded to 0.01 km."""
    nearest = nearest_by_kind(*FIRE, RESOURCES, kinds=[ResourceKind.WATER_POINT])
    expected_km = round(haversine_km(*FIRE, 35.26, 112.38), 2)
    assert nearest == [
        NearbyResource(
            resource_id="wp-near",
            resource_kind=ResourceKind.WATER_POINT,
            name="资源 wp-near",
            township="manghe",
            status=ResourceStatus.AVAILABLE,
            distance_km=expected_km,
            lat=35.26,
            lon=112.38,
            contact_phone="13800002222",
        )
    ]
    assert expected_km == pytest.approx(1.11, abs=0.01)


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (ResourceStatus.AVAILABLE, True),
        (ResourceStatus.IN_USE, True),
        (ResourceStatus.UNAVAILABLE, False),
        (ResourceStatus.RETIRED, False),
    ],
)
def test_default_usable_statuses(status: ResourceStatus, kept: bool):
    """By default only available and in-use resources are offered."""
    nearby = nearest_by_kind(*FIRE, [resource("r", ResourceKind.CHECKPOINT, 35.26, 112.38, status=status)])
    assert [n.resource_id for n in nearby] == (["r"] if kept else [])


def test_usable_statuses_can_be_widened():
    """Passing usable statuses explicitly lets an unavailable resource count as nearest."""
    nearby = nearest_by_kind(
        *FIRE,
        RESOURCES,
        kinds={ResourceKind.WATER_POINT},
        usable={ResourceStatus.AVAILABLE, ResourceStatus.UNAVAILABLE},
    )
    assert [n.resource_id for n in nearby] == ["wp-closed"]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(None, None), (35.26, None), (None, 112.38)],
)
def test_resources_without_coordinates_are_skipped(lat: float | None, lon: float | None):
    """A resource lacking latitude or longitude is never offered."""
    assert nearest_by_kind(*FIRE, [resource("r", ResourceKind.WATCHTOWER, lat, lon)]) == []


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ([ResourceKind.WATCHTOWER], ["wt-1"]),
        ([ResourceKind.MATERIAL_DEPOT, ResourceKind.WATER_POINT], ["wp-near", "depot-1"]),
        ([ResourceKind.RESCUE_FORCE], []),
        ([], []),
        (None, ["wp-near", "team-busy", "wt-1", "depot-1"]),
    ],
)
def test_kinds_filter(kinds: list[ResourceKind] | None, expected: list[str]):
    """Only the requested kinds are looked at; None means every kind."""
    assert [n.resource_id for n in nearest_by_kind(*FIRE, RESOURCES, kinds=kinds)] == expected


def test_empty_resources():
    """No resources means nothing nearby."""
    assert nearest_by_kind(*FIRE, []) == []


def test_ties_are_broken_by_resource_id_whatever_the_order():
    """Two equally near resources of a kind yield the smaller resource id, in either input order."""
    twins = [
        resource("b-tower", ResourceKind.WATCHTOWER, 35.26, 112.38),
        resource("a-tower", ResourceKind.WATCHTOWER, 35.26, 112.38),
    ]
    assert [n.resource_id for n in nearest_by_kind(*FIRE, twins)] == ["a-tower"]
    assert [n.resource_id for n in nearest_by_kind(*FIRE, twins[::-1])] == ["a-tower"]


def test_accepts_a_generator():
    """Resources may be any iterable, consumed once."""
    assert [n.resource_id for n in nearest_by_kind(*FIRE, (r for r in RESOURCES), kinds=[ResourceKind.WATCHTOWER])] == [
        "wt-1"
    ]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 112.0), (-90.5, 0.0), (35.0, 180.5), (35.0, -181.0), (math.nan, 112.0), (35.0, math.inf)],
)
def test_invalid_fire_point_is_refused(lat: float, lon: float):
    """A point outside WGS-84 ranges or not finite raises ValueError."""
    with pytest.raises(ValueError, match="not a WGS-84 point"):
        nearest_by_kind(lat, lon, RESOURCES)


def test_fast_for_a_thousand_resources():
    """A thousand resources across every kind are ranked well within a second."""
    kinds = list(ResourceKind)
    many = [
        resource(f"r{i:04d}", kinds[i % len(kinds)], 35.0 + (i % 97) * 0.005, 112.0 + (i % 89) * 0.006)
        for i in range(1000)
    ]
    started = time.perf_counter()
    nearby = nearest_by_kind(*FIRE, many)
    assert time.perf_counter() - started < 1.0
    assert len(nearby) == len(kinds)


resource_kinds = st.sampled_from(list(ResourceKind))
resource_statuses = st.sampled_from(list(ResourceStatus))
county_lats = st.one_of(st.none(), st.floats(min_value=35.0, max_value=35.6, allow_nan=False))
county_lons = st.one_of(st.none(), st.floats(min_value=112.0, max_value=112.7, allow_nan=False))
resource_lists = st.lists(
    st.builds(
        resource,
        resource_id=st.text(alphabet="abcdef0123", min_size=1, max_size=6),
        kind=resource_kinds,
        lat=county_lats,
        lon=county_lons,
        status=resource_statuses,
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(
    lat=st.floats(min_value=35.0, max_value=35.6, allow_nan=False),
    lon=st.floats(min_value=112.0, max_value=112.7, allow_nan=False),
    resources=resource_lists,
)
def test_nearest_by_kind_properties(lat: float, lon: float, resources: list[Resource]):
    """At most one resource per kind, every kind with a usable located resource present, none of that kind closer."""
    nearby = nearest_by_kind(lat, lon, resources)
    kinds = [n.resource_kind for n in nearby]
    assert len(kinds) == len(set(kinds))
    candidates = [
        r
        for r in resources
        if r.lat is not None and r.lon is not None and r.status in (ResourceStatus.AVAILABLE, ResourceStatus.IN_USE)
    ]
    assert set(kinds) == {r.resource_kind for r in candidates}
    for chosen in nearby:
        assert chosen.lat is not None
        assert chosen.lon is not None
        chosen_km = haversine_km(lat, lon, chosen.lat, chosen.lon)
        assert chosen.distance_km == round(chosen_km, 2)
        for other in candidates:
            if other.resource_kind is chosen.resource_kind and other.lat is not None and other.lon is not None:
                assert haversine_km(lat, lon, other.lat, other.lon) >= chosen_km
    assert [n.distance_km for n in nearby] == sorted(n.distance_km for n in nearby)


# --- enrich_fire_report ----------------------------------------------------------------------------------------


def test_enrich_fire_report_with_coordinates():
    """A fire report with lat/lon gets the nearest usable resource of each kind around its place."""
    assert enrich_fire_report(fire_report(*FIRE), RESOURCES) == nearest_by_kind(*FIRE, RESOURCES)
    assert enrich_fire_report(fire_report(*FIRE), RESOURCES) != []


@pytest.mark.parametrize(("lat", "lon"), [(None, None), (35.25, None), (None, 112.38)])
def test_enrich_fire_report_without_coordinates(lat: float | None, lon: float | None):
    """A fire report without both lat and lon gets nothing."""
    assert enrich_fire_report(fire_report(lat, lon), RESOURCES) == []


@pytest.mark.parametrize(
    "body",
    [
        resource("wp-near", ResourceKind.WATER_POINT, 35.26, 112.38),
        WorkUpdate(category=WorkCategory.INSPECTION, title="检查", text="检查了卡口"),
    ],
)
def test_enrich_other_event_types(body: EventBody):
    """Events other than fire reports are never enriched, even when their body has coordinates."""
    assert enrich_fire_report(event_of(body), RESOURCES) == []
