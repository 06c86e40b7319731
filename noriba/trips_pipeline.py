"""The trips pipeline: fetch → parse/validate → lake (by source and month) → publish → privacy-safe exports.

Trip sources and zone layers are specs under ``specs/trips/`` (kinds ``trips`` and ``zones``).
Every file is archived as received under ``raw/<source_id>/<sha256><ext>``; the source version is a
hash of the files' hashes and the spec's mapping, so an unchanged delivery makes no new version.
The lake keeps the latest version of each source, partitioned by source and month:
``lake/trips_fct_trips/source_id=<id>/month=YYYY-MM/*.parquet``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from noriba.fetch import archive_file, archive_suffix, refuse_links_outside
from noriba.memory import avoid_huge_pages
from noriba.specs import FeedSpec, SpecError, load_trip_specs
from warehouse.workspace import Workspace
from transforms.adapters import InputError, Progress
from transforms.trips.readers import list_files
from transforms.trips.spec import trip_options, zone_options
from transforms.trips.stage import stage_source
from transforms.trips.zones import ZoneLayer, load_layer, stored_layer
from warehouse import storage
from warehouse.runstate import feed_lock, replace_dir, sweep

VERSION_ID_LENGTH = 16
#: Lake tables of one trips source, each under lake/<table>/source_id=<id>/.
LAKE_TABLES = ("trips_fct_trips", "trips_quarantine", "trips_rule_counts", "trips_files", "trips_notices", "trips_meta")
#: Zone layers as loaded (WGS84 WKB), by layer and content hash: lake/trips_zone_layers/layer_id=<id>/<hash>.parquet.
ZONE_LAYER_STORE = "trips_zone_layers"


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


def zone_layer(spec: FeedSpec, *, cache: dict | None = None, ws: Workspace | None = None) -> ZoneLayer:
    """Return the zone layer a zones spec declares (cached per spec id within one run).

    With a workspace, the layer as loaded is kept in its lake by content hash, so a run after the
    first one (the zones spec's own run, or an earlier trips run) reads it back instead of reading
    and reprojecting the source file; a changed file or spec loads it again.
    """
    if cache is not None and spec.id in cache:
        return cache[spec.id]
    if ws is not None:
        layer = stored_layer(spec.id, spec.source.path, zone_options(spec), ws.lake / ZONE_LAYER_STORE)
    else:
        layer = load_layer(spec.id, spec.source.path, zone_options(spec))
    if cache is not None:
        cache[spec.id] = layer
    return layer


def _layer_for(name: str | None, specs: dict[str, FeedSpec], *, where: str, cache: dict, ws: Workspace | None = None) -> ZoneLayer | None:
    if not name:
        return None
    spec = specs.get(name)
    if spec is None or spec.kind != "zones":
        raise SpecError([f"{where}: trips.zones.layer / municipalities.layer: no zones spec '{name}' under specs/trips/"])
    return zone_layer(spec, cache=cache, ws=ws)


def fetch_trips(spec: FeedSpec, ws: Workspace) -> dict:
    """Return the archived files of a trips source and the version they make. If the source is missing, raise InputError."""
    opts = trip_options(spec)
    root = spec.source.path
    if root is None:
        raise InputError(f"{spec.id}: trips sources are read from source.path (a folder or file)",
                         ja=f"{spec.id}: 乗車記録は source.path（フォルダかファイル）から読みます。spec に source.path を書いてください")
    if not root.exists():
        raise InputError(f"{spec.id}: source {root} does not exist; check source.path in {spec.spec_path or 'the spec'}",
                         ja=f"{spec.id}: {root} がありません。{spec.spec_path or 'spec'} の source.path を確認してください")
    ws.raw_dir(spec.id)  # a hostile id is refused before anything is read
    paths = list_files(root, opts.files)
    base = root if root.is_dir() else root.parent
    if root.is_dir():
        refuse_links_outside(paths, root, feed_id=spec.id)
    from concurrent.futures import ThreadPoolExecutor

    def archive(p: Path) -> tuple[Path, str, int]:
        return archive_file(ws, spec.id, p, max_bytes=spec.source.max_bytes, suffix=archive_suffix(p.name.lower()))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # hashlib and file reads release the GIL
        archived = list(pool.map(archive, paths))
    listing = [{"file": p.relative_to(base).as_posix(), "sha256": sha, "raw_path": str(target), "bytes": size}
               for p, (target, sha, size) in zip(paths, archived)]
    storage.push(ws, [target for target, _, _ in archived], immutable=True)  # object-storage home: read wherever the parse runs
    h = hashlib.sha256()
    for f in listing:
        h.update(f"{f['file']}\t{f['sha256']}\n".encode())
    h.update(json.dumps(spec.options, sort_keys=True, default=str).encode())
    h.update(spec.timezone.encode())
    return {"source_id": spec.id, "feed_version": h.hexdigest()[:VERSION_ID_LENGTH], "files": listing, "root": str(base),
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def lake_version(ws: Workspace, source_id: str) -> str | None:
    """Return the version of the source now in the lake, or None."""
    part = ws.lake / "trips_meta" / f"source_id={source_id}" / "part-0.parquet"
    if not part.exists():
        return None
    return pq.read_table(part, columns=["feed_version"]).column("feed_version")[0].as_py()


def parse_validate_trips(spec: FeedSpec, ws: Workspace, fetched: dict, *, specs: dict[str, FeedSpec] | None = None,
                         progress: Progress | None = None, cache: dict | None = None) -> dict:
    """Return the staged version of a trips source: canonical trips, quarantine, rule counts, per-file counts.

    The staging folders a killed run of the source left are removed first (under the source's lock).
    """
    with feed_lock(ws, spec.id):
        sweep(ws.staging / spec.id, "*")
        return _parse_validate_locked(spec, ws, fetched, specs=specs, progress=progress, cache=cache)


def _parse_validate_locked(spec: FeedSpec, ws: Workspace, fetched: dict, *, specs: dict[str, FeedSpec] | None,
                           progress: Progress | None, cache: dict | None) -> dict:
    avoid_huge_pages()
    opts = trip_options(spec)
    specs = specs if specs is not None else {s.id: s for s in load_trip_specs()}
    cache = cache if cache is not None else {}
    where = str(spec.spec_path or spec.id)
    zones = _layer_for(opts.zone_layer, specs, where=where, cache=cache, ws=ws)
    munis = _layer_for(opts.municipality_layer, specs, where=where, cache=cache, ws=ws)
    ver = fetched["feed_version"]
    staging = ws.staging / spec.id / f"{ver}-{uuid.uuid4().hex[:8]}"
    root = Path(fetched["root"])
    # read the archived copies (immutable, named by content), under the names the operator gave them; on another
    # machine than the fetch's (object-storage home), this working folder's copy, got from the store
    archived = [f["raw_path"] if Path(f["raw_path"]).is_file() else ws.raw_dir(spec.id) / Path(f["raw_path"]).name
                for f in fetched["files"]]
    storage.pull_files(ws, [Path(a) for a in archived])
    link_root = staging / "_files"
    for f, src in zip(fetched["files"], archived):
        dst = link_root / f["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, dst)
    paths = [link_root / f["file"] for f in fetched["files"]]
    _say(progress, f"{spec.id}: reading {len(paths)} file(s) from {root}")
    staged = stage_source(paths, root=link_root, opts=opts, source_id=spec.id, feed_version=ver, timezone=spec.timezone,
                          out_dir=staging / "out", encoding=spec.encoding, zones=zones, municipalities=munis,
                          municipality_name=None if munis else (spec.municipality or {}).get("name"), progress=progress)
    shutil.rmtree(link_root, ignore_errors=True)
    by_sev: dict[str, int] = {}
    by_code: dict[str, int] = {}
    for r in staged.rule_counts:
        by_sev[r["severity"]] = by_sev.get(r["severity"], 0) + r["rows"]
        by_code[r["code"]] = by_code.get(r["code"], 0) + r["rows"]
    meta = {
        "source_id": spec.id, "feed_version": ver, "kind": "trips", "source": str(root), "fetched_at": fetched["fetched_at"],
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": json.dumps(fetched["files"], ensure_ascii=False), "months": json.dumps(staged.months),
        "rows_in": staged.rows_in, "rows_accepted": staged.accepted, "rows_quarantined": staged.quarantined,
        "rows_excluded": staged.excluded,
        "errors": by_sev.get("ERROR", 0), "warnings": by_sev.get("WARNING", 0), "infos": by_sev.get("INFO", 0),
        "notice_codes": json.dumps(by_code), "spec": json.dumps({**spec.metadata(), "trips": spec.options}, ensure_ascii=False, default=str),
        "zone_layer": opts.zone_layer, "municipality_layer": opts.municipality_layer,
        "source_sha256": hashlib.sha256("".join(f["sha256"] for f in fetched["files"]).encode()).hexdigest(),
    }
    pq.write_table(pa.Table.from_pylist([meta]), staging / "out" / "meta.parquet")
    layers = [layer for layer in (zones, munis) if layer is not None]
    if layers:
        pq.write_table(pa.Table.from_pylist([r for layer in layers for r in layer.rows()]), staging / "out" / "zones.parquet")
    return {"source_id": spec.id, "feed_version": ver, "staging_dir": str(staging / "out"), "rows_in": staged.rows_in,
            "rows_accepted": staged.accepted, "rows_quarantined": staged.quarantined, "rows_excluded": staged.excluded,
            "files": staged.files,
            "rule_counts": staged.rule_counts, "unchanged": False, "seconds": staged.seconds}


def write_trips_lake(ws: Workspace, staged: dict) -> dict:
    """Return the staged dict after moving its tables into the lake (each source partition replaced whole; meta last).

    The partition copies a killed write left (``.source_id=*.tmp-*`` / ``.old-*``) are removed first.
    """
    if staged.get("unchanged"):
        return staged
    with feed_lock(ws, staged["source_id"]):
        return _write_lake_locked(ws, staged)


def _write_lake_locked(ws: Workspace, staged: dict) -> dict:
    out = Path(staged["staging_dir"])
    sid = staged["source_id"]
    sweep_lake(ws, sid)
    moves = [(out / "fct_trips", "trips_fct_trips", True)]
    for name, table in (("quarantine", "trips_quarantine"), ("rule_counts", "trips_rule_counts"), ("files", "trips_files"),
                        ("notices", "trips_notices"), ("zones", "trips_zones"), ("meta", "trips_meta")):
        moves.append((out / f"{name}.parquet", table, False))
    for src, table, is_dir in moves:
        part = ws.lake / table / f"source_id={sid}"
        tmp = part.with_name(f".{part.name}.tmp-{uuid.uuid4().hex[:6]}")
        part.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            if src.exists():
                os.replace(src, tmp)
            else:
                tmp.mkdir(parents=True)
        else:
            if not src.exists():
                continue
            tmp.mkdir(parents=True)
            os.replace(src, tmp / "part-0.parquet")
        replace_dir(tmp, part)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {**staged, "staging_dir": None}


def sweep_lake(ws: Workspace, source_id: str) -> list[Path]:
    """Return the half-written partition copies of the source a killed run left in the lake, after removing them.

    Call under the source's lock.
    """
    return [p for table in sorted(ws.lake.glob("trips_*"))
            for p in sweep(table, f".source_id={source_id}.tmp-*", f".source_id={source_id}.old-*")]


#: Written beside the source's trips_meta partition once its exports are written: {"feed_version": ...}.
EXPORTED_MARK = "exported.json"


def is_exported(ws: Workspace, source_id: str, feed_version: str) -> bool:
    """Return True if the source's exports were written for ``feed_version`` (a new lake version resets this)."""
    mark = ws.lake / "trips_meta" / f"source_id={source_id}" / EXPORTED_MARK
    try:
        return json.loads(mark.read_text(encoding="utf-8")).get("feed_version") == feed_version
    except (OSError, ValueError, AttributeError):
        return False


def export_step(spec: FeedSpec, ws: Workspace, feed_version: str) -> dict:
    """Return the paths of the source's privacy-safe exports, after writing them and marking ``feed_version`` exported."""
    from warehouse.trips import export_trips

    with feed_lock(ws, spec.id):
        files = export_trips(ws, spec.id, opts=trip_options(spec))
        part = ws.lake / "trips_meta" / f"source_id={spec.id}"
        if part.is_dir():
            tmp = part / f".{EXPORTED_MARK}.tmp-{uuid.uuid4().hex[:6]}"
            tmp.write_text(json.dumps({"feed_version": feed_version}), encoding="utf-8")
            os.replace(tmp, part / EXPORTED_MARK)
        return files


def run_trips(spec: FeedSpec, ws: Workspace, *, progress: Progress | None = None, export: bool = True,
              specs: dict[str, FeedSpec] | None = None, cache: dict | None = None) -> dict:
    """Return what one run of a trips (or zones) spec did: fetch, stage, lake, publish, marts, exports.

    The run holds the source's lock. If the input is unchanged but an interrupted run left the
    exports unwritten, then they are written and the message says so.
    """
    ws.ensure()
    with feed_lock(ws, spec.id):
        return _run_trips_locked(spec, ws, progress=progress, export=export, specs=specs, cache=cache)


def _run_trips_locked(spec: FeedSpec, ws: Workspace, *, progress: Progress | None, export: bool,
                      specs: dict[str, FeedSpec] | None, cache: dict | None) -> dict:
    from warehouse.trips import publish_trips, publish_zones

    if spec.kind == "zones":
        layer = zone_layer(spec, cache=cache, ws=ws)
        _say(progress, f"{spec.id}: publishing {len(set(layer.ids))} zones")
        res = publish_zones(ws, layer)
        n, done = res["zones"], "published" if res["status"] == "published" else "unchanged, nothing to do"
        return {"feed_id": spec.id, "status": res["status"], "zones": n, "notices": [x.render() for x in layer.notices],
                "message": f"{spec.id}: {n} zones {done} ({len(layer.notices)} notices)"}
    fetched = fetch_trips(spec, ws)
    ver = fetched["feed_version"]
    from warehouse.trips import published_version

    sweep(ws.staging / spec.id, "*")  # what a killed run left, whatever this run has to do
    sweep_lake(ws, spec.id)

    if lake_version(ws, spec.id) == ver and published_version(ws, spec.id) == ver:
        if not export or is_exported(ws, spec.id, ver):
            return {"feed_id": spec.id, "feed_version": ver, "status": "unchanged",
                    "message": f"{spec.id}: input unchanged, still version {ver}; nothing to do"}
        _say(progress, f"{spec.id}: input unchanged; finishing the export left by an interrupted run")
        return {"feed_id": spec.id, "feed_version": ver, "status": "unchanged", "exports": export_step(spec, ws, ver),
                "finished": ["export"],
                "message": f"{spec.id}: input unchanged, still version {ver}; finished the export left by an interrupted run"}
    if lake_version(ws, spec.id) != ver:
        staged = parse_validate_trips(spec, ws, fetched, specs=specs, progress=progress, cache=cache)
        write_trips_lake(ws, staged)
    else:
        staged = {"source_id": spec.id, "feed_version": ver}
    _say(progress, f"{spec.id}: publishing version {ver}")
    published = publish_trips(ws, spec.id)
    out = {**staged, "feed_id": spec.id, "status": "new", "published": published}
    if export:
        _say(progress, f"{spec.id}: exporting aggregates (k = {trip_options(spec).k})")
        out["exports"] = export_step(spec, ws, ver)
    out["message"] = (f"{spec.id}: version {ver}: {out.get('rows_in', published.get('rows_in', 0)):,} rows in, "
                      f"{out.get('rows_accepted', published.get('rows_accepted', 0)):,} accepted, "
                      f"{out.get('rows_quarantined', published.get('rows_quarantined', 0)):,} quarantined"
                      + (f", {out['rows_excluded']:,} excluded (not trips: trips.exclude)" if out.get("rows_excluded") else ""))
    return out


class SourcesFailed(Exception):
    """Some sources of a run failed; the others ran. ``results`` holds every source's result, in run order:
    a failed one has status ``failed`` and ``errors`` (lines naming the file, line, column and what to change)."""

    def __init__(self, results: list[dict]):
        self.results = results
        self.failed = [r["feed_id"] for r in results if r.get("status") == "failed"]
        super().__init__(f"{len(self.failed)} of {len(results)} trips sources failed: {', '.join(self.failed)}")


def _error_lines(exc: BaseException, *, spec: FeedSpec | None = None) -> list[str]:
    """Return what went wrong as lines a person can act on (an unexpected error as its type and message). If ``spec`` is a
    Japanese source's (noriba.notify.japanese) and the error has a Japanese text, then that text first."""
    if isinstance(exc, SpecError):
        return list(exc.problems)
    if isinstance(exc, InputError):
        from noriba.notify import japanese

        ja = exc.ja.splitlines() if exc.ja and spec is not None and japanese(spec) else []
        return ja + str(exc).splitlines() or [type(exc).__name__]
    return [f"{type(exc).__name__}: {exc} (set NORIBA_DEBUG=1 for details)"]


def run_all(ws: Workspace, *, ids: list[str] | None = None, tags: tuple[str, ...] = (), progress: Progress | None = None,
            export: bool = True, specs_dir: Path | None = None) -> list[dict]:
    """Return the results of running the trips/zones specs named (all when None), zones first.

    One source failing does not stop the others: each is run, and if any failed, SourcesFailed is
    raised at the end with every result (set NORIBA_DEBUG=1 to stop at the first failure instead).
    """
    from noriba.specs import load_each

    loaded, problems = load_each("trips", specs_dir)
    specs = {s.id: s for s in loaded}
    broken: dict[str, list[str]] = {}  # a spec file that does not load is a failed source named by its file's stem
    for line in problems:
        stem = Path(line.split(": ", 1)[0]).stem
        broken.setdefault(stem, []).append(line)
    chosen = [s for s in specs.values() if (not ids or s.id in ids) and (not tags or set(tags) & set(s.tags))]
    unknown = set(ids or ()) - set(specs) - set(broken)
    if unknown:
        raise SpecError([f"no trips spec for {', '.join(sorted(unknown))}; known: {', '.join(sorted(specs))}"])
    failed_specs = [{"feed_id": stem, "status": "failed", "errors": lines, "exception": SpecError(lines), "message": f"{stem}: FAILED"}
                    for stem, lines in sorted(broken.items()) if not ids or stem in ids]
    chosen.sort(key=lambda s: (s.kind != "zones", s.id))
    cache: dict = {}
    results = list(failed_specs)
    for s in chosen:
        try:
            results.append(run_trips(s, ws, progress=progress, export=export, specs=specs, cache=cache))
        except Exception as exc:  # the next source still runs; KeyboardInterrupt and the like stop the run
            if os.environ.get("NORIBA_DEBUG"):
                raise
            results.append({"feed_id": s.id, "status": "failed", "errors": _error_lines(exc, spec=s), "exception": exc,
                            "spec": s, "message": f"{s.id}: FAILED"})
    if any(r["status"] == "failed" for r in results):
        raise SourcesFailed(results)
    return results


def check_contracts(ws: Workspace, source_id: str, *, sample: int = 100_000):
    """Return the GX contract results (transforms/trips/contracts.py) over a sample of the source's accepted trips in the lake."""
    from transforms.trips.contracts import validate_parquet

    part = ws.lake / "trips_fct_trips" / f"source_id={source_id}"
    files = sorted(part.glob("month=*/*.parquet"))
    if not files:
        raise InputError(f"{source_id}: no accepted trips in the lake; run the source first",
                         ja=f"{source_id}: 取り込まれた乗車記録がありません。先にこのソースを実行してください")
    return validate_parquet(files, sample=sample)
