"""Shared test fixtures: the real data beside the project, and throw-away workspaces."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """Return a path under ../shared/data. If the folder is absent, skip the test, unless CI is set, then fail it."""
    path = SHARED.joinpath(*parts)
    if not SHARED.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing; CI must run with ../shared beside the project")
        pytest.skip(f"{SHARED} is absent (real data not available here)")
    assert path.exists(), f"expected real data at {path}"
    return path


#: A test still running this long (after pytest-timeout's failure at ``timeout`` and faulthandler's stack dump at
#: ``faulthandler_timeout``, pyproject) is stuck where no signal reaches it (a C call that never returns): its worker
#: process exits, and the Makefile's ``--max-worker-restart=0`` ends the run with that test named, instead of CI waiting
#: out its 90 minutes.
HARD_LIMIT_S = float(os.environ.get("NORIBA_TEST_HARD_LIMIT_S", 1320))
_running: dict[str, tuple[float, float]] = {}  # test id -> when it started (monotonic), its hard limit in seconds


def _watchdog() -> None:
    while True:
        time.sleep(15)
        for nodeid, (t0, limit) in list(_running.items()):
            if time.monotonic() - t0 > limit:
                os.write(2, f"\n{nodeid} still running after {limit:.0f} s: this test process exits\n".encode())
                os._exit(70)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _running and not any(t.name == "noriba-test-watchdog" for t in threading.enumerate()):
        threading.Thread(target=_watchdog, name="noriba-test-watchdog", daemon=True).start()
    marked = item.get_closest_marker("timeout")  # a module's own longer limit (pytest.mark.timeout) moves the hard one
    own = float(marked.args[0]) if marked and marked.args else 0.0
    suite = float(item.config.getini("timeout") or 0)  # pyproject's per-test limit (pytest-timeout)
    _running[item.nodeid] = (time.monotonic(), HARD_LIMIT_S + max(0.0, own - suite))
    try:
        yield
    finally:
        _running.pop(item.nodeid, None)


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise TimeoutError in the test when the block runs longer than ``seconds`` (old code that hangs fails fast)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    t0 = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)  # the suite's per-test limit (pytest-timeout), if set
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer:  # the per-test limit goes on with what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - t0), 0.001))


@pytest.fixture
def ws(tmp_path):
    from warehouse.workspace import Workspace

    return Workspace(tmp_path / "home").ensure()


def make_spec(feed_id: str, path: Path, **extra):
    from noriba.specs import parse_spec

    doc = {"id": feed_id, "kind": "gtfs", "source": {"path": str(path)}, **extra}
    return parse_spec(doc, where="test", root=ROOT)


def write_feed(folder: Path, files: dict[str, str], *, encoding: str = "utf-8") -> Path:
    """Return ``folder`` after writing each {name: text} as a feed file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode(encoding))
    return folder


MINI_FEED = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://example.jp,Asia/Tokyo\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,港前,43.30,141.40\nS2,駅前,43.31,141.41\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,港線,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,24:10:00,24:10:00,S2,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWD,1,1,1,1,1,0,0,20260401,20270331\n",
}
