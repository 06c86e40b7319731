"""What the CLI says when things go wrong outside the feed: a read-only or full disk, and how many notices there are."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import MINI_FEED, ROOT, write_feed


@pytest.fixture
def tmpfs(tmp_path):
    """Return a function mounting a small tmpfs (root only; skipped elsewhere), unmounted after the test."""
    mounted = []

    def mount(name: str, options: str):
        target = tmp_path / name
        target.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); needs root")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


def _noriba(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noriba.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    line = lines[0]
    for raw in ("Traceback", "Errno", "OSError", "Exception", "FATAL Error", "TransactionContext"):
        assert raw not in line, line
    return line


def test_a_read_only_home_is_one_sentence_naming_the_folder_and_what_to_do(tmpfs, tmp_path):
    home = tmpfs("ro", "ro,size=1m")
    line = _one_sentence(_noriba("--home", str(home), "ingest", str(write_feed(tmp_path / "in", MINI_FEED)), "--quiet"))
    assert "read-only" in line and str(home) in line and "--home" in line


def test_a_full_disk_is_one_sentence_naming_the_file_and_what_to_do(tmpfs, tmp_path):
    home = tmpfs("full", "size=1m")
    extra = "note_id,text\n" + "".join(f"N{i},{'x' * 40}\n" for i in range(40000))  # about 1.9 MB: more than the disk holds
    feed = write_feed(tmp_path / "big", {**MINI_FEED, "notes.txt": extra})
    line = _one_sentence(_noriba("--home", str(home), "ingest", str(feed), "--id", "big", "--quiet"))
    assert "disk is full" in line and str(home) in line and "free" in line.lower()


def test_notices_print_their_true_count_not_the_number_of_samples_kept(tmp_path):
    n_bad = 10_500  # each bad time is a notice; typing keeps at most 10,000 samples per code and field
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    rows += [f"T1,8h{i % 60:02d},8h{i % 60:02d},S1,{i + 1}" for i in range(n_bad)]
    feed = write_feed(tmp_path / "in", {**MINI_FEED, "stop_times.txt": "\n".join(rows) + "\n"})
    proc = _noriba("--home", str(tmp_path / "h"), "ingest", str(feed), "--id", "many")
    shown = re.findall(r"ERROR\s+invalid_time ×([\d,]+)", proc.stderr)
    assert shown == ["21,000"], proc.stderr  # arrival and departure time of every row
