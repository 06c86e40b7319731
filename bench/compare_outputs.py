"""Digest of what `noriba ingest` answers for a few feeds, to prove a speed-up changed no answer.

For each feed: every lake table's rows (sorted, without the times of the run), notices and
quarantine, every warehouse table's rows (a bag: count and summed row hashes), the export zip's members (bytes) and the contract results (without run_at). Write the
digest before a change, then compare after it:

    uv run python bench/compare_outputs.py --write /tmp/before.json [FEED.zip ...]
    uv run python bench/compare_outputs.py --check /tmp/before.json [FEED.zip ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import zipfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "data" / "gtfs" / "jp" / "corpus-2019" / "feeds"
DEFAULT = [CORPUS / n for n in ("kamacitybus190401.zip", "133.zip", "20181101GTFS-dia.zip", "401005_shieitosengtfs.zip")] + [
    ROOT / "bench" / "out" / "vilnius-x1-blocks.zip"]  # bench_ingest.replicate(1) makes it
VOLATILE = {"ingested_at", "fetched_at", "run_at", "raw_path", "source",
            "fingerprint", "reused_from"}  # contracts: a hash of the code too, and which earlier GX run was reused


def _h(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()[:16]


def digest(feed: Path) -> dict:
    import duckdb
    import pyarrow.parquet as pq

    from noriba import pipeline
    from noriba.specs import parse_spec
    from warehouse.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="noriba-compare-"))
    try:
        ws = Workspace(home).ensure()
        spec = parse_spec({"id": "cmp", "kind": "gtfs", "source": {"path": str(feed)}}, where="compare", root=Path("."))
        out = pipeline.run_feed(spec, ws, validation_date=date(2019, 6, 1))
        d: dict = {"version": out["feed_version"]}
        for part in sorted(ws.lake.rglob("part-0.parquet")):
            t = pq.read_table(part)
            rows = [{k: v for k, v in r.items() if k not in VOLATILE} for r in t.to_pylist()]
            d[f"lake:{part.relative_to(ws.lake).parts[0]}"] = _h(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)))
        if out.get("exports"):
            with zipfile.ZipFile(out["exports"]["gtfs_zip"]) as zf:
                for n in sorted(zf.namelist()):
                    d[f"zip:{n}"] = hashlib.sha256(zf.read(n)).hexdigest()[:16]
            for p in sorted(Path(out["exports"]["parquet_dir"]).glob("*.parquet")):
                d[f"export_parquet:{p.name}"] = _h(pq.read_table(p).to_pylist())
        con = duckdb.connect(str(ws.warehouse), read_only=True)
        # every warehouse table's rows as a bag (count and the sum of each row's hash, in DuckDB: ×16 has 7M rows)
        # (a table stored in parts, e.g. gtfs.stop_times, is the view of them: digested under its name, not its parts)
        for schema, table in con.sql("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
                                     "('gtfs', 'quality', 'meta') AND (table_type = 'BASE TABLE' AND NOT starts_with(table_name, '_') "
                                     "OR table_type = 'VIEW' AND table_schema = 'gtfs') ORDER BY 1, 2").fetchall():
            tcols = [c for (c,) in con.sql(f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' "
                                           f"AND table_name = '{table}' ORDER BY ordinal_position").fetchall()
                     if c not in VOLATILE | {"published_at", "expectation_run_id"}]
            if schema == "quality" and table == "expectation_results":
                continue  # digested below, without its volatile columns
            row = ", ".join(f'"{c}" := "{c}"' for c in tcols)
            n, h = con.sql(f'SELECT count(*), sum(hash(struct_pack({row}))::HUGEINT)::VARCHAR FROM "{schema}"."{table}"').fetchall()[0]
            if n:
                d[f"warehouse:{schema}.{table}"] = f"{n}:{_h([tcols, h])}"
        cols = [c for (c,) in con.sql("SELECT column_name FROM information_schema.columns WHERE table_schema='quality' "
                                       "AND table_name='expectation_results' ORDER BY ordinal_position").fetchall() if c not in VOLATILE]
        if cols:
            rows = con.sql(f"SELECT {', '.join(cols)} FROM quality.expectation_results").fetchall()
            d["contracts"] = _h(sorted(map(list, rows), key=str))
        con.close()
        return d
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write")
    g.add_argument("--check")
    ap.add_argument("feeds", nargs="*", type=Path)
    args = ap.parse_args()
    feeds = args.feeds or DEFAULT
    got = {f.name: digest(f) for f in feeds}
    if args.write:
        Path(args.write).write_text(json.dumps(got, indent=1))
        print(f"wrote {args.write}: {len(got)} feeds")
        return
    want = json.loads(Path(args.check).read_text())
    bad = [(f, k, want.get(f, {}).get(k), v) for f, d in got.items() for k, v in d.items() if want.get(f, {}).get(k) != v]
    bad += [(f, k, v, None) for f, d in want.items() if f in got for k, v in d.items() if k not in got[f]]
    for f, k, a, b in bad:
        print(f"DIFFERS {f} {k}: {a} → {b}")
    print(f"{len(got)} feeds, {sum(len(d) for d in got.values())} digests, {len(bad)} differ")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
