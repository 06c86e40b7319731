"""ODPT (公共交通オープンデータ) JSON-LD: bus route patterns as stop/pattern sources.

An ``odpt:BusroutePattern`` lists its poles in ``odpt:busstopPoleOrder``; each pole's
``odpt:note`` reads ``停留所名:標柱番号:停留所名+のりば``. The reader returns the patterns
with their ordered stops (pole id and name) and the poles as a stop list without coordinates
(the companion BusstopPole file carries those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transforms.adapters import InputError
from transforms.timetable.stops import Stop, StopList


@dataclass
class PatternStop:
    stop_id: str
    name: str


@dataclass
class Pattern:
    pattern_id: str
    route: str
    title: str
    direction: str
    stops: list[PatternStop] = field(default_factory=list)


def read_odpt_patterns(data: bytes, name: str) -> tuple[list[Pattern], StopList]:
    """Return the route patterns and the poles they use. If the JSON is not ODPT patterns, raise InputError saying where."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"{name}:{where} not valid UTF-8 JSON ({exc})") from None
    if isinstance(doc, dict):
        doc = doc.get("@graph") or [doc]
    if not isinstance(doc, list):
        raise InputError(f"{name}: expected a JSON list of odpt:BusroutePattern objects")
    patterns: list[Pattern] = []
    poles = StopList(name)
    for i, obj in enumerate(doc):
        if not isinstance(obj, dict) or obj.get("@type") != "odpt:BusroutePattern":
            raise InputError(f"{name}: item {i}: @type is {obj.get('@type') if isinstance(obj, dict) else type(obj).__name__!r}, "
                             "expected odpt:BusroutePattern")
        pid = obj.get("owl:sameAs") or obj.get("@id")
        order = obj.get("odpt:busstopPoleOrder") or []
        if not pid or not isinstance(order, list):
            raise InputError(f"{name}: item {i}: a pattern needs owl:sameAs and a list odpt:busstopPoleOrder")
        pat = Pattern(str(pid), str(obj.get("odpt:busroute") or ""), str(obj.get("dc:title") or ""),
                      str(obj.get("odpt:direction") or ""))
        for j, pole in enumerate(sorted(order, key=lambda p: int(p.get("odpt:index", 0)))):
            sid = pole.get("odpt:busstopPole")
            if not sid:
                raise InputError(f"{name}: item {i} ({pid}): pole {j + 1} has no odpt:busstopPole")
            note = str(pole.get("odpt:note") or "")
            stop_name = note.split(":", 1)[0] if note else sid.rsplit(".", 3)[-3] if sid.count(".") >= 3 else sid
            pat.stops.append(PatternStop(sid, stop_name))
            if sid not in poles.stops:
                parts = note.split(":")
                poles.stops[sid] = Stop(sid, stop_name, code=parts[1] if len(parts) > 1 else "",
                                        platform=parts[2][len(stop_name):] if len(parts) > 2 and parts[2].startswith(stop_name) else "")
        patterns.append(pat)
    return patterns, poles
