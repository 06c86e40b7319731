"""GBFS end to end on the three real systems in ../shared/data/gbfs, a live poll from a real local server, and the CLI."""

import json
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from noriba.cli import main
from tests.conftest import deadline, shared

GAP = 300  # the default gbfs.max_gap_s


def _con(home: Path):
    return duckdb.connect(str(home / "noriba.duckdb"), read_only=True)


def independent_minutes_empty(folder: Path, gap: int = GAP) -> dict[str, float]:
    """Minutes each station had no bike, from the JSON files alone: a state lasts until the station's next snapshot, at most ``gap``."""
    series: dict[str, dict[int, int]] = defaultdict(dict)
    for f in sorted(folder.glob("*.json")):
        doc = json.loads(f.read_text())
        for st in doc["data"]["stations"]:
            series[st["station_id"]][doc["last_updated"]] = st["num_bikes_available"]
    out = {}
    for sid, states in series.items():
        times = sorted(states)
        out[sid] = sum(min(b - a, gap) for a, b in zip(times, times[1:]) if states[a] == 0) / 60
    return out


def test_boulder_minutes_empty_per_station_match_an_independent_computation(tmp_path):
    root = shared("gbfs", "boulder-bcycle-2022")
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(root), "--feed", "boulder-bcycle", "--timezone", "America/Denver",
                 "--quiet"]) == 0
    expected = independent_minutes_empty(root / "station_status_2022-02-15_UTC")
    with _con(home) as con:
        got = dict(con.sql("SELECT station_id, sum(minutes_empty) FROM marts.gbfs_station_availability_hour "
                           "WHERE feed_id = 'boulder-bcycle' GROUP BY ALL").fetchall())
        hours = con.sql("SELECT DISTINCT hour_local FROM marts.gbfs_station_availability_hour ORDER BY 1").fetchall()
        files = con.sql("SELECT count(*) FROM gbfs.files WHERE kind = 'station_status'").fetchall()[0][0]
    assert files == len(list((root / "station_status_2022-02-15_UTC").glob("*.json")))
    assert set(got) == set(expected) and sum(expected.values()) > 0
    for sid, minutes in expected.items():
        assert got[sid] == pytest.approx(minutes, abs=1e-9), sid
    assert str(hours[0][0]) == "2022-02-14 17:00:00"  # 00:00 UTC is 17:00 the day before in Denver (MST)


def test_boulder_minutes_full_and_availability_are_time_weighted(tmp_path):
    root = shared("gbfs", "boulder-bcycle-2022")
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(root), "--feed", "boulder", "--quiet", "--no-export"]) == 0
    with _con(home) as con:
        bad = con.sql("SELECT count(*) FROM marts.gbfs_station_availability_hour WHERE minutes_empty > minutes_observed "
                      "OR minutes_full > minutes_observed OR minutes_observed > 60 OR avg_bikes_available NOT BETWEEN "
                      "min_bikes_available AND max_bikes_available").fetchall()[0][0]
        names = con.sql("SELECT count(*) FROM marts.gbfs_station_availability_hour WHERE station_name IS NULL").fetchall()[0][0]
    assert bad == 0
    assert names > 0  # bcycle_boulder_1859 has a status but is not in station_information (a real finding, below)
    with _con(home) as con:
        codes = json.loads(con.sql("SELECT notice_codes FROM meta.feed_versions WHERE feed_id = 'boulder'").fetchall()[0][0])
    assert codes["station_not_in_station_information"] == 1


def test_oslo_loads_with_mixed_versions_and_cross_file_notices(tmp_path):
    root = shared("gbfs", "oslo-bysykkel-v2.3")
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(root), "--feed", "oslo-bysykkel", "--timezone", "Europe/Oslo",
                 "--quiet"]) == 0
    with _con(home) as con:
        meta = con.sql("SELECT rows_in, rows_accepted, rows_quarantined, notice_codes, kind FROM meta.feed_versions").fetchall()[0]
        lake_rows = sum(con.sql(f"SELECT count(*) FROM gbfs.{t}").fetchall()[0][0] for t in
                        ("station_information", "station_status", "vehicle_status", "system_information", "vehicle_types"))
        quarantined = con.sql("SELECT count(*) FROM quality.quarantine WHERE feed_id = 'oslo-bysykkel'").fetchall()[0][0]
        notices = con.sql("SELECT code, file, field, value FROM quality.notices WHERE feed_id = 'oslo-bysykkel'").fetchall()
    rows_in, accepted, q, codes, kind = meta
    assert kind == "gbfs" and rows_in == accepted + q == lake_rows + quarantined
    codes = json.loads(codes)
    assert codes["version_mismatch"] == 1  # station_information 2.2, station_status 2.3
    assert codes["invalid_reference_to_vehicle_types_in_station_status"] == 2  # bike, ebike: no vehicle_types.json
    assert ("invalid_reference_to_vehicle_types_in_station_status", "station_status.json",
            "vehicle_types_available.vehicle_type_id", "bike") in notices
    assert codes["station_not_in_station_information"] > 0


def _zone_specs(tmp_path: Path, tier: Path) -> Path:
    """Return a specs folder: a zone layer cutting Wolfsburg at 10.78° E, and the TIER feed spec using it."""
    specs = tmp_path / "specs"
    (specs / "trips").mkdir(parents=True)
    (specs / "feeds").mkdir()
    square = lambda x0, x1: [[[x0, 52.3], [x1, 52.3], [x1, 52.5], [x0, 52.5], [x0, 52.3]]]  # noqa: E731
    layer = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone": "west", "name": "西"}, "geometry": {"type": "Polygon", "coordinates": square(10.6, 10.78)}},
        {"type": "Feature", "properties": {"zone": "east", "name": "東"}, "geometry": {"type": "Polygon", "coordinates": square(10.78, 10.95)}}]}
    (tmp_path / "halves.geojson").write_text(json.dumps(layer), encoding="utf-8")
    (specs / "trips" / "wolfsburg-halves.yml").write_text(
        f"id: wolfsburg-halves\nkind: zones\nsource: {{path: {tmp_path / 'halves.geojson'}}}\nzones: {{format: geojson, id_field: zone, "
        "name_field: name}\n", encoding="utf-8")
    (specs / "feeds" / "tier-wolfsburg.yml").write_text(
        f"id: tier-wolfsburg\nkind: gbfs\nname: TIER Wolfsburg\nsource: {{path: {tier}}}\ntimezone: Europe/Berlin\n"
        "gbfs:\n  zones: {layer: wolfsburg-halves}\n", encoding="utf-8")
    return specs


def test_tier_free_floating_vehicles_per_zone_and_hour_match_the_snapshots_and_no_vehicle_id_is_stored(tmp_path):
    tier = shared("gbfs", "tier-wolfsburg-v2.3")
    specs = _zone_specs(tmp_path, tier)
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(tier), "--feed", "tier-wolfsburg", "--specs", str(specs), "--quiet"]) == 0
    # independent: available vehicles per (zone, UTC hour), summed over the hour's distinct snapshots, divided by their number
    per: dict[tuple, int] = Counter()
    snaps: dict[int, set] = defaultdict(set)
    ids = set()
    seen_sha = set()
    for f in sorted(tier.rglob("free_bike_status*.json")):
        doc = json.loads(f.read_text())
        key = json.dumps(doc, sort_keys=True)
        if key in seen_sha:  # the same snapshot captured twice is read once
            continue
        seen_sha.add(key)
        t = doc["last_updated"]
        snaps[t // 3600].add(t)
        for b in doc["data"]["bikes"]:
            ids.add(b["bike_id"])
            if b["is_reserved"] or b["is_disabled"]:
                continue
            zone = "west" if 10.6 <= b["lon"] < 10.78 else "east" if 10.78 <= b["lon"] <= 10.95 else None
            zone = zone if 52.3 <= b["lat"] <= 52.5 else None
            per[(zone, t // 3600)] += 1
    with _con(home) as con:
        rows = con.sql("SELECT zone_id, epoch(timezone('Europe/Berlin', hour_local))::BIGINT // 3600, avg_available, snapshots "
                       "FROM marts.gbfs_vehicles_zone_hour WHERE source = 'free_floating'").fetchall()
        tables = {t: con.sql(f"SELECT * FROM gbfs.{t}").fetchall() for t in ("vehicle_status", "files")}
        quarantine = con.sql("SELECT * FROM quality.quarantine").fetchall()
    got = {(z, h): (avg, n) for z, h, avg, n in rows}
    assert {z for z, _ in got} >= {"west", "east"}
    for (zone, h), total in per.items():
        assert got[(zone, h)][0] == pytest.approx(total / len(snaps[h])), (zone, h)
    # no vehicle id anywhere: lake files, warehouse rows, quarantine, exports
    text = json.dumps([tables, quarantine], default=str)
    for p in (home / "lake").rglob("*.parquet"):
        text += json.dumps(pq.read_table(p).to_pylist(), default=str)
    for p in (home / "exports").rglob("*"):
        if p.is_file():
            text += p.read_text(encoding="utf-8-sig")
    assert ids and not any(i in text for i in ids)


def test_reingest_of_the_same_folder_does_nothing_and_says_so(tmp_path, capsys):
    root = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(root), "--feed", "tier", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "gbfs", "ingest", str(root), "--feed", "tier", "--quiet"]) == 0
    assert "no new GBFS file (4 already ingested); nothing to do" in capsys.readouterr().err


def test_rows_in_equal_lake_plus_quarantined_on_a_hostile_folder(tmp_path):
    folder = tmp_path / "snaps"
    (folder / "station_status").mkdir(parents=True)
    info = {"last_updated": 1700000000, "ttl": 0, "version": "2.3", "data": {"stations": [
        {"station_id": "1", "name": "駅前", "lat": 35.0, "lon": 139.0}, {"name": "no id", "lat": 1, "lon": 1}]}}
    (folder / "station_information.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    (folder / "station_status" / "1700000000.json").write_bytes(b"\xff\xfe not json")
    st = {"last_updated": 1700000060, "ttl": 0, "version": "2.3", "data": {"stations": [
        {"station_id": "1", "num_bikes_available": 0, "num_docks_available": 4, "is_installed": True, "is_renting": True,
         "is_returning": True, "last_reported": 1700000060}, {"station_id": "1", "num_bikes_available": "many"}]}}
    (folder / "station_status" / "1700000060.json").write_text(json.dumps(st))
    (folder / "notes.txt").write_text("not a snapshot")
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(folder), "--feed", "hostile", "--quiet"]) == 0
    with _con(home) as con:
        rows_in, accepted, quarantined = con.sql("SELECT rows_in, rows_accepted, rows_quarantined FROM meta.feed_versions").fetchall()[0]
        lake = sum(con.sql(f"SELECT count(*) FROM gbfs.{t}").fetchall()[0][0] for t in ("station_information", "station_status"))
        q = con.sql("SELECT file, code FROM quality.quarantine ORDER BY file, line").fetchall()
    assert (rows_in, accepted, quarantined) == (5, 2, 3) and lake == accepted
    assert q == [("station_information.json", "invalid_station_information"), ("station_status/1700000000.json", "invalid_json"),
                 ("station_status/1700000060.json", "invalid_station_status")]


def test_ingest_of_a_missing_folder_is_one_clear_line(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "h"), "gbfs", "ingest", str(tmp_path / "nope"), "--feed", "x", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------- live polling

class _System(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    asked: Counter = Counter()

    def do_GET(self):  # noqa: N802
        name = self.path.lstrip("/")
        type(self).asked[name] += 1
        body = self.files.get(name)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def live_tier():
    head = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _System)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    disc = json.loads((head / "gbfs.json").read_text())
    for f in disc["data"]["en"]["feeds"]:
        f["url"] = f"{base}/{f['name']}.json"
    _System.files = {p.name: p.read_bytes() for p in head.glob("*.json")}
    _System.files["gbfs.json"] = json.dumps(disc).encode()
    _System.asked = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_live_poll_asks_each_file_again_only_when_its_ttl_has_run_out(tmp_path, live_tier):
    from noriba.gbfs import poll
    from noriba.specs import load_spec
    from warehouse.workspace import Workspace

    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    path = specs / "feeds" / "tier-live.yml"
    path.write_text(f"id: tier-live\nkind: gbfs\nsource: {{url: {live_tier}/gbfs.json, max_bytes: 2000000, deadline_s: 30}}\n"
                    "gbfs: {min_interval_s: 0.2}\n", encoding="utf-8")
    spec = load_spec(path, specs_dir=specs)
    ws = Workspace(tmp_path / "home")
    results = poll(spec, ws, rounds=2, export=False, specs_dir=specs)
    asked = _System.asked
    assert asked["system_information.json"] == 1  # ttl 1800: not due in the second round
    assert asked["free_bike_status.json"] == 2 and asked["vehicle_types.json"] == 2 and asked["gbfs.json"] == 2  # ttl 0: after 0.2 s
    assert results[0]["new_files"] == 4 and results[0]["batch_rows_in"] == 842  # 840 vehicles + 1 system + 1 vehicle type
    assert results[1]["status"] == "unchanged"  # the same files again: archived once, nothing new to read
    assert len(list((tmp_path / "home" / "raw" / "tier-live").glob("*.json"))) == 4


def test_live_poll_refuses_a_file_larger_than_max_bytes_in_one_line(tmp_path, live_tier, capsys):
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    (specs / "feeds" / "tier-small.yml").write_text(
        f"id: tier-small\nkind: gbfs\nsource: {{url: {live_tier}/gbfs.json, max_bytes: 10000}}\n", encoding="utf-8")
    assert main(["--home", str(tmp_path / "home"), "gbfs", "fetch", "tier-small", "--once", "--specs", str(specs), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "larger than source.max_bytes=10000" in err and "Traceback" not in err


def test_live_poll_refuses_a_file_url_in_gbfs_json_that_points_at_cloud_metadata(tmp_path, live_tier, capsys):
    """gbfs.json is input: the file URLs it names may not reach a link-local address (169.254.169.254: cloud credentials)
    nor lead further into the network than gbfs.json's own server; refused before connecting, in one line."""
    disc = json.loads(_System.files["gbfs.json"])
    for f in disc["data"]["en"]["feeds"]:
        if f["name"] == "free_bike_status":
            f["url"] = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    _System.files["gbfs.json"] = json.dumps(disc).encode()
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    (specs / "feeds" / "tier-meta.yml").write_text(
        f"id: tier-meta\nkind: gbfs\nsource: {{url: {live_tier}/gbfs.json, max_bytes: 2000000, timeout_s: 5, retries: 1}}\n",
        encoding="utf-8")
    with deadline(60):
        rc = main(["--home", str(tmp_path / "home"), "gbfs", "fetch", "tier-meta", "--once", "--specs", str(specs), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "refused to connect to 169.254.169.254" in err and "link-local" in err and "Traceback" not in err, err


# --------------------------------------------------------------------------------------------- specs

def test_gbfs_spec_mistakes_name_the_file_and_field(tmp_path):
    from noriba.specs import SpecError, load_spec

    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    path = specs / "feeds" / "bikes.yml"
    path.write_text("id: bikes\nkind: gbfs\nsource: {url: https://x/gbfs.json}\ngbfs: {verison: '2.3', sample_every: 0}\n"
                    "trips: {files: x}\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path, specs_dir=specs)
    text = "\n".join(exc.value.problems)
    assert f"{path}: gbfs.verison: unknown key; did you mean 'version'?" in text
    assert f"{path}: gbfs.sample_every: found a number 0; expected a whole number from 1 to 100000" in text
    assert f"{path}: trips: only a spec of kind trips has a `trips:` section" in text


def test_noriba_run_of_a_gbfs_spec_ingests_its_snapshot_folder(tmp_path):
    from noriba.pipeline import run_feed
    from noriba.specs import load_spec
    from warehouse.workspace import Workspace

    head = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    path = specs / "feeds" / "tier.yml"
    path.write_text(f"id: tier\nkind: gbfs\nsource: {{path: {head}}}\ngbfs: {{version: '2.3'}}\n", encoding="utf-8")
    res = run_feed(load_spec(path, specs_dir=specs), Workspace(tmp_path / "home"), export=False)
    assert res["status"] == "new" and res["rows_in"] == 842 and res["rows_quarantined"] == 0
    with _con(tmp_path / "home") as con:
        assert con.sql("SELECT timezone FROM gbfs.system_information").fetchall() == [("Europe/Berlin",)]


def test_live_poll_refuses_a_web_page_instead_of_gbfs_json_in_one_line(tmp_path, live_tier, capsys):
    _System.files["gbfs.json"] = b"<!DOCTYPE html><html><body>Service unavailable</body></html>"
    specs = tmp_path / "specs"
    (specs / "feeds").mkdir(parents=True)
    (specs / "feeds" / "tier-html.yml").write_text(f"id: tier-html\nkind: gbfs\nsource: {{url: {live_tier}/gbfs.json}}\n", encoding="utf-8")
    assert main(["--home", str(tmp_path / "home"), "gbfs", "fetch", "tier-html", "--once", "--specs", str(specs), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the server sent a web page" in err and "Traceback" not in err
    assert not list((tmp_path / "home" / "raw" / "tier-html").glob("*.json"))  # nothing archived


def test_a_folder_named_by_an_archiver_hashes_only_is_read_by_contents(tmp_path):
    import hashlib

    head = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    folder = tmp_path / "archive" / "2023-08-11"
    folder.mkdir(parents=True)
    for f in head.glob("*.json"):
        data = f.read_bytes()
        (folder / f"{hashlib.sha256(data).hexdigest()}.json").write_bytes(data)
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(tmp_path / "archive"), "--feed", "tier", "--quiet", "--no-export"]) == 0
    with _con(home) as con:
        kinds = dict(con.sql("SELECT kind, count(*) FROM gbfs.files GROUP BY ALL").fetchall())
        vehicles = con.sql("SELECT count(*) FROM gbfs.vehicle_status").fetchall()[0][0]
    assert kinds == {"gbfs": 1, "system_information": 1, "vehicle_types": 1, "free_bike_status": 1} and vehicles == 840


# --------------------------------------------------------------------------------------------- incremental publish

def _dump(home: Path, feed: str) -> dict:
    """Every row the feed has in the warehouse (its gbfs tables, marts, notices, quarantine, meta row without its time)."""
    tables = ["gbfs.station_information", "gbfs.station_status", "gbfs.vehicle_status", "gbfs.system_information",
              "gbfs.vehicle_types", "gbfs.files", "marts.gbfs_station_availability_hour", "marts.gbfs_vehicles_zone_hour",
              "quality.notices", "quality.quarantine"]
    with _con(home) as con:
        out = {t: con.sql(f"SELECT * FROM {t} WHERE feed_id = '{feed}' ORDER BY ALL").fetchall() for t in tables}
        out["meta"] = con.sql(f"SELECT * EXCLUDE (published_at) FROM meta.feed_versions WHERE feed_id = '{feed}'").fetchall()
    return out


def test_a_later_batch_is_published_incrementally_with_the_rows_and_marts_of_a_whole_publish(tmp_path):
    from noriba.gbfs import ingest, publish_feed
    from warehouse.workspace import Workspace

    root = shared("gbfs", "boulder-bcycle-2022")
    status = sorted((root / "station_status_2022-02-15_UTC").glob("*.json"))
    parts = [tmp_path / "first", tmp_path / "second"]
    for part, files in zip(parts, (status[::2][:20], status[1::2] + status[::2][20:])):  # the second half reaches back in time
        (part / "station_status").mkdir(parents=True)
        for f in files:
            (part / "station_status" / f.name).write_bytes(f.read_bytes())
    (parts[0] / "station_information.json").write_bytes((root / "station_information.json").read_bytes())
    ws = Workspace(tmp_path / "home")
    assert ingest(ws, "b", parts[0], timezone_name="America/Denver", export=False)["publish_mode"] == "whole"
    res = ingest(ws, "b", parts[1], timezone_name="America/Denver", export=False)
    assert res["publish_mode"] == "incremental" and res["marts_from"] == json.loads(status[1].read_text())["last_updated"]
    assert res["published"]["gbfs.station_status"] == 45 * 40  # only the second batch's rows were inserted
    incremental = _dump(tmp_path / "home", "b")
    publish_feed(ws, "b")  # the whole feed again
    assert _dump(tmp_path / "home", "b") == incremental
    assert sum(1 for r in incremental["marts.gbfs_station_availability_hour"]) > 0


def test_incremental_publish_across_a_fall_back_hour_matches_a_whole_publish(tmp_path):
    """Denver falls back at 08:00 UTC on 2022-11-06: local 01:00-02:00 comes twice, so two mart hours share a label."""
    from noriba.gbfs import ingest, publish_feed
    from warehouse.workspace import Workspace

    t0 = 1667710800  # 2022-11-06 05:00 UTC

    def snap(t):
        k = (t - t0) // 300
        return json.dumps({"last_updated": t, "ttl": 0, "version": "2.3", "data": {"stations": [
            {"station_id": sid, "num_bikes_available": (k + i) % 3, "num_docks_available": 2 - (k + i) % 3, "is_installed": True,
             "is_renting": True, "is_returning": True, "last_reported": t} for i, sid in enumerate(("a", "b"))]}})
    info = json.dumps({"last_updated": t0, "ttl": 0, "version": "2.3", "data": {"stations": [
        {"station_id": sid, "name": sid, "lat": 40.0, "lon": -105.3} for sid in ("a", "b")]}})
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, times in ((first, range(t0, t0 + 3 * 3600 + 1800, 600)),  # 05:00-08:20 UTC, every 10 min
                          (second, range(t0 + 3 * 3600 + 300, t0 + 6 * 3600, 600))):  # 08:05-10:55 UTC, between and after
        (folder / "station_status").mkdir(parents=True)
        for t in times:
            (folder / "station_status" / f"{t}.json").write_text(snap(t))
    (first / "station_information.json").write_text(info)
    ws = Workspace(tmp_path / "home")
    ingest(ws, "d", first, timezone_name="America/Denver", export=False)
    assert ingest(ws, "d", second, timezone_name="America/Denver", export=False)["publish_mode"] == "incremental"
    incremental = _dump(tmp_path / "home", "d")
    publish_feed(ws, "d")
    assert _dump(tmp_path / "home", "d") == incremental
    labels = [r[5] for r in incremental["marts.gbfs_station_availability_hour"] if r[1] == "a"]
    assert len(labels) == 6 and len(set(labels)) == 5  # 01:00 local twice


def test_new_files_are_archived_as_received_in_one_zip_named_by_its_members(tmp_path):
    import hashlib
    import zipfile

    from noriba.gbfs import ingest
    from warehouse.workspace import Workspace

    root = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    res = ingest(Workspace(tmp_path / "home"), "tier", root, export=False)
    (archive,) = (tmp_path / "home" / "raw" / "tier").glob("*.zip")
    with zipfile.ZipFile(archive) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    assert members == {p.name: p.read_bytes() for p in root.glob("*.json")} and res["new_files"] == len(members)
    key = "".join(f"{n}\t{hashlib.sha256(d).hexdigest()}\n" for n, d in sorted(members.items()))
    assert archive.stem == hashlib.sha256(key.encode()).hexdigest()


def test_a_feed_whose_meta_row_is_gone_is_republished_without_duplicate_rows(tmp_path):
    """Another kind publishing under the same id replaces meta.feed_versions' row: the gbfs rows are still replaced whole."""
    from noriba.gbfs import ingest, publish_feed
    from warehouse.publish import connect, publish_lock
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home")
    ingest(ws, "tier", shared("gbfs", "tier-wolfsburg-v2.3", "head"), export=False)
    before = _dump(tmp_path / "home", "tier")
    with publish_lock(ws):
        con = connect(ws)
        con.execute("DELETE FROM meta.feed_versions WHERE feed_id = 'tier'")
        con.close()
    publish_feed(ws, "tier")
    assert _dump(tmp_path / "home", "tier") == before


def test_the_archive_is_byte_for_byte_the_zip_zipfile_writes(tmp_path):
    import zipfile

    from noriba.gbfs import _write_stored_zip

    members = [("station_information.json", b'{"data": {}}', ""), ("駅/乗り場.json", "{}".encode(), ""), ("a b/ü.json", b"x" * 70_000, ""),
               ("empty.json", b"", "")] + [(f"station_status/{i:05d}.json", bytes([i % 256]) * (i * 37), "") for i in range(1500)]
    with zipfile.ZipFile(tmp_path / "ref.zip", "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data, _ in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    _write_stored_zip(tmp_path / "ours.zip", members)  # more members than one writev takes
    assert (tmp_path / "ours.zip").read_bytes() == (tmp_path / "ref.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "ours.zip") as zf:
        assert zf.testzip() is None and zf.read("駅/乗り場.json") == b"{}"


def test_a_snapshot_file_over_the_byte_limit_is_refused_and_one_at_the_limit_is_read(tmp_path):
    from noriba.gbfs import _read_limited
    from transforms.errors import InputError

    at, over = tmp_path / "at.json", tmp_path / "over.json"
    at.write_bytes(b"1" * 1000)
    over.write_bytes(b"1" * 1001)
    assert _read_limited(at, 1000) == b"1" * 1000
    with pytest.raises(InputError, match="larger than source.max_bytes=1,000 bytes"):
        _read_limited(over, 1000)


def test_two_files_with_one_last_updated_make_one_state_the_later_file_winning_per_field(tmp_path):
    from noriba.gbfs import ingest
    from warehouse.workspace import Workspace

    folder = tmp_path / "snaps" / "station_status"
    folder.mkdir(parents=True)

    def snap(name: str, t: int, bikes: int, docks):
        st = {"station_id": "A", "num_bikes_available": bikes, "num_docks_available": docks, "is_installed": True,
              "is_renting": True, "is_returning": True, "last_reported": t}
        (folder / name).write_text(json.dumps({"last_updated": t, "ttl": 0, "version": "2.3", "data": {"stations": [st]}}))

    snap("a.json", 7200, 3, 9)
    snap("b.json", 7200, 5, None)  # the later file: its bikes win; it has no docks, so a.json's stand
    snap("c.json", 7500, 0, 1)
    ws = Workspace(tmp_path / "home")
    ingest(ws, "dup", tmp_path / "snaps", timezone_name="UTC", export=False)
    with _con(tmp_path / "home") as con:
        rows = con.sql("SELECT snapshots, minutes_observed, avg_bikes_available, min_bikes_available, avg_docks_available, "
                       "minutes_empty FROM marts.gbfs_station_availability_hour WHERE feed_id = 'dup'").fetchall()
        docked = con.sql("SELECT snapshots, avg_available, max_available FROM marts.gbfs_vehicles_zone_hour "
                         "WHERE feed_id = 'dup' AND source = 'docked'").fetchall()
    assert rows == [(1, 5.0, 5.0, 5, 9.0, 0.0)]  # one state of 300 s (7200 to 7500): 5 bikes, 9 docks
    assert docked == [(2, 2.5, 5)]  # two snapshot times in the hour: 5 bikes, then 0


def test_a_time_past_the_year_9999_is_quarantined_as_not_a_time_never_a_traceback(tmp_path, capsys):
    """last_updated in milliseconds (a common slip) or larger still fits in 64 bits but is no date a calendar holds."""
    folder = tmp_path / "snaps"
    (folder / "station_status").mkdir(parents=True)
    info = {"last_updated": 1700000000, "ttl": 0, "version": "2.3", "data": {"stations": [
        {"station_id": "1", "name": "駅前", "lat": 35.0, "lon": 139.0}]}}
    (folder / "station_information.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    for name, t in (("a", 10**13), ("b", 1700000060)):
        st = {"last_updated": t, "ttl": 0, "version": "2.3", "data": {"stations": [
            {"station_id": "1", "num_bikes_available": 2, "num_docks_available": 4, "is_installed": True, "is_renting": True,
             "is_returning": True, "last_reported": 1_700_000_060_000}]}}
        (folder / "station_status" / f"{name}.json").write_text(json.dumps(st))
    home = tmp_path / "home"
    assert main(["--home", str(home), "gbfs", "ingest", str(folder), "--feed", "ms", "--quiet"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    with _con(home) as con:
        q = con.sql("SELECT file, code FROM quality.quarantine").fetchall()
        kept = con.sql("SELECT last_reported FROM gbfs.station_status").fetchall()
    assert q == [("station_status/a.json", "invalid_last_updated")] and kept == [(None,)]  # 1.7e12 s: not a time either


def test_the_feed_takes_its_time_zone_and_source_from_the_batch_ingested_last_not_the_last_batch_id(tmp_path):
    """Batch ids are hashes: a later batch's id may sort first. Its time zone (here the one asked for: no
    system_information.json) and source must still be the feed's."""
    import hashlib

    from noriba.gbfs import VERSION_LENGTH, ingest
    from warehouse.workspace import Workspace

    t0 = 1667710800

    def write(folder: Path, times) -> str:
        (folder / "station_status").mkdir(parents=True)
        lines = []
        for t in times:
            body = json.dumps({"last_updated": t, "ttl": 0, "version": "2.3", "data": {"stations": [
                {"station_id": "a", "num_bikes_available": 1, "num_docks_available": 1, "is_installed": True,
                 "is_renting": True, "is_returning": True, "last_reported": t}]}}).encode()
            (folder / "station_status" / f"{t}.json").write_bytes(body)
            lines.append(f"station_status/{t}.json\t{hashlib.sha256(body).hexdigest()}\n")
        return hashlib.sha256("".join(lines).encode()).hexdigest()[:VERSION_LENGTH]

    first_id = write(tmp_path / "first", range(t0 + 7200, t0 + 9000, 300))
    for k in range(1, 200):  # a second batch, earlier snapshots, whose id sorts before the first's
        second = tmp_path / f"second{k}"
        if write(second, range(t0 + 60 * k, t0 + 60 * k + 1800, 300)) < first_id:
            break
    else:
        raise AssertionError("no second batch with a lower id")
    ws = Workspace(tmp_path / "home")
    assert ingest(ws, "tz", tmp_path / "first", timezone_name="America/Denver", export=False)["timezone"] == "America/Denver"
    res = ingest(ws, "tz", second, timezone_name="Asia/Tokyo", export=False)
    assert res["batch_id"] < first_id
    assert res["timezone"] == "Asia/Tokyo" and res["source"] == str(second)
    with _con(tmp_path / "home") as con:
        hours = con.sql("SELECT DISTINCT hour FROM marts.gbfs_station_availability_hour ORDER BY 1").fetchall()
    utc_hours = {t // 3600 % 24 for t in (t0 + 60 * k, t0 + 7200)}  # each batch's snapshots lie within one UTC hour
    assert hours == [((h + 9) % 24,) for h in sorted(utc_hours)]  # labelled in Tokyo time (UTC+9), not Denver's
