"""Export specs (``specs/exports/<export_id>.yml``) and the build of one export.

An export names its feeds (by id, tag, prefecture, municipality, or a glob over the feed ids in
the lake), may ingest files that have no feed spec, and may cut the result by area, dates,
agencies or routes. ``build_export`` merges the latest version of each feed, cuts it, writes
the GTFS zip and the analytical formats, validates the result against its inputs and updates
the catalog. A build whose inputs and spec are unchanged does nothing and says so.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from warehouse import storage
from noriba.specs import ID_PATTERN, SpecError, load_specs, parse_spec, project_root
from warehouse.workspace import Workspace
from transforms.schema import default_specs_dir
from transforms.specfile import Anything, Date, ListOf, Map, Number, OneOf, Text, check_shape, field_of, is_under, load_yaml, shown
from warehouse.versions import latest_versions  # noqa: F401 (the lake's latest versions; importers of noriba.exports use it)

Progress = Callable[[str], None]
FORMATS = ("gtfs", "parquet", "duckdb", "csv")
#: Bumped when the way exports are built changes, so a rebuild is not mistaken for "unchanged".
EXPORT_FORMAT = 2
RESERVED_IDS = {"gtfs", "parquet", "site", "reports", "files"}
#: Largest GeoJSON file an export's area.polygon may name (bytes).
MAX_AREA_BYTES = 64 << 20
_FEED_KEYS = {"ids", "tags", "prefecture", "municipality", "lake"}
_NAMES = OneOf(Text(numbers=True), ListOf(Text(numbers=True)), expected="a name or a list of names, e.g. [a, b]")
#: Every key of an export spec, with the type of its value.
EXPORT_SHAPE = Map({
    "id": Text(), "name": Text(), "name_en": Text(), "description": Text(),
    "feeds": Map({"ids": _NAMES, "tags": _NAMES, "lake": _NAMES, "prefecture": Text(),
                  "municipality": Text(expected='a code in quotes such as "99001", or a name')}),
    "ingest": ListOf(Map({**{k: Text() for k in ("glob", "path", "id", "id_prefix", "strip", "timezone", "encoding", "profile",
                                                 "name")},
                          "policy": Anything()})),  # a feed spec's policy, checked by parse_spec
    "namespaces": Map(values=Text()),
    "area": Map({"bbox": ListOf(Number()), "polygon": OneOf(Text(), ListOf(ListOf(Number())),
                                                            expected="a GeoJSON file or a list of [lon, lat] points")}),
    "dates": Map({"start": Date(), "end": Date()}),
    "flex_zones": Text(expected="whole or clip"),
    "agencies": _NAMES, "routes": _NAMES,
    "merge": Map({"stop_distance_m": Number(lo=0)}),
    "formats": OneOf(Text(), ListOf(Text())),
    "license": Map({"id": Text(), "attribution": Text(), "url": Text(), "text": Text()}),
    "publisher": Map({"name": Text(), "url": Text(), "email": Text(), "lang": Text(), "contact_url": Text()}),
    "attribution": Text(), "country_code": Text(), "subdivision": Text(),
})


@dataclass(frozen=True)
class IngestEntry:
    """A file ingested ad hoc (no feed spec) as feed ``feed_id``."""

    feed_id: str
    path: Path
    timezone: str = "UTC"
    encoding: str | None = None
    profile: str = "gtfs"
    name: str = ""
    policy: dict | None = None  # the feed's severity policy, as in a feed spec (default: the default policy)


@dataclass(frozen=True)
class ExportSpec:
    id: str
    name: str
    name_en: str = ""
    description: str = ""
    feed_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    prefecture: str | None = None
    municipality: str | None = None
    lake_globs: tuple[str, ...] = ()
    ingest: tuple[dict, ...] = ()  # entries as written; resolve_ingest() finds their files
    namespaces: dict = field(default_factory=dict)
    area: dict | None = None  # {"bbox": [w, s, e, n]} or {"polygon": [[lon, lat], ...]} (a file is read on load)
    dates: tuple[date | None, date | None] | None = None
    agencies: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    flex_zones: str = "whole"  # a GTFS-Flex zone crossing the area's edge: kept whole or clipped (warehouse.extract)
    stop_distance_m: float = 30.0
    formats: tuple[str, ...] = FORMATS
    license: dict = field(default_factory=dict)
    publisher: dict = field(default_factory=dict)
    country_code: str | None = None
    subdivision: str | None = None
    spec_path: Path | None = None
    raw: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:60] or "feed"


def parse_export_spec(doc: object, *, where: str, root: Path, expect_id: str | None = None) -> ExportSpec:
    """Return the ExportSpec in ``doc``. If anything is wrong, raise SpecError listing every problem with file and field."""
    if not isinstance(doc, dict):
        raise SpecError([f"{where}: the file must be a YAML mapping (key: value lines)"])
    shape_problems, dropped, doc = check_shape(doc, EXPORT_SHAPE)
    problems = [f"{where}: {f}: {msg}" for f, msg in shape_problems]

    def bad(f: str, msg: str) -> None:
        if not is_under(f, dropped):  # a value of the wrong type is reported once, by the shape check
            problems.append(f"{where}: {f}: {msg}")

    eid = doc.get("id")
    if not isinstance(eid, str) or not ID_PATTERN.match(eid):
        bad("id", f"{eid!r} is not a valid export id (lowercase letters, digits and '-')")
    elif eid in RESERVED_IDS:
        bad("id", f"'{eid}' is reserved (it names a folder of exports/); choose another")
    elif expect_id and eid != expect_id:
        bad("id", f"'{eid}' must equal the file name '{expect_id}'")
    feeds = doc.get("feeds") or {}
    if not isinstance(feeds, dict):
        bad("feeds", "must be a mapping with any of: " + ", ".join(sorted(_FEED_KEYS)))
        feeds = {}

    def str_list(value, f: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            bad(f, "must be a list of names, e.g. [a, b]")
            return ()
        return tuple(str(v) for v in value)

    ingest: list[dict] = []
    raw_ingest = doc.get("ingest") or []
    if not isinstance(raw_ingest, list):
        bad("ingest", "must be a list of {glob: ..., id_prefix: ...} or {path: ..., id: ...}")
        raw_ingest = []
    for n, e in enumerate(raw_ingest):
        f = f"ingest[{n}]"
        if not isinstance(e, dict):
            bad(f, "must be a mapping")
            continue
        if bool(e.get("glob")) == bool(e.get("path")):
            bad(f, "give exactly one of `glob` (many files) or `path` (one file, with `id`)")
            continue
        if e.get("path") and not e.get("id"):
            bad(f"{f}.id", "an ingested `path` needs the feed `id` to ingest it as")
        if e.get("id") and not ID_PATTERN.match(str(e["id"])):
            bad(f"{f}.id", f"{e['id']!r} is not a valid feed id")
        if e.get("id_prefix") and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(e["id_prefix"])):
            bad(f"{f}.id_prefix", f"{e['id_prefix']!r} must be lowercase letters, digits and '-'")
        try:
            parse_spec({"id": "x", "kind": "gtfs", "source": {"path": "x"}, "timezone": e.get("timezone", "UTC"),
                        "profile": e.get("profile", "gtfs"), **({"encoding": e["encoding"]} if e.get("encoding") else {}),
                        **({"policy": e["policy"]} if e.get("policy") is not None else {})},
                       where=f"{where}: {f}", root=root)
        except SpecError as exc:
            problems.extend(p for p in exc.problems if not is_under(f + "." + field_of(p, f"{where}: {f}"), dropped))
            continue
        ingest.append(dict(e))
    area = doc.get("area")
    if area is not None:
        area = _parse_area(area, root, bad)
    dates = doc.get("dates")
    window = None
    if dates is not None:
        if not isinstance(dates, dict) or not set(dates) <= {"start", "end"}:
            bad("dates", "must be {start: YYYY-MM-DD, end: YYYY-MM-DD} (either may be omitted)")
        else:
            try:
                window = tuple(date.fromisoformat(str(dates[k])) if dates.get(k) else None for k in ("start", "end"))
                if window[0] and window[1] and window[0] > window[1]:
                    bad("dates", "start is after end")
            except ValueError:
                bad("dates", "dates must be written YYYY-MM-DD, e.g. 2026-04-01")
    merge = doc.get("merge") or {}
    dist = 30.0
    if not isinstance(merge, dict) or set(merge) - {"stop_distance_m"}:
        bad("merge", "only `stop_distance_m` (metres within which same-name stops are unified) may be set")
    else:
        try:
            dist = float(merge.get("stop_distance_m", 30.0))
            if dist < 0:
                raise ValueError
        except (TypeError, ValueError):
            bad("merge.stop_distance_m", "must be a number of metres, 0 or more (0 turns unification off)")
    formats = str_list(doc.get("formats"), "formats") or FORMATS
    for fmt in formats:
        if fmt not in FORMATS:
            bad("formats", f"{fmt!r} is not a format; use any of {', '.join(FORMATS)}")
    if "gtfs" not in formats:
        bad("formats", "gtfs is always built (it is what the other formats are made from); list it")
    for k in ("license", "publisher", "namespaces"):
        if doc.get(k) is not None and not isinstance(doc.get(k), dict):
            bad(k, "must be a mapping")
    lic = doc.get("license") or {}
    if isinstance(lic, dict) and not lic.get("id") and not lic.get("text"):
        bad("license", "give the licence of the export: {id: CC-BY-4.0, attribution: ...} (SPDX id) or {text: ...}")
    ids = str_list(feeds.get("ids"), "feeds.ids")
    for n, fid in enumerate(ids):
        if not ID_PATTERN.match(fid):
            bad(f"feeds.ids[{n}]", f"{fid!r} is not a valid feed id (lowercase letters, digits and '-')")
    tags = str_list(feeds.get("tags"), "feeds.tags")
    globs = str_list(feeds.get("lake"), "feeds.lake")
    if not (ids or tags or globs or feeds.get("prefecture") or feeds.get("municipality") or ingest):
        bad("feeds", "name at least one feed: feeds.ids, feeds.tags, feeds.prefecture, feeds.municipality, feeds.lake or ingest")
    namespaces = doc.get("namespaces") or {}
    if isinstance(namespaces, dict):
        for k, v in namespaces.items():
            if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", v):
                bad(f"namespaces.{k}", f"{v!r} must be a short prefix of letters, digits, '-' or '_'")
        if len(set(namespaces.values())) != len(namespaces):
            bad("namespaces", "two feeds have the same namespace")
    flex_zones = str(doc.get("flex_zones") or "whole")
    if flex_zones not in ("whole", "clip"):
        bad("flex_zones", f"{flex_zones!r} is not whole or clip (what happens to a Flex zone crossing the area's edge)")
    if problems:
        raise SpecError(problems)
    return ExportSpec(
        id=eid, name=str(doc.get("name") or eid), name_en=str(doc.get("name_en") or ""), description=str(doc.get("description") or ""),
        feed_ids=ids, tags=tags, prefecture=str(feeds["prefecture"]) if feeds.get("prefecture") else None,
        municipality=str(feeds["municipality"]) if feeds.get("municipality") else None, lake_globs=globs, ingest=tuple(ingest),
        namespaces=dict(namespaces), area=area, dates=window, agencies=str_list(doc.get("agencies"), "agencies"),
        routes=str_list(doc.get("routes"), "routes"), flex_zones=flex_zones, stop_distance_m=dist, formats=tuple(formats), license=dict(lic),
        publisher=dict(doc.get("publisher") or {}), country_code=doc.get("country_code"), subdivision=doc.get("subdivision"),
        raw=doc,
    )


def resolve_ingest(spec: ExportSpec, root: Path) -> list[IngestEntry]:
    """Return the files an export ingests ad hoc, each with its feed id. If an entry matches no file, raise SpecError."""
    out, problems = [], []
    where = str(spec.spec_path or spec.id)
    for n, e in enumerate(spec.ingest):
        pattern = str(e.get("glob") or e.get("path"))
        base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        paths = sorted(base.parent.glob(base.name)) if e.get("glob") else [base]
        if not paths or not all(p.exists() for p in paths):
            problems.append(f"{where}: ingest[{n}].{'glob' if e.get('glob') else 'path'}: {pattern!r} matches no file "
                            f"(relative paths start at {root})")
            continue
        for p in paths:
            stem = p.name[:-4] if p.name.endswith(".zip") else p.name
            if e.get("strip"):
                stem = stem.replace(str(e["strip"]), "")
            fid = str(e["id"]) if e.get("path") else f"{e.get('id_prefix', '')}{_slug(stem)}"
            out.append(IngestEntry(feed_id=fid, path=p, timezone=str(e.get("timezone", "UTC")), encoding=e.get("encoding"),
                                   profile=str(e.get("profile", "gtfs")), name=str(e.get("name") or ""),
                                   policy=e.get("policy")))
    if problems:
        raise SpecError(problems)
    return out


def _parse_area(area, root: Path, bad) -> dict | None:
    if not isinstance(area, dict) or len(area) != 1 or not set(area) <= {"bbox", "polygon"}:
        bad("area", "give either {bbox: [west, south, east, north]} or {polygon: file.geojson} / {polygon: [[lon, lat], ...]}")
        return None
    if "bbox" in area:
        b = area["bbox"]
        if not (isinstance(b, list) and len(b) == 4 and all(isinstance(x, (int, float)) for x in b)) or b[0] >= b[2] or b[1] >= b[3]:
            bad("area.bbox", "must be [west, south, east, north] in degrees, west < east and south < north")
            return None
        return {"bbox": [float(x) for x in b]}
    poly = area["polygon"]
    if isinstance(poly, str):
        p = Path(poly) if Path(poly).is_absolute() else root / poly
        try:
            if p.stat().st_size > MAX_AREA_BYTES:
                raise ValueError(f"larger than {MAX_AREA_BYTES:,} bytes")
            gj = json.loads(p.read_text(encoding="utf-8"))
            geom = gj.get("geometry", gj) if gj.get("type") != "FeatureCollection" else gj["features"][0]["geometry"]
            kind = geom.get("type")
        except (OSError, ValueError) as exc:
            bad("area.polygon", f"{poly}: cannot be read as GeoJSON ({exc})")
            return None
        except (AttributeError, KeyError, IndexError, TypeError):
            bad("area.polygon", f"{poly}: not a GeoJSON Feature, FeatureCollection or geometry")
            return None
        if kind not in ("Polygon", "MultiPolygon"):
            bad("area.polygon", f"{poly}: the geometry must be a Polygon or MultiPolygon, not {shown(kind)}")
            return None
        return {"geojson": geom, "source": str(poly)}
    if not (isinstance(poly, list) and len(poly) >= 3 and all(isinstance(c, list) and len(c) == 2 for c in poly)):
        bad("area.polygon", "must be a GeoJSON file or a list of at least 3 [lon, lat] points")
        return None
    return {"geojson": {"type": "Polygon", "coordinates": [poly + ([poly[0]] if poly[0] != poly[-1] else [])]}}


def load_export_spec(path: Path, *, specs_dir: Path | None = None) -> ExportSpec:
    """Return the export spec in ``path``. If it is not valid, raise SpecError naming the file and fields."""
    specs_dir = specs_dir or path.resolve().parent.parent
    doc = load_yaml(path, dates=False)  # dates stay text, so a wrong date is reported with its field, not as a crash
    spec = parse_export_spec(doc, where=str(path), root=project_root(specs_dir), expect_id=path.stem)
    return ExportSpec(**{**spec.__dict__, "spec_path": path})


def load_export_each(specs_dir: Path | None = None) -> tuple[list[ExportSpec], list[str]]:
    """Return (the valid export specs under ``specs_dir/exports``, every problem of the others). One bad file costs only itself."""
    specs_dir = specs_dir or default_specs_dir()
    problems, out = [], []
    for path in sorted((specs_dir / "exports").glob("*.y*ml")):
        try:
            out.append(load_export_spec(path, specs_dir=specs_dir))
        except SpecError as exc:
            problems.extend(exc.problems)
    return out, problems


def load_export_specs(specs_dir: Path | None = None) -> list[ExportSpec]:
    """Return every export spec under ``specs_dir/exports``. If any is wrong, raise SpecError listing all problems."""
    out, problems = load_export_each(specs_dir)
    if problems:
        raise SpecError(problems)
    return out


def export_feed_specs(spec: ExportSpec, feed_specs) -> list:
    """Return the feed specs an export selects by id, tag, prefecture or municipality (code or name)."""
    out = []
    for s in feed_specs:
        muni = s.municipality or {}
        if (s.id in spec.feed_ids or (spec.tags and set(spec.tags) & set(s.tags))
                or (spec.prefecture and spec.prefecture in (muni.get("prefecture"), muni.get("prefecture_code")))
                or (spec.municipality and spec.municipality in (muni.get("code"), muni.get("name")))):
            out.append(s)
    return out


def select_feeds(spec: ExportSpec, ws: Workspace, *, feed_specs=None, specs_dir: Path | None = None) -> list[str]:
    """Return the feed ids of an export in merge order: listed ids first, then the others by id.

    If a named feed has no version in the lake yet, then raise SpecError saying how to ingest it.
    """
    feed_specs = load_specs() if feed_specs is None else feed_specs
    lake = latest_versions(ws)
    chosen = list(spec.feed_ids)
    chosen += [e.feed_id for e in resolve_ingest(spec, project_root(specs_dir or default_specs_dir()))] if spec.ingest else []
    chosen += sorted(s.id for s in export_feed_specs(spec, feed_specs))
    for g in spec.lake_globs:
        chosen += sorted(f for f in lake if fnmatch.fnmatch(f, g))
    chosen = list(dict.fromkeys(chosen))
    where = str(spec.spec_path or spec.id)
    missing = [f for f in chosen if f not in lake]
    blocked = [f for f in missing if f in latest_versions(ws, passing_only=False)]
    if blocked:
        raise SpecError([f"{where}: feeds: every version of {f} was blocked by its severity policy; fix the feed or its policy, "
                         f"or leave it out of the export" for f in blocked])
    if missing:
        spec_ids = {s.id for s in feed_specs}
        raise SpecError([f"{where}: feeds: {f} has no version in {ws.lake} yet; "
                         + (f"run `noriba run {f}` first" if f in spec_ids else "ingest it (`noriba ingest FILE --id " + f + "`) or list it under `ingest:`")
                         for f in missing])
    if not chosen:
        raise SpecError([f"{where}: feeds: the selection matches no feed (check ids, tags, prefecture, municipality)"])
    return chosen


def _namespaces(spec: ExportSpec, feed_ids: list[str]) -> dict[str, str]:
    """Return a short namespace per feed: the spec's, else the feed id without the prefix all the feeds share."""
    common = ""
    if len(feed_ids) > 1:
        first, last = min(feed_ids), max(feed_ids)
        n = 0
        while n < min(len(first), len(last)) and first[n] == last[n]:
            n += 1
        common = first[:n]
        common = common[: common.rfind("-") + 1] if "-" in common else ""
    out = {}
    for f in feed_ids:
        ns = spec.namespaces.get(f) or (f[len(common):] if common and len(f) > len(common) else f)
        while ns in out.values():
            ns = f
        out[f] = ns
    return out


def export_dir(ws: Workspace, export_id: str) -> Path:
    return ws.exports / export_id


def build_export(export_id: str | ExportSpec, ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                 specs_dir: Path | None = None, validate: bool = True) -> dict:
    """Return what building one export did: its version, files, manifest path and validation summary.

    If neither the spec nor any input version changed since the last build, then nothing is
    rebuilt and ``status`` is ``unchanged``. A build holds the export's lock (two builds of one
    export take turns) and first removes the temporary folders a killed build left; a build killed
    after its version folder was in place is finished by the next one (crosswalk, latest.json, catalog).
    """
    from warehouse.runstate import feed_lock

    specs_dir = specs_dir or default_specs_dir()
    spec = export_id if isinstance(export_id, ExportSpec) else load_export_spec(specs_dir / "exports" / f"{export_id}.yml", specs_dir=specs_dir)
    ws.ensure()
    with feed_lock(ws, f"export.{spec.id}"):  # "." is in no feed id: no clash with a feed's lock
        out = _build_locked(spec, ws, progress=progress, force=force, specs_dir=specs_dir, validate=validate)
        storage.push_tree(ws, export_dir(ws, spec.id))  # object-store home: the build, then the catalog
        storage.push_tree(ws, ws.exports)
        return out


def _build_locked(spec: ExportSpec, ws: Workspace, *, progress: Progress | None, force: bool, specs_dir: Path,
                  validate: bool) -> dict:
    from noriba.pipeline import run_feed
    from warehouse import merge as mg
    from warehouse.export import sha256_of
    from warehouse.runstate import replace_dir, sweep

    say = progress or (lambda m: None)
    for e in resolve_ingest(spec, project_root(specs_dir)):
        fs = parse_spec({"id": e.feed_id, "kind": "gtfs", "source": {"path": str(e.path)}, "timezone": e.timezone,
                         "profile": e.profile, **({"encoding": e.encoding} if e.encoding else {}),
                         **({"name": e.name} if e.name else {}), **({"policy": e.policy} if e.policy is not None else {})},
                        where=str(spec.spec_path), root=project_root(specs_dir))
        res = run_feed(fs, ws, progress=None)
        say(res.get("message") or f"{e.feed_id}: version {res['feed_version']} ingested")
    feed_specs = load_specs(specs_dir)
    storage.pull(ws, ws.lake / storage.META_TABLE)  # object-store home: every feed's versions, as stored
    feed_ids = select_feeds(spec, ws, feed_specs=feed_specs, specs_dir=specs_dir)
    lake = latest_versions(ws)
    ns = _namespaces(spec, feed_ids)
    inputs = [mg.MergeInput(f, lake[f]["feed_version"], ns[f]) for f in feed_ids]
    for i in inputs:
        storage.pull_version(ws, i.feed_id, i.feed_version)
    version = hashlib.sha256(json.dumps({"spec": spec.fingerprint(), "inputs": [(i.feed_id, i.feed_version) for i in inputs],
                                         "format": EXPORT_FORMAT}).encode()).hexdigest()[:16]
    root = export_dir(ws, spec.id)
    out = root / version
    # what a killed build left: its folder (.<version>.tmp), swap and file copies; not the catalog's .latest.zip.tmp
    sweep(root, "." + "?" * len(version) + ".tmp", ".*.old-*", ".crosswalk.csv.tmp", ".latest.json.tmp", "crosswalk.tmp")
    if not force and (out / "manifest.json").exists():
        if _latest(root) == version:
            return {"export_id": spec.id, "export_version": version, "status": "unchanged", "dir": str(out),
                    "manifest": str(out / "manifest.json"),
                    "message": f"{spec.id}: inputs and spec unchanged, still version {version}; nothing to do"}
        say(f"{spec.id}: inputs and spec unchanged; finishing version {version} left by an interrupted build")
        _publish_version(ws, root, version, say, specs_dir=specs_dir)
        return {"export_id": spec.id, "export_version": version, "status": "unchanged", "finished": True, "dir": str(out),
                "manifest": str(out / "manifest.json"),
                "message": f"{spec.id}: inputs and spec unchanged; finished version {version} left by an interrupted build"}
    tmp = root / f".{version}.tmp"
    tmp.mkdir(parents=True)
    say(f"{spec.id}: merging {len(inputs)} feed(s)")
    previous = mg.read_crosswalk(root / "crosswalk.csv")
    publisher = {"name": spec.publisher.get("name") or spec.name, "url": spec.publisher.get("url"),
                 "email": spec.publisher.get("email"), "lang": spec.publisher.get("lang"),
                 "contact_url": spec.publisher.get("contact_url")}
    work, crosswalk = mg.merge(ws, inputs, previous_crosswalk=previous, stop_distance_m=spec.stop_distance_m,
                               publisher=publisher, version=f"{spec.id}-{version}", progress=say)
    manifest = {"export_id": spec.id, "export_version": version, "name": spec.name, "name_en": spec.name_en,
                "license": spec.license, "publisher": publisher, **work.manifest,
                "blocked_versions_skipped": {f: lake[f]["newer_blocked"] for f in feed_ids if lake[f].get("newer_blocked")}}
    if spec.area or spec.dates or spec.agencies or spec.routes:
        from warehouse.extract import extract, area_geometry

        say(f"{spec.id}: cutting by {', '.join(k for k, v in (('area', spec.area), ('dates', spec.dates), ('agency', spec.agencies), ('route', spec.routes)) if v)}")
        manifest["extract"] = extract(work, area=area_geometry(spec.area) if spec.area else None, dates=spec.dates,
                                      agencies=spec.agencies, routes=spec.routes, zones=spec.flex_zones)
        manifest["rows_out"] = work.rows()
    zip_path = tmp / f"{spec.id}.zip"
    say(f"{spec.id}: writing the GTFS zip")
    mg.write_feed(work, zip_path, tables_dir=tmp / "tables")
    mg.write_crosswalk(crosswalk, tmp / "crosswalk.csv")
    files = {"gtfs": {"path": zip_path.name, "sha256": sha256_of(zip_path), "bytes": zip_path.stat().st_size},
             "crosswalk": {"path": "crosswalk.csv", "sha256": sha256_of(tmp / "crosswalk.csv")}}
    if validate:
        say(f"{spec.id}: validating the result")
        vdate = mg.validation_date_of(ws, inputs)
        found = mg.validate_zip(zip_path, validation_date=vdate, profile=work.profile, work_dir=tmp)
        before = mg.input_notices(ws, inputs)
        new = mg.new_errors(found, before)
        new_warn = mg.new_errors(found, before, severity="WARNING")
        status = "new errors" if new else "new warnings" if new_warn else "no new errors or warnings"
        manifest["validation"] = {"validation_date": vdate.isoformat() if vdate else None, "found": found, "inputs": before,
                                  "new_errors": new, "new_warnings": new_warn, "status": status}
    analytics = [f for f in spec.formats if f != "gtfs"]
    if analytics:
        from warehouse.analytics import write_analytics

        say(f"{spec.id}: writing {', '.join(analytics)}")
        for fmt, info in write_analytics(work, tmp, formats=analytics, name=spec.id).items():
            files[fmt] = info
    manifest["files"] = files
    manifest["service"] = _service_dates(work)
    manifest["bbox"] = _bbox(work)
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    work.con.close()
    replace_dir(tmp, out)
    _publish_version(ws, root, version, say, specs_dir=specs_dir)
    return {"export_id": spec.id, "export_version": version, "status": "new", "dir": str(out), "gtfs_zip": str(out / zip_path.name),
            "manifest": str(out / "manifest.json"), "validation": manifest.get("validation", {}).get("status"),
            "new_errors": manifest.get("validation", {}).get("new_errors", {}),
            "new_warnings": manifest.get("validation", {}).get("new_warnings", {}), "problems": manifest.get("problems", []),
            "collisions": manifest.get("collision_counts", {}), "unified_stops": len(manifest.get("unified_stops", []))}


def _latest(root: Path) -> str | None:
    """Return the export version latest.json names, or None."""
    try:
        return json.loads((root / "latest.json").read_text(encoding="utf-8")).get("export_version")
    except (OSError, ValueError, AttributeError):
        return None


def _publish_version(ws: Workspace, root: Path, version: str, say: Progress, *, specs_dir: Path | None) -> None:
    """Make the built folder ``root/version`` the export's latest: its crosswalk, latest.json (each replaced whole), the catalog."""
    import os

    for name, data in (("crosswalk.csv", (root / version / "crosswalk.csv").read_bytes()),
                       ("latest.json", json.dumps({"export_version": version, "dir": version}).encode())):
        part = root / f".{name}.tmp"
        part.write_bytes(data)
        os.replace(part, root / name)
    say(f"{root.name}: updating the catalog")
    update_catalog(ws, specs_dir=specs_dir)


def export_locations(specs_dir: Path | None = None) -> dict[str, dict]:
    """Return {export_id: {country_code, subdivision_name}} from the export specs; {} if any spec is broken."""
    try:
        specs = load_export_specs(specs_dir)
    except SpecError:  # a broken spec elsewhere must not break the catalog
        return {}
    return {s.id: {"country_code": s.country_code, "subdivision_name": s.subdivision} for s in specs}


def update_catalog(ws: Workspace, *, specs_dir: Path | None = None) -> Path:
    """Return the catalog page after rebuilding the site, with each export's location from its spec."""
    from warehouse.catalog import build_site

    if ws.remote is not None:  # object-store home: the lake's latest versions (and their stops, for the map) as stored
        # (and their Flex tables) and the exports as stored, so the page (sent back below) lists every download, also from
        # a new working folder
        storage.pull(ws, ws.exports)
        storage.pull(ws, ws.lake / storage.META_TABLE)
        from warehouse.catalog import FLEX_TABLES  # a feed's zones and booking rules are counted on its page

        tables = ["gtfs_stops", *(f"gtfs_{t}" for t in FLEX_TABLES)]
        storage.pull_files(ws, [ws.lake_partition(t, fid, m["feed_version"]) / "part-0.parquet"
                                for fid, m in latest_versions(ws).items() for t in tables])
    page = build_site(ws, locations=export_locations(specs_dir))
    storage.push_tree(ws, ws.exports)
    return page


def _service_dates(work) -> dict:
    parts = []
    if "calendar" in work.tables:
        parts.append("SELECT min(start_date) AS s, max(end_date) AS e FROM w_calendar")
    if "calendar_dates" in work.tables:
        parts.append("SELECT min(date), max(date) FROM w_calendar_dates WHERE exception_type = 1")
    if not parts:
        return {"start": None, "end": None}
    s, e = work.con.sql(f"SELECT min(s)::VARCHAR, max(e)::VARCHAR FROM ({' UNION ALL '.join(parts)})").fetchall()[0]
    return {"start": s, "end": e}


def _bbox(work) -> list[float] | None:
    if "stops" not in work.tables:
        return None
    r = work.con.sql("SELECT min(stop_lon), min(stop_lat), max(stop_lon), max(stop_lat) FROM w_stops").fetchall()[0]
    return None if r[0] is None else [round(x, 6) for x in r]
