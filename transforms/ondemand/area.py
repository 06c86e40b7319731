"""Resolve an ``ondemand.area``: a GeoJSON polygon file, district names of a zone layer, or a list of stops."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import shapely

from transforms.errors import InputError
from transforms.ondemand.build import Area
from transforms.specfile import SpecError, load_yaml

__all__ = ["load_district_layer", "district_names", "resolve_area"]

MAX_GEOJSON_BYTES = 64 << 20


def _path(root: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else root / q


@lru_cache(maxsize=8)
def load_district_layer(layer_id: str, root: Path):
    """Return the zone layer of ``specs/trips/<layer_id>.yml`` (WGS84). If it is missing or wrong, raise ValueError saying what."""
    from transforms.trips.spec import check_zones
    from transforms.trips.zones import load_layer

    spec_path = root / "specs" / "trips" / f"{layer_id}.yml"
    if not spec_path.is_file():
        have = sorted(p.stem for p in (root / "specs" / "trips").glob("*.yml"))
        raise ValueError(f"no zones spec specs/trips/{layer_id}.yml; zone layers here: {', '.join(have) or 'none'}")
    try:
        doc = load_yaml(spec_path)
    except SpecError as exc:
        raise ValueError("; ".join(exc.problems)) from None
    if not isinstance(doc, dict) or doc.get("kind") != "zones":
        raise ValueError(f"specs/trips/{layer_id}.yml is not a spec of kind zones")
    opts, problems = check_zones(doc.get("zones"), where=str(spec_path))
    src = (doc.get("source") or {}).get("path")
    if problems or not src:
        raise ValueError("; ".join(problems) or f"specs/trips/{layer_id}.yml has no source.path")
    try:
        return load_layer(layer_id, _path(root, src), opts)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def district_names(layer_id: str, root: Path) -> dict[str, str]:
    """Return {district name or id: zone id} of a zone layer."""
    layer = load_district_layer(layer_id, root)
    out = {zid: zid for zid in layer.ids}
    out.update({n: zid for n, zid in zip(layer.names, layer.ids) if n})
    return out


def _read_geojson(path: Path) -> object:
    """Return the union of the polygons in a GeoJSON file (WGS84). If it has none, or is not GeoJSON, raise InputError."""
    if not path.is_file():
        raise InputError(f"{path}: ondemand.area.geojson: the file does not exist")
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise InputError(f"{path}: ondemand.area.geojson: larger than {MAX_GEOJSON_BYTES >> 20} MB; simplify the polygon")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: ondemand.area.geojson: not JSON ({exc}); save the area as GeoJSON") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: ondemand.area.geojson: not a GeoJSON object")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc if doc.get("type") == "Feature" else {"geometry": doc}]
    geoms = []
    for i, f in enumerate(feats or []):
        g = (f or {}).get("geometry") if isinstance(f, dict) else None
        if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
            raise InputError(f"{path}: ondemand.area.geojson: feature {i + 1} is {shown_type(g)}, not a Polygon or MultiPolygon; "
                             "draw the area as a polygon")
        try:
            geoms.append(shapely.make_valid(shapely.from_geojson(json.dumps(g))))
        except Exception as exc:  # shapely's GEOS message
            raise InputError(f"{path}: ondemand.area.geojson: feature {i + 1}: {exc}") from None
    if not geoms:
        raise InputError(f"{path}: ondemand.area.geojson: no polygon in the file")
    u = shapely.union_all(geoms)
    x0, y0, x1, y1 = u.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError(f"{path}: ondemand.area.geojson: coordinates are not longitude/latitude (WGS84); reproject the file to EPSG:4326")
    return u


def shown_type(g: object) -> str:
    return f"a {g.get('type')}" if isinstance(g, dict) and g.get("type") else "missing"


def resolve_area(section: dict, *, root: Path, default_name: str) -> Area:
    """Return the service area of a checked ``ondemand:`` section. If its file cannot be read, raise InputError."""
    area = section["area"]
    name = area.get("name") or default_name
    if area.get("geojson"):
        return Area(name=name, geometry=_read_geojson(_path(root, area["geojson"])))
    if area.get("districts"):
        d = area["districts"]
        try:
            layer = load_district_layer(d["layer"], root)
        except ValueError as exc:
            raise InputError(f"ondemand.area.districts.layer: {exc}") from None
        names = district_names(d["layer"], root)
        want = {names[str(n)] for n in d["names"] if str(n) in names}
        parts = [g for zid, g in zip(layer.ids, layer.geoms) if zid in want]
        return Area(name=name, geometry=shapely.union_all(parts))
    return Area(name=name, stops=list(area["stops"]))
