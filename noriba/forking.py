"""Worker processes that cannot inherit a held lock: the start method for Noriba's process pools."""

from __future__ import annotations

import multiprocessing
import os
import threading

#: Modules the fork server imports once, so that each worker it forks starts with them loaded.
PRELOAD = ["noriba.pipeline", "noriba.parity"]


def native_threads() -> int:
    """Return how many threads this process runs (the kernel's count: DuckDB's and Arrow's C++ threads too)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: Python's own threads only
        return threading.active_count()


#: Threads a Noriba process runs that a fork is safe beside: the main thread, NumPy's OpenBLAS pool and pyarrow's
#: jemalloc background thread (both libraries stop or reset them around a fork). Measured: 3 in `noriba run` when its
#: feed pool starts; a test runner's worker (pytest-xdist's I/O thread) or a process with a DuckDB connection open
#: (its worker threads) has more.
FORK_SAFE_THREADS = 3


def fork_is_safe() -> bool:
    """Return True if this process runs only the main Python thread and no more native threads than
    FORK_SAFE_THREADS."""
    return threading.active_count() == 1 and native_threads() <= FORK_SAFE_THREADS


def pool_context(*, start_method: str | None = None):
    """Return the multiprocessing context for a pool of workers: ``start_method`` if given (or NORIBA_POOL_START);
    else "fork" when :func:`fork_is_safe` (fast, and a worker sees the caller's state); else "forkserver" (a fork of a
    process whose other threads hold a lock, an allocator's, DuckDB's or an I/O buffer's, leaves that lock held forever
    in the child, which then hangs at its first use, and the pool's caller waits for it forever); "spawn" where neither
    exists. If NORIBA_POOL_START names no start method of this system, then raise InputError."""
    methods = multiprocessing.get_all_start_methods()
    start_method = start_method or os.environ.get("NORIBA_POOL_START") or None
    if start_method is not None and start_method not in methods:
        from transforms.errors import InputError

        raise InputError(f"NORIBA_POOL_START={start_method!r} is not a start method here: use one of "
                         f"{', '.join(methods)} (or leave it unset: Noriba forks when that is safe)")
    if start_method is None:
        if "fork" in methods and fork_is_safe():
            start_method = "fork"
        elif "forkserver" in methods:
            start_method = "forkserver"
        else:
            start_method = "spawn"
    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx
