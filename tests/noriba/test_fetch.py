"""Receiving a feed's source: hostile servers and folders end with one clear message and nothing archived."""

from __future__ import annotations

import dataclasses
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from noriba.fetch import fetch
from noriba.specs import parse_spec
from tests.conftest import MINI_FEED, ROOT, write_feed
from tests.hostile.http_servers import serve, small_zip
from transforms.adapters import InputError

FEED = "hostile-feed"


def _source(**source):
    return parse_spec({"id": FEED, "kind": "gtfs", "source": source}, where="test", root=ROOT).source


def _files(ws) -> list[Path]:
    """Return every file under the workspace (raw/, staging/, ...)."""
    return sorted(p for p in ws.home.rglob("*") if p.is_file())


def _refused(ws, url: str, *, within: float, **source) -> str:
    """Return the message of the one InputError fetching ``url`` raised, after checking it came in time and left nothing."""
    t0 = time.monotonic()
    with pytest.raises(InputError) as e:
        fetch(ws, FEED, _source(url=url, **source))
    took = time.monotonic() - t0
    msg = str(e.value)
    assert FEED in msg and url in msg, msg
    assert "\n" not in msg and "Traceback" not in msg
    assert took < within, f"took {took:.1f} s: {msg}"
    assert _files(ws) == [], "a failed download must leave no file (partial, .tmp or archived)"
    return msg


def test_download_is_archived_under_its_hash(ws):
    import hashlib

    body = small_zip()
    with serve("ok", body=body) as url:
        got = fetch(ws, FEED, _source(url=url))
    raw = Path(got.raw_path)
    assert raw == ws.raw / FEED / f"{hashlib.sha256(body).hexdigest()}.zip"
    assert raw.read_bytes() == body and got.source_sha256 == hashlib.sha256(body).hexdigest()
    assert [p.name for p in _files(ws)] == sorted([raw.name, "http_state.json"])


def test_server_error_ends_with_one_message_after_the_retries(ws):
    with serve("status", code=500) as url:
        msg = _refused(ws, url, within=10, retries=2)
    assert "HTTP 500" in msg and "2 tries" in msg and "try again later" in msg


def test_retry_after_a_server_error_then_succeeds(ws):
    with serve("fail_then_ok", failures=1, code=503) as url:
        got = fetch(ws, FEED, _source(url=url, retries=2))
    assert Path(got.raw_path).read_bytes() == small_zip()


def test_redirect_loop_is_refused_at_once(ws):
    with serve("redirect_loop") as url:
        msg = _refused(ws, url, within=3, retries=3)
    assert "redirect" in msg and "loop" in msg


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://0.0.0.0/x"],
                         ids=["metadata", "ipv6-link-local", "unspecified"])
def test_redirect_to_a_link_local_or_reserved_address_is_refused_without_connecting(ws, location):
    with serve("redirect_to", location=location) as url:
        msg = _refused(ws, url, within=3, retries=3, timeout_s=30)
    assert "refused to connect" in msg and "redirect" in msg and ("link-local" in msg or "reserved" in msg), msg


def test_redirect_inward_from_a_public_address_is_refused():
    from noriba.fetch import _Guard, address_kind

    assert [address_kind(a) for a in ("8.8.8.8", "10.1.2.3", "100.64.0.1", "127.0.0.1", "::1", "169.254.169.254",
                                      "::ffff:192.168.0.1", "2001:4860:4860::8888")] == [
        "public", "private", "private", "loopback", "loopback", "link-local", "private", "public"]
    g = _Guard()
    g.first = "public"  # the spec's URL was on the internet
    for host in ("127.0.0.1", "10.0.0.8", "169.254.169.254"):
        with pytest.raises(Exception, match="refused to connect"):
            g.check(host, 80)
    assert g.check("8.8.4.4", 80) == "8.8.4.4"
    inner = _Guard()
    assert inner.check("127.0.0.1", 80) == "127.0.0.1"  # a spec may name a loopback or private server itself
    assert inner.check("10.0.0.8", 80) == "10.0.0.8"  # and a redirect may go outward from it


def test_trickling_server_is_stopped_at_the_deadline(ws):
    with serve("trickle", interval=0.2) as url:
        msg = _refused(ws, url, within=3.5, deadline_s=2, timeout_s=60, retries=3)
    assert "deadline_s=2" in msg


def test_server_that_never_ends_its_headers_is_stopped_at_the_deadline(ws):
    with serve("trickle_headers", interval=0.2) as url:
        msg = _refused(ws, url, within=3.5, deadline_s=2, timeout_s=60, retries=3)
    assert "deadline_s=2" in msg


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "no-length"])
def test_oversized_download_is_refused(ws, announce):
    with serve("huge", size=4 << 20, announce=announce) as url:
        msg = _refused(ws, url, within=5, max_bytes=1 << 20)
    assert "max_bytes=1048576" in msg and "raise source.max_bytes" in msg


def test_download_is_streamed_to_disk_not_kept_in_memory(ws):
    size = 32 << 20
    with serve("huge", size=size, announce=False) as url:
        tracemalloc.start()
        try:
            got = fetch(ws, FEED, _source(url=url))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert os.path.getsize(got.raw_path) == size
    assert peak < 8 << 20, f"peak Python memory {peak >> 20} MiB for a {size >> 20} MiB download"


def test_content_length_longer_than_the_body_is_an_incomplete_download(ws):
    with serve("lying_length", announced=10_000) as url:
        msg = _refused(ws, url, within=10, retries=2)
    assert "incomplete" in msg and "10000" in msg


def test_content_length_shorter_than_the_body_gives_a_damaged_zip_message(ws):
    with serve("lying_length", announced=40) as url:
        msg = _refused(ws, url, within=10, retries=2)
    assert "damaged or incomplete zip" in msg


def test_connection_reset_mid_body_ends_with_one_message(ws):
    with serve("reset", after=4096) as url:
        msg = _refused(ws, url, within=10, retries=2)
    assert "2 tries" in msg


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/zip"], ids=["declared", "sniffed"])
def test_html_page_instead_of_a_data_file_is_refused(ws, ctype):
    with serve("html", ctype=ctype) as url:
        msg = _refused(ws, url, within=5)
    assert "web page" in msg and "open the URL in a browser" in msg


def test_url_path_cannot_make_a_bad_archive_name(ws):
    with serve("ok", body=b"a,b\n1,2\n", ctype="text/csv") as url:
        got = fetch(ws, FEED, _source(url=url.replace("feed.zip", "feed.c%00sv")))
    assert Path(got.raw_path).parent == ws.raw / FEED and got.raw_path.endswith(".bin")


# --- local sources: folders, files, ids ---------------------------------------------------------

def test_folder_symlink_outside_the_folder_is_refused(ws, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    folder = write_feed(tmp_path / "feed", MINI_FEED)
    (folder / "shapes.txt").symlink_to(secret)
    with pytest.raises(InputError) as e:
        fetch(ws, FEED, _source(path=str(folder)))
    msg = str(e.value)
    assert "shapes.txt" in msg and "outside" in msg and FEED in msg and "\n" not in msg
    assert _files(ws) == []


def test_folder_symlinked_subfolder_is_refused(ws, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "stops.txt").write_text("stop_id\nX\n")
    folder = write_feed(tmp_path / "feed", MINI_FEED)
    (folder / "extra").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="extra: a link to a folder"):
        fetch(ws, FEED, _source(path=str(folder)))
    assert _files(ws) == []


def test_folder_with_a_pipe_inside_is_refused(ws, tmp_path):
    folder = write_feed(tmp_path / "feed", MINI_FEED)
    os.mkfifo(folder / "shapes.txt")
    with pytest.raises(InputError, match="shapes.txt: not a regular file"):
        fetch(ws, FEED, _source(path=str(folder)))
    assert _files(ws) == []


def test_folder_symlink_inside_the_folder_is_archived(ws, tmp_path):
    import zipfile

    folder = write_feed(tmp_path / "feed", MINI_FEED)
    (folder / "sub").mkdir()
    (folder / "sub" / "notes.txt").write_text("hello\n")
    (folder / "notes.txt").symlink_to(folder / "sub" / "notes.txt")
    (folder / ".cache").symlink_to(tmp_path)  # hidden: skipped like every hidden file, so not refused
    got = fetch(ws, FEED, _source(path=str(folder)))
    with zipfile.ZipFile(got.raw_path) as zf:
        assert zf.read("notes.txt") == b"hello\n" and zf.read("sub/notes.txt") == b"hello\n"
        assert sorted(zf.namelist()) == sorted([*MINI_FEED, "notes.txt", "sub/notes.txt"])


def test_folder_archive_is_deterministic(ws, tmp_path):
    folder = write_feed(tmp_path / "feed", MINI_FEED)
    first = fetch(ws, FEED, _source(path=str(folder)))
    os.utime(folder / "stops.txt", (1, 1))
    assert fetch(ws, FEED, _source(path=str(folder))).source_sha256 == first.source_sha256


def test_folder_over_max_bytes_is_refused(ws, tmp_path):
    folder = write_feed(tmp_path / "feed", MINI_FEED)
    with pytest.raises(InputError, match="max_bytes=100"):
        fetch(ws, FEED, _source(path=str(folder), max_bytes=100))
    assert _files(ws) == []


def test_source_that_is_not_a_regular_file_is_refused(ws, tmp_path):
    fifo = tmp_path / "feed.zip"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        fetch(ws, FEED, _source(path=str(fifo)))
    assert _files(ws) == []


@pytest.mark.parametrize("bad_id", ["../../escape", "a/b", "..", ".hidden", "", "x\x00y"])
def test_unsafe_feed_id_is_refused(ws, tmp_path, bad_id):
    src = tmp_path / "in" / "feed.zip"
    src.parent.mkdir()
    src.write_bytes(small_zip())
    with pytest.raises(InputError, match="not a safe feed id"):
        fetch(ws, bad_id, _source(path=str(src)))
    assert _files(ws) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in"]


# --- trip sources -------------------------------------------------------------------------------

def _trip_spec(src: Path, **source):
    return parse_spec({"id": "hostile-trips", "kind": "trips", "source": {"path": str(src), **source},
                       "trips": {"files": ["**/*.csv"], "columns": {"pickup_time": "t"}}}, where="t.yml", root=ROOT)


def test_trips_symlink_outside_the_source_folder_is_refused(ws, tmp_path):
    from noriba.trips_pipeline import fetch_trips

    (tmp_path / "elsewhere.csv").write_text("t\n2026-04-01 08:00\n")
    src = tmp_path / "trips"
    src.mkdir()
    (src / "2026-04.csv").write_text("t\n2026-04-01 09:00\n")
    (src / "2026-05.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(InputError) as e:
        fetch_trips(_trip_spec(src), ws)
    assert "2026-05.csv" in str(e.value) and "outside" in str(e.value) and "\n" not in str(e.value)
    assert _files(ws) == []


def test_trips_file_over_max_bytes_is_refused(ws, tmp_path):
    from noriba.trips_pipeline import fetch_trips

    src = tmp_path / "trips"
    src.mkdir()
    (src / "2026-04.csv").write_text("t\n" + "2026-04-01 09:00\n" * 100)
    with pytest.raises(InputError, match="max_bytes=200"):
        fetch_trips(_trip_spec(src, max_bytes=200), ws)
    assert _files(ws) == []


def test_trips_files_are_archived_under_their_hash(ws, tmp_path):
    import hashlib

    from noriba.trips_pipeline import fetch_trips

    src = tmp_path / "trips"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "2026-04.CSV").write_text("t\n2026-04-01 09:00\n")
    (src / "2026-05.csv").write_text("t\n2026-05-01 09:00\n")
    got = fetch_trips(_trip_spec(src), ws)
    for f in got["files"]:
        data = (src / f["file"]).read_bytes()
        assert Path(f["raw_path"]) == ws.raw / "hostile-trips" / f"{hashlib.sha256(data).hexdigest()}.csv"
        assert Path(f["raw_path"]).read_bytes() == data and f["bytes"] == len(data)


def test_trips_unsafe_id_is_refused(ws, tmp_path):
    from noriba.trips_pipeline import fetch_trips

    src = tmp_path / "trips"
    src.mkdir()
    (src / "2026-04.csv").write_text("t\n2026-04-01 09:00\n")
    spec = dataclasses.replace(_trip_spec(src), id="../../escape")
    with pytest.raises(InputError, match="not a safe feed id"):
        fetch_trips(spec, ws)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "trips"]


def test_bundle_source_that_is_not_a_regular_file_is_refused(ws, tmp_path):
    fifo = tmp_path / "平日.xls"
    os.mkfifo(fifo)
    source = dataclasses.replace(_source(path=str(fifo)), manifest=("timetable.json", "{}"))
    with pytest.raises(InputError, match="not a regular file"):
        fetch(ws, FEED, source)
    assert _files(ws) == []


def test_temporary_file_left_by_a_killed_run_is_removed_by_the_next(ws, tmp_path):
    from noriba.fetch import STALE_SECONDS

    folder = ws.raw / FEED
    folder.mkdir(parents=True)
    stale, fresh = folder / ".incoming-killed.tmp", folder / ".incoming-running.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(stale, (time.time() - STALE_SECONDS - 60,) * 2)
    src = tmp_path / "feed.zip"
    src.write_bytes(small_zip())
    got = fetch(ws, FEED, _source(path=str(src)))
    assert sorted(_files(ws)) == sorted([Path(got.raw_path), fresh])


def test_trips_folder_linked_back_up_the_tree_is_refused(ws, tmp_path):
    from noriba.trips_pipeline import fetch_trips

    src = tmp_path / "trips"
    src.mkdir()
    (src / "2026-04.csv").write_text("t\n2026-04-01 09:00\n")
    (src / "again").symlink_to(src)  # without the check, **/*.csv lists the file once per level, up to the OS limit
    with pytest.raises(InputError, match="again, a link to a folder"):
        fetch_trips(_trip_spec(src), ws)
    assert _files(ws) == []


def test_unchanged_download_is_not_fetched_again(ws):
    with serve("etag") as url:
        first = fetch(ws, FEED, _source(url=url))
        again = fetch(ws, FEED, _source(url=url))
    assert not first.not_modified and again.not_modified
    assert (again.raw_path, again.source_sha256) == (first.raw_path, first.source_sha256)


def test_saved_http_state_cannot_point_outside_the_feed_archive(ws, tmp_path):
    import json

    outside = tmp_path / "secret.zip"
    outside.write_bytes(b"not yours")
    (ws.raw / FEED).mkdir(parents=True)
    (ws.raw / FEED / "http_state.json").write_text(json.dumps({"etag": '"v1"', "raw_path": str(outside), "sha256": "0" * 64}))
    with serve("etag") as url:
        got = fetch(ws, FEED, _source(url=url))
    assert not got.not_modified and Path(got.raw_path).parent == ws.raw / FEED
    assert Path(got.raw_path).read_bytes() == small_zip()
