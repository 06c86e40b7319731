"""GBFS systems polled by the realtime archiver (`noriba rt archive`) from a real server on 127.0.0.1: each file asked again
only when its ttl has run out (never sooner than gbfs.min_interval_s), changed responses archived as received, unchanged
ones only logged, and the archive ingested into the same lake rows as the served files themselves."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

from noriba.cli import main
from tests.conftest import deadline

T0 = 1_765_000_000


def _doc(ttl: int, version: int, data: dict) -> bytes:
    return json.dumps({"last_updated": T0 + 60 * version, "ttl": ttl, "version": "2.3", "data": data}).encode()


def station_information() -> bytes:
    return _doc(2, 0, {"stations": [{"station_id": sid, "name": f"駅前{sid}", "lat": 35.68 + i / 100, "lon": 139.76, "capacity": 10}
                                    for i, sid in enumerate(("s1", "s2"))]})


def station_status(version: int) -> bytes:
    bikes = version % 3
    return _doc(0, version, {"stations": [{"station_id": sid, "num_bikes_available": bikes, "num_docks_available": 10 - bikes,
                                           "is_installed": True, "is_renting": True, "is_returning": True,
                                           "last_reported": T0 + 60 * version} for sid in ("s1", "s2")]})


def station_status_3_0(version: int) -> bytes:
    """A GBFS 3.0 station_status (num_vehicles_available, RFC 3339 times), beside a 2.3 station_information: mixed versions."""
    from datetime import datetime, timezone

    t = datetime.fromtimestamp(T0 + 60 * version, timezone.utc).isoformat().replace("+00:00", "Z")
    bikes = version % 3
    return json.dumps({"last_updated": t, "ttl": 0, "version": "3.0", "data": {"stations": [
        {"station_id": sid, "num_vehicles_available": bikes, "num_docks_available": 10 - bikes, "is_installed": True,
         "is_renting": True, "is_returning": True, "last_reported": t} for sid in ("s1", "s2")]}}).encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        srv = self.server
        name = self.path.lstrip("/")
        with srv.lock:
            srv.asked[name].append(time.monotonic())
            srv.headers[name].append(dict(self.headers.items()))
            n = len(srv.asked[name])
            tag = f'"{srv.fixed_status}"' if name == "station_status.json" and srv.fixed_status is not None else None
            if tag and self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            if name == "gbfs.json" and srv.web_page:
                body = b"<!DOCTYPE html><html><body>Service unavailable</body></html>"
            elif name == "gbfs.json" and srv.v3:  # GBFS 3.0: one feed list, RFC 3339 times
                feeds = [{"name": k, "url": f"{srv.base}/{k}.json"} for k in ("station_information", "station_status")]
                body = json.dumps({"last_updated": "2025-12-06T05:46:40Z", "ttl": 3600, "version": "3.0",
                                   "data": {"feeds": feeds}}).encode()
            elif name == "gbfs.json":
                body = _doc(3600, 0, {"en": {"feeds": [{"name": k, "url": srv.elsewhere.get(k, f"{srv.base}/{k}.json")}
                                                       for k in ("station_information", "station_status")]}})
            elif name == "station_status.json" and srv.v3:
                body = station_status_3_0((n - 1) // 2)
            elif name == "station_information.json":
                body = station_information()
            elif name == "station_status.json":
                body = station_status((n - 1) // 2 if tag is None else srv.fixed_status)  # a new status every second request
            else:
                self.send_response(404)
                self.end_headers()
                return
            srv.served[name].append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if tag:
            self.send_header("ETag", tag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class System(ThreadingHTTPServer):
    """A GBFS 2.3 system on 127.0.0.1: gbfs.json (ttl 3600), station_information (ttl 2), station_status (ttl 0)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.asked: dict[str, list[float]] = defaultdict(list)
        self.served: dict[str, list[bytes]] = defaultdict(list)
        self.headers: dict[str, list[dict]] = defaultdict(list)
        self.web_page = False  # gbfs.json answered with an HTML error page
        self.fixed_status: int | None = None  # a fixed station_status served with an ETag (304 when it is sent back)
        self.v3 = False  # gbfs.json and station_status of GBFS 3.0 (station_information stays 2.3)
        self.elsewhere: dict[str, str] = {}  # file name -> the URL gbfs.json gives for it instead of this server's
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


def _rows(home: Path, table: str, order: str) -> list[tuple]:
    with duckdb.connect(str(home / "noriba.duckdb"), read_only=True) as con:
        cols = [c for (c,) in con.sql(f"SELECT column_name FROM information_schema.columns WHERE table_schema = 'gbfs' "
                                      f"AND table_name = '{table}' ORDER BY ordinal_position").fetchall()
                if c not in ("batch_id", "file", "file_name", "name_in_batch", "source_file", "feed_version")]
        return con.sql(f"SELECT {', '.join(cols)} FROM gbfs.{table} ORDER BY {order}").fetchall()


def test_archiver_polls_gbfs_respecting_ttl_archives_changes_and_the_archive_ingests_like_the_served_files(tmp_path):
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    home = tmp_path / "home"
    srv = System()
    try:
        (specs / "feeds" / "bikes.yml").write_text(
            f"id: bikes\nkind: gbfs\nsource: {{url: {srv.base}/gbfs.json}}\ntimezone: Asia/Tokyo\ngbfs: {{min_interval_s: 1}}\n",
            encoding="utf-8")
        with deadline(60):
            assert main(["--home", str(home), "rt", "archive", "bikes", "--for", "4.5", "--specs", str(specs)]) == 0
    finally:
        srv.stop()
    asked = srv.asked
    # gbfs.json: ttl 3600, asked once; station_information: ttl 2; station_status: ttl 0, so min_interval_s (1 s) rules
    assert len(asked["gbfs.json"]) == 1
    assert 2 <= len(asked["station_information.json"]) <= 3
    assert 3 <= len(asked["station_status.json"]) <= 5
    for name, ttl in (("station_information.json", 2), ("station_status.json", 1)):
        gaps = [b - a for a, b in zip(asked[name], asked[name][1:])]
        assert min(gaps) >= ttl - 0.05, (name, gaps)

    archive = home / "raw" / "bikes" / "archive"
    files = sorted(archive.glob("*/*/*.json"))
    by_kind = defaultdict(set)
    for f in files:
        by_kind[f.name.split("-")[0]].add(f.read_bytes())
    # every distinct response archived as received, once; an unchanged one only logged
    assert by_kind == {k.removesuffix(".json"): set(v) for k, v in srv.served.items()}
    assert len(files) == sum(len(set(v)) for v in srv.served.values()) < sum(len(v) for v in srv.served.values())
    log = [json.loads(line) for p in archive.glob("*/*/fetches.jsonl") for line in p.read_text().splitlines()]
    assert len(log) == sum(len(v) for v in asked.values()) and not [r for r in log if r["error"]]
    assert sum(r["changed"] for r in log) == len(files)

    # the hourly step ingests the archive; the same files served straight from a folder give the same lake rows
    assert main(["--home", str(home), "gbfs", "ingest-archive", "bikes", "--specs", str(specs), "--quiet", "--no-export"]) == 0
    direct = tmp_path / "served"
    direct.mkdir()
    for name, bodies in srv.served.items():
        for i, body in enumerate(dict.fromkeys(bodies)):
            (direct / f"{name.removesuffix('.json')}_{i}.json").write_bytes(body)
    home2 = tmp_path / "home2"
    assert main(["--home", str(home2), "gbfs", "ingest", str(direct), "--feed", "bikes", "--specs", str(specs), "--quiet",
                 "--no-export"]) == 0
    for table, order in (("station_information", "station_id"), ("station_status", "ALL")):
        got = _rows(home, table, order)
        assert got and got == _rows(home2, table, order), table
    assert len(_rows(home, "station_status", "ALL")) == 2 * len(set(srv.served["station_status.json"]))
    # a second hourly run reads nothing: no hour changed since
    from noriba.gbfs import ingest_archive, pending_archive_hours
    from warehouse.workspace import Workspace

    ws = Workspace(home)
    assert pending_archive_hours(ws, "bikes") == {}
    assert ingest_archive(ws, "bikes", export=False)["status"] == "unchanged"
    # a file added to an hour makes it pending again; its copy of an ingested file is skipped, a new one read
    hour = files[0].parent
    (hour / "station_status-235959-copy.json").write_bytes(next(f for f in files if f.name.startswith("station_status")).read_bytes())
    assert list(pending_archive_hours(ws, "bikes")) == [f"{hour.parent.name}/{hour.name}"]
    res = ingest_archive(ws, "bikes", export=False)
    assert res["status"] == "unchanged" and res["skipped"] >= 1
    assert pending_archive_hours(ws, "bikes") == {}


def test_archiver_follows_a_gbfs_3_0_discovery_file_with_mixed_versions_and_its_ttls(tmp_path):
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    home = tmp_path / "home"
    srv = System()
    srv.v3 = True
    try:
        (specs / "feeds" / "bikes3.yml").write_text(
            f"id: bikes3\nkind: gbfs\nsource: {{url: {srv.base}/gbfs.json}}\ntimezone: Asia/Tokyo\ngbfs: {{min_interval_s: 1}}\n",
            encoding="utf-8")
        with deadline(60):
            assert main(["--home", str(home), "rt", "archive", "bikes3", "--for", "2.5", "--specs", str(specs)]) == 0
    finally:
        srv.stop()
    assert len(srv.asked["gbfs.json"]) == 1  # ttl 3600
    assert len(srv.asked["station_status.json"]) >= 2 and len(srv.asked["station_information.json"]) >= 1
    gaps = [b - a for a, b in zip(srv.asked["station_status.json"], srv.asked["station_status.json"][1:])]
    assert min(gaps) >= 1 - 0.05  # ttl 0: min_interval_s rules
    assert main(["--home", str(home), "gbfs", "ingest-archive", "bikes3", "--specs", str(specs), "--quiet", "--no-export"]) == 0
    with duckdb.connect(str(home / "noriba.duckdb"), read_only=True) as con:
        versions = dict(con.sql("SELECT kind, any_value(version) FROM gbfs.files GROUP BY kind").fetchall())
        status = con.sql("SELECT DISTINCT snapshot_ts, station_id, num_bikes_available FROM gbfs.station_status "
                         "ORDER BY ALL").fetchall()
        codes = json.loads(con.sql("SELECT notice_codes FROM meta.feed_versions").fetchall()[0][0])
        schema = con.sql("SELECT file, field FROM quality.notices WHERE code = 'schema_error'").fetchall()
    assert versions == {"gbfs": "3.0", "station_information": "2.3", "station_status": "3.0"}
    served = {json.loads(b)["last_updated"] for b in srv.served["station_status.json"]}
    assert len(status) == 2 * len(served) and all(ts % 60 == T0 % 60 for ts, _, _ in status)
    assert codes.get("version_mismatch") == 1
    # the 3.0 schema asks gbfs.json to list system_information, which this system does not publish: one error, on that field
    assert len(schema) == 1 and schema[0][0].split("/")[-1].startswith("gbfs-") and schema[0][1] == "data.feeds"


def test_ingest_archive_before_anything_was_archived_says_so(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "home"), "gbfs", "ingest-archive", "nothing", "--quiet", "--no-export"]) == 0
    out = capsys.readouterr()
    assert "nothing new archived" in out.out + out.err and "Traceback" not in out.err


def test_archive_with_no_feed_named_polls_gtfs_rt_and_gbfs_and_a_restart_sends_the_etag_back(tmp_path):
    from tests.noriba.test_rt_archive import replay

    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    home = tmp_path / "home"
    srv = System()
    srv.fixed_status = 7
    try:
        with replay() as rt_srv, deadline(60):
            (specs / "feeds" / "bus-rt.yml").write_text(f"id: bus-rt\nkind: gtfs-rt\nrealtime:\n  combined: {rt_srv.url}\n",
                                                        encoding="utf-8")
            (specs / "feeds" / "bikes.yml").write_text(f"id: bikes\nkind: gbfs\nsource: {{url: {srv.base}/gbfs.json}}\n",
                                                       encoding="utf-8")
            for _ in range(2):  # the second run is a restart: what the first kept (ETag, sha256) is read back
                assert main(["--home", str(home), "rt", "archive", "--once", "--specs", str(specs)]) == 0
            assert len(rt_srv.requests) == 2
    finally:
        srv.stop()
    assert {k: len(v) for k, v in srv.asked.items()} == {"gbfs.json": 2, "station_information.json": 2, "station_status.json": 2}
    assert "If-None-Match" not in srv.headers["station_status.json"][0]
    assert srv.headers["station_status.json"][1]["If-None-Match"] == '"7"'
    log = [json.loads(line) for p in (home / "raw" / "bikes" / "archive").glob("*/*/fetches.jsonl") for line in p.read_text().splitlines()]
    assert sorted((r["part"], r["status"], r["changed"]) for r in log) == [
        ("gbfs", 200, False), ("gbfs", 200, True), ("station_information", 200, False), ("station_information", 200, True),
        ("station_status", 200, True), ("station_status", 304, False)]
    assert len(list((home / "raw" / "bikes" / "archive").glob("*/*/*.json"))) == 3
    assert len(list((home / "raw" / "bus-rt" / "rt").glob("*/*/*.pb"))) == 1


def _archive_bikes_once(tmp_path, srv: System):
    """Return the home after `noriba rt archive --once` of a spec 'bikes' polling ``srv`` (stopped after)."""
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    home = tmp_path / "home"
    try:
        (specs / "feeds" / "bikes.yml").write_text(f"id: bikes\nkind: gbfs\nsource: {{url: {srv.base}/gbfs.json}}\n", encoding="utf-8")
        with deadline(60):
            assert main(["--home", str(home), "rt", "archive", "--once", "--specs", str(specs)]) == 0
    finally:
        srv.stop()
    return home


def test_a_web_page_instead_of_gbfs_json_is_logged_as_a_failure_and_nothing_is_archived(tmp_path, capsys):
    srv = System()
    srv.web_page = True
    home = _archive_bikes_once(tmp_path, srv)
    err = capsys.readouterr().err
    assert "bikes/gbfs: 1 fetches, 0 changed, failing (1 in a row)" in err and "Traceback" not in err
    archive = home / "raw" / "bikes" / "archive"
    log = [json.loads(line) for p in archive.glob("*/*/fetches.jsonl") for line in p.read_text().splitlines()]
    assert [r["error"] for r in log] == ["the answer is not JSON (a web page or an error text?); nothing was kept"]
    assert not list(archive.glob("*/*/*.json")) and set(srv.asked) == {"gbfs.json"}


def test_a_file_url_in_gbfs_json_pointing_at_cloud_metadata_is_refused_without_connecting(tmp_path, capsys):
    """gbfs.json is input: a file URL it names may not lead to a link-local address (169.254.169.254 answers cloud
    credentials on most hosting) or further into the network than gbfs.json's own server (SSRF)."""
    srv = System()
    srv.elsewhere = {"station_status": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}
    home = _archive_bikes_once(tmp_path, srv)
    assert "Traceback" not in capsys.readouterr().err
    archive = home / "raw" / "bikes" / "archive"
    log = {r["part"]: r for p in archive.glob("*/*/fetches.jsonl") for line in p.read_text().splitlines() for r in [json.loads(line)]}
    assert log["gbfs"]["error"] is None and log["station_information"]["error"] is None  # the system's own server: fetched
    err = log["station_status"]["error"]
    assert "refused to connect" in err and "169.254.169.254" in err and "link-local" in err, err
    assert log["station_status"]["status"] is None and not list(archive.glob("*/*/station_status-*.json"))
