"""What lets an interrupted run heal: one run per feed at a time, stale temporary files swept, a fault hook for tests.

A run of a feed (CLI ``noriba run``, or each Airflow task) holds the feed's lock,
``NORIBA_HOME/.locks/<feed_id>.lock`` (an fcntl lock, released by the kernel when the process
dies, even by kill -9). Under it, nothing of that feed can be in progress elsewhere, so each step
first removes what an earlier, killed run of its own left: ``sweep`` with the step's patterns.
Temporary names start with "." so nothing that lists a folder (the catalog server, lake globs)
shows them, and are unique (a uuid part), so two writers never share one.

Why a lock and not unique names alone: a step may remove a temporary file only when it knows no
live run is writing it, and a lock that the kernel drops with its process is what tells. Airflow
runs each step as its own task, so there the lock is held per step; a DAG allows one run per feed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from warehouse.workspace import Workspace

#: Test hook: ``NORIBA_FAULT_AT=<step>`` kills the process (SIGKILL, as ``kill -9``) at that step's
#: fault point; the steps are those of FAULT_STEPS. Used by tests/noriba/test_faults.py only.
FAULT_ENV = "NORIBA_FAULT_AT"
FAULT_STEPS = ("parse", "rules", "lake", "publish", "snapshot", "contracts", "export")

_held: dict[tuple[str, int], list] = {}
_held_guard = threading.Lock()


def fault_point(step: str) -> None:
    """Kill this process with SIGKILL if the test hook NORIBA_FAULT_AT names ``step``; otherwise do nothing."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _lock_name(name: str) -> str:
    """Return ``name`` if it is a plain file name, else a hash of it (an id never becomes a path)."""
    return name if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}", name) else hashlib.sha256(name.encode()).hexdigest()[:32]


@contextmanager
def feed_lock(ws: Workspace, name: str):
    """Hold the lock of feed (or export) ``name`` for the block; other processes and threads wait for it.

    Re-entrant within one thread (run_feed holds it while the export step takes it again).
    """
    path = ws.home / ".locks" / f"{_lock_name(name)}.lock"
    key = (str(path), threading.get_ident())
    with _held_guard:
        entry = _held.get(key)
        if entry:
            entry[1] += 1
    if entry:
        try:
            yield
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with _held_guard:
            _held[key] = [fh, 1]
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def sweep(folder: Path, *patterns: str) -> list[Path]:
    """Return the entries of ``folder`` matching any glob of ``patterns`` after removing them (files or folders).

    Call it only under the lock of the run that owns the folder; a missing folder is no error.
    """
    gone = []
    if not folder.is_dir():
        return gone
    for pattern in patterns:
        for p in folder.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            gone.append(p)
    return gone


#: A temporary folder that tempfile.TemporaryDirectory(dir=exports/) made in older versions.
LEGACY_EXPORT_TMP = re.compile(r"tmp[a-z0-9_]{8}")


def sweep_legacy_export_tmp(ws: Workspace) -> list[Path]:
    """Return the ``exports/tmpXXXXXXXX`` folders older versions left behind after removing them.

    A folder of that name that holds an export (latest.json or manifest.json) is kept.
    """
    gone = []
    if not ws.exports.is_dir():
        return gone
    for p in ws.exports.iterdir():
        if (p.is_dir() and LEGACY_EXPORT_TMP.fullmatch(p.name) and not (p / "latest.json").exists()
                and not any(p.glob("*/manifest.json"))):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``, replacing whatever was there, as close to atomically as a file system allows.

    The old ``dst`` is first renamed ``.<name>.old-<id>``; if the process dies between the two
    renames, then ``dst`` is missing (its step is not done, so a rerun redoes it) and the next
    sweep of ``.*.old-*`` removes the old copy.
    """
    import uuid

    dst.parent.mkdir(parents=True, exist_ok=True)
    old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:6]}")
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    if old.exists():
        shutil.rmtree(old)


def in_thread(fn, *args, name: str = "noriba-io"):
    """Return the Future of ``fn(*args)`` run in a thread of its own, named ``name`` (whoever starts one waits for it
    before returning)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)
