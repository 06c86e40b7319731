"""Tiny authored timetable inputs for the timetable tests (fictional stops and times)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from transforms.timetable.config import MANIFEST, with_defaults

STOPS_CSV = (
    "id,name,lat,lon,kana\n"
    "S1,みなと駅,43.3000,141.4000,みなとえき\n"
    "S2,市役所前,43.3031,141.4039,しやくしょまえ\n"
    "S3,港前,43.2964,141.3956,みなとまえ\n"
    "S4,北浜海岸,43.2802,141.3740,きたはまかいがん\n"
)

#: stops down column A (from row 4), trips across columns from C; row 2 = trip number, row 3 = notes
WEEKDAY_CSV = (
    "時刻表,,,\n"
    "便,,1,2\n"
    "備考,,,\n"
    "みなと駅,発,6:40,8:05\n"
    "市役所,発,6:44,8:09\n"
    "港前,発,6:48,レ\n"
    "北浜海岸,着,6:55,8:20\n"
)

CONFIG = {
    "agency": {"id": "A1", "name": "みなと交通", "url": "https://example.jp"},
    "workbooks": [{"file": "平日.csv", "service": "weekday"}],
    "layout": {"trips": "columns", "stop_column": "A", "arrival_departure_column": "B", "first_stop_row": 4,
               "first_trip_column": "C", "number_row": 2, "notes_row": 3},
    "route": {"id": "R1", "long_name": "港線"},
    "stops": {"file": "stops.csv", "format": "csv", "columns": {"id": "id", "name": "name", "lat": "lat", "lon": "lon",
                                                               "kana": "kana"}},
    "calendar": {"start": "2026-04-01", "end": "2027-03-31",
                 "services": {"weekday": {"days": ["mon", "tue", "wed", "thu", "fri"], "holidays": "skip"}}},
}


def config(**changes) -> dict:
    """Return a copy of CONFIG with top-level keys replaced."""
    cfg = copy.deepcopy(CONFIG)
    cfg.update(changes)
    return cfg


def write_input(folder: Path, files: dict[str, str | bytes], cfg: dict | None = None) -> Path:
    """Return ``folder`` holding the files and the timetable section as the fetch step archives it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    (folder / MANIFEST).write_text(json.dumps(with_defaults(cfg or CONFIG), ensure_ascii=False), encoding="utf-8")
    return folder


def table(feed, name: str) -> list[dict]:
    """Return the rows of one text table of a TextFeed as dicts."""
    f = feed.files[name].csv
    cols = f.table.to_pydict()
    return [{h: cols[f"c{i}"][k] for i, h in enumerate(f.header)} for k in range(f.table.num_rows)]
