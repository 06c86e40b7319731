"""The realtime archiver against a real HTTP server on 127.0.0.1: changed vs unchanged, ETag/304, a source down then up,
bounded responses, and API keys from the environment that never reach a log or the archive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from noriba import rt
from noriba.specs import parse_spec
from tests.conftest import ROOT, deadline

SECRET = "s3cr3t-key-7f1c9a"


def snapshot(ts: int, delay: int = 0) -> bytes:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = ts
    e = m.entity.add(id="T1")
    e.trip_update.trip.trip_id = "T1"
    e.trip_update.stop_time_update.add(stop_sequence=1, stop_id="S1").arrival.delay = delay
    return m.SerializeToString()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        srv = self.server
        srv.requests.append(dict(self.headers.items()) | {"path": self.path})
        body, tag = srv.body, srv.etag
        if tag and self.headers.get("If-None-Match") == tag:
            self.send_response(304)
            self.send_header("ETag", tag)
            self.end_headers()
            return
        if srv.status != 200:
            self.send_response(srv.status)
            self.send_header("Content-Length", "0")
            if srv.status in (301, 302, 307, 308):
                self.send_header("Location", srv.location)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        if tag:
            self.send_header("ETag", tag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Replay(ThreadingHTTPServer):
    """A GTFS-Realtime server on 127.0.0.1 serving ``body`` (optionally with ``etag``); ``requests`` records each request's headers."""

    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.body, self.etag, self.status, self.requests = snapshot(1000), None, 200, []
        self.location = "http://127.0.0.2:9/elsewhere.pb"  # where a 3xx answer points
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/tu.pb"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@contextmanager
def replay(port: int = 0):
    srv = Replay(port)
    try:
        yield srv
    finally:
        srv.stop()


def rt_spec(url: str, *, feed_id: str = "bus-rt", **extra):
    return parse_spec({"id": feed_id, "kind": "gtfs-rt", "timezone": "Asia/Tokyo",
                       "realtime": {"trip_updates": url, "static": "minato-city-bus", **extra}}, where="test", root=ROOT)


def fetch_log(ws, feed_id: str = "bus-rt") -> list[dict]:
    return [json.loads(line) for p in sorted((ws.raw / feed_id / "rt").glob("*/*/fetches.jsonl")) for line in p.read_text().splitlines()]


def archived(ws, feed_id: str = "bus-rt") -> list:
    return sorted((ws.raw / feed_id / "rt").glob("*/*/*.pb"))


def test_a_changed_response_is_archived_and_an_unchanged_one_only_logged(ws):
    with replay() as srv, deadline(30):
        spec = rt_spec(srv.url)
        rt.archive(ws, [spec], once=True)
        rt.archive(ws, [spec], once=True)  # same bytes: logged, not archived (the last sha256 survives a restart)
        srv.body = snapshot(1020, delay=30)
        rt.archive(ws, [spec], once=True)
    log = fetch_log(ws)
    assert [(r["status"], r["changed"]) for r in log] == [(200, True), (200, False), (200, True)]
    assert [r["header_timestamp"] for r in log] == [1000, 1000, 1020]
    assert all(r["latency_ms"] >= 0 and r["bytes"] > 0 for r in log)
    files = archived(ws)
    assert len(files) == 2 and {f.read_bytes() for f in files} == {snapshot(1000), snapshot(1020, delay=30)}
    assert all(rt._NAME.match(f.name) and f.name.split("-")[-1][:-3] in {r["sha256"] for r in log} for f in files)
    assert not [p for p in ws.home.rglob(".*") if p.is_file() and p.name != ".publish.lock"], "a dot-temp was left behind"


def test_etag_is_sent_back_and_a_304_is_logged_as_unchanged(ws):
    with replay() as srv, deadline(30):
        srv.etag = '"v1"'
        spec = rt_spec(srv.url)
        rt.archive(ws, [spec], once=True)
        rt.archive(ws, [spec], once=True)
    assert "If-None-Match" not in srv.requests[0] and srv.requests[1]["If-None-Match"] == '"v1"'
    assert [(r["status"], r["changed"]) for r in fetch_log(ws)] == [(200, True), (304, False)]
    assert len(archived(ws)) == 1


def test_a_source_down_then_up_is_polled_with_back_off_and_archived_when_it_returns(ws):
    srv = Replay()
    port, url = srv.server_address[1], srv.url
    srv.stop()  # down: connection refused
    spec = rt_spec(url, poll_s=1, max_backoff_polls=2)
    came_back = threading.Timer(2.5, lambda: holder.append(Replay(port)))
    holder: list[Replay] = []
    came_back.start()
    try:
        with deadline(60):
            result = rt.archive(ws, [spec], duration_s=6)
    finally:
        came_back.cancel()
        for s in holder:
            s.stop()
    log = fetch_log(ws)
    assert log[0]["error"] and log[0]["status"] is None
    assert any(r["status"] == 200 and r["changed"] for r in log), log
    assert len(archived(ws)) == 1 and result["bus-rt/trip_updates"]["failures"] == 0
    gaps = [b - a for a, b in zip([rt.datetime.fromisoformat(r["fetched_at"]).timestamp() for r in log][:3],
                                  [rt.datetime.fromisoformat(r["fetched_at"]).timestamp() for r in log][1:4])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.8  # back-off 1 s, then 2 s (capped at poll × max_backoff_polls)


def test_back_off_is_capped_at_the_poll_interval_times_n():
    p = rt._Poll("f", "trip_updates", "http://x", 20, 10, 100, 20 * 15)
    assert rt.next_delay(p, 0.5) == 19.5
    p.failures = 1
    assert rt.next_delay(p, 0) == 20
    p.failures = 50  # down for hours: still polled every 5 minutes
    assert rt.next_delay(p, 0) == 300


def test_a_server_error_is_logged_and_nothing_is_archived(ws):
    with replay() as srv, deadline(30):
        srv.status = 503
        rt.archive(ws, [rt_spec(srv.url)], once=True)
    (rec,) = fetch_log(ws)
    assert rec["status"] == 503 and "HTTP 503" in rec["error"] and not rec["changed"]
    assert archived(ws) == []


def test_a_response_larger_than_max_bytes_is_refused(ws):
    with replay() as srv, deadline(30):
        srv.body = snapshot(1000) + bytes(5000)
        rt.archive(ws, [rt_spec(srv.url, max_bytes=1000)], once=True)
    (rec,) = fetch_log(ws)
    assert "max_bytes=1000" in rec["error"] and archived(ws) == []


def test_headers_and_parameters_from_the_environment_are_sent_and_never_written(ws, monkeypatch):
    monkeypatch.setenv("NORIBA_TEST_RT_KEY", SECRET)
    with replay() as srv, deadline(30):
        spec = rt_spec(srv.url, headers={"X-Api-Key": {"env": "NORIBA_TEST_RT_KEY"}},
                       params={"acl:consumerKey": {"env": "NORIBA_TEST_RT_KEY"}})
        rt.archive(ws, [spec], once=True)
        srv.status = 500
        rt.archive(ws, [spec], once=True)
        srv.stop()
        rt.archive(ws, [spec], once=True)  # connection refused: the error names the URL, never the key
    assert srv.requests[0]["X-Api-Key"] == SECRET and SECRET in srv.requests[0]["path"]
    assert len(fetch_log(ws)) == 3
    for p in ws.home.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_an_unset_key_variable_is_named_and_nothing_is_fetched(ws, monkeypatch):
    monkeypatch.delenv("NORIBA_TEST_RT_MISSING", raising=False)
    spec = rt_spec("http://127.0.0.1:9/tu.pb", headers={"X-Api-Key": {"env": "NORIBA_TEST_RT_MISSING"}})
    with pytest.raises(rt.InputError, match="NORIBA_TEST_RT_MISSING, which is not set"):
        rt.archive(ws, [spec], once=True)


def test_cli_archive_once_and_for_a_duration_with_keys_kept_out_of_its_output(tmp_path):
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    with replay() as srv, deadline(120):
        (tmp_path / "specs" / "feeds" / "bus-rt.yml").write_text(
            f"id: bus-rt\nkind: gtfs-rt\nrealtime:\n  combined: {srv.url}\n  poll_s: 1\n"
            "  headers: {X-Api-Key: {env: NORIBA_TEST_RT_KEY}}\n", encoding="utf-8")
        env = {**os.environ, "NORIBA_HOME": str(tmp_path / "home"), "NORIBA_SPECS": str(tmp_path / "specs"),
               "NORIBA_TEST_RT_KEY": SECRET}
        once = subprocess.run([sys.executable, "-m", "noriba.cli", "rt", "archive", "--once"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        t0 = time.monotonic()
        timed = subprocess.run([sys.executable, "-m", "noriba.cli", "rt", "archive", "bus-rt", "--for", "2s"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        unknown = subprocess.run([sys.executable, "-m", "noriba.cli", "rt", "archive", "nope"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert "bus-rt/combined: 1 fetches, 1 changed" in once.stderr
    assert timed.returncode == 0 and 2 <= took < 30, timed.stderr
    assert "changed" in timed.stderr and len(srv.requests) >= 3
    assert unknown.returncode == 2 and "no gtfs-rt spec for nope" in unknown.stderr
    assert SECRET not in once.stderr + once.stdout + timed.stderr + timed.stdout


def test_compose_runs_the_archiver_as_its_own_service():
    import yaml

    services = yaml.safe_load((ROOT / "docker" / "docker-compose.yaml").read_text())["services"]
    svc = services["noriba-rt-archiver"]
    assert svc["entrypoint"] == ["noriba"] and svc["command"] == ["rt", "archive"]
    assert svc["restart"] == "always"


def test_archived_fetches_and_snapshots_reach_the_lake_and_the_warehouse(ws):
    import duckdb

    with replay() as srv, deadline(30):
        spec = rt_spec(srv.url)
        rt.archive(ws, [spec], once=True)
        rt.archive(ws, [spec], once=True)
        srv.body = snapshot(1020, delay=30)
        rt.archive(ws, [spec], once=True)
    out = rt.parse_feed(ws, "bus-rt")
    assert len(out["hours"]) == 1
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*), count_if(changed), min(status) FROM rt.fetches WHERE feed_id = 'bus-rt'").fetchall() == [(3, 2, 200)]
    assert con.execute("SELECT static_feed_id, timezone FROM rt.feeds").fetchall() == [("minato-city-bus", "Asia/Tokyo")]
    rows = con.execute("SELECT arrival_delay, header_timestamp, snapshots FROM rt.stop_time_updates ORDER BY header_timestamp").fetchall()
    assert rows == [(0, 1000, 1), (30, 1020, 1)]


def test_with_keys_a_redirect_is_not_followed(ws, monkeypatch):
    monkeypatch.setenv("NORIBA_TEST_RT_KEY", SECRET)
    with replay() as srv, deadline(30):
        srv.status = 302
        rt.archive(ws, [rt_spec(srv.url, headers={"X-Api-Key": {"env": "NORIBA_TEST_RT_KEY"}})], once=True)
    (rec,) = fetch_log(ws)
    assert rec["status"] == 302 and "redirects are not followed" in rec["error"]
    assert len(srv.requests) == 1


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://0.0.0.0:9/x"],
                         ids=["metadata", "ipv6-link-local", "unspecified"])
def test_a_redirect_to_a_link_local_or_reserved_address_is_refused_without_connecting(ws, location):
    with replay() as srv, deadline(30):
        srv.status, srv.location = 302, location
        rt.archive(ws, [rt_spec(srv.url)], once=True)
    (rec,) = fetch_log(ws)
    assert "refused to connect" in rec["error"] and ("link-local" in rec["error"] or "reserved" in rec["error"]), rec
    assert not archived(ws) and len(srv.requests) == 1


def test_a_redirect_between_loopback_servers_is_followed(ws):
    """A spec may name a server on this machine, and it may redirect to another one here: only inward moves are refused."""
    with replay() as target, replay() as srv, deadline(30):
        srv.status, srv.location = 302, target.url
        rt.archive(ws, [rt_spec(srv.url)], once=True)
    (rec,) = fetch_log(ws)
    assert rec["error"] is None and rec["changed"] and len(archived(ws)) == 1 and len(target.requests) == 1


def test_a_failure_to_write_is_said_and_the_other_feeds_go_on(ws, monkeypatch, caplog):
    real = rt.archive_snapshot

    def full_disk(ws_, feed_id, *a, **k):
        if feed_id == "bus-a":
            raise OSError(28, "No space left on device")
        return real(ws_, feed_id, *a, **k)

    monkeypatch.setattr(rt, "archive_snapshot", full_disk)
    with replay() as srv, deadline(30):
        result = rt.archive(ws, [rt_spec(srv.url, feed_id="bus-a"), rt_spec(srv.url, feed_id="bus-b")], once=True)
    assert result["bus-a/trip_updates"]["failures"] == 1 and "No space left" in caplog.text
    assert result["bus-b/trip_updates"] == {"fetches": 1, "changed": 1, "failures": 0}


def _stop(proc) -> None:
    """Stop the archiver service as docker stops it (SIGTERM) and wait for it to finish."""
    import signal

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def test_the_service_waits_for_a_spec_then_archives_and_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    env = {**os.environ, "NORIBA_HOME": str(tmp_path / "home"), "NORIBA_SPECS": str(tmp_path / "specs"), "NORIBA_RT_SPEC_WAIT_S": "0.2"}
    err_file = tmp_path / "stderr.txt"
    with replay() as srv, deadline(180), open(err_file, "w") as err_fh:
        proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", "rt", "archive"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err_fh, text=True)
        try:
            # write the spec only once the service has said it is waiting (a loaded machine may take seconds to start it)
            while "looking again" not in err_file.read_text():
                assert proc.poll() is None, err_file.read_text()
                time.sleep(0.1)
            (tmp_path / "specs" / "feeds" / "bus-rt.yml").write_text(f"id: bus-rt\nkind: gtfs-rt\nrealtime:\n  combined: {srv.url}\n")
            while not srv.requests:
                assert proc.poll() is None, err_file.read_text()
                time.sleep(0.1)
            _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = err_file.read_text()
    assert proc.returncode == 0, err
    assert "looking again every 0.2 s" in err and "bus-rt/combined: 1 fetches, 1 changed" in err
    assert len(list((tmp_path / "home" / "raw" / "bus-rt" / "rt").glob("*/*/*.pb"))) == 1


def test_the_service_reads_its_specs_again_starting_new_feeds_and_stopping_removed_ones(tmp_path):
    """A long-running archiver (docker/'s service) picks up a spec added, changed or removed without a restart."""
    feeds = tmp_path / "specs" / "feeds"
    feeds.mkdir(parents=True)
    env = {**os.environ, "NORIBA_HOME": str(tmp_path / "home"), "NORIBA_SPECS": str(tmp_path / "specs"),
           "NORIBA_RT_SPEC_RELOAD_S": "0.3"}
    err_file = tmp_path / "stderr.txt"

    def wait_until(cond, proc):
        while not cond():
            assert proc.poll() is None, err_file.read_text()
            time.sleep(0.1)

    with replay() as first, replay() as second, deadline(180), open(err_file, "w") as err_fh:
        (feeds / "bus-rt.yml").write_text(f"id: bus-rt\nkind: gtfs-rt\nrealtime:\n  combined: {first.url}\n  poll_s: 1\n")
        proc = subprocess.Popen([sys.executable, "-m", "noriba.cli", "rt", "archive"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err_fh, text=True)
        try:
            wait_until(lambda: first.requests, proc)
            (feeds / "tram-rt.yml").write_text(f"id: tram-rt\nkind: gtfs-rt\nrealtime:\n  combined: {second.url}\n  poll_s: 1\n")
            wait_until(lambda: second.requests, proc)
            (feeds / "keyed-rt.yml").write_text(f"id: keyed-rt\nkind: gtfs-rt\nrealtime:\n  combined: {second.url}\n"
                                                "  headers: {X-Api-Key: {env: NORIBA_TEST_UNSET_KEY}}\n")  # its key unset
            wait_until(lambda: "keyed-rt: not archived" in err_file.read_text(), proc)
            (feeds / "keyed-rt.yml").unlink()
            (feeds / "bus-rt.yml").unlink()
            wait_until(lambda: "bus-rt: its spec is gone" in err_file.read_text(), proc)
            asked = len(first.requests)
            time.sleep(2.5)  # two poll intervals of the removed feed
            assert len(first.requests) == asked
            (feeds / "tram-rt.yml").write_text("id: tram-rt\nkind: gtfs-rt\nrealtime: [not, a, mapping\n")  # half-written
            wait_until(lambda: "tram-rt.yml: line" in err_file.read_text(), proc)
            asked = len(second.requests)
            wait_until(lambda: len(second.requests) >= asked + 2, proc)  # still polled, as it was
            _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = err_file.read_text()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "tram-rt: archiving it from now on" in err and "bus-rt/combined:" in err and "tram-rt/combined:" in err
    assert "tram-rt: its spec" not in err  # the broken spec did not stop the feed it had


def test_an_archiver_on_a_local_home_keeps_no_list_of_files_to_send(tmp_path):
    """Only an object-storage home is sent the archive; on a local one the queue of files to send must not grow with every
    snapshot of a service that runs for months."""
    import asyncio
    from types import SimpleNamespace

    from noriba.rt import _log_written, _send
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home")
    poll = SimpleNamespace(unsent={}, log_path=None, store_down=False, feed_id="bus-rt", part="trip_updates", secrets=lambda: [])
    for k in range(1000):
        poll.unsent[tmp_path / f"snap-{k}.pb"] = True
        _log_written(poll, tmp_path / f"h{k // 100}" / "fetches.jsonl", send_now=True)
        asyncio.run(_send(ws, poll))
    asyncio.run(_send(ws, poll, all_logs=True))
    assert ws.remote is None and poll.unsent == {}
