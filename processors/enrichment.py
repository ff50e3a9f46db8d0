"""Nearest resources of each kind around a fire: pure distance logic, no Kafka.

A released fire report carries, for every resource kind (water point, watchtower, professional team …), the single
nearest usable resource with its distance. Distances are great-circle (haversine) on the WGS-84 mean sphere, which
is well within a percent of the ellipsoid at county scale. Resources are points: one without lat/lon (an area or a
road known only by ``geometry_wkt``) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

from firebus.events import Event, FireReport, Resource, ResourceKind, ResourceStatus
from firebus.records import NearbyResource

EARTH_MEAN_RADIUS_KM = 6371.0088
"""WGS-84 mean radius (IUGG R1)."""

USABLE_STATUSES: tuple[ResourceStatus, ...] = (ResourceStatus.AVAILABLE, ResourceStatus.IN_USE)
"""Statuses of a resource worth pointing firefighters to; unavailable and retired ones are left out."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two WGS-84 points given in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def nearest_by_kind(
    lat: float,
    lon: float,
    resources: Iterable[Resource],
    *,
    kinds: Collection[ResourceKind] | None = None,
    usable: Collection[ResourceStatus] = USABLE_STATUSES,
) -> list[NearbyResource]:
    """For each resource kind, the nearest resource with coordinates and a usable status, nearest first.

    ``kinds`` limits the kinds looked at (None: all). ``resources`` should be the current state, one entry per
    resource id. Ties are broken by resource id, so the answer does not depend on the order of ``resources``.
    Distances are rounded to 0.01 km; the order follows the unrounded distances.
    """
    _check_point(lat, lon)
    wanted = frozenset(ResourceKind) if kinds is None else frozenset(kinds)
    allowed = frozenset(usable)
    best: dict[ResourceKind, tuple[float, str, Resource]] = {}
    for resource in resources:
        if resource.lat is None or resource.lon is None:
            continue
        if resource.resource_kind not in wanted or resource.status not in allowed:
            continue
        candidate = (haversine_km(lat, lon, resource.lat, resource.lon), resource.resource_id, resource)
        current = best.get(resource.resource_kind)
        if current is None or candidate[:2] < current[:2]:
            best[resource.resource_kind] = candidate
    ranked = sorted(best.values(), key=lambda entry: (entry[0], entry[2].resource_kind.value, entry[1]))
    return [_nearby(resource, distance) for distance, _, resource in ranked]


def enrich_fire_report(event: Event[Any], resources: Iterable[Resource]) -> list[NearbyResource]:
    """The nearest usable resource of each kind around a fire report's place; empty for other types or no lat/lon."""
    body = event.body
    if not isinstance(body, FireReport) or body.place.lat is None or body.place.lon is None:
        return []
    return nearest_by_kind(body.place.lat, body.place.lon, resources)


def _nearby(resource: Resource, distance_km: float) -> NearbyResource:
    return NearbyResource(
        resource_id=resource.resource_id,
        resource_kind=resource.resource_kind,
        name=resource.name,
        township=resource.township,
        status=resource.status,
        distance_km=round(distance_km, 2),
        lat=resource.lat,
        lon=resource.lon,
        contact_phone=resource.contact_phone,
    )


def _check_point(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"not a WGS-84 point: lat={lat!r}, lon={lon!r}")
