"""Process memory settings for the big, short-lived work of an ingest."""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_THP_DISABLE = 41
_done = False


def avoid_huge_pages() -> bool:
    """Return True when transparent huge pages are off for this process from now on.

    An ingest allocates and frees a few GB of short-lived buffers. Where the kernel backs them
    with 2 MB huge pages (numpy and pyarrow's allocator ask for them), each first touch zeroes
    2 MB, and on a VM the host faults the page in as well: bench/README.md measured 1.7–2.5 s
    of kernel time for a 7M-row ingest with them and 0.95 s without. Linux only; elsewhere,
    when the kernel refuses, or with NORIBA_HUGE_PAGES=1 set, then nothing changes (False).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("NORIBA_HUGE_PAGES") == "1":
        return False
    try:
        _done = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    return _done
