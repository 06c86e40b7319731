"""Resolve an ``ondemand.area``: a GeoJSON polygon file, district names of a zone layer, or a list of stops."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path

from transforms.errors import InputError
from transforms.specfile import SpecError, load_yaml

__all__ = ["load_district_layer", "district_names", "resolve_area"]

MAX_GEOJSON_BYTES = 64 << 20


def _path(root: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else root / q


def _zones_spec(layer_id: str, root: Path):
    """Return (the zone options, the layer file) of ``specs/trips/<layer_id>.yml``. If it is missing or wrong, raise ValueError."""
    from transforms.trips.spec import check_zones

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
    return opts, _path(root, src)


@lru_cache(maxsize=8)
def load_district_layer(layer_id: str, root: Path):
    """Return the zone layer of ``specs/trips/<layer_id>.yml`` (WGS84). If it is missing or wrong, raise ValueError saying what."""
    from transforms.trips.zones import load_layer

    opts, path = _zones_spec(layer_id, root)
    try:
        return load_layer(layer_id, path, opts)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _names(ids: list[str], names: list) -> dict[str, str]:
    out = {zid: zid for zid in ids}
    out.update({str(n): zid for n, zid in zip(names, ids) if n is not None})
    return out


def district_names(layer_id: str, root: Path) -> dict[str, str] | None:
    """Return {district name or id: zone id} of a zone layer, read without geometry (GeoJSON layers only; None for others).

    Spec loading uses this, so it stays light: a shapefile or WKT layer's names are checked when the feed is built.
    """
    opts, path = _zones_spec(layer_id, root)
    fmt = opts.format if opts.format != "auto" else {".geojson": "geojson", ".json": "geojson"}.get(path.suffix.lower(), "")
    if fmt != "geojson" or opts.lookup:
        return None
    if not path.is_file():  # like every input file, looked for when the feed is built (the specs may be a copy elsewhere)
        return None
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise ValueError(f"{path}: the zone file is larger than {MAX_GEOJSON_BYTES >> 20} MB")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    props = [(f or {}).get("properties") or {} for f in (doc.get("features") or [])] if isinstance(doc, dict) else []
    ids = [str(p.get(opts.id_field)).strip().removesuffix(".0") for p in props]
    return _names(ids, [p.get(opts.name_field) if opts.name_field else None for p in props])


def _unknown(layer_id: str, names: list, known: dict[str, str], *, ja: bool = False) -> str | None:
    """Return one message for the first name the layer does not have (with a did-you-mean), or None. ``ja``: in Japanese."""
    for i, n in enumerate(names):
        if str(n) not in known:
            near = difflib.get_close_matches(str(n), list(known), n=1, cutoff=0.3)
            if ja:
                hint = f"「{near[0]}」ではありませんか？" if near else f"レイヤーにある名前: {'、'.join(sorted(known)[:12])}"
                return f"ondemand.area.districts.names[{i}]: 「{n}」はレイヤー {layer_id} の区域にありません。{hint}"
            hint = f"did you mean '{near[0]}'?" if near else f"the layer has: {', '.join(sorted(known)[:12])}"
            return f"ondemand.area.districts.names[{i}]: {n!r} is not a district of layer {layer_id}; {hint}"
    return None


def _read_geojson(path: Path) -> object:
    """Return the union of the polygons in a GeoJSON file (WGS84). If it has none, or is not GeoJSON, raise InputError."""
    if not path.is_file():
        raise InputError(f"{path}: ondemand.area.geojson: the file does not exist",
                         ja=f"{path}: ondemand.area.geojson のファイルがありません。区域のファイルを置くか、spec のパスを直してください")
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise InputError(f"{path}: ondemand.area.geojson: larger than {MAX_GEOJSON_BYTES >> 20} MB; simplify the polygon",
                         ja=f"{path}: ondemand.area.geojson が {MAX_GEOJSON_BYTES >> 20} MB を超えています。区域の形を簡略化してください")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: ondemand.area.geojson: not JSON ({exc}); save the area as GeoJSON",
                         ja=f"{path}: ondemand.area.geojson が JSON として読めません（{exc}）。区域を GeoJSON で保存し直してください") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: ondemand.area.geojson: not a GeoJSON object",
                         ja=f"{path}: ondemand.area.geojson が GeoJSON のオブジェクトではありません。区域を GeoJSON で保存し直してください")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc if doc.get("type") == "Feature" else {"geometry": doc}]
    geoms = []
    for i, f in enumerate(feats or []):
        g = (f or {}).get("geometry") if isinstance(f, dict) else None
        if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
            raise InputError(f"{path}: ondemand.area.geojson: feature {i + 1} is {shown_type(g)}, not a Polygon or MultiPolygon; "
                             "draw the area as a polygon",
                             ja=f"{path}: ondemand.area.geojson: {i + 1} 番目の地物が面（Polygon / MultiPolygon）ではありません"
                                f"（{_type_ja(g)}）。区域は面（ポリゴン）で描いてください")
        try:
            import shapely

            geoms.append(shapely.make_valid(shapely.from_geojson(json.dumps(g))))
        except Exception as exc:  # shapely's GEOS message
            raise InputError(f"{path}: ondemand.area.geojson: feature {i + 1}: {exc}",
                             ja=f"{path}: ondemand.area.geojson: {i + 1} 番目の地物の形が読めません（{exc}）。描き直してください") from None
    import shapely

    if not geoms:
        raise InputError(f"{path}: ondemand.area.geojson: no polygon in the file",
                         ja=f"{path}: ondemand.area.geojson に面（ポリゴン）がありません。運行区域を面で描いてください")
    u = shapely.union_all(geoms)
    x0, y0, x1, y1 = u.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError(f"{path}: ondemand.area.geojson: coordinates are not longitude/latitude (WGS84); reproject the file to EPSG:4326",
                         ja=f"{path}: ondemand.area.geojson の座標が経度・緯度（WGS84）ではありません。EPSG:4326 に変換して保存し直してください")
    return u


def shown_type(g: object) -> str:
    return f"a {g.get('type')}" if isinstance(g, dict) and g.get("type") else "missing"


def _type_ja(g: object) -> str:
    return f"{g.get('type')} です" if isinstance(g, dict) and g.get("type") else "形がありません"


def resolve_area(section: dict, *, root: Path, default_name: str):
    """Return the service area (an Area) of a checked ``ondemand:`` section. If its file or a district cannot be read, raise InputError."""
    import shapely

    from transforms.ondemand.build import Area

    area = section["area"]
    name = area.get("name") or default_name
    if area.get("geojson"):
        return Area(name=name, geometry=_read_geojson(_path(root, area["geojson"])))
    if area.get("districts"):
        d = area["districts"]
        try:
            layer = load_district_layer(d["layer"], root)
        except ValueError as exc:
            raise InputError(f"ondemand.area.districts.layer: {exc}",
                             ja=f"ondemand.area.districts.layer: 町丁目などの区域レイヤーが読めません（{exc}）") from None
        names = _names(layer.ids, layer.names)
        if (why := _unknown(d["layer"], d["names"], names)) is not None:
            raise InputError(why, ja=_unknown(d["layer"], d["names"], names, ja=True))
        want = {names[str(n)] for n in d["names"] if str(n) in names}
        parts = [g for zid, g in zip(layer.ids, layer.geoms) if zid in want]
        return Area(name=name, geometry=shapely.union_all(parts))
    return Area(name=name, stops=list(area["stops"]))
