"""Auto-discovery (``gbfs.json``, GBFS 1.0 to 3.0) and what kind of GBFS file a captured snapshot is.

``gbfs.json`` lists the system's files: in 1.x and 2.x per language (``data.<lang>.feeds``), in 3.0
once (``data.feeds``). A snapshot folder written by any poller is read without a manifest: a file's
kind comes from its name or its folder's name (``station_status_1732559361.json``,
``station_status_2022-02-15_UTC/1644883221.json``, ``free_bike_status/…``), and failing that from its
contents (``data.stations`` with ``num_bikes_available`` is a station status, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime

#: The files Noriba reads into tables; other GBFS files (pricing, alerts, geofencing) are recognised and kept as received.
READ_KINDS = ("gbfs", "system_information", "station_information", "station_status", "free_bike_status",
              "vehicle_status", "vehicle_types")
OTHER_KINDS = ("gbfs_versions", "manifest", "system_hours", "system_alerts", "system_calendar", "system_regions",
               "system_pricing_plans", "geofencing_zones")
KINDS = READ_KINDS + OTHER_KINDS
#: Longest names first, so that gbfs_versions is not taken for gbfs.
_BY_LENGTH = sorted(KINDS, key=len, reverse=True)
#: The kinds polled live, in the order they are asked for (information before status).
POLLED = ("system_information", "vehicle_types", "station_information", "station_status", "free_bike_status", "vehicle_status")


@dataclass
class Discovery:
    version: str | None
    language: str | None
    ttl: int | None
    feeds: dict[str, str] = field(default_factory=dict)  # kind -> URL
    languages: list[str] = field(default_factory=list)


def parse_discovery(doc: object, *, language: str | None = None) -> Discovery:
    """Return the files a ``gbfs.json`` document lists. If it has no feed list, raise ValueError saying what is missing."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise ValueError("gbfs.json has no `data` object")
    data = doc["data"]
    version = doc.get("version") if isinstance(doc.get("version"), str) else None
    ttl = doc.get("ttl") if type(doc.get("ttl")) is int else None
    if isinstance(data.get("feeds"), list):  # 3.0
        langs, feeds = [], data["feeds"]
        chosen = None
    else:
        langs = [k for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("feeds"), list)]
        if not langs:
            raise ValueError("gbfs.json lists no feeds (neither data.feeds nor data.<language>.feeds)")
        if language is not None and language not in langs:
            raise ValueError(f"gbfs.json has no feeds in language {language!r}; it has: {', '.join(langs)}")
        chosen = language or langs[0]
        feeds = data[chosen]["feeds"]
    out: dict[str, str] = {}
    for f in feeds:
        if isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("url"), str):
            out.setdefault(f["name"], f["url"])
    return Discovery(version=version, language=chosen, ttl=ttl, feeds=out, languages=langs)


_KIND_PART = re.compile(r"(?:%s)(?=$|[_.-])" % "|".join(_BY_LENGTH))


@lru_cache(maxsize=4096)
def _kind_of_part(part: str) -> str | None:
    m = _KIND_PART.match(part[:-5] if part.lower().endswith(".json") else part)
    return m.group(0) if m else None


@lru_cache(maxsize=16384)  # asked several times per file of a batch (order, decode ahead, read)
def kind_from_name(relpath: str) -> str | None:
    """Return the GBFS kind a file's name or the name of a folder holding it says, nearest first; None if none does."""
    for part in reversed(relpath.replace("\\", "/").split("/")):
        if part and (kind := _kind_of_part(part)) is not None:
            return kind
    return None


def kind_from_content(doc: object) -> str | None:
    """Return the GBFS kind a parsed document looks like, from the keys of its ``data``; None if it looks like none."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return None
    data = doc["data"]
    if isinstance(data.get("feeds"), list) or any(isinstance(v, dict) and "feeds" in v for v in data.values()):
        return "gbfs"
    if isinstance(data.get("vehicle_types"), list):
        return "vehicle_types"
    if isinstance(data.get("bikes"), list):
        return "free_bike_status"
    if isinstance(data.get("vehicles"), list):
        return "vehicle_status"
    stations = data.get("stations")
    if isinstance(stations, list):
        first = next((s for s in stations if isinstance(s, dict)), {})
        if "num_bikes_available" in first or "num_vehicles_available" in first or "is_renting" in first:
            return "station_status"
        return "station_information"
    if "system_id" in data:
        return "system_information"
    return None


#: Largest whole number a lake column holds (int64); a bigger one in a file is read as missing, never a crash.
MAX_INT = 2**63 - 1


#: The POSIX seconds a calendar date can have (0001-01-01 to 9999-12-31 UTC): a time outside is not a time (milliseconds
#: given as seconds land there), and would break every date computed from it.
MIN_EPOCH, MAX_EPOCH = -62_135_596_800, 253_402_300_799


def epoch_of(value: object) -> int | None:
    """Return a GBFS time as POSIX seconds: an integer (1.x, 2.x) or RFC 3339 text with an offset (3.0). None if neither,
    or if it is not a date of the years 1 to 9999."""
    if type(value) is int:
        return value if MIN_EPOCH <= value <= MAX_EPOCH else None
    if type(value) is float and value.is_integer():
        return int(value) if MIN_EPOCH <= value <= MAX_EPOCH else None
    if isinstance(value, str) and len(value) <= 40:
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(t.timestamp()) if t.tzinfo is not None else None
    return None
