"""The production topology on this machine: Postgres, Redis, Airflow with two Celery workers (docker/local_cluster.py).

One cluster for the module: 32 real feeds (the 30 smallest of the Japanese corpus and two Bay Area
agencies) run through ``noriba_all_feeds`` and one export DAG; the warehouse must equal a
sequential CLI run of the same specs, also after a worker is killed mid-run.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared

sys.path.insert(0, str(ROOT / "docker"))
import local_cluster as lc  # noqa: E402

#: Each DAG run here takes ~3 minutes on 2 cores; a run not finished within DAG_TIMEOUT fails with what it was doing
#: (local_cluster.run_dag), well before the suite's own per-test limit (pyproject: timeout), so a stuck cluster costs CI
#: minutes, not its whole budget.
DAG_TIMEOUT = 600
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(2 * DAG_TIMEOUT)]

JP_FEEDS = 28
BAY_AREA = ("CT_gtfs.zip", "SB_gtfs.zip")
EXPORT_ID = "scale-export"


def _need(program: str) -> None:
    found = shutil.which(program) or any(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing: .ci/run installs it")
        pytest.skip(f"{program} is not installed here")


def _feed_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", Path(name).stem.lower()).strip("-")[:48]


def write_specs(folder: Path) -> list[str]:
    """Return the ids of the feed specs written into ``folder``/feeds (and one export spec of five of them)."""
    corpus = shared("gtfs", "jp", "corpus-2019")
    with open(corpus / "INDEX.csv", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["bytes"]))
    chosen = [(corpus / "feeds" / r["zip"], "Asia/Tokyo", "gtfs-jp") for r in rows[:JP_FEEDS]]
    bay = shared("gtfs", "world", "sfbay-511-2018")
    chosen += [(bay / name, "America/Los_Angeles", "gtfs") for name in BAY_AREA if (bay / name).exists()]
    (folder / "feeds").mkdir(parents=True)
    (folder / "exports").mkdir()
    ids = []
    for path, tz, profile in chosen:
        fid = _feed_id(path.name)
        if fid in ids:
            fid = f"{fid}-{len(ids)}"
        ids.append(fid)
        (folder / "feeds" / f"{fid}.yml").write_text(
            f"id: {fid}\nkind: gtfs\nname: {fid}\nsource: {{path: {path}}}\ntimezone: {tz}\nprofile: {profile}\n"
            "license: {id: CC-BY-4.0, attribution: test}\n", encoding="utf-8")
    (folder / "exports" / f"{EXPORT_ID}.yml").write_text(
        f"id: {EXPORT_ID}\nname: scale test export\nfeeds:\n  ids: [{', '.join(ids[:5])}]\n"
        "formats: [gtfs]\nlicense: {id: CC-BY-4.0, attribution: test}\n", encoding="utf-8")
    for name in ("schemas", "expectations"):
        shutil.copytree(ROOT / "specs" / name, folder / name)
    return ids


def _noriba(*args: str, home: Path, specs: Path) -> float:
    t0 = time.monotonic()
    env = {**os.environ, "NORIBA_HOME": str(home), "NORIBA_SPECS": str(specs)}
    done = subprocess.run([sys.executable, "-m", "noriba.cli", *args], env=env, capture_output=True, text=True, timeout=DAG_TIMEOUT)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: a feed blocked by its policy (published for inspection)
    return time.monotonic() - t0


def _listeners(pids: set[int]) -> list[str]:
    """Return 'address:port (pid)' of every TCP listening socket held by one of ``pids``."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.append(f"{line.split()[3]} {sorted(owners & pids)}")
    return found


def _cluster_pids(base: Path) -> set[int]:
    groups = set(lc.load_state(base)["processes"].values())
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in groups:
            pids.add(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    _need("redis-server")
    _need("initdb")
    root = tmp_path_factory.mktemp("cluster")
    specs = root / "specs"
    ids = write_specs(specs)
    base = root / "cluster"
    t0 = time.monotonic()
    lc.up(base, workers=2, concurrency=2, noriba_home=str(root / "airflow-home"), specs=str(specs),
          heartbeat_timeout=30, retry_delay_s=5, say=lambda _m: None)
    up_s = time.monotonic() - t0
    try:
        yield {"root": root, "specs": specs, "ids": ids, "base": base, "up_s": up_s}
    finally:
        pids = _cluster_pids(base)
        lc.down(base, wipe=True, say=lambda _m: None)
        left = [p for p in pids if Path(f"/proc/{p}").exists() and lc._alive(p)]
        assert left == [], f"processes left after down: {left}"


@pytest.fixture(scope="module")
def cli_run(scale):
    home = scale["root"] / "cli-home"
    took = _noriba("run", "--quiet", *scale["ids"], home=home, specs=scale["specs"])
    _noriba("export", EXPORT_ID, home=home, specs=scale["specs"])
    return {"home": home, "seconds": took}


def test_cluster_listens_on_loopback_only(scale):
    listeners = _listeners(_cluster_pids(scale["base"]))
    assert listeners, "the cluster should listen on some ports (postgres, redis, api-server)"
    assert all(line.startswith("127.0.0.1:") for line in listeners), listeners


def test_all_feeds_and_an_export_run_on_both_workers_and_equal_the_cli(scale, cli_run):
    base, ids = scale["base"], scale["ids"]
    assert len(ids) >= 30
    t0 = time.monotonic()
    assert lc.run_dag(base, "noriba_all_feeds", run_id="scale-1", timeout=DAG_TIMEOUT) == "success"
    cluster_s = time.monotonic() - t0
    states = lc.task_states(base, "noriba_all_feeds", "scale-1")
    assert {s for _t, _m, s, _n in states} == {"success"}
    assert sum(1 for t, *_ in states if t == "ingest") == len(ids)
    assert lc.tasks_received(base, "worker-1") > 0 and lc.tasks_received(base, "worker-2") > 0
    assert lc.run_dag(base, f"noriba_export__{EXPORT_ID}", run_id="export-1", timeout=DAG_TIMEOUT / 2) == "success"
    home = scale["root"] / "airflow-home"
    assert list((home / "exports").rglob(f"{EXPORT_ID}*.zip")), "the export DAG wrote no zip"
    assert lc.warehouse_checksums(home / "noriba.duckdb") == lc.warehouse_checksums(cli_run["home"] / "noriba.duckdb")
    print(f"\nscale: {len(ids)} feeds; cluster {cluster_s:.0f} s ({len(ids) / cluster_s * 60:.1f} feeds/min), "
          f"sequential CLI {cli_run['seconds']:.0f} s ({len(ids) / cli_run['seconds'] * 60:.1f} feeds/min); up {scale['up_s']:.0f} s")


def test_a_killed_worker_s_tasks_are_retried_and_the_result_is_the_same(scale, cli_run):
    base = scale["base"]
    home = scale["root"] / "airflow-home"
    for child in home.iterdir():  # every feed is new again, so the run has work for both workers
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    killed = []

    def kill_worker_1_while_it_ingests():
        # Kill only while an ingest runs in worker-1 (a TI whose process is in its group): killing it at the time it received
        # a task killed an idle worker on a fast machine (feed_ids ends in < 1 s), and nothing needed a retry.
        while not killed and not stop.is_set():
            running = [ti for ti in lc.running_on(base, "worker-1", "noriba_all_feeds", "scale-kill") if ti[0] == "ingest"]
            if running:
                lc.kill(base, "worker-1")
                killed.append(running[0])
                return
            time.sleep(0.2)

    stop = threading.Event()
    killer = threading.Thread(target=kill_worker_1_while_it_ingests, daemon=True)
    killer.start()
    try:
        assert lc.run_dag(base, "noriba_all_feeds", run_id="scale-kill", timeout=DAG_TIMEOUT) == "success"
    finally:
        stop.set()
        killer.join(timeout=30)
    assert killed, "worker-1 ran no ingest task to be killed in"
    assert not lc.status(base)["worker-1"]
    states = {(t, m): (s, n) for t, m, s, n in lc.task_states(base, "noriba_all_feeds", "scale-kill")}
    assert {s for s, _n in states.values()} == {"success"}
    assert states[killed[0]][1] > 1, f"{killed[0]} was running in the killed worker, so it should have been tried again"
    assert lc.warehouse_checksums(home / "noriba.duckdb") == lc.warehouse_checksums(cli_run["home"] / "noriba.duckdb")


def test_warehouses_of_the_same_feeds_published_in_another_order_have_the_same_checksums(tmp_path):
    """The cluster publishes feeds in the order its tasks end; the CLI in the specs' order. gtfs.stop_times' parts number
    the versions as published: the checksums take the view, so the two warehouses compare equal (and differ when a
    stop time differs)."""
    from noriba.pipeline import run_feed
    from tests.conftest import MINI_FEED, make_spec, write_feed
    from warehouse.workspace import Workspace

    feeds = {"a": MINI_FEED, "b": {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace("08:00:00", "08:01:00")}}
    specs = {fid: make_spec(fid, write_feed(tmp_path / fid, files)) for fid, files in feeds.items()}
    sums = []
    for order in (("a", "b"), ("b", "a"), ("a",)):
        ws = Workspace(tmp_path / "-".join(order)).ensure()
        for fid in order:
            run_feed(specs[fid], ws, export=False, contracts=False)
        sums.append(lc.warehouse_checksums(ws.warehouse))
    assert sums[0]["gtfs.stop_times"][0] > 0 and not any(k.startswith("gtfs._") for k in sums[0])
    assert sums[0] == sums[1]
    assert sums[0]["gtfs.stop_times"] != sums[2]["gtfs.stop_times"]
