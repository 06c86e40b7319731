"""The pipeline steps, shared by the CLI and the Airflow DAGs.

fetch → parse_validate → write_lake → publish → contracts → export. Every step takes and returns
small JSON-able dicts so Airflow can pass them between tasks as XComs.

Reruns heal: each step holds the feed's lock (warehouse/runstate.py; ``run_feed`` holds it for the
whole run, so two runs of one feed take turns), first removes the temporary files a killed run of
its own left, and a version's steps are known done from what they leave: the lake partition
``meta_feed_versions`` (written last), the warehouse row ``meta.feed_versions`` (one transaction),
the version's rows in ``quality.expectation_results`` and the export zip (renamed last). A rerun
whose input is unchanged finishes the steps that are not done.

With NORIBA_HOME on object storage (warehouse/storage.py) the steps also pull what they read from the
store and push what they write (raw archive, lake partitions with the meta partition last, exports);
on a local home those calls return at once.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections import Counter
from concurrent.futures import Future
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import storage
from noriba.fetch import fetch as fetch_source
from noriba.memory import avoid_huge_pages
from warehouse.policy import policy_from_json
from noriba.specs import FeedSpec
from warehouse.workspace import Workspace
from transforms.adapters import InputError, Progress, adapter_for
from transforms.arrowrows import rows_table
from transforms.canonical import canonicalize, lit
from transforms.rules.engine import run_rules
from transforms.schema import load_schema
from warehouse.runstate import fault_point, feed_lock, in_thread, replace_dir, sweep

#: Lake tables written for every feed version, besides gtfs_<table>.
QUALITY_TABLES = ("quality_notices", "quality_quarantine")
META_TABLE = "meta_feed_versions"
VERSION_ID_LENGTH = 16


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


def ondemand_feed(spec: FeedSpec, ws: Workspace):
    """Return (the GTFS-Flex feed built from an on-demand spec, the spec reading its zip).

    The zip (``raw/<id>/built/feed.zip``) has the same bytes for the same spec, so an unchanged
    leaflet is the same version.
    """
    from dataclasses import replace

    from noriba.specs import Source
    from transforms.ondemand.build import write_zip
    from transforms.ondemand.service import build_from_section

    feed = build_from_section(spec.options, feed_id=spec.id, name=spec.name, timezone=spec.timezone, profile=spec.profile,
                              root=spec.root or Path.cwd())
    z = write_zip(feed, ws.raw_dir(spec.id) / "built" / "feed.zip")
    return feed, replace(spec, source=Source(path=z, max_bytes=256 << 20))


def fetch(spec: FeedSpec, ws: Workspace) -> dict:
    """Return the archived input of ``spec`` and whether this exact input was ingested before.

    An on-demand spec (kind ondemand) is first built into its GTFS-Flex zip, which is what is archived.
    """
    declared = None
    if spec.kind == "ondemand":
        declared = spec.spec_path
        _, spec = ondemand_feed(spec, ws)
    with feed_lock(ws, spec.id):
        sweep(ws.raw / spec.id, ".*.tmp*")  # an archive copy a killed fetch left
        got = fetch_source(ws, spec.id, spec.source).to_dict()
        storage.push(ws, [Path(got["raw_path"])], immutable=True)  # object-store home: archived once, by content
        storage.pull(ws, ws.lake / META_TABLE / f"feed_id={spec.id}")  # versions another machine made
        known = known_version_for_source(ws, spec.id, got["source_sha256"])
    got["known_version"] = known
    if declared is not None:  # messages and the version's record name the spec the user wrote, not the zip built from it
        got["source"] = f"{declared} (built into {got['source']})"
    return got


def known_version_for_source(ws: Workspace, feed_id: str, source_sha256: str) -> str | None:
    """Return the feed version already made from this exact input, or None."""
    root = ws.lake / META_TABLE / f"feed_id={feed_id}"
    if not root.exists():
        return None
    for part in root.glob("feed_version=*/*.parquet"):
        t = pq.read_table(part, columns=["source_sha256"])
        if source_sha256 in t.column("source_sha256").to_pylist():
            return part.parent.name.split("=", 1)[1]
    return None


def version_exists(ws: Workspace, feed_id: str, feed_version: str) -> bool:
    return (ws.lake_partition(META_TABLE, feed_id, feed_version) / "part-0.parquet").exists()


def parse_validate(spec: FeedSpec, ws: Workspace, fetched: dict, *, progress: Progress | None = None,
                   validation_date: date | None = None, rules: bool = True, export: bool = True) -> dict:
    """Return the staged feed version made from the fetched input, validated as of ``validation_date`` (default today).

    If ``rules`` is false, then only the structural checks made while typing run (the
    benchmark of ingest alone uses this); the rule set is skipped. If ``export`` is false (no export follows in this
    process: `noriba validate`), then the members are not checked for an export as received (transforms.verbatim).

    If the input's normalised contents match a version already in the lake, then nothing is
    staged and ``unchanged`` is true.
    """
    avoid_huge_pages()
    _freeze_long_lived()
    adapter = adapter_for("gtfs" if spec.kind == "ondemand" else spec.kind)  # an on-demand spec is read as the feed it built
    if hasattr(adapter, "plain_facts"):
        adapter.plain_facts = export and _exports_here
    _say(progress, f"{spec.id}: reading {fetched['source']}")
    try:
        feed = adapter.read(Path(fetched["raw_path"]), encoding=spec.encoding,
                            progress=(lambda msg: progress(f"{spec.id}: {msg}")) if progress else None)
    except InputError as exc:  # name the input as the user gave it, not its archived copy
        ja = getattr(exc, "ja", None)
        raise InputError(str(exc).replace(fetched["raw_path"], fetched["source"]),
                         ja=ja.replace(fetched["raw_path"], fetched["source"]) if ja else None) from None
    content = feed.content_hash()
    version = content[:VERSION_ID_LENGTH]
    base = {"feed_id": spec.id, "feed_version": version, "content_sha256": content}
    if version_exists(ws, spec.id, version):
        return {**base, "unchanged": True, "staging_dir": None}
    staging = ws.staging / spec.id / f"{version}-{uuid.uuid4().hex[:8]}"
    tables_dir = staging / "gtfs"
    rows_read = sum(f.csv.rows_in for f in feed.files.values())
    _say(progress, f"{spec.id}: typing and checking {rows_read:,} rows")
    con = duckdb.connect()
    # no t_<table> views after: the rules and the steps below read the files themselves
    result = canonicalize(feed, schema=load_schema(), out_dir=tables_dir, profile=spec.profile, con=con, views_after=False)
    _keep(_plain_facts, (spec.id, version), {name: tf.verbatim for name, tf in feed.files.items() if tf.verbatim})
    _keep(_unique_keys, (spec.id, version), result.unique_keys)
    for tf in feed.files.values():  # typed and staged as Parquet: the rules and later steps read that, not the text
        tf.csv.release()
    if rows_read >= GIVE_BACK_ROWS:
        give_back_memory()
    fault_point("parse")
    if result.other_files:  # (asking DuckDB's catalog for t_other_files cost ~5 ms a feed)
        con.execute(f"COPY (SELECT * FROM t_other_files ORDER BY file_name, _line) TO {lit(str(staging / 'gtfs_other_files.parquet'))} (FORMAT parquet)")
    profile = "gtfs-jp" if spec.profile == "gtfs-jp" or any(n.endswith("_jp.txt") for n in feed.files) else "gtfs"
    if rules:
        _say(progress, f"{spec.id}: running validation rules")
        ruled = run_rules(tables_dir, validation_date=validation_date, profile=profile, con=con, views_after=False,
                          progress=(lambda msg: progress(f"{spec.id}: {msg}")) if progress else None)
        feed.findings.add_table(ruled.notices, ruled.counts)
        fault_point("rules")
    if feed.other_files:
        blobs = rows_table([{"file_name": k, "content": v} for k, v in feed.other_files.items()],
                           pa.schema([("file_name", pa.string()), ("content", pa.binary())]))
        pq.write_table(blobs, staging / "gtfs_other_blobs.parquet")
    notices = feed.findings.notices_table()
    quarantine = feed.findings.quarantine_table()
    pq.write_table(notices, staging / "quality_notices.parquet", compression="zstd")
    pq.write_table(quarantine, staging / "quality_quarantine.parquet", compression="zstd")
    severity: Counter = Counter()
    by_code: Counter = Counter()
    by_severity: dict[str, dict[str, int]] = {}
    for (code, sev), n in feed.findings.counts.items():
        severity[sev] += n
        by_code[code] += n
        by_severity.setdefault(sev, {})[code] = by_severity.get(sev, {}).get(code, 0) + n
    verdict = spec.policy.evaluate(feed.findings.counts)
    files = {
        name: {"rows_in": c.rows_in, "accepted": c.accepted, "quarantined": c.quarantined, "encoding": c.encoding,
               "known": c.known, "header": feed.files[name].csv.header}
        for name, c in result.counts.items()
    }
    start, end = _service_window(con, tables_dir)
    row = {
        "content_sha256": content,
        "source_sha256": fetched["source_sha256"],
        "source": fetched["source"],
        "raw_path": storage.location(ws, fetched["raw_path"]),
        "fetched_at": fetched["fetched_at"],
        # to the millisecond: the newest version is the one ingested last (gtfs_latest orders by this text), and two
        # versions of a feed ingested within one second tied at seconds (then the version hash decided)
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "kind": spec.kind,
        "profile": profile,
        "service_start": start,
        "service_end": end,
        "files": json.dumps(files, ensure_ascii=False),
        "tables": json.dumps(result.tables),
        "rows_in": sum(c.rows_in for c in result.counts.values()),
        "rows_accepted": sum(c.accepted for c in result.counts.values()),
        "rows_quarantined": sum(c.quarantined for c in result.counts.values()),
        "errors": severity.get("ERROR", 0),
        "warnings": severity.get("WARNING", 0),
        "infos": severity.get("INFO", 0),
        "notice_codes": json.dumps(dict(by_code.most_common())),
        "validation_date": (validation_date or date.today()).isoformat(),
        "spec": json.dumps(spec.metadata(), ensure_ascii=False),
        "notice_counts": json.dumps(by_severity, sort_keys=True),
        "policy_status": verdict.status,
        "blocked_by": json.dumps(verdict.blocked_by),
        "policy": json.dumps(spec.policy.to_dict()),
    }
    if spec.kind == "ondemand":  # its zones and day-by-day windows, for the marts (lake tables ondemand_*)
        _stage_ondemand(spec, staging)
    pq.write_table(rows_table([row]), staging / "meta_feed_versions.parquet")
    con.close()
    del feed, con
    if rows_read >= GIVE_BACK_ROWS:
        give_back_memory()
    return {**base, "unchanged": False, "staging_dir": str(staging), "rows_in": row["rows_in"],
            "rows_accepted": row["rows_accepted"], "rows_quarantined": row["rows_quarantined"],
            "errors": row["errors"], "warnings": row["warnings"], "policy_status": verdict.status,
            "blocked_by": verdict.blocked_by}


#: What the parse of this process found out about the versions it staged, by (feed id, version), for the later steps of
#: the same run (another process's steps check for themselves): transforms.verbatim.plain_facts of the members (the
#: export copies those as received without inflating and parsing them again), and the tables deduplicated on their key
#: (transforms.canonical.Canonical.unique_keys: the contracts need not count duplicate keys).
_plain_facts: dict[tuple[str, str], dict] = {}
_exports_here = True  # False in a FeedPool worker
_unique_keys: dict[tuple[str, str], dict] = {}


_facts_lock = threading.Lock()  # the export thread takes its facts while this thread may keep the next feed's


def _keep(store: dict, key: tuple[str, str], facts: dict) -> None:
    with _facts_lock:
        if len(store) >= 16:  # versions parsed and never exported or checked (blocked, failed): the oldest go
            store.pop(next(iter(store)))
        store[key] = facts


def _take(store: dict, key: tuple[str, str]) -> dict | None:
    with _facts_lock:
        return store.pop(key, None)


_frozen = 0


def _freeze_long_lived() -> None:
    """Move what is alive before the first feed of this process (modules, schemas, the CLI's objects) out of reach of the
    cyclic garbage collector (``gc.freeze``): :func:`give_back_memory`'s collection then walks only a feed's own
    objects (~40 ms less per call; ~40k objects after the imports). Once more before the second feed: what the first
    feed's steps imported (reports, contracts, export, ~100k objects) is long-lived too (~13 ms less per collection,
    two a feed, in a run of many feeds)."""
    global _frozen
    if _frozen < 2:
        import gc

        gc.collect()
        gc.freeze()
        _frozen += 1
        if _frozen == 1:
            import atexit

            # given back at exit, so that the interpreter's last collection finds them (DuckDB's bindings otherwise report
            # the frozen objects as leaked instances on stderr, after the one-line message a failed command ends with)
            atexit.register(gc.unfreeze)


#: Rows read from a feed from which its parse and rules give their freed memory back to the system: below it, what a
#: step freed is a few MB that the next feed reuses, and a collection and a heap trim cost ~17 ms a feed (~2 % of a small
#: corpus feed's whole ingest).
GIVE_BACK_ROWS = 250_000


def give_back_memory() -> None:
    """Return the freed memory of the step just done to the system (pyarrow's pool, the C heap), so the next step starts low.

    pyarrow's allocator and glibc keep freed pages for reuse; after a big step they would stay in the
    process (0.6 GB after reading Vilnius ×16) while the publish, contracts and export run.
    """
    import ctypes
    import gc
    import sys

    gc.collect()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def _stage_ondemand(spec: FeedSpec, staging: Path) -> None:
    """Write the on-demand service's tables (services, zones, windows) to the staging folder."""
    from transforms.ondemand.service import build_from_section

    feed = build_from_section(spec.options, feed_id=spec.id, name=spec.name, timezone=spec.timezone, profile=spec.profile,
                              root=spec.root or Path.cwd())
    svc = [{"name": spec.name, "booking": json.dumps(feed.booking, ensure_ascii=False, sort_keys=True)}]
    pq.write_table(rows_table(svc), staging / "ondemand_services.parquet")
    pq.write_table(rows_table(feed.zones, pa.schema([(c, pa.string()) for c in ("zone_id", "zone_name", "kind", "geometry_wkt")])),
                   staging / "ondemand_zones.parquet")
    types = {"service_date": pa.date32(), "service_id": pa.string(), "start_s": pa.int32(), "end_s": pa.int32()}
    pq.write_table(pa.table({c: pa.array([w[c] for w in feed.windows], t) for c, t in types.items()}),
                   staging / "ondemand_windows.parquet")


def _service_window(con, tables_dir: Path) -> tuple[str | None, str | None]:
    parts = []
    cal, dates = tables_dir / "calendar.parquet", tables_dir / "calendar_dates.parquet"
    if cal.exists():
        parts.append(f"SELECT start_date AS d FROM read_parquet({lit(str(cal))}, hive_partitioning=false) UNION ALL SELECT end_date FROM read_parquet({lit(str(cal))}, hive_partitioning=false)")
    if dates.exists():
        parts.append(f"SELECT date AS d FROM read_parquet({lit(str(dates))}, hive_partitioning=false) WHERE exception_type = 1")
    if not parts:
        return None, None
    lo, hi = con.execute(f"SELECT min(d)::VARCHAR, max(d)::VARCHAR FROM ({' UNION ALL '.join(parts)})").fetchall()[0]
    return lo, hi


def write_lake(ws: Workspace, staged: dict) -> dict:
    """Return the lake partitions written for a staged version; each partition is replaced whole.

    The meta_feed_versions partition is written last, so a version exists only once all its tables do.
    The partition copies a killed write left (``.feed_version=*.tmp-*`` / ``.old-*``) are removed first.
    If the staging folder is gone because another run of the feed already wrote the version, then
    the version is taken as unchanged.
    """
    if staged.get("unchanged"):
        storage.push_version(ws, staged["feed_id"], staged["feed_version"])  # a run killed before its push
        return {**staged, "lake": []}
    staging = Path(staged["staging_dir"])
    fid, ver = staged["feed_id"], staged["feed_version"]
    with feed_lock(ws, fid):
        sweep_lake(ws, fid)
        if not staging.is_dir():
            if version_exists(ws, fid, ver):
                storage.push_version(ws, fid, ver)
                return {**staged, "unchanged": True, "staging_dir": None, "lake": []}
            raise InputError(f"{fid}: the staged version {ver} is gone ({staging}); run the feed again")
        moves: list[tuple[Path, str]] = [(p, f"gtfs_{p.stem}") for p in sorted((staging / "gtfs").glob("*.parquet"))]
        moves += [(p, p.stem) for p in sorted(staging.glob("*.parquet")) if p.stem != META_TABLE]
        written = []
        for src, table in moves + [(staging / f"{META_TABLE}.parquet", META_TABLE)]:
            part = ws.lake_partition(table, fid, ver)
            tmp = part.with_name(f".{part.name}.tmp-{uuid.uuid4().hex[:6]}")
            tmp.mkdir(parents=True)
            os.replace(src, tmp / "part-0.parquet")
            replace_dir(tmp, part)
            written.append(table)
            fault_point("lake")  # test hook: a kill here leaves the version without its meta partition
        storage.push_version(ws, fid, ver)  # object-store home: the partitions, meta last
        shutil.rmtree(staging, ignore_errors=True)
    return {**staged, "staging_dir": None, "lake": written}


def sweep_lake(ws: Workspace, feed_id: str) -> list[Path]:
    """Return the half-written partition copies of the feed a killed run left in the lake, after removing them.

    Call under the feed's lock.
    """
    if not ws.lake.is_dir():
        return []
    return [p for table in sorted(ws.lake.iterdir()) if table.is_dir()
            for p in sweep(table / f"feed_id={feed_id}", ".feed_version=*.tmp-*", ".feed_version=*.old-*")]


def lake_versions(ws: Workspace, feed_id: str | None = None) -> list[tuple[str, str]]:
    """Return (feed_id, feed_version) of every complete version in the lake."""
    root = ws.lake / META_TABLE
    out = []
    for part in sorted(root.glob("feed_id=*/feed_version=*/part-0.parquet")):
        fid = part.parent.parent.name.split("=", 1)[1]
        if feed_id is None or fid == feed_id:
            out.append((fid, part.parent.name.split("=", 1)[1]))
    return out


def stage(spec: FeedSpec, ws: Workspace, fetched: dict, *, progress: Progress | None = None,
          validation_date: date | None = None) -> dict:
    """Return the staged version of the fetched input, with its policy verdict and report.

    If this exact input made a version before, then nothing is parsed; if the spec's policy
    changed since, then that version's verdict is re-evaluated (see :func:`restamp_policy`).
    The staging folders a killed run of the feed left are removed first.
    """
    with feed_lock(ws, spec.id):
        sweep(ws.staging / spec.id, "*")
        sweep_lake(ws, spec.id)  # a policy restamp killed mid-swap
        if ws.remote is not None:  # object-store home: the fetch may have run on another machine
            storage.pull_files(ws, [Path(fetched["raw_path"])])
            storage.pull(ws, ws.lake / META_TABLE / f"feed_id={spec.id}")
        if fetched.get("known_version"):
            staged = {"feed_id": spec.id, "feed_version": fetched["known_version"], "unchanged": True, "staging_dir": None}
        else:
            staged = parse_validate(spec, ws, fetched, progress=progress, validation_date=validation_date)
        if staged["unchanged"]:
            storage.pull_version(ws, staged["feed_id"], staged["feed_version"])  # made on another machine
            staged = {**staged, **restamp_policy(spec, ws, staged["feed_id"], staged["feed_version"])}
        return report_step(ws, staged)


def version_meta(ws: Workspace, feed_id: str, feed_version: str) -> dict:
    """Return the metadata row of a version in the lake."""
    part = ws.lake_partition(META_TABLE, feed_id, feed_version) / "part-0.parquet"
    return pq.read_table(part).to_pylist()[0]


def restamp_policy(spec: FeedSpec, ws: Workspace, feed_id: str, feed_version: str) -> dict:
    """Return the policy verdict of a version already in the lake, under the spec's current policy.

    If the policy differs from the one the version was judged by, then the verdict is evaluated
    again from the stored notice totals, the metadata partition is replaced and ``policy_changed``
    is true, so the publish step republishes the version (and gtfs_latest follows).
    """
    meta = version_meta(ws, feed_id, feed_version)
    now = {"policy_status": meta.get("policy_status") or "pass", "blocked_by": json.loads(meta.get("blocked_by") or "{}")}
    if policy_from_json(meta.get("policy")) == spec.policy and meta.get("policy_status"):
        return now
    if meta.get("notice_counts"):
        counts = {(c, sev): n for sev, by in json.loads(meta["notice_counts"]).items() for c, n in by.items()}
    else:  # a version from before policies: severity from the notices kept with it
        notices = ws.lake_partition("quality_notices", feed_id, feed_version) / "part-0.parquet"
        sev: dict[str, str] = {}
        if notices.exists():
            for r in pq.read_table(notices, columns=["code", "severity"]).to_pylist():
                sev.setdefault(r["code"], r["severity"])
        counts = {(c, sev.get(c, "INFO")): n for c, n in json.loads(meta.get("notice_codes") or "{}").items()}
    verdict = spec.policy.evaluate(counts)
    meta.update(policy_status=verdict.status, blocked_by=json.dumps(verdict.blocked_by), policy=json.dumps(spec.policy.to_dict()))
    part = ws.lake_partition(META_TABLE, feed_id, feed_version)
    tmp = part.with_name(f".{part.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([meta]), tmp / "part-0.parquet")
    replace_dir(tmp, part)
    storage.push(ws, [part / "part-0.parquet"])
    return {"policy_status": verdict.status, "blocked_by": verdict.blocked_by, "policy_changed": True}


def report_step(ws: Workspace, staged: dict) -> dict:
    """Return the staged dict with the paths of its report.json and report.html.

    The report is built from the staging folder, or for an unchanged version from the lake
    (rebuilt only when it is missing or the version's verdict changed).
    """
    from noriba.report import build_report, lake_sources, report_dir, staged_sources, write_report

    fid, ver = staged["feed_id"], staged["feed_version"]
    sweep(report_dir(ws, fid, ver), ".*.tmp-*")  # a report write a killed run left
    if staged.get("staging_dir"):
        sources = staged_sources(Path(staged["staging_dir"]))
    else:
        have = report_dir(ws, fid, ver) / "report.json"
        if have.exists() and not staged.get("policy_changed"):
            return {**staged, "report": {"json": str(have), "html": str(have.with_name("report.html"))}}
        sources = lake_sources(ws, fid, ver)
        if not sources["meta"].exists():
            return staged
    return {**staged, "report": write_report(ws, build_report(fid, ver, sources))}


def publish_step(ws: Workspace, lake: dict) -> dict:
    """Return the lake dict with what was published. If an unchanged version is already published, then nothing is done."""
    from warehouse.publish import is_published, publish

    with feed_lock(ws, lake["feed_id"]):
        if lake.get("unchanged") and not lake.get("policy_changed") and is_published(ws, lake["feed_id"], lake["feed_version"]):
            return {**lake, "published": {}, "status": "unchanged", **_publish_ondemand(ws, lake)}
        storage.pull_version(ws, lake["feed_id"], lake["feed_version"])  # object-store home: the lake as stored
        out = {**lake, **publish(ws, lake["feed_id"], lake["feed_version"]), "status": "published"}
        return {**out, **_publish_ondemand(ws, lake)}


def _publish_ondemand(ws: Workspace, lake: dict) -> dict:
    """Return {"ondemand": rows} after publishing an on-demand version's zones and windows (kind ondemand), else {}.

    A version already published is left as it is, so a rerun finishes what an interrupted run left.
    """
    if not (ws.lake_partition("ondemand_zones", lake["feed_id"], lake["feed_version"]) / "part-0.parquet").exists():
        return {}
    from warehouse.trips import publish_ondemand

    return {"ondemand": publish_ondemand(ws, lake["feed_id"], lake["feed_version"])}


def export_step(ws: Workspace, published: dict) -> dict:
    """Return the published dict with the paths of its exports.

    If the version is unchanged and its export is complete, then there are none. If the version
    is blocked by its policy, then none are built and ``export_refused`` says why in one line.
    """
    from warehouse.export import ExportRefused, is_exported

    fid, ver = published["feed_id"], published["feed_version"]
    with feed_lock(ws, fid):
        if published.get("status") == "unchanged" and is_exported(ws, fid, ver):
            return {**published, "exports": None}
        try:
            return {**published, "exports": _export_and_push(ws, fid, ver)}
        except ExportRefused as exc:
            return {**published, "exports": None, "export_refused": str(exc)}


def start_export(ws: Workspace, lake: dict) -> "Future | None":
    """Return the Future of a new version's export files, built in a thread from its lake partitions while the caller
    publishes the version and runs its contracts (an export reads only the lake: a feed's ×16 run overlaps its ~3 s
    export with ~4 s of publish and contracts on the other core); None if the version is exported already (or refused).

    The caller holds the feed's lock until :func:`finish_export` returns (the thread writes under it) and calls it on
    every path: it waits for the thread. On object storage the thread pushes the files as soon as they are written,
    the zip last, as export_step does.
    """
    from warehouse.export import is_exported

    fid, ver = lake["feed_id"], lake["feed_version"]
    if is_exported(ws, fid, ver):
        return None
    return in_thread(partial(_export_and_push, lock=False), ws, fid, ver, name="noriba-export")


def _export_and_push(ws: Workspace, feed_id: str, feed_version: str, *, lock: bool = True) -> dict:
    """Return export_version's paths after pushing them to object storage at once, the zip last (it says the export is
    whole): a kill after a whole local export must not leave the store without it, since a rerun finds it exported."""
    from warehouse.export import export_version

    out = export_version(ws, feed_id, feed_version, lock=lock, plain=_take(_plain_facts, (feed_id, feed_version)))
    storage.push_tree(ws, Path(out["parquet_dir"]))
    storage.push(ws, [Path(out["gtfs_zip"])])
    return out


def finish_export(ws: Workspace, early: "Future | None", published: dict | None) -> dict | None:
    """Return export_step's result for ``published`` from the export :func:`start_export` began (waiting for it); with
    ``published`` None, only wait for it (its files stay: a rerun finds the version exported). Without one, export_step's."""
    from warehouse.export import ExportRefused

    if early is None:
        return export_step(ws, published) if published is not None else None
    try:
        out = early.result()
    except ExportRefused as exc:
        return {**published, "exports": None, "export_refused": str(exc)} if published is not None else None
    except Exception:
        if published is None:  # the run failed already: that error is the one raised
            return None
        raise
    return {**published, "exports": out} if published is not None else None


def contracts_step(ws: Workspace, published: dict, *, progress: Progress | None = None, data_docs: bool | str = "later") -> dict:
    """Return the published dict with the Great Expectations contract results of its version.

    Contracts report (quality.expectation_results, GX's results store); they never block. If the
    version is unchanged and its results are stored, then nothing is run. Data Docs pages are left
    for ``noriba docs`` (or the end of the run) unless ``data_docs`` is True.
    """
    from warehouse.contracts import has_results, run_contracts

    fid, ver = published["feed_id"], published["feed_version"]
    with feed_lock(ws, fid):
        if published.get("status") == "unchanged" and has_results(ws, fid, ver):
            return {**published, "contracts": None}
        unique = _take(_unique_keys, (fid, ver))
        return {**published, "contracts": run_contracts(ws, fid, ver, progress=progress, data_docs=data_docs,
                                                        **({"unique_keys": unique} if unique else {}))}


def unfinished_steps(ws: Workspace, feed_id: str, feed_version: str, *, contracts: bool = True, export: bool = True) -> list[str]:
    """Return the steps after publish that a published version has not finished (an earlier run was interrupted)."""
    from warehouse.contracts import has_results
    from warehouse.export import is_exported

    todo = []
    if contracts and not has_results(ws, feed_id, feed_version):
        todo.append("data contracts")
    if export and not is_exported(ws, feed_id, feed_version):
        todo.append("export")
    return todo


#: Kinds whose fetch and stage a :class:`FeedPool` runs in its worker processes (trips, zones and gbfs have their own pipelines).
POOLED_KINDS = ("gtfs", "ondemand")
#: How many feeds ahead of the one being published a pool stages, per worker.
POOL_AHEAD = 1
#: A feed whose input (zip, or folder) is bigger is staged by the run's own process with no worker busy meanwhile, so a
#: run of big feeds keeps one feed's memory peak (Vilnius ×4, 11 MB zipped, peaks near 0.8 GB; the 87 corpus zips are ≤ 2 MB).
POOL_MAX_BYTES = 8 << 20


def run_jobs(jobs: int | None = None) -> int:
    """Return how many worker processes parse and validate a `noriba run` of several feeds: ``jobs``, else
    ``$NORIBA_RUN_JOBS``, else 2 on a machine of 2 or more cores. 1 means one feed after another in this process."""
    if jobs is None:
        text = os.environ.get("NORIBA_RUN_JOBS", "").strip()
        if text:
            try:
                jobs = int(text)
            except ValueError:
                raise InputError(f"NORIBA_RUN_JOBS={text!r} is not a whole number; set it to 1, 2, … (feeds parsed at once)") from None
        else:
            jobs = min(2, os.cpu_count() or 1)
    if jobs < 1:
        raise InputError(f"the number of feeds parsed at once must be 1 or more, not {jobs}")
    return jobs


def prepare_feed(spec: FeedSpec, ws: Workspace, *, validation_date: date | None = None, progress: Progress | None = None) -> dict:
    """Return {"fetched", "staged"}: the fetch and stage steps of ``run_feed`` (parse, validation rules, report), under the feed's lock.

    A :class:`FeedPool` runs this in its worker processes; ``run_feed`` finishes the feed from it.
    """
    with feed_lock(ws, spec.id):
        fetched = fetch(spec, ws)
        staged = stage(spec, ws, fetched, progress=progress, validation_date=validation_date)
    return {"fetched": fetched, "staged": staged}


_worker_queue = None


def _pool_worker_start(queue) -> None:
    global _worker_queue, _exports_here
    _worker_queue = queue
    _exports_here = False  # a pool worker stages feeds that the run's own process exports: no facts for the export here


def _pool_prepare(spec: FeedSpec, ws: Workspace, validation_date: date | None) -> dict:
    """Run :func:`prepare_feed` in a pool worker, its progress sent to the parent. An error that cannot travel
    back between processes is sent as a RuntimeError with the same message."""
    import pickle

    queue = _worker_queue
    say = (lambda msg: queue.put((spec.id, msg))) if queue is not None else None
    try:
        return prepare_feed(spec, ws, validation_date=validation_date, progress=say)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise


class FeedPool:
    """Parse and validate the next feeds of a run in ``jobs`` worker processes while this process publishes them in order.

    ``run_feed(..., pool=pool)`` takes each feed's fetched and staged steps from the pool (waiting for them and showing
    their progress) and runs lake, publish, contracts and export here: the warehouse keeps one writer, and feeds are
    published in the order of ``specs``. Feeds of other kinds (trips, zones, gbfs) run in this process as before, and so
    does a feed whose input is bigger than POOL_MAX_BYTES, with no worker busy meanwhile (one big feed's memory at a time).
    A worker that dies (killed, out of memory) makes the pool stop: its feed and the ones after are staged here.
    Use as a context manager; leaving it stops the workers.
    """

    def __init__(self, specs: list[FeedSpec], ws: Workspace, *, jobs: int, validation_date: date | None = None,
                 start_method: str | None = None):
        self.ws, self.jobs, self.validation_date = ws, jobs, validation_date
        self.start_method = start_method  # None: noriba.forking.pool_context decides
        self.order = [s for s in specs if s.kind in POOLED_KINDS]
        self.futures: dict[str, object] = {}
        self.said: dict[str, list[str]] = {}
        self.big: dict[str, bool] = {}
        self.next = 0
        self.executor = None
        self.queue = None

    def __enter__(self) -> "FeedPool":
        import gc
        from concurrent.futures import ProcessPoolExecutor

        from noriba.forking import pool_context

        gc.collect()  # DuckDB connections no longer referenced are closed (and their threads stopped) before the fork
        # fork where that is safe (noriba.forking.fork_is_safe; the CLI: the workers start at once, before this process
        # opens the warehouse, and do not import the caller's main script again); else a fork server's clean process (a
        # caller with threads, e.g. a test runner or a service: a forked worker could hang on a lock one of them held)
        ctx = pool_context(start_method=self.start_method)
        self.queue = ctx.Queue()
        self.executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_pool_worker_start,
                                            initargs=(self.queue,))
        self._fill()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers; feeds staged ahead and not taken stay in staging/ (the feed's next run sweeps them)."""
        if self.executor is not None:
            for fut in self.futures.values():
                fut.cancel()
            self.futures.clear()  # the feeds not taken yet are fetched and staged by run_feed itself
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
        if self.queue is not None:
            self.queue.close()
            self.queue.join_thread()
            self.queue = None

    def _alone(self, spec: FeedSpec) -> bool:
        """Return True if ``spec``'s input is bigger than POOL_MAX_BYTES (a URL's size is not known before it is fetched: False)."""
        if spec.id not in self.big:
            size = 0
            path = spec.source.path if spec.kind != "ondemand" else None
            try:
                if path is not None and Path(path).is_file():
                    size = Path(path).stat().st_size
                elif path is not None and Path(path).is_dir():
                    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
            except OSError:
                pass
            self.big[spec.id] = size > POOL_MAX_BYTES
        return self.big[spec.id]

    def _fill(self, current: int = 0) -> None:
        while self.executor is not None and self.next < len(self.order) and self.next <= current + self.jobs * POOL_AHEAD:
            spec = self.order[self.next]
            if self._alone(spec):
                if self.next >= current:  # not staged yet by the run itself: nothing after it starts before
                    return
                self.next += 1
                continue
            self.futures[spec.id] = self.executor.submit(_pool_prepare, spec, self.ws, self.validation_date)
            self.next += 1

    def _drain(self, timeout: float) -> None:
        import queue as queues

        try:
            fid, msg = self.queue.get(timeout=timeout)
        except (queues.Empty, OSError, ValueError, EOFError):
            return
        self.said.setdefault(fid, []).append(msg)

    def has(self, spec: FeedSpec) -> bool:
        """Return True if the pool stages ``spec`` (run_feed should take it from here)."""
        return spec.id in self.futures or (self.executor is not None and spec in self.order and not self._alone(spec))

    def take(self, spec: FeedSpec, *, progress: Progress | None = None) -> dict:
        """Return the feed's {"fetched", "staged"}, waiting for its worker and showing its progress; raise its error.

        If the pool has stopped (a worker died), then the feed is fetched and staged in this process.
        """
        from concurrent.futures.process import BrokenProcessPool

        idx = next((i for i, s in enumerate(self.order) if s.id == spec.id), 0)
        self._fill(idx)
        fut = self.futures.pop(spec.id, None)
        if fut is None:
            return prepare_feed(spec, self.ws, validation_date=self.validation_date, progress=progress)
        while True:
            for msg in self.said.pop(spec.id, []):
                _say(progress, msg)
            if fut.done():
                break
            self._drain(0.1)
        while self.queue is not None and not self.queue.empty():  # its last messages
            self._drain(0)
        for msg in self.said.pop(spec.id, []):
            _say(progress, msg)
        try:
            out = fut.result()
        except BrokenProcessPool:
            self.close()
            return prepare_feed(spec, self.ws, validation_date=self.validation_date, progress=progress)
        self._fill(idx + 1)
        return out


def run_feed(spec: FeedSpec, ws: Workspace, *, progress: Progress | None = None, export: bool = True,
             validation_date: date | None = None, contracts: bool = True, data_docs: bool | str = "later",
             pool: FeedPool | None = None) -> dict:
    """Return what one full run of a feed did: fetch, stage, lake, publish, contracts, export (the DAG's steps, in order).

    The run holds the feed's lock, so a second run of the same feed waits for it. If the input is
    unchanged but an interrupted run left steps unfinished, then those are finished and
    ``finished`` names them. Readers' copy of the warehouse is replaced once, at the end of the run
    (warehouse/publish.py: deferred_snapshots). If ``contracts`` is false, then the Great Expectations contracts are
    skipped (they only report). ``data_docs="later"`` (default) leaves the contracts' Data Docs pages for one
    ``warehouse.contracts.finish_data_docs`` (``noriba docs``); True renders them now. With a ``pool`` (a run of
    several feeds), the fetch and stage steps come from its worker processes.
    """
    if spec.kind in ("trips", "zones"):  # trips are a second family with their own pipeline
        from noriba.trips_pipeline import run_trips

        return run_trips(spec, ws, progress=progress, export=export)
    if spec.kind == "gbfs":  # bike and scooter sharing: snapshots, not feed versions (noriba/gbfs.py)
        from noriba.gbfs import run_gbfs

        return run_gbfs(spec, ws, progress=progress, export=export)
    from warehouse.publish import deferred_snapshots

    prepared = None
    if pool is not None and pool.has(spec):  # fetched and staged in a worker process, which held the feed's lock meanwhile
        from noriba import notify

        try:
            prepared = pool.take(spec, progress=progress)
        except Exception as exc:
            notify.failure(spec, ws, exc)
            raise
    with feed_lock(ws, spec.id), deferred_snapshots(ws):  # readers' copy: once at the end of the feed, not after each step
        return _run_feed_locked(spec, ws, progress=progress, export=export, validation_date=validation_date, contracts=contracts,
                                data_docs=data_docs, prepared=prepared)


def _writer_for_publish_and_contracts(ws: Workspace, *, contracts: bool):
    """Return a context holding one writer connection for a feed's publish and contracts (warehouse.publish.writer_session),
    when the contracts run on the SQL engine (a fraction of a second under the publish lock, as they run anyway); else
    a null context (GX's engines may take seconds: the lock is not held meanwhile)."""
    from contextlib import nullcontext

    from warehouse.contracts import contracts_engine
    from warehouse.publish import writer_session

    try:
        sql = contracts and contracts_engine() == "sql"
    except ValueError:  # an unknown engine: said by the contracts step, as before
        sql = False
    return writer_session(ws) if sql else nullcontext()


def _run_feed_locked(spec: FeedSpec, ws: Workspace, *, progress: Progress | None, export: bool,
                     validation_date: date | None, contracts: bool, data_docs: bool | str = "later",
                     prepared: dict | None = None) -> dict:
    from noriba import notify

    try:
        if prepared is not None:
            fetched, staged = prepared["fetched"], prepared["staged"]
        else:
            fetched = fetch(spec, ws)
            staged = stage(spec, ws, fetched, progress=progress, validation_date=validation_date)
    except Exception as exc:
        notify.failure(spec, ws, exc)  # counted per feed; `failing` after notify.failures in a row
        raise
    notify.outcome(spec, ws, staged)  # blocked / expiring, once per version; never raises
    lake = write_lake(ws, staged)
    ver = lake["feed_version"]
    early = start_export(ws, lake) if export else None  # built while the version is published
    try:
        return _publish_then_export(spec, ws, fetched, staged, lake, early, progress=progress, export=export,
                                    contracts=contracts, data_docs=data_docs)
    finally:
        finish_export(ws, early, None)  # no thread outlives the run (a no-op once the export was taken)


def _publish_then_export(spec: FeedSpec, ws: Workspace, fetched: dict, staged: dict, lake: dict, early, *,
                         progress: Progress | None, export: bool, contracts: bool, data_docs: bool | str) -> dict:
    """Return run_feed's result after the lake: publish, contracts, then the export (``early``: begun by start_export)."""
    ver = lake["feed_version"]
    _say(progress, f"{spec.id}: publishing version {ver}")
    with _writer_for_publish_and_contracts(ws, contracts=contracts):
        out = publish_step(ws, lake)
        if out["status"] != "unchanged":
            out["status"] = "published" if staged["unchanged"] else "new"
            if contracts:
                _say(progress, f"{spec.id}: checking data contracts of version {ver}")
                out = contracts_step(ws, out, progress=progress, data_docs=data_docs)
    if out["status"] == "unchanged":
        why = (f"input unchanged (sha256 {fetched['source_sha256'][:12]}…)" if fetched.get("known_version")
               else "same contents as before (repackaged input)")
        todo = unfinished_steps(ws, spec.id, ver, contracts=contracts, export=export)
        if not todo:
            return {**out, "message": f"{spec.id}: {why}, still version {ver}; nothing to do"}
        left = " and the ".join(todo)
        _say(progress, f"{spec.id}: {why}; finishing the {left} left by an interrupted run")
        if "data contracts" in todo:
            out = contracts_step(ws, out, progress=progress, data_docs=data_docs)
        if "export" in todo:
            out = finish_export(ws, early, out)
        return {**out, "finished": todo,
                "message": f"{spec.id}: {why}, still version {ver}; finished the {left} left by an interrupted run"
                           + (f" ({out['export_refused']})" if out.get("export_refused") else "")}
    if export:
        _say(progress, f"{spec.id}: exporting version {ver}")
        out = finish_export(ws, early, out)
    return out
