"""Stop lists (GTFS stops.txt, CSV/XLSX in any encoding, national P11 data) and stop name matching.

Names are compared after :func:`normalise_name`: NFKC (full/half width letters, digits and
kana), katakana read as hiragana, spaces and the middle dot removed, ケ/ヶ/が variants unified,
and the suffixes 前 / 駅 / 駅前 / 停留所 tried off as a second chance. A name that still
matches nothing is never guessed: :meth:`StopMatcher.match` returns the closest candidates
so the notice can name them.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field

import jaconv

from transforms.adapters import InputError
from transforms.encoding import decode
from transforms.timetable.crs import JGD2011_ZONE_EPSG, crs_epsg  # noqa: F401 (re-exported)

_SPACES = re.compile(r"[\s\u3000・･]+")
_SUFFIXES = ("停留所", "駅前", "前", "駅", "停")


def normalise_name(name: str) -> str:
    """Return a stop name reduced for comparison: width, kana, spaces and ケ/ヶ variants unified."""
    s = unicodedata.normalize("NFKC", str(name or "")).strip()
    s = _SPACES.sub("", s)
    s = s.replace("ヶ", "ケ").replace("ヵ", "カ").replace("丿", "ノ")
    s = jaconv.kata2hira(s)
    s = s.replace("ゖ", "け").replace("ゕ", "か")
    s = re.sub(r"[（(][^）)]*[）)]$", "", s)  # trailing (note)
    return s.lower()


def stem_name(name: str) -> str:
    """Return the normalised name without a trailing 前/駅/駅前/停留所 (second-chance match)."""
    s = normalise_name(name)
    for suf in _SUFFIXES:
        if s.endswith(suf) and len(s) > len(suf):
            return s[: -len(suf)]
    return s


@dataclass
class Stop:
    stop_id: str
    name: str
    lat: float | None = None
    lon: float | None = None
    parent: str = ""
    location_type: str = ""
    zone_id: str = ""
    code: str = ""
    desc: str = ""
    platform: str = ""
    kana: str = ""
    english: str = ""
    line: int | None = None  # line (or row) in the stop list it came from


@dataclass
class StopList:
    file: str
    stops: dict[str, Stop] = field(default_factory=dict)

    def children(self, parent_id: str) -> list[Stop]:
        return [s for s in self.stops.values() if s.parent == parent_id]


@dataclass
class Match:
    stop: Stop | None
    how: str  # exact | normalised | stem | ambiguous | none
    candidates: list[str] = field(default_factory=list)  # "name (id)" of the closest stops when not matched


class StopMatcher:
    """Match timetable stop names to a stop list, by normalised name; never guesses."""

    def __init__(self, stops: StopList):
        self.stops = stops
        self._by_norm: dict[str, list[Stop]] = {}
        self._by_stem: dict[str, list[Stop]] = {}
        for s in stops.stops.values():
            if s.location_type not in ("", "0", "1"):
                continue
            self._by_norm.setdefault(normalise_name(s.name), []).append(s)
            self._by_stem.setdefault(stem_name(s.name), []).append(s)

    @staticmethod
    def _collapse(found: list[Stop]) -> list[Stop]:
        """Return the stops with a station and its own platforms collapsed into the station."""
        parents = {s.stop_id for s in found if s.location_type == "1"}
        kept = [s for s in found if s.parent not in parents]
        return kept

    def match(self, name: str) -> Match:
        """Return the stop named ``name``. If none or several fit, then stop is None and candidates are given."""
        for how, index, key in (("normalised", self._by_norm, normalise_name(name)),
                                ("stem", self._by_stem, stem_name(name))):
            found = self._collapse(index.get(key, []))
            if len(found) == 1:
                return Match(found[0], "exact" if found[0].name == name else how)
            if len(found) > 1:
                return Match(None, "ambiguous", [f"{s.name} ({s.stop_id})" for s in found[:5]])
        return Match(None, "none", self.candidates(name))

    def candidates(self, name: str, n: int = 3) -> list[str]:
        """Return the ``n`` closest stop names as 'name (id)'."""
        key = normalise_name(name)
        names = list(self._by_norm)
        close = difflib.get_close_matches(key, names, n=n, cutoff=0.0) if names else []
        out = []
        for k in close:
            s = self._by_norm[k][0]
            out.append(f"{s.name} ({s.stop_id})")
        return out


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------

def _rows(data: bytes, name: str, encoding: str | None) -> tuple[list[str], list[tuple[int, list[str]]], list]:
    dec = decode(data, file=name, override=encoding)
    text = dec.data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    prev = 0
    for cells in reader:
        line = prev + 1
        prev = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if not header:
            header = [c.strip() for c in cells]
            continue
        rows.append((line, cells))
    return header, rows, dec.notices


def _float(text: str) -> float | None:
    try:
        return float(unicodedata.normalize("NFKC", str(text)).strip())
    except (TypeError, ValueError):
        return None


def read_gtfs_stops(data: bytes, name: str, *, encoding: str | None = None) -> StopList:
    """Return the stops of a GTFS stops.txt."""
    header, rows, _ = _rows(data, name, encoding)
    if "stop_id" not in header or "stop_name" not in header:
        raise InputError(f"{name}: line 1: a GTFS stops.txt needs the columns stop_id and stop_name; found {', '.join(header)}",
                         ja=f"{name}: 1行目: GTFS の stops.txt には stop_id と stop_name の列が必要です。ある列: {', '.join(header)}")
    out = StopList(name)
    ix = {h: i for i, h in enumerate(header)}

    def get(cells, col):
        i = ix.get(col)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    for line, cells in rows:
        sid = get(cells, "stop_id")
        if not sid:
            continue
        out.stops[sid] = Stop(sid, get(cells, "stop_name"), _float(get(cells, "stop_lat")), _float(get(cells, "stop_lon")),
                              parent=get(cells, "parent_station"), location_type=get(cells, "location_type"),
                              zone_id=get(cells, "zone_id"), code=get(cells, "stop_code"), desc=get(cells, "stop_desc"),
                              platform=get(cells, "platform_code"), line=line)
    return out


def to_wgs84(x: float, y: float, crs: str) -> tuple[float, float]:
    """Return (lat, lon) of a point given in ``crs``.

    For JGD2011 plane rectangular zones (``jgd2011:9`` or ``EPSG:6677``), ``x`` is the northing
    and ``y`` the easting, in metres, as Japanese surveys write them (X軸 = 北向き).
    """
    epsg = crs_epsg(crs)
    tr = _transformer(epsg)
    if 6669 <= epsg <= 6687 or 2443 <= epsg <= 2461:
        lon, lat = tr.transform(y, x)  # easting, northing
    else:
        lon, lat = tr.transform(x, y)
    return lat, lon


_TRANSFORMERS: dict[int, object] = {}


def _transformer(epsg: int):
    from pyproj import Transformer

    if epsg not in _TRANSFORMERS:
        _TRANSFORMERS[epsg] = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    return _TRANSFORMERS[epsg]


def read_table_stops(data: bytes, name: str, *, columns: dict, encoding: str | None = None, crs: str = "wgs84") -> StopList:
    """Return the stops of a CSV/XLSX/XLS/ODS stop list whose columns are named in ``columns``.

    ``columns`` maps id, name, lat, lon (WGS84) or x, y (projected, see :func:`to_wgs84`) and
    optionally kana, english, zone, code, parent to header names. If a needed column is
    missing or a coordinate cannot be read, raise InputError naming the line.
    """
    if name.lower().endswith((".xlsx", ".xls", ".ods")):
        from transforms.timetable.workbook import read_workbook

        sheet = read_workbook(data, name)[0][0]
        grid = [["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in row]
                for row in sheet.cells]
        header = [h.strip() for h in grid[0]] if grid else []
        rows = [(i + 1, r) for i, r in enumerate(grid) if i > 0 and any(c.strip() for c in r)]
    else:
        header, rows, _ = _rows(data, name, encoding)
    ix = {h: i for i, h in enumerate(header)}
    for key in ("id", "name"):
        if key in columns and columns[key] not in ix:
            raise InputError(f"{name}: line 1: no column '{columns[key]}' (stops.columns.{key}); the header has {', '.join(header)}",
                             ja=f"{name}: 1行目: 列 '{columns[key]}'（stops.columns.{key}）がありません。見出しの列: {', '.join(header)}。"
                                "spec の stops.columns を見出しに合わせてください")
    projected = "x" in columns
    for key in (("x", "y") if projected else ("lat", "lon")):
        if key not in columns or columns[key] not in ix:
            raise InputError(f"{name}: line 1: no column '{columns.get(key)}' (stops.columns.{key}); the header has {', '.join(header)}",
                             ja=f"{name}: 1行目: 列 '{columns.get(key)}'（stops.columns.{key}）がありません。見出しの列: {', '.join(header)}。"
                                "spec の stops.columns を見出しに合わせてください")
    out = StopList(name)

    def get(cells, key):
        col = columns.get(key)
        i = ix.get(col) if col else None
        return cells[i].strip() if i is not None and i < len(cells) else ""

    for line, cells in rows:
        nm = get(cells, "name")
        sid = get(cells, "id") or _synthetic_id(nm, get(cells, "x" if projected else "lat"), get(cells, "y" if projected else "lon"))
        a, b = _float(get(cells, "x" if projected else "lat")), _float(get(cells, "y" if projected else "lon"))
        if a is None or b is None:
            raise InputError(f"{name}: line {line}: stop '{nm}' has no readable coordinates "
                             f"({columns.get('x' if projected else 'lat')}={get(cells, 'x' if projected else 'lat')!r}, "
                             f"{columns.get('y' if projected else 'lon')}={get(cells, 'y' if projected else 'lon')!r})",
                             ja=f"{name}: {line}行目: 停留所 '{nm}' の座標が読み取れません"
                                f"（{columns.get('x' if projected else 'lat')}={get(cells, 'x' if projected else 'lat')!r}、"
                                f"{columns.get('y' if projected else 'lon')}={get(cells, 'y' if projected else 'lon')!r}）。座標を数値で入れてください")
        lat, lon = to_wgs84(a, b, crs) if projected else (a, b)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InputError(f"{name}: line {line}: stop '{nm}' lies outside the earth (lat {lat}, lon {lon}); check stops.crs",
                             ja=f"{name}: {line}行目: 停留所 '{nm}' の座標が地球上にありません（緯度 {lat}、経度 {lon}）。"
                                "spec の stops.crs（座標系）を確認してください")
        out.stops[sid] = Stop(sid, nm, round(lat, 7), round(lon, 7), zone_id=get(cells, "zone"), code=get(cells, "code"),
                              parent=get(cells, "parent"), kana=get(cells, "kana"), english=get(cells, "english"),
                              platform=get(cells, "platform"), desc=get(cells, "desc"), line=line)
    return out


def _synthetic_id(name: str, a: str, b: str) -> str:
    """Return a stable stop id for a list without ids: from the name and coordinates, not the line."""
    return "s_" + hashlib.sha1(f"{name}|{a}|{b}".encode()).hexdigest()[:10]


P11_COLUMNS = ["bus_stop_name", "municipality", "operator_1", "operator_2", "operator_3",
               "route_type_1", "route_type_2", "route_type_3", "note", "longitude", "latitude", "prefecture"]
_MUNICIPALITY = re.compile(r"^(.{1,10}?[市区町村])$|^$")
_OPERATORISH = re.compile(r"(株|（株）|\(株\)|バス|交通|鉄道|電鉄|観光|運輸|自動車)")


P11_DEFAULT = {"name": "bus_stop_name", "municipality": "municipality", "operator": "operator_1",
               "lon": "longitude", "lat": "latitude"}


def read_p11_stops(data: bytes, name: str, *, encoding: str | None = None, columns: dict | None = None) -> StopList:
    """Return the stops of a 国土数値情報 P11 bus stop CSV (flattened: name, municipality, operators, lon, lat).

    ``columns`` says which header holds name, municipality, operator, lon and lat (default:
    :data:`P11_DEFAULT`). If the municipality column holds operators (a third-party flattening
    shifted the columns) or a row's coordinates are not in Japan, raise InputError naming the
    first such line and how many there are; a file whose columns are known to be shifted is
    read by declaring them, e.g. ``{municipality: null, operator: municipality}``.
    """
    cols = {**P11_DEFAULT, **(columns or {})}
    header, rows, _ = _rows(data, name, encoding)
    missing = [f"{k}: {v}" for k, v in cols.items() if v and v not in header]
    if missing:
        raise InputError(f"{name}: line 1: not a P11 bus stop list as declared; no column for {', '.join(missing)} "
                         f"(header: {', '.join(header)})")
    ix = {h: i for i, h in enumerate(header)}
    shifted: list[tuple[int, str]] = []
    outside: list[tuple[int, str]] = []
    out = StopList(name)
    for line, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        get = (lambda key: cells[ix[cols[key]]].strip() if cols.get(key) else "")
        muni = unicodedata.normalize("NFKC", get("municipality"))
        if cols.get("municipality") and muni and (_OPERATORISH.search(muni) or not _MUNICIPALITY.match(muni)):
            shifted.append((line, muni))
            continue
        nm = get("name")
        lon, lat = _float(get("lon")), _float(get("lat"))
        if lon is None or lat is None or not (20 <= lat <= 46 and 122 <= lon <= 154):
            outside.append((line, f"{get('lon')}, {get('lat')}"))
            continue
        sid = _synthetic_id(nm, f"{lat:.6f}", f"{lon:.6f}")
        out.stops[sid] = Stop(sid, nm, round(lat, 7), round(lon, 7), desc=get("operator"), line=line)
    if shifted:
        line, value = shifted[0]
        raise InputError(
            f"{name}: line {line}: column '{cols['municipality']}' holds {value!r}, an operator, not a municipality "
            f"(市/区/町/村); the columns are shifted (the operator sits where the municipality belongs, routes in "
            f"'{cols['operator']}'). {len(shifted)} of {len(rows)} rows are like this; fix the file or declare its "
            f"real columns (stops.columns)")
    if outside:
        line, value = outside[0]
        raise InputError(f"{name}: line {line}: longitude, latitude {value!r} is not a point in Japan; "
                         f"{len(outside)} of {len(rows)} rows are like this; check the columns")
    return out
