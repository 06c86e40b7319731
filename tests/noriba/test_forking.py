"""noriba.forking: a pool's workers are forked only from a process whose threads cannot leave a lock held in them."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.conftest import ROOT


def test_a_process_running_a_thread_of_its_own_gets_a_fork_server():
    from noriba.forking import pool_context

    stop = threading.Event()
    th = threading.Thread(target=stop.wait, name="busy")
    th.start()
    try:
        assert pool_context().get_start_method() == "forkserver"
    finally:
        stop.set()
        th.join(timeout=10)


def test_a_process_with_a_duckdb_connection_open_gets_a_fork_server():
    """DuckDB's worker threads are native threads Python does not see: they count too."""
    out = subprocess.run([sys.executable, "-c", (
        "import duckdb\nfrom noriba.forking import pool_context\n"
        "con = duckdb.connect()\ncon.execute('SET threads = 4')\ncon.execute('SELECT 1').fetchall()\n"
        "print(pool_context().get_start_method())\n")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["forkserver"]


def test_the_run_command_s_process_forks_its_workers():
    """`noriba run` starts its pool with NumPy and pyarrow loaded and no connection open: fork, the fast way."""
    out = subprocess.run([sys.executable, "-c", (
        "import noriba.cli, noriba.pipeline, pyarrow.parquet, numpy\nfrom noriba.forking import pool_context\n"
        "print(pool_context().get_start_method())\n")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fork"]


def test_a_fork_server_pool_runs_noriba_code():
    from concurrent.futures import ProcessPoolExecutor

    from noriba.forking import native_threads, pool_context

    with ProcessPoolExecutor(2, mp_context=pool_context(start_method="forkserver")) as pool:
        counts = [pool.submit(native_threads).result(timeout=120) for _ in range(2)]
    assert all(n >= 1 for n in counts), counts


def test_the_start_method_can_be_set_and_a_wrong_one_is_refused_in_one_line(monkeypatch):
    from noriba.forking import pool_context
    from transforms.errors import InputError

    monkeypatch.setenv("NORIBA_POOL_START", "spawn")
    assert pool_context().get_start_method() == "spawn"
    monkeypatch.setenv("NORIBA_POOL_START", "vfork")
    with pytest.raises(InputError, match="NORIBA_POOL_START='vfork' is not a start method here"):
        pool_context()
