"""Zip bombs through the CLI, each in a child process whose memory is watched (killed past the limit).

RLIMIT_AS would break DuckDB's and pyarrow's address-space reservations, so the child's RSS is polled.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MINI_FEED
from tests.transforms.zipcraft import Raw, member, raw_zip, zeros_deflated

PEAK_LIMIT = 1536 << 20  # 1.5 GiB
TIME_LIMIT = 60.0


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) << 10
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def ingest_watched(zip_path: Path, home: Path) -> tuple[int, str, int, float]:
    """Return (exit code, output, peak RSS bytes, seconds) of `noriba ingest zip_path`; the child is killed past the limits."""
    env = {**os.environ, "NORIBA_HOME": str(home)}
    env.pop("NORIBA_DEBUG", None)
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "noriba.cli", "ingest", str(zip_path), "--id", "bomb"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _rss(child.pid))
        if peak > PEAK_LIMIT or time.monotonic() - start > TIME_LIMIT:
            child.kill()
            child.wait()
            pytest.fail(f"ingest of {zip_path.name} killed at {peak >> 20} MiB after {time.monotonic() - start:.0f} s")
        time.sleep(0.02)
    out = child.stdout.read()
    return child.returncode, out, peak, time.monotonic() - start


def _feed(path: Path, bomb: Raw) -> Path:
    return raw_zip(path, [member(n, t.encode()) for n, t in MINI_FEED.items()] + [bomb])


def test_zip_member_lying_about_its_size_is_refused_with_bounded_memory(tmp_path):
    chunks, packed, _crc = zeros_deflated(160)  # 10 GiB of zeros in ~10 MB
    path = _feed(tmp_path / "liar.zip", Raw(name=b"stop_times.txt", data=chunks, compress_size=packed, file_size=1000, crc=0))
    code, out, peak, secs = ingest_watched(path, tmp_path / "home")
    print(f"lying member: peak {peak >> 20} MiB, {secs:.1f} s")
    assert code == 2
    assert "liar.zip!stop_times.txt" in out and "more than the 1,000 bytes" in out
    assert "Traceback" not in out and len([line for line in out.splitlines() if line.startswith("error:")]) == 1


def test_honest_member_of_zeros_is_refused_as_a_zip_bomb_with_bounded_memory(tmp_path):
    chunks, packed, crc = zeros_deflated(56)  # 3.5 GiB of zeros in ~3.6 MB, sizes and CRC true
    path = _feed(tmp_path / "zeros.zip", Raw(name=b"stop_times.txt", data=chunks, compress_size=packed, file_size=56 * (64 << 20), crc=crc))
    code, out, peak, secs = ingest_watched(path, tmp_path / "home")
    print(f"honest zeros: peak {peak >> 20} MiB, {secs:.1f} s")
    assert code == 2
    assert "zeros.zip!stop_times.txt" in out and "NORIBA_MAX_ZIP_RATIO" in out
    assert "Traceback" not in out and len([line for line in out.splitlines() if line.startswith("error:")]) == 1


def test_many_small_members_that_unpack_to_gigabytes_are_refused_with_bounded_memory(tmp_path):
    one = member("x", bytes(1 << 20))  # 1 MiB of zeros: under the size from which a single member's ratio is checked
    bombs = [Raw(**{**one.__dict__, "name": f"parts/p{i}.bin".encode()}) for i in range(3000)]
    path = raw_zip(tmp_path / "many.zip", [member(n, t.encode()) for n, t in MINI_FEED.items()] + bombs)
    code, out, peak, secs = ingest_watched(path, tmp_path / "home")
    print(f"many small members: peak {peak >> 20} MiB, {secs:.1f} s")
    assert code == 2
    assert "many.zip: its files unpack to" in out and "NORIBA_MAX_ZIP_RATIO" in out
    assert "Traceback" not in out and len([line for line in out.splitlines() if line.startswith("error:")]) == 1
