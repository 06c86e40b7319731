"""Every hostile input of tests/hostile/corpus.py through the ``noriba`` command line, in a subprocess.

Each case must end within 60 s and 1.5 GB of resident memory with an exit code the CLI documents
(0 passed, 1 blocked by policy, 2 input cannot be read), name the file it refused, print no
traceback, write nothing outside NORIBA_HOME, and leave a warehouse `noriba status --json`
can read where rows in = accepted + quarantined. Peak memory is watched, not limited with
RLIMIT_AS: DuckDB, pyarrow and mimalloc reserve far more address space than they use, so an
address-space limit kills honest runs. A watcher samples the child's VmRSS and VmHWM (the kernel's
peak for the process) every 20 ms and kills its process group over the limit. ru_maxrss from wait4
is not used: Linux carries the forking process's peak into the child's, so it reported pytest's own
memory (about 250 MB once duckdb was imported) for every small run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.corpus import CASES, ROOT, Case, Run, specs_dir

MEMORY_LIMIT = 1536 << 20  # bytes of resident memory
#: Seconds of wall time. A machine shared with other work can set NORIBA_HOSTILE_TIME_LIMIT higher (an honest
#: small feed took 48 s on 2 cores with a load of 9); the figure asserted in CI is 60.
TIME_LIMIT = float(os.environ.get("NORIBA_HOSTILE_TIME_LIMIT") or 60)
SAMPLE_EVERY = 0.02
#: When set, each case appends one JSON line (case, exit code, wall, peak RSS, outcome) to this file.
LOG_ENV = "NORIBA_HOSTILE_LOG"
#: What the CLI appends to an exception it did not expect (noriba/cli.py::_fail): a crash, told in one line.
UNEXPECTED = "(set NORIBA_DEBUG=1 for details)"
#: Folders of the case's tmp folder that are not inputs: the workspace, the child's TMPDIR, the captured output.
HOME, TMP, LOGS = "home", "sys-tmp", "logs"


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    wall: float
    peak: int  # bytes
    killed: str = ""  # "memory" or "time" when the watcher stopped it

    @property
    def text(self) -> str:
        return self.out + self.err


def _memory(pid: int) -> tuple[int, int]:
    """Return (resident, peak resident) memory of ``pid`` in bytes, from /proc/<pid>/status ((0, 0) if it is gone)."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def run_cli(argv: list[str], root: Path, *, memory: int = MEMORY_LIMIT, seconds: float = TIME_LIMIT) -> Outcome:
    """Return the outcome of ``noriba <argv>`` run with NORIBA_HOME and NORIBA_SPECS under ``root``, watched for memory and time."""
    prepare(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NORIBA_")}
    env.update(NORIBA_HOME=str(root / HOME), NORIBA_SPECS=str(specs_dir(root)), TMPDIR=str(root / TMP), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))  # this checkout's code
    n = len(list((root / LOGS).iterdir()))
    out_path, err_path = root / LOGS / f"{n}.out", root / LOGS / f"{n}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", *argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=root / "cwd", env=env, start_new_session=True)
        peak, killed = 0, ""
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, hwm = _memory(proc.pid)
            peak = max(peak, rss, hwm)
            over = "memory" if rss > memory else "time" if time.monotonic() - t0 > seconds else ""
            if over and not killed:
                killed = over
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(SAMPLE_EVERY)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Outcome(None if killed else proc.returncode, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                   wall, peak, killed)


def prepare(root: Path) -> None:
    """Make the folders a run uses under ``root``: the workspace, TMPDIR, captured output, the working folder, specs."""
    for d in (HOME, TMP, LOGS, "cwd"):
        (root / d).mkdir(exist_ok=True)
    specs_dir(root)


def _tree(root: Path) -> dict[str, int]:
    """Return {relative path: size} of everything under ``root`` except the workspace, TMPDIR and the captured output."""
    skip = {HOME, TMP, LOGS}
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            found[str(rel / name)] = p.lstat().st_size if not p.is_dir() else -1
    return found


def _notice_codes(root: Path, feed_id: str, version: str) -> set[str]:
    """Return the codes of the notices and trip rule findings stored in the warehouse for one version."""
    import duckdb

    con = duckdb.connect(str(root / HOME / "noriba.duckdb"), read_only=True)
    try:
        codes = {r[0] for r in con.execute("SELECT DISTINCT code FROM quality.notices WHERE feed_id = ? AND feed_version = ?",
                                           [feed_id, version]).fetchall()}
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'quality' AND table_name = 'trip_rule_counts'").fetchone()[0]:
            codes |= {r[0] for r in con.execute("SELECT DISTINCT code FROM quality.trip_rule_counts WHERE source_id = ? "
                                                "AND feed_version = ?", [feed_id, version]).fetchall()}
        return codes
    finally:
        con.close()


def _log(case: Case, result: Outcome, verdict: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        said = [line for line in result.err.splitlines() if line.startswith("error:") or " published (" in line
                or " rows in, " in line]
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"case": case.id, "area": case.area, "code": result.code, "wall_s": round(result.wall, 2),
                                "peak_mb": round(result.peak / 1e6), "killed": result.killed, "verdict": verdict,
                                "said": said[:3]}, ensure_ascii=False) + "\n")


def check_case(case: Case, root: Path, run: Run) -> None:
    """Run ``run`` and assert every promise of the module docstring; log the figures."""
    before = _tree(root)
    result = run_cli(run.argv, root)
    problems = []
    tail = (result.text[-3000:] or "(no output)")
    if result.killed:
        problems.append(f"killed over the {result.killed} limit after {result.wall:.1f}s, peak RSS {result.peak / 1e6:.0f} MB")
    else:
        if result.code not in run.codes:
            problems.append(f"exit code {result.code}, expected one of {run.codes}")
        if result.peak > MEMORY_LIMIT:
            problems.append(f"peak RSS {result.peak / 1e6:.0f} MB over {MEMORY_LIMIT / 1e6:.0f} MB")
    if "Traceback" in result.text:
        problems.append("a traceback was printed")
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    if result.code == 2 and not any(name in line for line in errors for name in run.names):
        problems.append(f"exit 2 without an error line naming the input ({' or '.join(run.names)})")
    unexpected = [line for line in errors if UNEXPECTED in line]
    if unexpected:
        problems.append(f"an unexpected error instead of a message: {unexpected[0][:300]}")
    for path in run.absent:
        if path.exists() or path.is_symlink():
            problems.append(f"{path} was written, outside NORIBA_HOME")
    left = sorted(p.name for p in (root / TMP).iterdir())
    if left and not result.killed:
        problems.append(f"temporary files left in TMPDIR (outside NORIBA_HOME): {left[:5]}")
    after = _tree(root)
    if after != before:
        added = sorted(set(after) - set(before))
        changed = sorted(k for k in before if k in after and after[k] != before[k])
        removed = sorted(set(before) - set(after))
        problems.append(f"files outside NORIBA_HOME changed: added {added[:5]}, changed {changed[:5]}, removed {removed[:5]}")
    status = run_cli(["status", "--json"], root)
    if status.code != 0 or "Traceback" in status.text:
        problems.append(f"`noriba status --json` failed after the case (exit {status.code}): {status.text[-1500:]}")
    else:
        feeds = json.loads(status.out)["feeds"]
        if case.area == "control" and len(feeds) != 1:
            problems.append(f"the honest input should be the one published feed; status lists {len(feeds)}")
        for feed in feeds:
            accepted, quarantined, rows_in = feed["rows_accepted"] or 0, feed["rows_quarantined"] or 0, feed["rows_in"] or 0
            if rows_in != accepted + quarantined:
                problems.append(f"{feed['feed_id']} {feed['newest_version']}: rows in {rows_in} != accepted {accepted} + "
                                f"quarantined {quarantined}")
            codes = set(feed["notice_codes"]) | _notice_codes(root, feed["feed_id"], feed["newest_version"])
            if case.area == "control" and codes != run.baseline:
                problems.append(f"the honest input has notices {sorted(codes)}, expected {sorted(run.baseline)}")
            if case.area != "control" and result.code in (0, 1) and not codes - run.baseline:
                problems.append(f"{feed['feed_id']}: published with only the notices of the honest input ({sorted(codes)}); "
                                "the hostile part passed silently")
    _log(case, result, "; ".join(problems) or "ok")
    assert not problems, (f"{case.id} ({case.area}): " + "; ".join(problems)
                          + f"\n--- exit {result.code}, {result.wall:.1f}s, peak {result.peak / 1e6:.0f} MB, output tail:\n{tail}")


@pytest.mark.parametrize("case", [c for c in CASES if not c.http], ids=lambda c: c.id)
def test_hostile_input_gets_one_clear_answer_within_limits(case: Case, tmp_path: Path):
    root = tmp_path / "case"
    root.mkdir()
    prepare(root)
    run = case.build(root)
    check_case(case, root, run)


@pytest.mark.parametrize("case", [c for c in CASES if c.http], ids=lambda c: c.id)
def test_hostile_server_gets_one_clear_answer_within_limits(case: Case, tmp_path: Path):
    servers = pytest.importorskip("tests.hostile.http_servers", reason="the hostile HTTP servers come with branch h-fetch")
    root = tmp_path / "case"
    root.mkdir()
    prepare(root)
    behaviour, options = case.http
    with servers.serve(behaviour, **options) as url:
        check_case(case, root, case.build(root, url))
