"""The ``noriba`` command line: ingest, run, validate, status, diff, export, trips, municipality, serve, demo, rt."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import time
from pathlib import Path

EXIT_PROBLEM = 2
EXIT_BLOCKED = 1


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


class _Progress:
    """Show a spinner with the current step on a terminal; plain timestamped lines otherwise."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.console = _console()
        self.status = None
        self.t0 = time.monotonic()

    def __enter__(self):
        if not self.quiet and self.console.is_terminal:
            self.status = self.console.status("starting…")
            self.status.__enter__()
        return self

    def __call__(self, msg: str) -> None:
        if self.quiet:
            return
        if self.status:
            self.status.update(msg)
        else:
            self.console.print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}")

    def __exit__(self, *exc):
        if self.status:
            self.status.__exit__(*exc)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s or "feed")[:60]


#: file names that say nothing about the feed: its id comes from the folder (or the URL path) holding it
GENERIC_NAMES = ("gtfs", "feed", "google-transit", "gtfs-jp", "data", "latest", "download")


def _derived_id(target: str, *, is_url: bool) -> str:
    """Return a safe feed id from a path or URL: the file name's stem. If the file is generically named (gtfs.zip,
    feed.zip, google_transit.zip), then the name of the folder (or URL path segment) holding it."""
    if is_url:
        parts = [p for p in target.split("?")[0].split("#")[0].split("/")[3:] if p]
        names = [*parts[:-1], parts[-1].split(".")[0]] if parts else []
    else:
        path = Path(target.rstrip("/") or target).resolve()
        names = [*path.parent.parts[1:], path.stem]
    if len(names) > 1 and _slug(names[-1]) in GENERIC_NAMES and _slug(names[-2]) not in GENERIC_NAMES:
        return _slug(names[-2])
    return _slug(names[-1]) if names else "feed"


def _report_run(result: dict, console) -> None:
    if result["status"] == "unchanged":
        console.print(result["message"], markup=False)
        return
    fv = result["feed_version"]
    counts = result.get("published", {})
    blobs = counts.get("gtfs.other_blobs", 0)  # files that are not text (one row each): status and the report count no rows for them
    rows = sum(v for k, v in counts.items() if k.startswith("gtfs.") and k != "gtfs.other_blobs")
    console.print(f"{result['feed_id']}: version {fv} published ({rows:,} rows"
                  + (f"; +{blobs:,} other file{'s' if blobs != 1 else ''} kept as received)" if blobs else ")"), markup=False)
    if result.get("policy_status") == "blocked":
        from warehouse.policy import blocking_reason

        console.print(f"  BLOCKED by policy: {blocking_reason(result.get('blocked_by'))}; gtfs_latest keeps the last version that passed",
                      markup=False)
    if result.get("export_refused"):
        console.print(f"  no export: {result['export_refused']}", markup=False)
    elif result.get("exports"):
        console.print(f"  GTFS export: {result['exports']['gtfs_zip']}", markup=False)
    if result.get("report"):
        console.print(f"  report: {result['report']['html']}", markup=False)


def _print_notices(ws, feed_id: str, feed_version: str, console, limit: int = 10) -> None:
    """Print the version's most frequent notice codes with their true counts (the notices table keeps only samples)."""
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    try:
        total = json.loads((con.execute("SELECT notice_codes FROM meta.feed_versions WHERE feed_id = ? AND feed_version = ?",
                                        [feed_id, feed_version]).fetchall() or [("{}",)])[0][0] or "{}")
        rows = con.execute(
            "SELECT severity, code, count(*) AS n, any_value(message) AS msg, any_value(file) AS file FROM quality.notices "
            "WHERE feed_id = ? AND feed_version = ? GROUP BY severity, code", [feed_id, feed_version]).fetchall()
    finally:
        con.close()
    order = {"ERROR": 0, "WARNING": 1}
    rows = sorted(((sev, code, total.get(code, n), msg, file) for sev, code, n, msg, file in rows),
                  key=lambda r: (order.get(r[0], 2), -r[2], r[1]))
    for sev, code, n, msg, file in rows[:limit]:
        console.print(f"  {sev:<7} {code} ×{n:,}: {file or ''} {msg}", markup=False)


def cmd_run(args, specs) -> int:
    from contextlib import ExitStack

    from noriba.pipeline import POOLED_KINDS, FeedPool, run_feed, run_jobs
    from warehouse.publish import RUN_SNAPSHOT_EVERY, deferred_snapshots
    from warehouse.workspace import Workspace

    ws = Workspace.from_env(args.home).ensure()
    console = _console()
    failed: list[str] = []
    blocked = 0
    with ExitStack() as stack:
        pool = None
        if len(specs) > 1:  # readers' copy of the warehouse: at most one every RUN_SNAPSHOT_EVERY s, and one at the end
            stack.enter_context(deferred_snapshots(ws, every=RUN_SNAPSHOT_EVERY))
            jobs = run_jobs(getattr(args, "jobs", None))
            if jobs > 1 and sum(s.kind in POOLED_KINDS for s in specs) > 1:  # parse and validate the next feeds meanwhile
                pool = stack.enter_context(FeedPool(specs, ws, jobs=jobs, validation_date=getattr(args, "date", None)))
        for spec in specs:
            try:
                with _Progress(args.quiet) as progress:
                    result = run_feed(spec, ws, progress=progress, export=not args.no_export,
                                      validation_date=getattr(args, "date", None), pool=pool,
                                      data_docs="later")  # rendered once after the loop, if asked (`noriba docs` later)
                _report_run(result, console)
                blocked += result.get("policy_status") == "blocked"

                if result["status"] != "unchanged" and not args.quiet:
                    _print_notices(ws, spec.id, result["feed_version"], console, limit=5)
            except Exception as exc:  # one clear line per problem, never a traceback
                failed.append(spec.id)
                _fail(console, spec.id, exc, spec=spec)
    if getattr(args, "data_docs", False):  # GX renders the contracts' pages once per run, only when asked
        from warehouse.contracts import finish_data_docs

        try:
            finish_data_docs(ws)
        except Exception as exc:  # the feeds are stored; say what failed after them
            _fail(console, "data docs", exc)
    if failed and len(specs) > 1:  # the feeds after a failure still ran; say at the end which did not
        console.print(f"error: {len(failed)} of {len(specs)} feeds failed: {', '.join(failed)}", markup=False)
    # 2 when a feed could not be run; 1 when a new version was blocked by its policy (cron and CI notice it)
    return EXIT_PROBLEM if failed else EXIT_BLOCKED if blocked else 0


def cmd_docs(args) -> int:
    """Render the data contracts' GX Data Docs pages that stored results lack; print where they are."""
    from warehouse.contracts import finish_data_docs
    from warehouse.workspace import Workspace

    ws = Workspace.from_env(args.home).ensure()
    index = finish_data_docs(ws)
    if index is None:
        _console().print("no data contract results stored yet: run `noriba ingest` or `noriba run` first", markup=False)
        return EXIT_PROBLEM
    _console().print(f"data contracts: {ws.reports / 'data_docs' / 'offline.html'} (offline), {index} (GX)", markup=False)
    return 0


def _fail(console, feed_id: str, exc: BaseException, *, spec=None) -> None:
    """Print one clear error for ``exc``, never a traceback. If ``spec`` is a Japanese feed's (noriba.notify.japanese) and
    the error has a Japanese text, then that text first, then the English one."""
    from noriba.specs import SpecError
    from transforms.adapters import InputError

    if os.environ.get("NORIBA_DEBUG"):
        raise exc
    if isinstance(exc, (InputError, SpecError)):
        from noriba.notify import japanese

        if spec is None and getattr(exc, "ja", None):  # a command given a feed id only (rt, gbfs): its spec says the language
            spec = _spec_named(feed_id)
        ja = getattr(exc, "ja", None) if spec is not None and japanese(spec) else None
        for line in [*(ja.splitlines() if ja else []), *str(exc).splitlines()]:
            console.print(f"error: {feed_id}: {line}", markup=False)
    elif disk_problem(exc):
        console.print(f"error: {feed_id}: {disk_problem(exc)}", markup=False)
    else:
        console.print(f"error: {feed_id}: {type(exc).__name__}: {exc} (set NORIBA_DEBUG=1 for details)", markup=False)


def _spec_named(feed_id: str):
    """Return the spec (static, realtime or trips) whose id is ``feed_id``, or None (none, or the specs do not load)."""
    from noriba.specs import load_each

    try:
        for folder, realtime in (("feeds", False), ("feeds", True), ("trips", False)):
            for s in load_each(folder, realtime=realtime)[0]:
                if s.id == feed_id:
                    return s
    except Exception:  # the error being reported is the one that counts
        return None
    return None


#: (errno, words a library writes for it): disk problems a person fixes outside Noriba
_DISK = ((errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left on device"), (errno.EDQUOT, "Disk quota exceeded"),
         (errno.EACCES, "Permission denied"), (errno.EPERM, "Operation not permitted"))


def disk_problem(exc: BaseException) -> str | None:
    """Return one sentence saying which path could not be written and what to do, if ``exc`` (or its cause) is a
    read-only, full or forbidden disk: an OSError, or a DuckDB/Arrow error carrying the system's words. Else None."""
    seen = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        text = str(e)
        code = e.errno if isinstance(e, OSError) and e.errno in {c for c, _ in _DISK} else next(
            (c for c, words in _DISK if words in text), None)
        if code is not None:
            quoted = re.search(r"[\"'](/[^\"']+)[\"']", text)  # DuckDB: Could not write file "/x/noriba.duckdb.wal"
            path = getattr(e, "filename", None) or (quoted.group(1) if quoted else "the workspace (NORIBA_HOME)")
            if code == errno.EROFS:
                return (f"cannot write {path}: the file system is read-only; give Noriba a writable folder "
                        f"(--home DIR or NORIBA_HOME=DIR) and run the command again")
            if code in (errno.ENOSPC, errno.EDQUOT):
                return (f"cannot write {path}: the disk is full; free space on it (or use a folder on a disk with room: "
                        f"--home DIR or NORIBA_HOME=DIR) and run the command again")
            return (f"cannot use {path}: permission denied; let the user running noriba read and write there, "
                    f"or use another folder (--home DIR or NORIBA_HOME=DIR)")
        if type(e).__name__ in ("FatalException", "IOException") and type(e).__module__.startswith(("duckdb", "_duckdb")):
            quoted = re.search(r"[\"'](/[^\"']+)[\"']", text)
            where = quoted.group(1) if quoted else "the warehouse (noriba.duckdb in NORIBA_HOME)"
            return (f"cannot write {where}: DuckDB stopped on a fatal error (most often a full or read-only disk); check that the disk has room and is writable, "
                    f"then run the command again")
        e = e.__cause__ or e.__context__
    return None


def cmd_ingest(args) -> int:
    from noriba.specs import parse_spec

    target = args.source
    is_url = bool(re.match(r"^https?://", target))
    if not is_url and not Path(target).exists():
        _console().print(f"error: {target}: no such file or folder", markup=False)
        return EXIT_PROBLEM
    fid = args.id or _derived_id(target, is_url=is_url)
    doc = {"id": fid, "kind": args.kind, "source": {"url": target} if is_url else {"path": str(Path(target).resolve())},
           "timezone": args.timezone}
    if args.encoding:
        doc["encoding"] = args.encoding
    if args.license:
        doc["license"] = {"id": args.license}
    if args.publish:  # without a licence or this, a one-off ingest stays out of the public catalog
        doc["publish"] = True
    try:
        spec = parse_spec(doc, where="command line", root=Path.cwd())
    except Exception as exc:
        _fail(_console(), fid, exc)
        return EXIT_PROBLEM
    return cmd_run(args, [spec])


def cmd_validate(args) -> int:
    """Validate one feed (a path, URL or feed id) without publishing; write its report; exit 1 if its policy blocks it."""
    from noriba.report import summary_lines
    from noriba.validate import brief, validate_feed
    from warehouse.workspace import Workspace

    console = _console()
    target = args.target
    spec = None
    is_url = bool(re.match(r"^https?://", target or ""))
    if target is None or (not is_url and not Path(target).exists()):
        from noriba.specs import SpecError, load_specs

        try:
            specs = {s.id: s for s in load_specs(Path(args.specs) if args.specs else None)}
        except SpecError as exc:
            for line in exc.problems:
                console.print(f"error: {line}", markup=False)
            return EXIT_PROBLEM
        spec = specs.get(target) if target else None
        if spec is None:
            known = f"known feed ids: {', '.join(specs)}" if specs else "no feed specs under specs/feeds"
            what = (f"{target}: no such file or folder, and no feed spec with that id" if target
                    else "give a path (GTFS zip or folder), an http(s) URL or a feed id, e.g. `noriba validate gtfs.zip`")
            console.print(f"error: {what}; {known}", markup=False)
            return EXIT_PROBLEM
    if spec is None:
        from noriba.specs import parse_spec

        fid = args.id or _derived_id(target, is_url=is_url)
        doc = {"id": fid, "kind": args.kind, "source": {"url": target} if is_url else {"path": str(Path(target).resolve())}}
        if args.encoding:
            doc["encoding"] = args.encoding
        if args.profile:
            doc["profile"] = args.profile
        try:
            spec = parse_spec(doc, where="command line", root=Path.cwd())
        except Exception as exc:
            _fail(console, fid, exc)
            return EXIT_PROBLEM
    ws = Workspace.from_env(args.home)
    try:
        with _Progress(args.quiet or args.json) as progress:
            report, paths = validate_feed(spec, ws, validation_date=args.date, progress=progress)
    except Exception as exc:  # unreadable input: one line, exit 2
        _fail(console, spec.id, exc, spec=spec)
        return EXIT_PROBLEM
    if args.json:
        print(json.dumps(brief(report, paths), ensure_ascii=False, indent=2))
    else:
        for line in summary_lines(report):
            print(line)
        print(f"report: {paths['html']}")
        print(f"        {paths['json']}")
    return EXIT_BLOCKED if report["policy"]["status"] == "blocked" else 0


def _date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def cmd_status(args) -> int:
    from warehouse.workspace import Workspace
    from warehouse.status import status

    ws = Workspace.from_env(args.home)
    if args.feed:
        return _feed_status(args, ws)
    data = status(ws)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    if not data["feeds"]:
        print(f"No feeds published yet in {ws.home}. Run `noriba run` or `noriba demo`.")
        return 0
    t = Table(title=f"Noriba warehouse {ws.warehouse}")
    for col in ("feed", "latest (served)", "newest", "policy", "versions", "service", "rows", "quarantined", "ERROR", "WARNING", "INFO"):
        t.add_column(col)
    for f in data["feeds"]:
        t.add_row(f["feed_id"], f["latest_version"] or "none", f["newest_version"], f["policy_status"], str(f["versions"]),
                  f"{f['service_start'] or '?'} – {f['service_end'] or '?'}", f"{f['rows_accepted'] or 0:,}",
                  f"{f['rows_quarantined'] or 0:,}", str(f["errors"]), str(f["warnings"]), str(f["infos"]))
    out = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    out.print(t)
    for f in data["feeds"]:
        if f["reason"]:
            out.print(f"{f['feed_id']}: newest version {f['newest_version']} {f['reason']}", markup=False)
            if f["report"]:
                out.print(f"  report: {f['report']}", markup=False)
    out.print(f"One feed's versions, notices by code and changes: noriba status {data['feeds'][0]['feed_id']}", markup=False)
    return 0


def _feed_status(args, ws) -> int:
    """Print one feed's versions, the notices by code of its newest version and what changed since the one before."""
    from warehouse.status import feed_status, status

    data = feed_status(ws, args.feed)
    if data is None:
        known = [f["feed_id"] for f in status(ws)["feeds"]]
        _console().print(f"error: {args.feed}: no published feed with that id; published: {', '.join(known) or 'none'}", markup=False)
        return EXIT_PROBLEM
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"{data['feed_id']}: {len(data['versions'])} version(s), newest first (* = served by gtfs_latest)")
    for v in data["versions"]:
        mark = "*" if v["served"] else " "
        print(f" {mark} {v['feed_version']}  {v['ingested_at'] or '?'}  {v['policy_status']:<7}  {v['rows_accepted'] or 0:,} rows, "
              f"{v['rows_quarantined'] or 0:,} quarantined, {v['errors']} ERROR {v['warnings']} WARNING {v['infos']} INFO"
              + (f"  ({v['reason']})" if v["reason"] else ""))
    print(f"notices of {data['newest_version']} by code:" if data["notices"] else f"notices of {data['newest_version']}: none")
    for n in data["notices"]:
        print(f"  {n['severity'] or '?':<7} {n['code']} ×{n['count']:,}")
    if data["diff"]:
        _print_diff(data["diff"])
    return 0


def _print_diff(d: dict) -> None:
    print(f"changes from {d['from_version']} to {d['to_version']} (+ added, - removed, ~ changed rows):")
    changed = [f for f in d["files"] if f["added"] or f["removed"] or f["changed"]]
    for f in changed:
        same_key = f"~{f['changed']:,}" if f["changed"] is not None else "(no key: a changed row is one - and one +)"
        print(f"  {f['file']:<22} +{f['added']:,} -{f['removed']:,} {same_key}  ({f['rows_before']:,} → {f['rows_after']:,} rows)")
    if not changed:
        print("  no row added, removed or changed")
    for label, key in (("appeared", "notices_appeared"), ("disappeared", "notices_disappeared"), ("changed count", "notices_changed")):
        for n in d[key]:
            print(f"  notice {label}: {n['severity'] or '?'} {n['code']} ({n['before']:,} → {n['after']:,})")


def cmd_diff(args) -> int:
    """Print what changed between two versions of a feed (default: its two newest)."""
    from warehouse.workspace import Workspace
    from warehouse.diff import DiffError, diff_versions

    if len(args.versions) not in (0, 2):
        _console().print("error: give two versions (old then new), or none for the two newest, "
                         "e.g. `noriba diff my-bus 0123abcd 4567ef01`", markup=False)
        return EXIT_PROBLEM
    try:
        d = diff_versions(Workspace.from_env(args.home), args.feed, *args.versions)
    except DiffError as exc:
        _console().print(f"error: {exc}", markup=False)
        return EXIT_PROBLEM
    if args.json:
        print(json.dumps(d, ensure_ascii=False, indent=2))
    else:
        _print_diff(d)
    return 0


def cmd_export(args) -> int:
    from warehouse.workspace import Workspace
    from warehouse.export import export_version
    from warehouse.status import status

    from warehouse.policy import blocking_reason
    from warehouse.export import ExportRefused

    from warehouse import storage

    ws = Workspace.from_env(args.home)
    console = _console()
    if args.version and len(args.feed_ids) != 1:
        console.print("error: --version needs exactly one feed id, e.g. `noriba export my-bus --version 0123abcd`", markup=False)
        return EXIT_PROBLEM
    feeds = status(ws)["feeds"]
    unknown = set(args.feed_ids) - {f["feed_id"] for f in feeds}
    if unknown:
        console.print(f"error: no published feed {', '.join(sorted(unknown))}", markup=False)
        return EXIT_PROBLEM
    refused = 0
    for f in feeds:
        if args.feed_ids and f["feed_id"] not in args.feed_ids:
            continue
        version = args.version or f["latest_version"]
        if version is None:  # every version of the feed was blocked: name what blocks the newest
            version = f["newest_version"]
        storage.pull_version(ws, f["feed_id"], version)  # NORIBA_HOME on object storage: the lake as stored
        if not ws.lake_partition("meta_feed_versions", f["feed_id"], version).exists():
            console.print(f"error: {f['feed_id']}: no version {version} in the lake", markup=False)
            return EXIT_PROBLEM
        try:
            out = export_version(ws, f["feed_id"], version)
        except ExportRefused as exc:
            refused += 1
            console.print(f"error: {exc}", markup=False)
            continue
        if f["policy_status"] == "blocked" and version != f["newest_version"]:
            console.print(f"{f['feed_id']}: newest version {f['newest_version']} is blocked by policy "
                          f"({blocking_reason(f['blocked_by'])}); exported {version}, the latest that passed", markup=False)
        console.print(f"{f['feed_id']}: {out['gtfs_zip']}", markup=False)
    return EXIT_BLOCKED if refused else 0


def cmd_export_specs(args) -> int:
    """Build the export specs named (or all, when no id is given); feed ids among the names re-export those feeds.

    With no ids, every feed's latest version is re-exported (``cmd_export``) and every export spec is built.
    """
    from noriba.exports import build_export, export_feed_specs, load_export_specs
    from noriba.specs import SpecError, load_specs
    from warehouse.workspace import Workspace
    from noriba.exports import update_catalog

    ws = Workspace.from_env(args.home).ensure()
    console = _console()
    try:
        export_specs = load_export_specs()
        export_ids = [s.id for s in export_specs]
    except SpecError as exc:
        for line in exc.problems:
            console.print(f"error: {line}", markup=False)
        return EXIT_PROBLEM
    from warehouse.status import status

    wanted = list(args.feed_ids)
    feed_ids = [i for i in wanted if i not in export_ids]
    known = {f["feed_id"] for f in status(ws)["feeds"]} if ws.warehouse.exists() else set()
    unknown = [i for i in feed_ids if i not in known]
    if unknown:
        console.print(f"error: {', '.join(unknown)}: neither an export spec (specs/exports/: {', '.join(export_ids) or 'none'}) "
                      f"nor a published feed", markup=False)
        return EXIT_PROBLEM
    rc = 0
    if feed_ids or (not wanted and known):
        args.feed_ids = feed_ids
        rc = cmd_export(args)
    for es in export_specs:
        eid = es.id
        if wanted and eid not in wanted:
            continue
        if not wanted and (es.ingest or es.lake_globs):  # it ingests feeds of its own: only when named
            console.print(f"{eid}: not built (it ingests its own inputs; run `noriba export {eid}` to build it)", markup=False)
            continue
        if not wanted:
            missing = sorted((set(es.feed_ids) | {s.id for s in export_feed_specs(es, load_specs())}) - known)
            if missing:
                console.print(f"{eid}: not built (feeds not published yet: {', '.join(missing)})", markup=False)
                continue
        try:
            with _Progress(args.quiet) as progress:
                res = build_export(eid, ws, progress=progress, force=args.force)
        except Exception as exc:  # one clear line per problem
            rc = EXIT_PROBLEM
            _fail(console, eid, exc)
            continue
        if res["status"] == "unchanged":
            console.print(res["message"])
            continue
        console.print(f"{eid}: version {res['export_version']}: {res['gtfs_zip']}")
        console.print(f"  validation: {res['validation']}" + (f" {res['new_errors']}" if res["new_errors"] else "")
                      + f"; collisions {res['collisions'] or 'none'}; stops unified {res['unified_stops']}")
        _print_new_warnings(console, res)
        for p in res.get("problems") or []:
            console.print(f"  warning: {p['message']}", markup=False)
        console.print(f"  manifest: {res['manifest']}")
    site = update_catalog(ws)
    if rc == 0:  # after a refusal, the one error line is the whole message
        console.print(f"catalog: {site}")
    return rc


def cmd_municipality(args) -> int:
    from warehouse.workspace import Workspace
    from noriba.exports import update_catalog
    from warehouse.municipality_report import build_report, write_pdf

    ws = Workspace.from_env(args.home).ensure()
    if ws.remote is not None:  # NORIBA_HOME on object storage: the latest versions as stored
        from warehouse import storage
        from warehouse.versions import latest_versions

        storage.pull(ws, ws.lake / storage.META_TABLE)
        for fid, meta in latest_versions(ws).items():
            storage.pull_version(ws, fid, meta["feed_version"])
    try:
        r = build_report(ws, municipality=args.municipality, feed_ids=args.feed or None,
                         population=Path(args.population) if args.population else None)
    except ValueError as exc:
        _console().print(f"error: {args.municipality}: {exc}", markup=False)
        return EXIT_PROBLEM
    print(f"{r['name']}: {r['html']}")
    for w in r.get("expiry_warnings") or []:
        when = f"ends on {w['end_date']} ({w['days_left']} days left)" if w["validity"] == "expiring" else f"expired on {w['end_date']}"
        print(f"  warning: {w['feed_id']} {when}: publish the timetable revision (改正)")
    if args.pdf:
        pdf = write_pdf(Path(r["html"]))
        print(f"  PDF: {pdf}" if pdf else "  PDF: not written (no chromium installed; see .ci/install-chromium)")
    update_catalog(ws)
    return 0


def cmd_spec_suggest(args) -> int:
    """Print a starting spec for a timetable workbook or a trip file. Exit 2 if the file cannot be read."""
    from transforms.adapters import InputError
    from transforms.timetable import suggest as timetable

    path = Path(args.path)
    console = _console()
    if not path.is_file():
        console.print(f"error: {path}: no such file", markup=False)
        return EXIT_PROBLEM
    kind = args.kind
    try:
        if kind is None:
            is_book = path.suffix.lower() in timetable.WORKBOOK_SUFFIXES
            kind = "timetable" if is_book and timetable.looks_like_timetable(path) else "trips"
        if kind == "timetable":
            text = timetable.suggest(path)
        else:
            try:
                from transforms.trips.suggest import suggest as trips_suggest
            except ModuleNotFoundError as exc:
                if exc.name != "transforms.trips.suggest":
                    raise
                console.print(f"error: {path} looks like a file of trips, and this build cannot suggest a trips spec yet "
                              "(transforms.trips.suggest is missing); if it is a timetable, run with --kind timetable", markup=False)
                return EXIT_PROBLEM
            text = trips_suggest(path)
    except InputError as exc:
        console.print(f"error: {exc}", markup=False)
        return EXIT_PROBLEM
    sys.stdout.write(text)
    return 0


def cmd_serve(args) -> int:
    from noriba.exports import update_catalog
    from noriba.serve import endpoints, make_server
    from warehouse.workspace import Workspace

    ws = Workspace.from_env(args.home).ensure()
    update_catalog(ws)  # the catalog as of today (validity, what is public), with its latest.zip links
    server = make_server(ws, host=args.host, port=args.port, verbose=args.verbose)
    host, port = server.server_address[:2]
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(f"Serving the catalog of {ws.exports} at {base}/ (Ctrl-C to stop): {endpoints(base)}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_demo(args) -> int:
    from noriba.specs import load_specs
    from warehouse.workspace import Workspace

    t0 = time.monotonic()
    specs = [s for s in load_specs() if "demo" in s.tags]
    if not specs:
        _console().print("error: no demo feed specs (tag 'demo') under specs/feeds/")
        return EXIT_PROBLEM
    rc = cmd_run(args, specs)
    rc = max(rc, _run_trips(args, tags=("demo",)))  # the demo region's taxi, on-demand and zone specs (specs/trips/)
    sys.stderr.flush()
    ws = Workspace.from_env(args.home)
    punctuality = _demo_realtime(ws)
    catalog, reports = _demo_outputs(args, ws, specs)
    sys.stderr.flush()
    print()
    print(f"Demo region built in {time.monotonic() - t0:.1f}s.")
    print(f"  warehouse : {ws.warehouse}")
    print(f"  lake      : {ws.lake}")
    print(f"  exports   : {ws.exports}")
    for s in specs:
        if s.kind != "gtfs":
            what = "an on-demand service's leaflet" if s.kind == "ondemand" else "spreadsheets"
            print(f"  {s.id}: built from {what} ({s.kind} spec {s.spec_path.name if s.spec_path else ''}) into {s.profile.upper()}"
                  + (" (GTFS-Flex)" if s.kind == "ondemand" else ""))
    if catalog:
        print(f"  catalog   : {catalog}   (serve it: uv run noriba serve)")
    for path in reports:
        print(f"  report    : {path}")
    if punctuality:
        print(f"  realtime  : {punctuality}")
        for export_id in _served_realtime(ws) if catalog else []:
            print(f"  merged rt : http://127.0.0.1:8000/rt/{export_id}/trip-updates.pb   (also vehicle-positions.pb, alerts.pb, "
                  f".json, status.json; in {export_id}'s ids, after: uv run noriba serve)")
    print("Try a query:")
    print(f"  uv run python -c \"import duckdb; print(duckdb.connect('{ws.warehouse}', read_only=True)"
          f".sql('SELECT feed_id, stop_name, stop_lat, stop_lon FROM gtfs_latest.stops LIMIT 5'))\"")
    print(f"  uv run python -c \"import duckdb; print(duckdb.connect('{ws.warehouse}', read_only=True)"
          f".sql('SELECT * FROM marts.transit_gap_by_municipality'))\"")
    print("  uv run noriba status")
    sys.stdout.flush()
    return rc


def _served_realtime(ws) -> list[str]:
    """Return the built exports that `noriba serve` serves a merged realtime feed for (warehouse/rt_merge.py); [] if that fails."""
    from warehouse.rt_merge import served_exports

    try:
        return served_exports(ws)
    except Exception:  # noqa: BLE001 (the demo's summary never fails on this line)
        return []


#: The demo's simulated realtime day and hours: a fixed weekday, so every demo measures the same delays.
DEMO_RT = {"feed_id": "minato-bus-rt", "static_feed_id": "minato-city-bus", "day": "2026-06-01", "hours": (7, 9)}


def _demo_realtime(ws) -> str | None:
    """Simulate the demo city bus's morning as GTFS-Realtime (noriba/rt_sim.py), archive, parse and publish it, build the
    realtime marts, and return one line with the punctuality they measure beside the simulator's truth. If it fails,
    print one error line and return None (the rest of the demo stands)."""
    import datetime as _dt

    from noriba import rt_sim
    from warehouse.publish import connect
    from warehouse.rt_marts import build_feed_marts

    console = _console()
    try:
        res = rt_sim.demo_feed(ws, static_feed_id=DEMO_RT["static_feed_id"], feed_id=DEMO_RT["feed_id"],
                               day=_dt.date.fromisoformat(DEMO_RT["day"]), hours=DEMO_RT["hours"])
        build_feed_marts(ws, DEMO_RT["feed_id"])
        from warehouse.tides import export_tides

        tides = export_tides(ws, DEMO_RT["feed_id"], dates=[_dt.date.fromisoformat(res["service_date"])])["dates"]
        con = connect(ws, read_only=True)
        try:
            on_time, observed = con.execute("SELECT sum(on_time), sum(observed) FROM marts.rt_on_time_performance WHERE feed_id = ?",
                                            [DEMO_RT["feed_id"]]).fetchall()[0]
        finally:
            con.close()
    except Exception as exc:  # one line, never a traceback
        _fail(console, DEMO_RT["feed_id"], exc)
        return None
    start, end = DEMO_RT["hours"]
    measured = f"{on_time / observed:.1%} of {observed:,} observed arrivals" if observed else "no arrival observed"
    folders = "; ".join(f"{v['folder']} ({', '.join(f'{n:,} {t}' for t, n in v['rows'].items())})" for v in tides.values())
    return (f"{DEMO_RT['feed_id']}: simulated {start:02d}:00-{end:02d}:00 on {res['service_date']}; on time (1 min early to 5 min "
            f"late) in marts.rt_on_time_performance: {measured} (the simulator's truth: {res['on_time_share']:.1%})"
            + (f"\n  TIDES     : {folders}" if folders else ""))


def _run_trips(args, *, ids: list[str] | None = None, tags: tuple[str, ...] = ()) -> int:
    """Run trips / zones specs (specs/trips/); return 0, or EXIT_PROBLEM after printing one line per failure."""
    from noriba.specs import SpecError
    from noriba.trips_pipeline import run_all
    from warehouse.workspace import Workspace

    from noriba.trips_pipeline import SourcesFailed

    ws = Workspace.from_env(args.home)
    console = _console()
    failed: list[str] = []
    try:
        with _Progress(getattr(args, "quiet", False)) as progress:
            results = run_all(ws, ids=ids, tags=tags, progress=progress, export=not getattr(args, "no_export", False))
    except SourcesFailed as exc:  # one source failing did not stop the others: each is listed, the run exits non-zero
        results, failed = exc.results, exc.failed
    except SpecError as exc:
        for line in exc.problems:
            console.print(f"error: {line}", markup=False)
        return EXIT_PROBLEM
    except Exception as exc:  # one line a person can act on, never a traceback
        _fail(console, "trips", exc)
        return EXIT_PROBLEM
    for r in results:
        if r.get("status") == "failed":
            _fail(console, r["feed_id"], r["exception"], spec=r.get("spec"))
            continue
        console.print(r["message"], markup=False)
        for path in (r.get("exports") or {}).values():
            console.print(f"  export: {path}", markup=False)
    if failed:
        console.print(f"error: trips: {len(failed)} of {len(results)} sources failed: {', '.join(failed)} "
                      f"(the others ran)", markup=False)
        return EXIT_PROBLEM
    return 0


def _print_new_warnings(console, res: dict) -> None:
    """Print the warning codes an export has that its inputs did not (code, count in the export, count in the inputs)."""
    if res.get("new_warnings"):
        console.print("  new warnings: " + ", ".join(f"{c} {e['count']:,} (inputs {e['inputs']:,})" for c, e in res["new_warnings"].items())
                      + " (the export's manifest.json keeps them under validation)", markup=False)


def _demo_outputs(args, ws, specs) -> tuple[str | None, list[str]]:
    """Return the catalog page and the municipality reports built for the demo region (its export specs tagged by feed)."""
    from noriba.exports import build_export, export_feed_specs, load_export_specs
    from noriba.exports import update_catalog
    from warehouse.municipality_report import build_report

    console = _console()
    demo_ids = {s.id for s in specs}
    reports = []
    try:
        for es in load_export_specs():
            selected = set(es.feed_ids) | {s.id for s in export_feed_specs(es, specs)}
            if selected and set(es.feed_ids) <= demo_ids and not es.ingest and not es.lake_globs:
                with _Progress(args.quiet) as progress:
                    res = build_export(es.id, ws, progress=progress)
                console.print(res.get("message") or f"{es.id}: export version {res['export_version']} ({res['validation']})")
                _print_new_warnings(console, res)
        for code in dict.fromkeys(str(s.municipality.get("code") or s.municipality.get("name")) for s in specs if s.municipality):
            reports.append(build_report(ws, municipality=code)["html"])
        return str(update_catalog(ws)), reports
    except Exception as exc:  # the feeds are built; say what failed after them
        _fail(console, "demo outputs", exc)
        return None, reports


def cmd_publish(args) -> int:
    """Publish the lake's complete versions (all feeds, or those named) that this machine's warehouse lacks, with their
    data contracts (unless --no-contracts); exports are left as they are.

    With NORIBA_HOME on object storage this is how a second machine builds its warehouse from the lake as stored.
    """
    from warehouse import storage
    from noriba.pipeline import META_TABLE, contracts_step, lake_versions, publish_step, unfinished_steps
    from warehouse.workspace import Workspace, safe_id

    ws = Workspace.from_env(args.home).ensure()
    console = _console()
    for fid in args.feed_ids:
        safe_id(fid)
        storage.pull(ws, ws.lake / META_TABLE / f"feed_id={fid}")
    if not args.feed_ids:
        storage.pull(ws, ws.lake / META_TABLE)
    versions = [(f, v) for f, v in lake_versions(ws) if not args.feed_ids or f in args.feed_ids]
    missing = sorted(set(args.feed_ids) - {f for f, _ in versions})
    if missing:
        console.print(f"error: no version of {', '.join(missing)} in the lake at {ws.location}/lake", markup=False)
        return EXIT_PROBLEM
    for fid, ver in versions:
        out = publish_step(ws, {"feed_id": fid, "feed_version": ver, "unchanged": True})
        rows = sum(out.get("published", {}).values())
        done = "already published" if out["status"] == "unchanged" else f"published ({rows:,} rows)"
        if not args.no_contracts and unfinished_steps(ws, fid, ver, export=False):
            contracts_step(ws, {**out, "status": "published"})
            done += ", data contracts checked"
        console.print(f"{fid}: version {ver} {done}", markup=False)
    return 0


def _sync_up(args) -> None:
    """With NORIBA_HOME on object storage, send what a command wrote outside the pipeline's steps (trips, reports, the catalog)."""
    from warehouse import storage
    from warehouse.workspace import Workspace

    storage.sync_up(Workspace.from_env(args.home))


def cmd_gbfs(args) -> int:
    """Run ``noriba gbfs ingest PATH --feed ID`` or ``noriba gbfs fetch FEED``; return 0, or EXIT_PROBLEM after one line per failure."""
    from noriba import gbfs
    from noriba.specs import SpecError, load_spec
    from warehouse.workspace import Workspace
    from transforms.schema import default_specs_dir

    console = _console()
    ws = Workspace.from_env(args.home)
    fid = args.feed
    specs_dir = Path(args.specs) if args.specs else default_specs_dir()
    path = specs_dir / "feeds" / f"{fid}.yml"
    spec = None
    try:
        spec = load_spec(path, specs_dir=specs_dir) if path.exists() else None
        if spec is not None and spec.kind != "gbfs":
            console.print(f"error: {path}: feed {fid} is of kind {spec.kind}, not gbfs", markup=False)
            return EXIT_PROBLEM
        with _Progress(args.quiet) as progress:
            if args.gbfs_command == "ingest":
                results = [gbfs.ingest(ws, fid, Path(args.path), spec=spec, timezone_name=args.timezone, progress=progress,
                                       export=not args.no_export, specs_dir=specs_dir)]
            elif args.gbfs_command == "ingest-archive":
                results = [gbfs.ingest_archive(ws, fid, spec=spec, progress=progress, export=not args.no_export, specs_dir=specs_dir)]
            else:
                if spec is None:
                    console.print(f"error: no spec {path}; write one of kind gbfs with source.url (the system's gbfs.json)", markup=False)
                    return EXIT_PROBLEM
                results = gbfs.poll(spec, ws, once=args.once, rounds=args.rounds, progress=progress, export=not args.no_export,
                                     specs_dir=specs_dir)
    except SpecError as exc:
        for line in exc.problems:
            console.print(f"error: {line}", markup=False)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        console.print(f"{fid}: polling stopped", markup=False)
        return 0
    except Exception as exc:  # one line a person can act on, never a traceback
        _fail(console, fid, exc, spec=spec)
        return EXIT_PROBLEM
    for r in results:
        console.print(r["message"], markup=False)
        for path_ in (r.get("exports") or {}).values():
            console.print(f"  export: {path_}", markup=False)
    return 0


def _gbfs_parser(sub) -> None:
    """Add the ``gbfs`` command group (bike and scooter sharing)."""
    sp = sub.add_parser("gbfs", help="bike and scooter sharing (GBFS): ingest captured snapshots, or poll a live system")
    gsub = sp.add_subparsers(dest="gbfs_command", required=True)
    g = gsub.add_parser("ingest", help="ingest a folder of GBFS snapshots (or one file) written by any poller")
    g.add_argument("path", help="a folder of GBFS JSON files (any names and subfolders), or one file")
    g.add_argument("--feed", required=True, help="feed id (settings from specs/feeds/<id>.yml when it exists)")
    g.add_argument("--timezone", help="IANA time zone of the marts' hours when the snapshots have no system_information.json")
    g = gsub.add_parser("ingest-archive", help="ingest what `noriba rt archive` archived for a gbfs feed (raw/<feed>/archive; "
                        "files already ingested are skipped: run it hourly)")
    g.add_argument("feed", help="id of a gbfs spec in specs/feeds")
    g = gsub.add_parser("fetch", help="poll a live system from its spec's gbfs.json, each file when its ttl has run out")
    g.add_argument("feed", help="id of a gbfs spec in specs/feeds")
    g.add_argument("--once", action="store_true", help="ask every file once, ingest, publish and stop")
    g.add_argument("--rounds", type=int, help="stop after this many rounds (default: run until interrupted)")
    for g in gsub.choices.values():
        g.add_argument("--specs", help="specs folder (default $NORIBA_SPECS or ./specs)")
        g.add_argument("--quiet", action="store_true", help="no progress output")
        g.add_argument("--no-export", action="store_true", help="stop after publishing")


# ---------------------------------------------------------------- rt: GTFS-Realtime (noriba/rt.py)

def _duration(text: str) -> float:
    """Return seconds of a duration such as 90, 90s, 10m, 2h."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 10m or 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _rt_parser(sub) -> None:
    rt = sub.add_parser("rt", help="GTFS-Realtime: archive, ingest and parse realtime feeds (kind gtfs-rt specs)")
    rsub = rt.add_subparsers(dest="rt_command", required=True)
    sp = rsub.add_parser("archive", help="poll every gtfs-rt spec and gbfs spec with source.url (or those named) concurrently and "
                         "archive each changed response (GBFS files when their ttl has run out)")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="gtfs-rt or gbfs feed ids of specs/feeds (default: all)")
    sp.add_argument("--for", dest="duration", type=_duration, help="stop after this long, e.g. 10m (default: run until stopped)")
    sp.add_argument("--once", action="store_true", help="fetch each URL once, then stop (for cron and tests)")
    sp.add_argument("--specs", help="specs folder (default $NORIBA_SPECS or ./specs)")
    sp = rsub.add_parser("ingest", help="archive protobuf snapshots captured elsewhere (files or folders), then parse and publish them")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="snapshot files or folders of them")
    sp.add_argument("--feed", required=True, help="the realtime feed id to file them under")
    sp.add_argument("--static", help="the published static feed id its trips, routes and stops belong to")
    sp.add_argument("--timezone", help="IANA time zone of the feed, e.g. Asia/Tokyo")
    sp.add_argument("--no-parse", action="store_true", help="only archive; parse later with `noriba rt parse`")
    sp = rsub.add_parser("parse", help="parse archived hours into the lake and publish them to the warehouse (schema rt)")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="realtime feed ids (default: every feed archived)")
    sp.add_argument("--hour", action="append", help="this UTC hour only, as YYYY-MM-DDTHH (repeatable; default: every hour "
                    "not parsed since its last snapshot)")
    sp.add_argument("--no-publish", action="store_true", help="write the lake only")
    sp = rsub.add_parser("validate", help="check archived hours with the realtime rules (E001…, W001…) against the static "
                         "feed in service that day; notices go to rt.notices and rt.notice_counts")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="realtime feed ids (default: every feed archived)")
    sp.add_argument("--hour", action="append", help="this UTC hour only, as YYYY-MM-DDTHH (repeatable; default: every hour archived)")
    sp = rsub.add_parser("match", help="match published realtime hours to the static feed version in service that day "
                         "(marts.rt_match_hourly); report a stale static feed")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="realtime feed ids (default: every feed archived)")
    sp = rsub.add_parser("simulate", help="replay a static timetable with seeded realistic delays as GTFS-Realtime snapshots "
                         "(every simulated 20 s) written to a folder, with the ground truth (truth.csv)")
    sp.add_argument("--static", required=True, help="a GTFS zip or folder, or a published static feed id (its newest export)")
    sp.add_argument("--date", required=True, help="the service date, YYYY-MM-DD")
    sp.add_argument("--hours", default="6-10", help="local hours to simulate, e.g. 6-10 (default)")
    sp.add_argument("--out", required=True, help="folder for the snapshots (vehicle-positions-<t>.pb, trip-updates-<t>.pb)")
    sp.add_argument("--seed", type=int, default=1, help="the delay model's seed (default 1)")
    sp.add_argument("--timezone", default="Asia/Tokyo", help="IANA time zone of the timetable (default Asia/Tokyo)")
    sp = rsub.add_parser("marts", help="build the realtime marts (marts.rt_stop_events, rt_on_time_performance, rt_observed_trips, "
                         "rt_feed_quality, rt_headway_adherence) of published feeds")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="realtime feed ids (default: every feed archived)")
    sp.add_argument("--radius", type=float, default=50.0, help="a fix this close to a stop (metres) is an arrival (default 50)")
    sp.add_argument("--early", type=int, default=60, help="on time from this many seconds early (default 60)")
    sp.add_argument("--late", type=int, default=300, help="on time up to this many seconds late (default 300)")
    sp = rsub.add_parser("export-tides", help="write TIDES vehicle_locations, trips_performed and stop_visits (Parquet) of a "
                         "realtime feed to exports/tides/<feed>/<service date>/ (after `noriba rt marts`)")
    sp.add_argument("feed_ids", nargs=1, metavar="FEED", help="the realtime feed id")
    sp.add_argument("--date", action="append", type=_date, help="this service date only, YYYY-MM-DD (repeatable; default: every date)")


def _rt_simulate(console, ws, args) -> int:
    """Write simulated snapshots and truth.csv to --out; one line per problem."""
    import csv as _csv

    from noriba import rt_sim

    m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", args.hours or "")
    if not m or not int(m[1]) < int(m[2]) <= 30:
        console.print(f"error: --hours {args.hours!r}: write the local hours as START-END, e.g. 6-10", markup=False)
        return EXIT_PROBLEM
    try:
        sim = rt_sim.simulator(rt_sim.resolve_static(ws, args.static), args.date, seed=args.seed, tz=args.timezone)
        start, end = rt_sim.local_hours(sim, (int(m[1]), int(m[2])), args.timezone)
        files = rt_sim.write_snapshots(sim, Path(args.out), start, end)
        truth = sim.ground_truth()
        with open(Path(args.out) / "truth.csv", "w", newline="", encoding="utf-8") as fh:
            w = _csv.DictWriter(fh, fieldnames=list(truth[0]))
            w.writeheader()
            w.writerows(truth)
    except Exception as exc:
        _fail(console, "rt simulate", exc)
        return EXIT_PROBLEM
    console.print(f"{len(sim.trips)} trip(s), {len(files)} snapshot(s) in {args.out}; ground truth: {Path(args.out) / 'truth.csv'} "
                  f"(on time, 1 min early to 5 min late: {rt_sim.on_time_share(truth):.1%} of arrivals)", markup=False)
    return 0


def cmd_rt(args) -> int:
    """Run `noriba rt archive | ingest | parse`; one line per problem, never a traceback."""
    from noriba import rt
    from warehouse.workspace import Workspace

    console = _console()
    ws = Workspace.from_env(args.home)
    if args.rt_command == "archive":
        from noriba.specs import load_rt_specs

        from noriba.gbfs import live_specs
        from noriba.specs import load_each

        def _archived_specs():  # gtfs-rt specs, and gbfs specs with source.url (polled respecting ttl)
            rt_specs, rt_problems = load_rt_specs(Path(args.specs) if args.specs else None)
            return rt_specs + live_specs(load_each("feeds", Path(args.specs) if args.specs else None)[0]), rt_problems

        specs, problems = _archived_specs()
        for line in problems:
            console.print(f"warning: {line}", markup=False)
        if args.feed_ids:
            unknown = sorted(set(args.feed_ids) - {s.id for s in specs})
            if unknown:
                console.print(f"error: no gtfs-rt spec for {', '.join(unknown)}; known (gtfs-rt, and gbfs with source.url): {', '.join(s.id for s in specs) or 'none'}",
                              markup=False)
                return EXIT_PROBLEM
            specs = [s for s in specs if s.id in args.feed_ids]
        if not specs and not args.feed_ids and not args.once and args.duration is None:
            # the long-running service (docker/): wait for a spec instead of exiting and being restarted in a loop
            wait = float(os.environ.get("NORIBA_RT_SPEC_WAIT_S", "60"))
            console.print(f"no gtfs-rt specs under specs/feeds yet; looking again every {wait:g} s", markup=False)
            while not specs:
                time.sleep(wait)
                specs = _archived_specs()[0]
        if not specs:
            console.print("error: no gtfs-rt specs under specs/feeds (kind: gtfs-rt, with a realtime: section)", markup=False)
            return EXIT_PROBLEM
        urls = sum(len(s.realtime["urls"]) for s in specs if s.kind != "gbfs")
        n_gbfs = sum(s.kind == "gbfs" for s in specs)
        console.print(f"archiving {len(specs) - n_gbfs} realtime feed(s), {urls} URL(s)"
                      + (f" and {n_gbfs} GBFS system(s)" if n_gbfs else "") + f" into {ws.home}"
                      + (" once" if args.once else f" for {args.duration:g} s" if args.duration else " until stopped"), markup=False)
        said = set(problems)
        current = {s.id: s for s in specs}

        def again() -> list:  # the service reads the specs again: new ones are polled, changed ones restarted, removed ones stopped
            found, found_problems = _archived_specs()
            found = [s for s in found if not args.feed_ids or s.id in args.feed_ids]
            for line in found_problems:
                if line not in said:
                    said.add(line)
                    console.print(f"warning: {line}", markup=False)
            ids = {s.id for s in found}
            # a spec that no longer loads (being edited, a typo) keeps being polled as it was; only a deleted one stops
            kept = [s for sid, s in current.items() if sid not in ids and s.spec_path is not None
                    and any(line.startswith(f"{s.spec_path}:") for line in found_problems)]
            current.clear()
            current.update({s.id: s for s in found + kept})
            return found + kept

        try:
            result = rt.archive(ws, specs, duration_s=args.duration, once=args.once, reload=None if args.once else again,
                                reload_s=float(os.environ.get("NORIBA_RT_SPEC_RELOAD_S", "60")))
        except Exception as exc:
            _fail(console, "rt archive", exc)
            return EXIT_PROBLEM
        for key, r in result.items():
            console.print(f"{key}: {r['fetches']} fetches, {r['changed']} changed"
                          + (f", failing ({r['failures']} in a row)" if r["failures"] else ""), markup=False)
        return 0
    if args.rt_command == "simulate":
        return _rt_simulate(console, ws, args)
    if args.rt_command == "ingest":
        try:
            res = rt.ingest(ws, args.feed, [Path(p) for p in args.paths], static=args.static, tz=args.timezone)
            console.print(f"{args.feed}: {res['files']} file(s), {res['archived']} new snapshot(s) in {len(res['hours'])} hour(s)",
                          markup=False)
            if args.no_parse:
                return 0
            return _rt_parse(console, ws, [args.feed], res["hours"], publish=True)
        except Exception as exc:
            _fail(console, args.feed, exc)
            return EXIT_PROBLEM
    feeds = args.feed_ids or sorted(p.parent.name for p in ws.raw.glob("*/rt") if p.is_dir())
    if args.rt_command == "validate" and feeds:
        return _rt_validate(console, ws, feeds, args.hour)
    if args.rt_command == "match" and feeds:
        return _rt_match(console, ws, feeds)
    if args.rt_command == "marts" and feeds:
        return _rt_marts(console, ws, feeds, args)
    if args.rt_command == "export-tides":
        return _rt_export_tides(console, ws, feeds[0], args.date)
    if not feeds:
        console.print(f"nothing archived in {ws.home}; run `noriba rt archive` or `noriba rt ingest` first", markup=False)
        return 0
    try:
        return _rt_parse(console, ws, feeds, args.hour, publish=not args.no_publish)
    except Exception as exc:
        _fail(console, "rt parse", exc)
        return EXIT_PROBLEM


def _rt_validate(console, ws, feeds: list[str], hours: list[str] | None) -> int:
    from noriba.rt_validate import validate_hours

    for fid in feeds:
        try:
            res = validate_hours(ws, fid, hours)
        except Exception as exc:
            _fail(console, fid, exc)
            return EXIT_PROBLEM
        for h in res["hours"]:
            against = (f"static {h['static_feed_id']} {h['static_feed_version']}" if h["static_feed_version"]
                       else "no published static feed (rules needing it skipped)")
            codes = ", ".join(f"{c} {n}" for c, n in h["counts"].items()) or "no notice"
            console.print(f"{fid} {h['hour']}: {h['snapshots']} snapshot(s) against {against}: {codes}", markup=False)
            if h.get("report"):
                console.print(f"  report: {h['report']}", markup=False)
    return 0


def _rt_marts(console, ws, feeds: list[str], args) -> int:
    from warehouse.rt_marts import build_feed_marts

    for fid in feeds:
        try:
            res = build_feed_marts(ws, fid, radius_m=args.radius, early_s=args.early, late_s=args.late)
        except Exception as exc:
            _fail(console, fid, exc)
            return EXIT_PROBLEM
        console.print(f"{fid}: " + ", ".join(f"marts.{m} {n} row(s)" for m, n in res.items()), markup=False)
    return 0


def _rt_export_tides(console, ws, feed_id: str, dates) -> int:
    """Write the feed's TIDES tables; one line per service date; exit EXIT_PROBLEM (2) if a table does not conform to its schema."""
    from warehouse.tides import TIDES_VERSION, export_tides

    try:
        res = export_tides(ws, feed_id, dates=dates)
    except Exception as exc:
        _fail(console, feed_id, exc)
        return EXIT_PROBLEM
    rc = 0
    for d, r in res["dates"].items():
        console.print(f"{feed_id} {d}: TIDES {TIDES_VERSION} " + ", ".join(f"{t} {n:,} row(s)" for t, n in r["rows"].items())
                      + f" in {r['folder']}", markup=False)
        for line in (p for ps in r["problems"].values() for p in ps):
            console.print(f"error: {line}", markup=False)
            rc = EXIT_PROBLEM
    if res["dates"]:
        from noriba.exports import update_catalog

        console.print(f"catalog: {update_catalog(ws)}", markup=False)  # it lists the TIDES tables of public feeds
    return rc


def _rt_match(console, ws, feeds: list[str]) -> int:
    from noriba.rt_match import match_feed

    for fid in feeds:
        try:
            res = match_feed(ws, fid)
        except Exception as exc:
            _fail(console, fid, exc)
            return EXIT_PROBLEM
        for h in res["hours"]:
            def pct(x):
                return "-" if x is None else f"{x:.0%}"
            console.print(f"{fid} {h['date']}T{h['hour']:02d}: {h['status']} against {h['static_feed_id']} {h['static_feed_version']}"
                          f"{'' if h['version_in_service'] else ' (not in service that day)'}: trips {pct(h['trip_match_share'])} "
                          f"of {h['trips']}, routes {pct(h['route_match_share'])} of {h['routes']}, stops {pct(h['stop_match_share'])} "
                          f"of {h['stops']} matched", markup=False)
    return 0


def _rt_parse(console, ws, feeds: list[str], hours: list[str] | None, *, publish: bool) -> int:
    from noriba import rt

    for fid in feeds:
        res = rt.parse_feed(ws, fid, hours=hours, publish=publish)
        for h in res["parsed"]:
            rows = h["rows_in_snapshots"]
            console.print(f"{fid} {h['hour']}: {h['snapshots']} snapshot(s), {h['quarantined']} quarantined; "
                          f"{rows['rt_vehicle_positions']} vehicle positions, {rows['rt_trip_updates']} trip updates, "
                          f"{rows['rt_stop_time_updates']} stop time updates, {rows['rt_alerts']} alerts "
                          f"({h['stored']['rt_stop_time_updates']} stop time updates stored, the rest unchanged)", markup=False)
        if not res["parsed"]:
            console.print(f"{fid}: nothing new to parse", markup=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="noriba", description="Noriba (乗り場): receive, validate, store and export transport data.")
    p.add_argument("--home", help="workspace folder, or an s3:// or gs:// URL (default $NORIBA_HOME or ./noriba-data)")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--quiet", action="store_true", help="no progress output")
        sp.add_argument("--no-export", action="store_true", help="stop after publishing")
        sp.add_argument("--date", type=_date, help="validation date YYYY-MM-DD for time-dependent rules (default today)")

    sp = sub.add_parser("ingest", help="ingest one feed from a path or URL, no spec needed")
    sp.add_argument("source", help="a GTFS zip, a folder, or an http(s) URL")
    sp.add_argument("--id", help="feed id (default: derived from the file name)")
    sp.add_argument("--kind", default="gtfs", help="what the input is (default gtfs; spreadsheet kinds need a spec in specs/feeds)")
    sp.add_argument("--encoding", help="force an encoding, e.g. cp932")
    sp.add_argument("--timezone", default="UTC", help="IANA time zone recorded in the feed's spec, e.g. Asia/Tokyo (default UTC; "
                    "a GTFS feed's times follow its own agency_timezone)")
    sp.add_argument("--license", help="the licence the feed carries (an SPDX id such as CC-BY-4.0); a licensed feed is listed in the catalog")
    sp.add_argument("--publish", action="store_true", help="list the feed in the public catalog even without a licence")
    common(sp)
    sp = sub.add_parser("run", help="run the feeds declared in specs/feeds (all, or those named)")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="feed ids of specs/feeds to run (default: all)")
    sp.add_argument("--specs", help="specs folder (default $NORIBA_SPECS or ./specs)")
    sp.add_argument("--jobs", type=int, help="feeds parsed and validated at once, in worker processes, while one publishes "
                                             "(default $NORIBA_RUN_JOBS, else 2 on 2 or more cores; 1: one after another)")
    common(sp)
    for parser in (sub.choices["ingest"], sp):
        parser.add_argument("--data-docs", action="store_true",
                            help="render the data contracts' GX Data Docs pages at the end of the run (else `noriba docs`)")
    sp = sub.add_parser("docs", help="render the data contracts' GX Data Docs from the stored results (what runs left without a page)")
    sp = sub.add_parser("validate", help="validate one feed and write its report, without publishing; exit 1 if its policy blocks it")
    sp.add_argument("target", metavar="PATH_OR_FEED", nargs="?", help="a GTFS zip, a folder, an http(s) URL, or the id of a feed in specs/feeds")
    sp.add_argument("--date", type=_date, help="validation date YYYY-MM-DD for time-dependent rules (default today)")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.add_argument("--id", help="feed id for a path or URL (default: derived from the file name)")
    sp.add_argument("--kind", default="gtfs", help="what a path or URL is (default gtfs)")
    sp.add_argument("--encoding", help="force an encoding, e.g. cp932")
    sp.add_argument("--profile", choices=("gtfs", "gtfs-jp"), help="rule profile for a path or URL (default: detected)")
    sp.add_argument("--specs", help="specs folder, to look up a feed id (default $NORIBA_SPECS or ./specs)")
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp = sub.add_parser("status", help="feeds, versions, row counts, notices by severity and policy verdict; "
                        "with a feed id, its versions, notices by code and what changed")
    sp.add_argument("feed", nargs="?", metavar="FEED", help="one published feed id: its versions, verdicts, notices by code "
                    "and the changes between its two newest versions")
    sp.add_argument("--json", action="store_true", help="print the status as JSON")
    sp = sub.add_parser("diff", help="what changed between two versions of a feed: rows added/removed/changed per file, "
                        "notice codes that appeared or disappeared")
    sp.add_argument("feed", metavar="FEED", help="a published feed id")
    sp.add_argument("versions", nargs="*", metavar="VERSION", help="old and new version (ids or unique prefixes; "
                    "default: the two newest)")
    sp.add_argument("--json", action="store_true", help="print the diff as JSON")
    sp = sub.add_parser("export", help="rebuild exports of the latest version of each feed that its policy let pass, and build export specs (specs/exports/)")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED_OR_EXPORT",
                    help="published feed ids to re-export and export spec ids (specs/exports) to build (default: all)")
    sp.add_argument("--version", help="export this version instead (refused if its policy blocked it)")
    sp.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp = sub.add_parser("trips", help="run the trip and zone specs in specs/trips (all, or those named)")
    sp.add_argument("feed_ids", nargs="*", metavar="SPEC", help="ids of trips or zones specs in specs/trips (default: all)")
    common(sp)
    sp = sub.add_parser("municipality", help="write the report of a municipality's service (HTML, optionally PDF)")
    sp.add_argument("municipality", help="municipality code or name, as in the feed specs (e.g. 99001 or みなと市)")
    sp.add_argument("--feed", action="append", help="report on these feed ids instead of those naming the municipality")
    sp.add_argument("--population", help="GeoJSON with a 'population' property (polygons or points) for covered population")
    sp.add_argument("--pdf", action="store_true", help="also print the page to PDF with headless chromium")
    sp = sub.add_parser("serve", help="serve the download catalog on http://127.0.0.1")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    sp.add_argument("--verbose", action="store_true", help="log every request")
    sp = sub.add_parser("demo", help="build the demo region offline from the project's own inputs")
    common(sp)
    sp = sub.add_parser("spec", help="help writing a spec: `noriba spec suggest FILE` prints a starting spec for it")
    spec_sub = sp.add_subparsers(dest="spec_command", required=True)
    ssp = spec_sub.add_parser("suggest", help="look at a timetable workbook or a trip file and print a starting spec "
                              "(sheets, blocks and their ranges, time cells outside them; or header rows, column types and fields)")
    ssp.add_argument("path", metavar="PATH", help="a workbook (.xls, .xlsx) or a trip file (.csv, .tsv, .json, .parquet, .xlsx)")
    ssp.add_argument("--kind", choices=("timetable", "trips"),
                     help="what the file is (default: a workbook with a grid of times is a timetable, anything else trips)")
    sp = sub.add_parser("publish", help="publish the lake's versions (all feeds, or those named) that this machine's warehouse "
                        "lacks; with NORIBA_HOME on object storage, from the lake as stored")
    sp.add_argument("feed_ids", nargs="*", metavar="FEED", help="feed ids (default: all in the lake)")
    sp.add_argument("--no-contracts", action="store_true", help="skip the data contracts (they only report)")
    _gbfs_parser(sub)
    _rt_parser(sub)
    return p


def _not_run_here(ids: list[str], specs, specs_dir: Path | None) -> list[str]:
    """Return one error line per id `noriba run` has no feed spec for, naming the command that runs it if another does."""
    import difflib

    from noriba.specs import load_each

    realtime = {s.id for s in load_each("feeds", specs_dir, realtime=True)[0]}
    trips = {s.id: s.kind for s in load_each("trips", specs_dir)[0]}
    known = [s.id for s in specs]
    out = []
    for fid in ids:
        if fid in realtime:
            out.append(f"error: {fid} is a realtime feed (kind gtfs-rt): `noriba rt archive {fid}` polls it, "
                       f"`noriba rt parse {fid}` turns archived hours into tables, `noriba rt marts` builds the realtime marts")
        elif fid in trips:
            out.append(f"error: {fid} is a {trips[fid]} spec in specs/trips: run it with `noriba trips {fid}`")
        else:
            near = difflib.get_close_matches(fid, known + sorted(realtime) + sorted(trips), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            out.append(f"error: no spec for feed {fid} in specs/feeds{hint} (known: {', '.join(known) or 'none'})")
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "ingest":
            return cmd_ingest(args)
        if args.command == "run":
            from noriba.specs import SpecError, load_specs

            try:
                specs = load_specs(Path(args.specs) if args.specs else None)
            except SpecError as exc:
                for line in exc.problems:
                    _console().print(f"error: {line}", markup=False)
                return EXIT_PROBLEM
            if args.feed_ids:
                unknown = set(args.feed_ids) - {s.id for s in specs}
                if unknown:
                    for line in _not_run_here(sorted(unknown), specs, Path(args.specs) if args.specs else None):
                        _console().print(line, markup=False)
                    return EXIT_PROBLEM
                specs = [s for s in specs if s.id in args.feed_ids]
            return cmd_run(args, specs)
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "docs":
            return cmd_docs(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "diff":
            return cmd_diff(args)
        if args.command == "export":
            return cmd_export_specs(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "publish":
            return cmd_publish(args)
        if args.command in ("municipality", "demo", "trips"):
            rc = (cmd_municipality(args) if args.command == "municipality" else cmd_demo(args) if args.command == "demo"
                  else _run_trips(args, ids=args.feed_ids or None))
            _sync_up(args)
            return rc
        if args.command == "spec":
            return cmd_spec_suggest(args)
        if args.command == "gbfs":
            rc = cmd_gbfs(args)
            _sync_up(args)  # with NORIBA_HOME on object storage, the raw snapshots and the lake go to the store
            return rc
        if args.command == "rt":
            rc = cmd_rt(args)
            if args.rt_command == "ingest":  # captured snapshots: with NORIBA_HOME on object storage, sent to the store
                _sync_up(args)
            return rc
    except KeyboardInterrupt:
        _console().print("interrupted")
        return 130
    except Exception as exc:
        _fail(_console(), args.command, exc)
        return EXIT_PROBLEM
    return 0


if __name__ == "__main__":
    sys.exit(main())
