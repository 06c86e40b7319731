"""The ``noriba`` command line: ingest, run, status, export, demo."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

EXIT_PROBLEM = 2


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


def _report_run(result: dict, console) -> None:
    if result["status"] == "unchanged":
        console.print(result["message"])
        return
    fv = result["feed_version"]
    counts = result.get("published", {})
    rows = sum(v for k, v in counts.items() if k.startswith("gtfs."))
    console.print(f"{result['feed_id']}: version {fv} published ({rows:,} rows)")
    if "exports" in result:
        console.print(f"  GTFS export: {result['exports']['gtfs_zip']}")


def _print_notices(ws, feed_id: str, feed_version: str, console, limit: int = 10) -> None:
    from warehouse.publish import connect

    con = connect(ws, read_only=True)
    rows = con.execute(
        "SELECT severity, code, count(*) AS n, any_value(message) AS msg, any_value(file) AS file FROM quality.notices "
        "WHERE feed_id = ? AND feed_version = ? GROUP BY severity, code "
        "ORDER BY CASE severity WHEN 'ERROR' THEN 0 WHEN 'WARNING' THEN 1 ELSE 2 END, n DESC LIMIT ?",
        [feed_id, feed_version, limit]).fetchall()
    con.close()
    for sev, code, n, msg, file in rows:
        console.print(f"  {sev:<7} {code} ×{n}: {file or ''} {msg}")


def cmd_run(args, specs) -> int:
    from noriba.pipeline import run_feed
    from noriba.workspace import Workspace

    ws = Workspace.from_env(args.home).ensure()
    console = _console()
    failed = 0
    for spec in specs:
        try:
            with _Progress(args.quiet) as progress:
                result = run_feed(spec, ws, progress=progress, export=not args.no_export)
            _report_run(result, console)
            if result["status"] != "unchanged" and not args.quiet:
                _print_notices(ws, spec.id, result["feed_version"], console, limit=5)
        except Exception as exc:  # one clear line per problem, never a traceback
            failed += 1
            _fail(console, spec.id, exc)
    return EXIT_PROBLEM if failed else 0


def _fail(console, feed_id: str, exc: BaseException) -> None:
    from noriba.specs import SpecError
    from transforms.adapters import InputError

    if os.environ.get("NORIBA_DEBUG"):
        raise exc
    if isinstance(exc, (InputError, SpecError)):
        for line in str(exc).splitlines():
            console.print(f"error: {feed_id}: {line}", markup=False)
    else:
        console.print(f"error: {feed_id}: {type(exc).__name__}: {exc} (set NORIBA_DEBUG=1 for details)", markup=False)


def cmd_ingest(args) -> int:
    from noriba.specs import parse_spec

    target = args.source
    is_url = bool(re.match(r"^https?://", target))
    if not is_url and not Path(target).exists():
        _console().print(f"error: {target}: no such file or folder", markup=False)
        return EXIT_PROBLEM
    fid = args.id or _slug(Path(target.rstrip("/")).stem if not is_url else target.rsplit("/", 1)[-1].split(".")[0])
    doc = {"id": fid, "kind": args.kind, "source": {"url": target} if is_url else {"path": str(Path(target).resolve())},
           "timezone": args.timezone}
    if args.encoding:
        doc["encoding"] = args.encoding
    try:
        spec = parse_spec(doc, where="command line", root=Path.cwd())
    except Exception as exc:
        _fail(_console(), fid, exc)
        return EXIT_PROBLEM
    return cmd_run(args, [spec])


def cmd_status(args) -> int:
    from noriba.workspace import Workspace
    from warehouse.status import status

    ws = Workspace.from_env(args.home)
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
    for col in ("feed", "latest version", "versions", "service", "rows", "quarantined", "ERROR", "WARNING", "INFO"):
        t.add_column(col)
    for f in data["feeds"]:
        t.add_row(f["feed_id"], f["latest_version"], str(f["versions"]), f"{f['service_start'] or '?'} – {f['service_end'] or '?'}",
                  f"{f['rows_accepted']:,}", f"{f['rows_quarantined']:,}", str(f["errors"]), str(f["warnings"]), str(f["infos"]))
    Console(width=None if sys.stdout.isatty() else 200).print(t)
    return 0


def cmd_export(args) -> int:
    from noriba.workspace import Workspace
    from warehouse.export import export_version
    from warehouse.status import status

    ws = Workspace.from_env(args.home)
    console = _console()
    for f in status(ws)["feeds"]:
        if args.feed_ids and f["feed_id"] not in args.feed_ids:
            continue
        out = export_version(ws, f["feed_id"], f["latest_version"])
        console.print(f"{f['feed_id']}: {out['gtfs_zip']}")
    return 0


def cmd_demo(args) -> int:
    from noriba.specs import load_specs
    from noriba.workspace import Workspace

    t0 = time.monotonic()
    specs = [s for s in load_specs() if "demo" in s.tags]
    if not specs:
        _console().print("error: no demo feed specs (tag 'demo') under specs/feeds/")
        return EXIT_PROBLEM
    rc = cmd_run(args, specs)
    sys.stderr.flush()
    ws = Workspace.from_env(args.home)
    print()
    print(f"Demo region built in {time.monotonic() - t0:.1f}s.")
    print(f"  warehouse : {ws.warehouse}")
    print(f"  lake      : {ws.lake}")
    print(f"  exports   : {ws.exports}")
    for s in specs:
        if s.kind != "gtfs":
            print(f"  {s.id}: built from spreadsheets ({s.kind} spec {s.spec_path.name if s.spec_path else ''}) into {s.profile.upper()}")
    print("Try a query:")
    print(f"  uv run python -c \"import duckdb; print(duckdb.connect('{ws.warehouse}', read_only=True)"
          f".sql('SELECT feed_id, stop_name, stop_lat, stop_lon FROM gtfs_latest.stops LIMIT 5'))\"")
    print("  uv run noriba status")
    sys.stdout.flush()
    return rc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="noriba", description="Noriba (乗り場): receive, validate, store and export transport data.")
    p.add_argument("--home", help="workspace folder (default $NORIBA_HOME or ./noriba-data)")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--quiet", action="store_true", help="no progress output")
        sp.add_argument("--no-export", action="store_true", help="stop after publishing")

    sp = sub.add_parser("ingest", help="ingest one feed from a path or URL, no spec needed")
    sp.add_argument("source", help="a GTFS zip, a folder, or an http(s) URL")
    sp.add_argument("--id", help="feed id (default: derived from the file name)")
    sp.add_argument("--kind", default="gtfs")
    sp.add_argument("--encoding", help="force an encoding, e.g. cp932")
    sp.add_argument("--timezone", default="UTC")
    common(sp)
    sp = sub.add_parser("run", help="run the feeds declared in specs/feeds (all, or those named)")
    sp.add_argument("feed_ids", nargs="*")
    sp.add_argument("--specs", help="specs folder (default $NORIBA_SPECS or ./specs)")
    common(sp)
    sp = sub.add_parser("status", help="feeds, versions, row counts and notices by severity")
    sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("export", help="rebuild exports of the latest version of each feed")
    sp.add_argument("feed_ids", nargs="*")
    sp = sub.add_parser("demo", help="build the demo region offline from the project's own inputs")
    common(sp)
    return p


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
                    _console().print(f"error: no spec for feed(s) {', '.join(sorted(unknown))}; known: {', '.join(s.id for s in specs)}")
                    return EXIT_PROBLEM
                specs = [s for s in specs if s.id in args.feed_ids]
            return cmd_run(args, specs)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "demo":
            return cmd_demo(args)
    except KeyboardInterrupt:
        _console().print("interrupted")
        return 130
    except Exception as exc:
        _fail(_console(), args.command, exc)
        return EXIT_PROBLEM
    return 0


if __name__ == "__main__":
    sys.exit(main())
