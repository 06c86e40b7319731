"""Zone layers: shapefile, GeoJSON or WKT-in-CSV polygons in any CRS, reprojected to WGS84, and point-in-zone.

Coordinates are transformed with pyproj (``always_xy``: lon, lat order); points are assigned with
shapely's STRtree in vectorised batches. Problems in a layer are reported, never merged away:
a zone id carried by several polygons (``duplicate_zone_id``, the polygons are kept as parts of
one zone and the notice says so), a record without geometry or a lookup id without a polygon
(``zone_without_geometry``), an invalid polygon (``invalid_zone_geometry``, repaired with
make_valid and reported).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from transforms.adapters import InputError
from transforms.notices import INFO, WARNING, Notice
from transforms.trips.spec import ZoneOptions

#: Bump when loading a layer changes what it gives (reading, reprojection, repair, notices): stored layers are then read again.
STORE_VERSION = 1
#: Files read with a layer besides the one named in the spec (shapefile sidecars).
_SIDECARS = {".shp": (".shx", ".dbf", ".prj", ".cpg")}


@dataclass
class ZoneLayer:
    layer_id: str
    role: str
    ids: list[str]  # one per polygon (ids may repeat: see notices)
    names: list[str | None]
    groups: list[str | None]
    geoms: np.ndarray  # shapely geometries in WGS84, one per id
    known_ids: set[str] = field(default_factory=set)  # ids with or without geometry (lookup included)
    lookup_names: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    _tree: shapely.STRtree | None = None

    @property
    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)
        return self._tree

    def assign(self, lon: np.ndarray, lat: np.ndarray, *, batch: int = 200_000) -> np.ndarray:
        """Return the zone id of each point (object array; None where no zone contains it, or the point is missing).

        If zones overlap, then the first polygon in layer order wins, so the answer is deterministic.
        """
        out = np.full(len(lon), None, dtype=object)
        ids = np.asarray(self.ids, dtype=object)
        for lo in range(0, len(lon), batch):
            x, y = lon[lo:lo + batch], lat[lo:lo + batch]
            ok = np.isfinite(x) & np.isfinite(y)
            pts = shapely.points(np.where(ok, x, 0.0), np.where(ok, y, 0.0))
            pi, gi = self.tree.query(pts, predicate="intersects")
            pi, gi = pi[ok[pi]], gi[ok[pi]]
            order = np.lexsort((gi, pi))
            pi, gi = pi[order], gi[order]
            first = np.unique(pi, return_index=True)[1]
            out[lo + pi[first]] = ids[gi[first]]
        return out

    def rows(self) -> list[dict]:
        """Return one row per zone id for trips.zones (parts of a duplicated id are unioned into one geometry)."""
        by_id: dict[str, list[int]] = {}
        for i, zid in enumerate(self.ids):
            by_id.setdefault(zid, []).append(i)
        out = []
        for zid, idx in by_id.items():
            g = shapely.union_all(self.geoms[idx]) if len(idx) > 1 else self.geoms[idx[0]]
            c = g.representative_point()
            out.append({"zone_layer": self.layer_id, "role": self.role, "zone_id": zid, "zone_name": self.names[idx[0]],
                        "zone_group": self.groups[idx[0]], "polygons": len(idx), "geometry_wkt": g.wkt,
                        "point_lat": c.y, "point_lon": c.x})
        for zid, (name, group) in self.lookup_names.items():
            if zid not in by_id:
                out.append({"zone_layer": self.layer_id, "role": self.role, "zone_id": zid, "zone_name": name,
                            "zone_group": group, "polygons": 0, "geometry_wkt": None, "point_lat": None, "point_lon": None})
        return out


def _wgs84():
    from pyproj import CRS  # imported when a layer is read from its source, not when a stored layer is used

    return CRS.from_epsg(4326)


def _crs(text: str, *, wkt: bool = False):
    from pyproj import CRS

    return CRS.from_wkt(text) if wkt else CRS.from_user_input(text)


def _transformer(src):
    from pyproj import Transformer

    wgs84 = _wgs84()
    if src.equals(wgs84):
        return None
    return Transformer.from_crs(src, wgs84, always_xy=True)


def _reproject(geoms: list, src) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    tr = _transformer(src)
    if tr is None:
        return arr
    ok = np.array([g is not None for g in geoms])
    if ok.any():
        arr[ok] = shapely.transform(arr[ok], lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    return arr


def _read_shapefile(path: Path, opts: ZoneOptions) -> tuple[list[dict], list, object]:
    import shapefile  # pyshp

    prj = path.with_suffix(".prj")
    crs = _crs(opts.crs) if opts.crs else (_crs(prj.read_text(), wkt=True) if prj.exists() else _wgs84())
    with shapefile.Reader(str(path)) as r:
        fields = [f[0] for f in r.fields[1:]]
        attrs, geoms = [], []
        for sr in r.iterShapeRecords():
            attrs.append(dict(zip(fields, sr.record)))
            gi = sr.shape.__geo_interface__ if sr.shape.shapeType != shapefile.NULL else None
            geoms.append(shape(gi) if gi and gi.get("coordinates") else None)
    return attrs, geoms, crs


def _read_geojson(path: Path, opts: ZoneOptions) -> tuple[list[dict], list, object]:
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    crs = _crs(opts.crs or name or "EPSG:4326")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc]
    attrs = [f.get("properties") or {} for f in feats]
    geoms = [shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    return attrs, geoms, crs


def _read_wkt_csv(path: Path, opts: ZoneOptions) -> tuple[list[dict], list, object]:
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    geoms = []
    for r in rows:
        text = (r.pop(opts.geometry_field, None) or "").strip()
        geoms.append(shapely.from_wkt(text) if text else None)
    return rows, geoms, _crs(opts.crs or "EPSG:4326")


def load_layer(layer_id: str, path: Path, opts: ZoneOptions) -> ZoneLayer:
    """Return the zone layer in ``path``, in WGS84, with notices for duplicate ids and zones without geometry."""
    if not path.exists():
        raise InputError(f"{path}: the zone file does not exist; check source.path in the zones spec",
                         ja=f"{path}: 区域のファイルがありません。区域の spec の source.path を確認してください")
    fmt = opts.format
    if fmt == "auto":
        fmt = {".shp": "shapefile", ".geojson": "geojson", ".json": "geojson", ".csv": "wkt_csv"}.get(path.suffix.lower(), "")
    reader = {"shapefile": _read_shapefile, "geojson": _read_geojson, "wkt_csv": _read_wkt_csv}.get(fmt)
    if reader is None:
        raise InputError(f"{path.name}: cannot tell the zone format; set zones.format (shapefile, geojson, wkt_csv)",
                         ja=f"{path.name}: 区域のファイル形式がわかりません。zones.format（shapefile、geojson、wkt_csv）を指定してください")
    try:
        attrs, geoms, crs = reader(path, opts)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path.name}: cannot read the zone layer: {exc}",
                         ja=f"{path.name}: 区域のレイヤーが読めません（{exc}）。ファイルを出力し直してください") from None
    if attrs and opts.id_field not in attrs[0]:
        raise InputError(f"{path.name}: zones.id_field {opts.id_field!r} is not an attribute; it has: {', '.join(attrs[0])}",
                         ja=f"{path.name}: zones.id_field の {opts.id_field!r} は属性にありません。ある属性: {'、'.join(attrs[0])}")
    notices: list[Notice] = []
    ids, names, groups, keep = [], [], [], []
    for i, (a, g) in enumerate(zip(attrs, geoms)):
        zid = str(a.get(opts.id_field)).strip()
        zid = zid[:-2] if zid.endswith(".0") else zid
        if g is None or g.is_empty:
            notices.append(Notice("zone_without_geometry", WARNING, f"zone {zid} (record {i + 1}) has no geometry; trips cannot be placed in it",
                                  file=path.name, line=i + 1, field=opts.id_field, value=zid))
            continue
        ids.append(zid)
        names.append(str(a.get(opts.name_field)) if opts.name_field and a.get(opts.name_field) is not None else None)
        groups.append(str(a.get(opts.group_field)) if opts.group_field and a.get(opts.group_field) is not None else None)
        keep.append(g)
    wgs = _reproject(keep, crs)
    invalid = ~shapely.is_valid(wgs) if len(wgs) else np.array([], dtype=bool)
    for i in np.flatnonzero(invalid):
        notices.append(Notice("invalid_zone_geometry", INFO, f"zone {ids[i]}: polygon is not valid ({shapely.is_valid_reason(wgs[i])}); repaired",
                              file=path.name, field=opts.id_field, value=ids[i]))
        wgs[i] = shapely.make_valid(wgs[i])
    for zid, n in sorted(Counter(ids).items()):
        if n > 1:
            notices.append(Notice("duplicate_zone_id", WARNING,
                                  f"zone id {zid} is carried by {n} polygons; they are kept as parts of one zone, not merged silently",
                                  file=path.name, field=opts.id_field, value=zid))
    layer = ZoneLayer(layer_id=layer_id, role=opts.role, ids=ids, names=names, groups=groups, geoms=wgs,
                      known_ids=set(ids), notices=notices)
    if opts.lookup:
        _add_lookup(layer, path, opts)
    return layer


def _add_lookup(layer: ZoneLayer, path: Path, opts: ZoneOptions) -> None:
    lk = opts.lookup
    lpath = Path(lk["path"])
    if not lpath.is_absolute():
        lpath = path.parent / lpath
    if not lpath.exists():
        raise InputError(f"{lpath}: the zone lookup does not exist; check zones.lookup.path",
                         ja=f"{lpath}: 区域の対応表がありません。zones.lookup.path を確認してください")
    with open(lpath, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    have = set(layer.ids)
    for i, r in enumerate(rows, start=1):
        zid = str(r.get(lk["id_field"], "")).strip()
        if not zid:
            continue
        name, group = r.get(lk.get("name_field", "")), r.get(lk.get("group_field", ""))
        layer.known_ids.add(zid)
        if zid in have:
            continue
        layer.lookup_names[zid] = (name, group)
        layer.notices.append(Notice("zone_without_geometry", WARNING,
                                    f"zone {zid} ({name}) is in the lookup but has no polygon; trips there keep the id but have no shape",
                                    file=lpath.name, line=i + 1, field=lk["id_field"], value=zid))


# --------------------------------------------------------------------------------------------
# The layer as loaded, kept in the lake: read from its source once per content, not at every run
# --------------------------------------------------------------------------------------------

_STORE_KEY = b"noriba.zone_layer"


def layer_hash(path: Path, opts: ZoneOptions) -> str:
    """Return the hash of what loading a layer reads: the file, its sidecars, the lookup, the options and STORE_VERSION."""
    import hashlib
    from dataclasses import asdict

    h = hashlib.sha256(f"noriba zone layer {STORE_VERSION}\n".encode())
    h.update(json.dumps(asdict(opts), sort_keys=True, default=str).encode())
    files = [path] + [path.with_suffix(ext) for ext in _SIDECARS.get(path.suffix.lower(), ())]
    if opts.lookup:
        lpath = Path(opts.lookup["path"])
        files.append(lpath if lpath.is_absolute() else path.parent / lpath)
    for f in files:
        h.update(f"\n{f.name}\n".encode())
        if f.exists():
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(b"<missing>")
    return h.hexdigest()


def save_layer(layer: ZoneLayer, dest: Path) -> None:
    """Write the loaded layer to one Parquet file: WGS84 polygons as WKB in layer order, then lookup-only ids; known ids
    and notices in the file's metadata."""
    import os
    import uuid
    from dataclasses import asdict

    import pyarrow as pa
    import pyarrow.parquet as pq

    lookup = list(layer.lookup_names.items())
    wkb = list(shapely.to_wkb(layer.geoms)) if len(layer.geoms) else []
    table = pa.table({
        "zone_id": pa.array(list(layer.ids) + [z for z, _ in lookup], pa.string()),
        "zone_name": pa.array(list(layer.names) + [v[0] for _, v in lookup], pa.string()),
        "zone_group": pa.array(list(layer.groups) + [v[1] for _, v in lookup], pa.string()),
        "wkb": pa.array(wkb + [None] * len(lookup), pa.binary()),
    })
    meta = {"version": STORE_VERSION, "layer_id": layer.layer_id, "role": layer.role, "polygons": len(layer.ids),
            "known_ids": sorted(layer.known_ids), "notices": [asdict(x) for x in layer.notices]}
    table = table.replace_schema_metadata({_STORE_KEY: json.dumps(meta, ensure_ascii=False).encode()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:6]}")
    pq.write_table(table, tmp)
    os.replace(tmp, dest)


def read_layer(src: Path) -> ZoneLayer:
    """Return the layer save_layer wrote: the same ids, names, groups, geometries, known ids, lookup names and notices."""
    import pyarrow.parquet as pq

    t = pq.read_table(src)
    meta = json.loads(t.schema.metadata[_STORE_KEY])
    if meta.get("version") != STORE_VERSION:
        raise ValueError(f"{src}: zone layer store version {meta.get('version')}, expected {STORE_VERSION}")
    n = meta["polygons"]
    ids, names, groups, wkb = (t.column(c).to_pylist() for c in ("zone_id", "zone_name", "zone_group", "wkb"))
    geoms = np.empty(n, dtype=object)
    if n:
        geoms[:] = shapely.from_wkb(np.asarray(wkb[:n], dtype=object))
    return ZoneLayer(layer_id=meta["layer_id"], role=meta["role"], ids=ids[:n], names=names[:n], groups=groups[:n], geoms=geoms,
                     known_ids=set(meta["known_ids"]), lookup_names={z: (nm, g) for z, nm, g in zip(ids[n:], names[n:], groups[n:])},
                     notices=[Notice(**x) for x in meta["notices"]])


def stored_layer(layer_id: str, path: Path, opts: ZoneOptions, store: Path) -> ZoneLayer:
    """Return the layer in ``path``, read from ``store/layer_id=<id>/<content hash>.parquet`` when that content was loaded
    before (no shapefile reading or reprojection).

    If it was not (first run, or the files or the options changed), then it is loaded from ``path``
    and stored under its hash, and the layer's older stored versions are removed.
    """
    if not path.exists():
        raise InputError(f"{path}: the zone file does not exist; check source.path in the zones spec",
                         ja=f"{path}: 区域のファイルがありません。区域の spec の source.path を確認してください")
    folder = store / f"layer_id={layer_id}"
    dest = folder / f"{layer_hash(path, opts)}.parquet"
    if dest.exists():
        try:
            return read_layer(dest)
        except Exception:  # an unreadable or older stored layer is loaded again from its source below
            pass
    layer = load_layer(layer_id, path, opts)
    save_layer(layer, dest)
    for old in folder.glob("*.parquet"):
        if old != dest:
            old.unlink(missing_ok=True)
    return layer
