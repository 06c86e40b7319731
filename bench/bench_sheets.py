"""Hostile spreadsheets (issue 13): CPU time and peak memory of reading each, timetable and trips readers.

Generates the workbooks of tests/transforms/timetable/bombs.py (one cell at XFD1048576, 2 GB of
whitespace in the sheet XML, 1,048,576 rows x 8 numbers) and reads each in its own child process,
capped at ``--cpu`` CPU seconds and 6 GB of address space; prints the outcome, CPU seconds (user +
system: the machine is shared, wall time says little) and the child's peak RSS.

    uv run python bench/bench_sheets.py [--cpu 300] [--root DIR]

``--root`` points at another checkout (e.g. an older commit) to measure its readers instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from tests.transforms.timetable import bombs  # noqa: E402

TIMETABLE = """
import sys
from pathlib import Path
from transforms.adapters import InputError
from transforms.timetable.workbook import read_workbook
p = Path(sys.argv[1])
try:
    sheets, _ = read_workbook(p.read_bytes(), p.name)
    print("read", [(s.nrows, s.ncols) for s in sheets])
except InputError as exc:
    print("refused", str(exc)[:100])
"""
TRIPS = """
import sys
from pathlib import Path
import duckdb
from transforms.adapters import InputError
from transforms.trips import readers
from transforms.trips.spec import check_trips
p = Path(sys.argv[1])
opts, _ = check_trips({"files": [p.name], "columns": {"pickup_time": "colA"}}, where="t.yml")
try:
    t, cols = readers.load_batch(duckdb.connect(), [readers.SourceFile(path=p, label=p.name, format="xlsx")], opts=opts)
    print("read", t.num_rows, "rows")
except InputError as exc:
    print("refused", str(exc)[:100])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", type=int, default=300)
    ap.add_argument("--root", type=Path, default=HERE)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cases = {"XFD1048576": bombs.far_cell(Path(d) / "far.xlsx"),
                 "2 GB whitespace": bombs.whitespace_padded(Path(d) / "ws.xlsx", gigabytes=2),
                 "1,048,576 rows x 8": bombs.many_rows(Path(d) / "rows.xlsx", cols=8)}
        print(f"| case | reader | outcome | CPU s | peak RSS MB |\n|---|---|---|---|---|")
        for name, path in cases.items():
            for reader, code in (("timetable", TIMETABLE), ("trips", TRIPS)):
                env = {"PYTHONPATH": str(args.root)}
                status, out, rss, cpu = bombs.run_capped(code, str(path), env=env, cpu_seconds=args.cpu, root=args.root)
                outcome = out.strip().splitlines()[-1][:90] if status == 0 else f"killed (exit {status}; {out.strip()[-60:]!r})"
                print(f"| {name} | {reader} | {outcome} | {cpu:.1f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
