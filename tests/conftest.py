"""Shared test fixtures: the real data beside the project, and throw-away workspaces."""

from __future__ import annotations

import contextlib
import os
import signal
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


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise TimeoutError in the test when the block runs longer than ``seconds`` (old code that hangs fails fast)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


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
