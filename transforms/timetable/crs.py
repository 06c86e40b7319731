"""Coordinate systems a stop list may use (light: imported by the spec loader, no pyproj here)."""

from __future__ import annotations

import re

#: JGD2011 plane rectangular coordinate systems (平面直角座標系) I..XIX are EPSG:6669..6687.
JGD2011_ZONE_EPSG = {zone: 6668 + zone for zone in range(1, 20)}


def crs_epsg(crs: str) -> int:
    """Return the EPSG code of 'EPSG:6680', 'jgd2011:12' or 'wgs84'. If unknown, raise ValueError."""
    s = str(crs).strip().lower()
    if s in ("wgs84", "epsg:4326", "4326"):
        return 4326
    m = re.fullmatch(r"jgd2011[:\- ]?(?:zone[:\- ]?)?(\d{1,2})", s)
    if m and int(m.group(1)) in JGD2011_ZONE_EPSG:
        return JGD2011_ZONE_EPSG[int(m.group(1))]
    m = re.fullmatch(r"(?:epsg:)?(\d{4,5})", s)
    if m:
        return int(m.group(1))
    raise ValueError(f"{crs!r} is not a coordinate system such as wgs84, jgd2011:12 or EPSG:6680")
