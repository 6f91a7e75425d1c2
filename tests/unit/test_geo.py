"""Distance and ETA of a package (domain.geo), against independently computed values.

The reference distance is Vincenty's inverse formula on the WGS84 ellipsoid, written
out here: a different model and a different formula from the haversine under test,
so agreeing within 0.5 % says the haversine is right, not that it equals itself.
"""

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.geo import DEFAULT_SPEEDS_KMH, EARTH_RADIUS_KM, eta, haversine_km

SHANGHAI = (31.2304, 121.4737)
BEIJING = (39.9042, 116.4074)
HANGZHOU = (30.2741, 120.1551)
LONDON = (51.5007, -0.1246)
NEW_YORK = (40.6892, -74.0445)
SYDNEY = (-33.8688, 151.2093)
AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def vincenty_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance on the WGS84 ellipsoid (Vincenty 1975, inverse problem)."""
    a = 6378137.0
    f = 1 / 298.257223563
    b = (1 - f) * a
    big_l = math.radians(lon2 - lon1)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    su1, cu1, su2, cu2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    lam = big_l
    for _ in range(200):
        sl, cl = math.sin(lam), math.cos(lam)
        s_sig = math.hypot(cu2 * sl, cu1 * su2 - su1 * cu2 * cl)
        if s_sig == 0:
            return 0.0
        c_sig = su1 * su2 + cu1 * cu2 * cl
        sig = math.atan2(s_sig, c_sig)
        s_alpha = cu1 * cu2 * sl / s_sig
        c2_alpha = 1 - s_alpha**2
        c2_sm = c_sig - 2 * su1 * su2 / c2_alpha if c2_alpha else 0.0
        c = f / 16 * c2_alpha * (4 + f * (4 - 3 * c2_alpha))
        previous = lam
        lam = big_l + (1 - c) * f * s_alpha * (
            sig + c * s_sig * (c2_sm + c * c_sig * (-1 + 2 * c2_sm**2))
        )
        if abs(lam - previous) < 1e-12:
            break
    u_sq = c2_alpha * (a**2 - b**2) / b**2
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    d_sig = (
        big_b
        * s_sig
        * (
            c2_sm
            + big_b
            / 4
            * (
                c_sig * (-1 + 2 * c2_sm**2)
                - big_b / 6 * c2_sm * (-3 + 4 * s_sig**2) * (-3 + 4 * c2_sm**2)
            )
        )
    )
    return b * big_a * (sig - d_sig) / 1000


def test_the_reference_matches_published_geodesics() -> None:
    # Vincenty's own test line (Flinders Peak → Buninyong, GDA/GRS80 ≈ WGS84): 54 972.271 m.
    assert vincenty_km(-37.95103342, 144.42486789, -37.65282114, 143.92649554) == pytest.approx(
        54.972271, abs=0.001
    )
    # One degree of longitude on the equator of WGS84: 111 319.49 m.
    assert vincenty_km(0, 0, 0, 1) == pytest.approx(111.31949, abs=0.0001)


def test_shanghai_to_beijing_is_about_1067_km() -> None:
    distance = haversine_km(*SHANGHAI, *BEIJING)
    reference = vincenty_km(*SHANGHAI, *BEIJING)
    assert reference == pytest.approx(1065.85, abs=0.05)
    assert distance == pytest.approx(reference, rel=0.005)
    assert distance == pytest.approx(1067.3, abs=0.5)


@pytest.mark.parametrize(
    ("a", "b"),
    [(SHANGHAI, HANGZHOU), (LONDON, NEW_YORK), (SYDNEY, LONDON), ((0.0, 179.5), (0.0, -179.5))],
)
def test_haversine_is_within_half_a_percent_of_the_geodesic(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    assert haversine_km(*a, *b) == pytest.approx(vincenty_km(*a, *b), rel=0.005)
    assert haversine_km(*a, *b) == pytest.approx(haversine_km(*b, *a), rel=1e-12)


def test_exact_spherical_distances() -> None:
    # On the sphere of the mean radius: a degree of arc, a quarter meridian, antipodes.
    assert haversine_km(0, 0, 0, 1) == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360)
    assert haversine_km(0, 30, 90, 30) == pytest.approx(math.pi * EARTH_RADIUS_KM / 2)
    assert haversine_km(10, 20, -10, -160) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert haversine_km(*SHANGHAI, *SHANGHAI) == 0.0


def test_eta_is_located_at_plus_distance_over_the_method_speed() -> None:
    assert eta(120.0, "express", AT) == AT + timedelta(hours=2)  # 60 km/h
    assert eta(120.0, "standard", AT) == AT + timedelta(hours=3)  # 40 km/h
    assert eta(120.0, "economy", AT) == AT + timedelta(hours=6)  # 20 km/h
    assert eta(0.0, "express", AT) == AT
    # A package scanned in Shanghai bound for Beijing by express.
    distance = haversine_km(*SHANGHAI, *BEIJING)
    assert eta(distance, "express", AT) == AT + timedelta(hours=distance / 60.0)
    assert timedelta(hours=17.7) < eta(distance, "express", AT) - AT < timedelta(hours=17.9)


def test_unknown_method_falls_back_to_standard() -> None:
    assert eta(100.0, "carrier-pigeon", AT) == eta(100.0, "standard", AT)
    assert eta(100.0, "carrier-pigeon", AT) == AT + timedelta(
        hours=100.0 / DEFAULT_SPEEDS_KMH["standard"]
    )
    # Operator speeds (settings) win; without a 'standard' entry the built-in one applies.
    speeds = {"express": 100.0}
    assert eta(100.0, "express", AT, speeds) == AT + timedelta(hours=1)
    assert eta(100.0, "drone", AT, speeds) == AT + timedelta(hours=2.5)
    assert eta(100.0, "drone", AT, {"standard": 50.0}) == AT + timedelta(hours=2)
