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


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and not any("Traceback" in ln for ln in lines), proc.stdout + proc.stderr
    return [ln for ln in lines if ln.startswith("error: ")]


def test_a_japanese_feeds_unreadable_input_is_said_in_japanese_first_then_english(tmp_path):
    """A municipal officer runs a GTFS-JP feed whose zip is encrypted: the one error says what to do in Japanese, and
    the English line follows; a feed that is not Japanese gets the English line alone."""
    import zipfile

    feed = tmp_path / "locked.zip"
    with zipfile.ZipFile(feed, "w") as zf:
        for name, text in MINI_FEED.items():
            zf.writestr(name, text)
    raw = bytearray(feed.read_bytes())
    at = 0
    while (at := raw.find(b"PK\x01\x02", at)) >= 0:  # the central directory's flag bit 0: "encrypted"
        raw[at + 8] |= 1
        at += 4
    feed.write_bytes(bytes(raw))
    home = tmp_path / "home"
    ja = _error_lines(_noriba("--home", str(home), "validate", str(feed), "--profile", "gtfs-jp", "--quiet"))
    assert len(ja) == 2, ja
    assert ja[0].startswith("error: locked: ") and "暗号化（パスワード保護）されています" in ja[0] and "パスワードなしで" in ja[0]
    assert "encrypted (password-protected)" in ja[1] and "send the feed without a password" in ja[1]
    en = _error_lines(_noriba("--home", str(home), "validate", str(feed), "--quiet"))
    assert len(en) == 1 and "encrypted (password-protected)" in en[0], en


def test_a_japanese_feeds_missing_source_names_the_spec_field_in_japanese(tmp_path):
    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    (specs / "town-bus.yml").write_text(f"id: town-bus\nkind: gtfs\nprofile: gtfs-jp\nsource: {{path: {tmp_path / 'nowhere'}}}\n",
                                        encoding="utf-8")
    lines = _error_lines(_noriba("--home", str(tmp_path / "home"), "run", "--specs", str(tmp_path / "specs"), "--quiet"))
    assert lines[0] == (f"error: town-bus: {tmp_path / 'nowhere'}: ファイルまたはフォルダがありません（フィード 'town-bus'、"
                        "source.path）。ファイルを置くか、フィード定義（spec）の source.path を直してください")
    assert lines[1] == f"error: town-bus: {tmp_path / 'nowhere'}: no such file or folder (feed 'town-bus', source.path)"


def test_a_japanese_trip_logs_unreadable_file_is_said_in_japanese_first_then_english(tmp_path):
    """A town's on-demand booking log comes in as an empty CSV: `noriba trips` says so in Japanese, then in English;
    the same file under a spec that is not Japanese gets the English line alone."""
    import os

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bookings.csv").write_bytes(b"")
    specs = tmp_path / "specs" / "trips"
    specs.mkdir(parents=True)
    spec = ("id: {id}\nkind: trips\nsource: {{path: {logs}}}\ntimezone: {tz}\n"
            "trips:\n  files: ['*.csv']\n  mode: on_demand\n  columns: {{pickup_time: pickup_at}}\n")
    (specs / "town-ondemand.yml").write_text(spec.format(id="town-ondemand", logs=logs, tz="Asia/Tokyo"), encoding="utf-8")
    (specs / "city-ondemand.yml").write_text(spec.format(id="city-ondemand", logs=logs, tz="Europe/Oslo"), encoding="utf-8")
    env = {**os.environ, "NORIBA_SPECS": str(tmp_path / "specs")}
    proc = subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / "home"), "trips", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    lines = _error_lines(proc)
    town = [ln for ln in lines if ln.startswith("error: town-ondemand: ")]
    city = [ln for ln in lines if ln.startswith("error: city-ondemand: ")]
    assert len(town) == 2 and "ファイルが空です（見出しの行がありません）" in town[0] and "the file is empty" in town[1], lines
    assert len(city) == 1 and "the file is empty" in city[0], lines


def test_gbfs_and_realtime_commands_given_a_japanese_feed_id_speak_japanese_first(tmp_path):
    """`noriba gbfs ingest` and `noriba rt ingest` name a feed by id: its spec (a Japanese city's bike share and bus
    positions) makes the error Japanese first; an id with no spec gets the English line alone."""
    import os

    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    (specs / "town-bikes.yml").write_text("id: town-bikes\nkind: gbfs\ntimezone: Asia/Tokyo\nsource: {url: https://example.org/gbfs.json}\n",
                                          encoding="utf-8")
    (specs / "town-bus-rt.yml").write_text("id: town-bus-rt\nkind: gtfs-rt\ntimezone: Asia/Tokyo\n"
                                           "realtime: {vehicle_positions: https://example.org/vp.pb}\n", encoding="utf-8")
    env = {**os.environ, "NORIBA_SPECS": str(tmp_path / "specs")}
    nowhere = tmp_path / "nowhere"

    def run(*args):
        return _error_lines(subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(tmp_path / "home"), *args],
                                           capture_output=True, text=True, cwd=ROOT, timeout=300, env=env))

    bikes = run("gbfs", "ingest", str(nowhere), "--feed", "town-bikes", "--specs", str(tmp_path / "specs"), "--quiet")
    assert bikes == [f"error: town-bikes: {nowhere}: ファイルまたはフォルダがありません（フィード 'town-bikes'）。パスを確認してください",
                     f"error: town-bikes: {nowhere}: no such file or folder (feed 'town-bikes')"], bikes
    bus = run("rt", "ingest", "--feed", "town-bus-rt", str(nowhere))
    assert len(bus) == 2 and "ファイルまたはフォルダがありません" in bus[0] and "no such file or folder" in bus[1], bus
    other = run("rt", "ingest", "--feed", "city-bus-rt", str(nowhere))
    assert len(other) == 1 and "no such file or folder" in other[0], other
