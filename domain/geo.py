"""Distance and ETA of a package: haversine on coordinates, speed by method."""

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)

# km/h door to door, including sorting; operators override via settings.
DEFAULT_SPEEDS_KMH: dict[str, float] = {
    "express": 60.0,
    "standard": 40.0,
    "economy": 20.0,
    "same_day": 30.0,
}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def eta(
    distance_km: float,
    method: str,
    located_at: datetime,
    speeds: Mapping[str, float] = DEFAULT_SPEEDS_KMH,
) -> datetime:
    """When the package should arrive, travelling from its last known position."""
    speed = speeds.get(method) or speeds.get("standard") or DEFAULT_SPEEDS_KMH["standard"]
    return located_at + timedelta(hours=distance_km / speed)
