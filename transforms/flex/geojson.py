"""Read GTFS-Flex ``locations.geojson`` into the canonical ``locations`` table, and write it back.

The file is hostile input: it is refused past :data:`MAX_BYTES`, past :data:`MAX_POINTS`
coordinates or nested deeper than Python's parser allows, each with one notice
(``malformed_json``) and no zones, never a traceback. Each Feature becomes one row: its ``id``
(``location_id``), ``properties.stop_name`` / ``stop_desc``, other properties in ``_extra`` and
the geometry as WKB in WGS84. An invalid polygon (self-crossing ring...) is repaired with
shapely's ``make_valid`` and reported as ``invalid_geometry``. Notice codes are MobilityData's.
"""

from __future__ import annotations

import json
import math

import pyarrow as pa
import shapely
from shapely.geometry import shape

from transforms.notices import ERROR, INFO, Findings

FILE = "locations.geojson"
#: Largest locations.geojson read (bytes); the biggest real one here (Lincoln County, 188 zones) is 1.9 MB. Parsed JSON
#: takes about 10x its size in memory, so this bounds the read to a few hundred MB.
MAX_BYTES = 16 << 20
#: Most coordinate pairs read over all zones; Lincoln County has about 60,000.
MAX_POINTS = 1_000_000
#: Geometry types GTFS-Flex allows for a zone.
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
#: Members of a FeatureCollection / Feature / properties that GTFS-Flex defines; others are geo_json_unknown_element.
KNOWN_ROOT = ("type", "features", "bbox", "name", "crs")
KNOWN_FEATURE = ("type", "id", "properties", "geometry", "bbox")
KNOWN_PROPERTIES = ("stop_name", "stop_desc")

SCHEMA = pa.schema([
    ("_line", pa.int32()),
    ("location_id", pa.string()),
    ("stop_name", pa.string()),
    ("stop_desc", pa.string()),
    ("geometry_type", pa.string()),
    ("geometry", pa.binary()),
    ("_untyped", pa.string()),
    ("_extra", pa.string()),
])


class _DuplicateKeys(dict):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    out = _DuplicateKeys()
    seen = set()
    dups = []
    for k, v in pairs:
        if k in seen:
            dups.append(k)
        seen.add(k)
        out[k] = v
    if dups:
        out.duplicates = tuple(dups)
    return out


def _text(v) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _points(coords, budget: list[int]) -> None:
    """Count coordinate pairs into ``budget[0]``; raise ValueError past MAX_POINTS or on a bad nesting."""
    stack = [(coords, 0)]
    while stack:
        c, depth = stack.pop()
        if depth > 4 or not isinstance(c, list):
            raise ValueError("coordinates are not nested lists of [longitude, latitude]")
        if c and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in c):
            budget[0] += 1
            if budget[0] > MAX_POINTS:
                raise OverflowError
            continue
        stack.extend((x, depth + 1) for x in c)


def read_locations(data: bytes, findings: Findings) -> pa.Table:
    """Return the canonical ``locations`` rows of ``data`` (the bytes of locations.geojson), notices in ``findings``.

    If the file cannot be read as GeoJSON at all, then one notice says why and no rows are returned.
    """
    empty = SCHEMA.empty_table()
    if len(data) > MAX_BYTES:
        findings.add("malformed_json", ERROR, f"{FILE} is {len(data):,} bytes, over the limit of {MAX_BYTES:,}; "
                     "its zones were not read; simplify the polygons (fewer points) or split the service", file=FILE)
        return empty
    try:
        text = data.decode("utf-8-sig")
        doc = json.loads(text, object_pairs_hook=_pairs)
    except UnicodeDecodeError as e:
        findings.add("malformed_json", ERROR, f"{FILE} is not UTF-8 text (byte {e.start}); its zones were not read; "
                     "save it as UTF-8", file=FILE)
        return empty
    except RecursionError:
        findings.add("malformed_json", ERROR, f"{FILE} is nested too deeply to be GeoJSON; its zones were not read; "
                     "export the zones again from a GIS", file=FILE)
        return empty
    except ValueError as e:
        line = getattr(e, "lineno", None)
        findings.add("malformed_json", ERROR, f"{FILE} is not valid JSON ({getattr(e, 'msg', str(e))[:120]}); its zones were not "
                     "read; check the file with a JSON or GeoJSON checker, or export it again", file=FILE, line=line)
        return empty
    _duplicate_keys(doc, findings, "FeatureCollection")
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        got = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        findings.add("unsupported_geo_json_type", ERROR, f"{FILE} has type {_text(got)!s}, not FeatureCollection; its zones "
                     "were not read; GTFS-Flex needs one FeatureCollection of Features", file=FILE, value=_text(got))
        return empty
    for k in doc:
        if k not in KNOWN_ROOT:
            findings.add("geo_json_unknown_element", INFO, f"{FILE}: member '{k}' of the FeatureCollection is not part of "
                         "GTFS-Flex; it is ignored", file=FILE, field=k)
    features = doc.get("features")
    if not isinstance(features, list):
        findings.add("missing_required_element", ERROR, f"{FILE} has no 'features' list; no zone was read", file=FILE, field="features")
        return empty
    rows = []
    seen: dict[str, int] = {}
    budget = [0]
    for n, feat in enumerate(features, start=1):
        where = f"{FILE}: feature {n}"
        if not isinstance(feat, dict):
            findings.add("unsupported_feature_type", ERROR, f"{where} is not an object; it was left out", file=FILE, line=n)
            continue
        _duplicate_keys(feat, findings, f"feature {n}", line=n)
        if feat.get("type") != "Feature":
            findings.add("unsupported_feature_type", ERROR, f"{where} has type {_text(feat.get('type'))}, not Feature; it was "
                         "left out", file=FILE, line=n, field="type", value=_text(feat.get("type")))
            continue
        for k in feat:
            if k not in KNOWN_FEATURE:
                findings.add("geo_json_unknown_element", INFO, f"{where}: member '{k}' is not part of GTFS-Flex; it is ignored",
                             file=FILE, line=n, field=k)
        fid = feat.get("id")
        if fid is None or fid == "":
            findings.add("missing_required_element", ERROR, f"{where} has no 'id' (location_id); stop_times cannot refer to it; "
                         "it was left out", file=FILE, line=n, field="id")
            continue
        fid = _text(fid)
        if fid in seen:
            findings.add("geo_json_duplicated_element", ERROR, f"{where} repeats id '{fid}' of feature {seen[fid]}; it was left out",
                         file=FILE, line=n, field="id", value=fid)
            continue
        seen[fid] = n
        props = feat.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            findings.add("missing_required_element", ERROR, f"{where} ('{fid}'): 'properties' is not an object; it is ignored",
                         file=FILE, line=n, field="properties")
            props = {}
        _duplicate_keys(props, findings, f"feature {n} properties", line=n)
        geom = feat.get("geometry")
        if not isinstance(geom, dict) or "type" not in geom:
            findings.add("missing_required_element", ERROR, f"{where} ('{fid}') has no geometry; it was left out",
                         file=FILE, line=n, field="geometry")
            continue
        gtype = geom.get("type")
        if gtype not in GEOMETRY_TYPES:
            findings.add("unsupported_geometry_type", ERROR, f"{where} ('{fid}') is a {_text(gtype)}; a zone must be a Polygon "
                         "or MultiPolygon; it was left out", file=FILE, line=n, field="geometry.type", value=_text(gtype))
            continue
        try:
            _points(geom.get("coordinates"), budget)
            g = shape(geom)
            if any(not math.isfinite(v) for v in g.bounds) or g.is_empty:
                raise ValueError("no usable coordinates")
        except OverflowError:
            findings.add("malformed_json", ERROR, f"{FILE} has more than {MAX_POINTS:,} coordinates; zones from feature {n} on "
                         "were not read; simplify the polygons", file=FILE, line=n)
            break
        except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError) as e:
            findings.add("invalid_geometry", ERROR, f"{where} ('{fid}'): its coordinates do not make a {gtype} ({str(e)[:100]}); "
                         "it was left out", file=FILE, line=n, field="geometry")
            continue
        minx, miny, maxx, maxy = g.bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            findings.add("invalid_geometry", ERROR, f"{where} ('{fid}') has coordinates outside longitude -180..180 / latitude "
                         "-90..90 (GeoJSON is [longitude, latitude] in WGS84); it was left out", file=FILE, line=n, field="geometry")
            continue
        if not g.is_valid:
            why = shapely.is_valid_reason(g)
            g = shapely.make_valid(g)
            if g.geom_type == "GeometryCollection":
                g = shapely.MultiPolygon([p for part in g.geoms for p in getattr(part, "geoms", [part]) if p.geom_type == "Polygon"])
            findings.add("invalid_geometry", ERROR, f"{where} ('{fid}') is not a valid {gtype} ({why}); it was repaired with "
                         "make_valid for Noriba's maps and checks; fix the polygon at its source", file=FILE, line=n,
                         field="geometry")
        extra = {k: v for k, v in props.items() if k not in KNOWN_PROPERTIES}
        rows.append({"_line": n, "location_id": fid, "stop_name": _text(props.get("stop_name")), "stop_desc": _text(props.get("stop_desc")),
                     "geometry_type": g.geom_type, "geometry": shapely.to_wkb(g), "_untyped": None,
                     "_extra": json.dumps({k: _text(v) for k, v in extra.items()}, ensure_ascii=False) if extra else None})
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _duplicate_keys(obj, findings: Findings, what: str, *, line: int | None = None) -> None:
    for k in getattr(obj, "duplicates", ()):
        findings.add("duplicate_geo_json_key", ERROR, f"{FILE}: {what} has the key '{k}' more than once; the last one was read",
                     file=FILE, line=line, field=k)


def to_geojson(rows: list[dict]) -> bytes:
    """Return a locations.geojson FeatureCollection of ``rows`` (location_id, stop_name, stop_desc, geometry, _extra).

    ``geometry`` is WKB (canonical rows) or a shapely geometry (a feed generator's zones).
    """
    features = []
    for r in rows:
        props = {k: v for k, v in (("stop_name", r.get("stop_name")), ("stop_desc", r.get("stop_desc"))) if v is not None}
        props.update(json.loads(r["_extra"]) if r.get("_extra") else {})
        g = r["geometry"]
        geom = json.loads(shapely.to_geojson(shapely.from_wkb(g) if isinstance(g, (bytes, bytearray)) else g))
        features.append({"id": r["location_id"], "type": "Feature", "properties": props, "geometry": geom})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1).encode() + b"\n"


def write_geoparquet(con, src: str, path, *, feed_id: str | None = None, feed_version: str | None = None) -> None:
    """Write the canonical ``locations`` rows of SQL relation ``src`` as GeoParquet 1.0 (WKB, OGC:CRS84) at ``path``.

    If ``feed_id`` is given, then it and ``feed_version`` lead each row (a feed's own export).
    """
    import pyarrow.parquet as pq

    q = lambda v: "'" + v.replace("'", "''") + "'"  # noqa: E731
    head = f"{q(feed_id)} AS feed_id, {q(feed_version or '')} AS feed_version, " if feed_id is not None else ""
    t = con.sql(f"SELECT {head}* FROM {src}").to_arrow_table()
    types = sorted({g for g in t.column("geometry_type").to_pylist() if g})
    bbox = None
    if t.num_rows:
        b = shapely.from_wkb([g for g in t.column("geometry").to_pylist() if g is not None])
        bbox = list(shapely.total_bounds(b)) if len(b) else None
    geo = {"version": "1.0.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": types, **({"bbox": bbox} if bbox else {})}}}
    t = t.replace_schema_metadata({**(t.schema.metadata or {}), b"geo": json.dumps(geo).encode()})
    pq.write_table(t, path, compression="zstd")
