"""The realtime simulator of the demo region: its snapshots parse, name only ids of the static feed, pass our realtime
rules without an error, show the ground truth it keeps; its server on 127.0.0.1 answers with ETag/304 to the archiver;
simulated minutes archived through noriba.rt reconcile row for row."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from noriba import rt, rt_sim
from noriba.specs import parse_spec
from tests.conftest import ROOT, deadline
from transforms.gtfs_rt.rules import Snapshot, StaticIndex, validate

STATIC = ROOT / "demo" / "inputs" / "minato-city-bus"
DAY = "2026-12-07"  # a Monday: the weekday timetable runs


@pytest.fixture(scope="module")
def sim():
    return rt_sim.simulator(STATIC, DAY, seed=7)


@pytest.fixture(scope="module")
def static_index():
    t = rt_sim.read_static(STATIC)
    return StaticIndex.from_rows(trips=t["trips"], routes=t["routes"], stops=t["stops"], stop_times=t["stop_times"],
                                 shapes=t.get("shapes", []), agencies=t.get("agency", []))


def morning(sim, step: int = 20):
    start, end = rt_sim.local_hours(sim, (6, 10))
    return range(start, end + 1, step)


def test_snapshots_parse_and_name_only_ids_of_the_static_feed(sim, static_index):
    seen = 0
    for now in morning(sim, 60):
        for msg in (sim.vehicle_positions(now), sim.trip_updates(now)):
            back = pb.FeedMessage.FromString(msg.SerializeToString())
            assert back.header.timestamp == now
            for e in back.entity:
                td = e.vehicle.trip if e.HasField("vehicle") else e.trip_update.trip
                assert td.trip_id in static_index.trips and td.route_id in static_index.routes
                if e.HasField("vehicle"):
                    assert e.vehicle.stop_id in static_index.stops
                    assert static_index.stop_times[td.trip_id][e.vehicle.current_stop_sequence] == e.vehicle.stop_id
                for stu in e.trip_update.stop_time_update:
                    assert static_index.stop_times[td.trip_id][stu.stop_sequence] == stu.stop_id
                seen += 1
    assert seen > 100


def test_the_simulated_feed_has_no_error_under_the_realtime_rules(sim, static_index):
    prev: dict[str, Snapshot] = {}
    counts: dict = {}
    for now in morning(sim):
        vp = Snapshot(sim.vehicle_positions(now), file=f"vp-{now}", fetched_at=now + 2)
        tu = Snapshot(sim.trip_updates(now), file=f"tu-{now}", fetched_at=now + 2)
        for key, snap in (("vp", vp), ("tu", tu)):
            found = validate(snap, static=static_index, previous=prev.get(key), other=tu if key == "vp" else None)
            for k, n in found.counts.items():
                counts[k] = counts.get(k, 0) + n
            prev[key] = snap
    assert {k: n for k, n in counts.items() if k[1] == "ERROR"} == {}


def test_the_ground_truth_is_reproducible_with_a_seed_and_realistic(sim):
    truth = sim.ground_truth()
    assert truth == rt_sim.simulator(STATIC, DAY, seed=7).ground_truth()
    assert truth != rt_sim.simulator(STATIC, DAY, seed=8).ground_truth()
    first = [r["departure_delay_s"] for r in truth if r["stop_sequence"] == min(
        x["stop_sequence"] for x in truth if x["trip_id"] == r["trip_id"])]
    assert sum(-60 <= d <= 180 for d in first) >= 0.6 * len(first)  # most trips start within −1..+3 min
    assert max(r["arrival_delay_s"] for r in truth) < 15 * 60
    for r in truth:
        assert r["actual_arrival"] <= r["actual_departure"]
    assert 0.5 < rt_sim.on_time_share(truth) < 1.0


def test_vehicles_are_where_the_ground_truth_says(sim):
    truth = {(r["trip_id"], r["stop_sequence"]): r for r in sim.ground_truth()}
    stops = {s["stop_id"]: (float(s["stop_lat"]), float(s["stop_lon"])) for s in rt_sim.read_static(STATIC)["stops"]}
    stopped = 0
    for now in morning(sim):
        for e in sim.vehicle_positions(now).entity:
            v = e.vehicle
            r = truth[(v.trip.trip_id, v.current_stop_sequence)]
            if v.current_status == pb.VehiclePosition.STOPPED_AT and now >= r["actual_arrival"]:
                assert now <= r["actual_departure"] or r["actual_arrival"] == r["actual_departure"]
                assert (v.position.latitude, v.position.longitude) == pytest.approx(stops[v.stop_id], abs=1e-5)
                stopped += 1
            elif v.current_status != pb.VehiclePosition.STOPPED_AT:
                assert now < r["actual_arrival"]  # still on its way to that stop
    assert stopped > 0


def test_the_server_answers_with_etag_and_304_and_stops(sim):
    start = rt_sim.local_hours(sim, (8, 9))[0]
    with deadline(30):
        srv = rt_sim.SimServer(sim, start=start, speed=1)  # one step of 20 s lasts 20 s: both requests fall in it
        url = srv.url
        try:
            r = httpx.get(f"{url}/vehicle-positions.pb", timeout=5)
            assert r.status_code == 200 and r.headers["etag"]
            assert pb.FeedMessage.FromString(r.content).header.timestamp == start
            again = httpx.get(f"{url}/vehicle-positions.pb", headers={"If-None-Match": r.headers["etag"]}, timeout=5)
            assert again.status_code == 304 and again.content == b""
            tu = httpx.get(f"{url}/trip-updates.pb", timeout=5)
            assert len(pb.FeedMessage.FromString(tu.content).entity) > 0
            assert httpx.get(f"{url}/nothing", timeout=5).status_code == 404
        finally:
            srv.stop()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/vehicle-positions.pb", timeout=2)


def test_the_archiver_polls_the_simulator_and_records_simulated_header_times(sim, ws):
    start = rt_sim.local_hours(sim, (8, 9))[0]
    with deadline(60), rt_sim.SimServer(sim, start=start, speed=360) as srv:
        spec = parse_spec({"id": "minato-bus-rt", "kind": "gtfs-rt", "timezone": "Asia/Tokyo",
                           "realtime": {"vehicle_positions": f"{srv.url}/vehicle-positions.pb",
                                        "trip_updates": f"{srv.url}/trip-updates.pb", "static": "minato-city-bus"}},
                          where="test", root=ROOT)
        result = rt.archive(ws, [spec], once=True)
    assert sum(r["changed"] for r in result.values()) == 2
    files = sorted((ws.raw / "minato-bus-rt" / "rt").glob("*/*/*.pb"))
    assert {f.name.split("-")[0] for f in files} == {"vehicle_positions", "trip_updates"}
    for f in files:
        ts = pb.FeedMessage.FromString(f.read_bytes()).header.timestamp
        assert start <= ts < start + 3600  # the simulated time, not the wall clock


def test_simulated_minutes_archived_through_ingest_reconcile(sim, ws):
    start = rt_sim.local_hours(sim, (7, 8))[0] + 20 * 60
    end = start + 10 * 60
    vp_entities = sum(len(sim.vehicle_positions(t).entity) for t in range(start, end + 1, 20))
    tu_entities = sum(len(sim.trip_updates(t).entity) for t in range(start, end + 1, 20))
    assert vp_entities > 0
    res = rt_sim.archive_simulated(ws, "minato-bus-rt", sim, start, end, static_feed_id="minato-city-bus")
    assert res["files"] == 2 * 31
    assert res["hours"] == [datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H")]
    parsed = res["parsed"]["parsed"]
    assert sum(p["quarantined"] for p in parsed) == 0
    assert sum(p["rows_in_snapshots"]["rt_vehicle_positions"] for p in parsed) == vp_entities
    assert sum(p["rows_in_snapshots"]["rt_trip_updates"] for p in parsed) == tu_entities
    assert sum(p["stored"]["rt_vehicle_positions"] for p in parsed) == vp_entities


def test_simulate_refuses_a_day_without_service():
    from transforms.errors import InputError

    with pytest.raises(InputError, match="no trip runs"):
        rt_sim.simulator(STATIC, "2030-01-01")


def test_trip_update_predictions_converge_on_the_ground_truth(sim):
    truth = {(r["trip_id"], r["stop_sequence"]): r["actual_arrival"] for r in sim.ground_truth()}
    last: dict = {}
    for now in morning(sim):
        for e in sim.trip_updates(now).entity:
            stus = list(e.trip_update.stop_time_update)
            assert [s.stop_sequence for s in stus] == sorted(s.stop_sequence for s in stus)
            for s in stus:
                assert not s.HasField("departure") or s.arrival.time <= s.departure.time
                key = (e.trip_update.trip.trip_id, s.stop_sequence)
                if now < truth[key]:
                    last[key] = s.arrival.time
    errors = sorted(abs(p - truth[k]) for k, p in last.items())
    assert len(errors) > 50
    assert errors[len(errors) // 2] <= 10 and errors[-1] <= 90  # the last prediction before the event: seconds off


def test_cli_simulate_reads_the_published_export_and_writes_snapshots_and_truth(ws, tmp_path, capsys):
    import csv
    import zipfile

    from noriba.cli import main

    export = ws.exports / "gtfs" / "minato-city-bus" / "minato-city-bus_v1.zip"
    export.parent.mkdir(parents=True)
    with zipfile.ZipFile(export, "w") as z:  # a published export is UTF-8 (the authored input is Shift_JIS)
        for f in sorted(STATIC.glob("*.txt")):
            z.writestr(f.name, f.read_bytes().decode("cp932").encode("utf-8"))
    out = tmp_path / "sim"
    rc = main(["--home", str(ws.home), "rt", "simulate", "--static", "minato-city-bus", "--date", DAY, "--hours", "7-8",
               "--out", str(out), "--seed", "7"])
    assert rc == 0, capsys.readouterr()
    assert len(list(out.glob("*.pb"))) == 2 * (3600 // 20 + 1)
    with open(out / "truth.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(rt_sim.simulator(STATIC, DAY, seed=7).ground_truth())
    assert main(["--home", str(ws.home), "rt", "simulate", "--static", "nowhere", "--date", DAY, "--out", str(out)]) != 0
    assert "neither a GTFS zip or folder" in " ".join(capsys.readouterr().err.split())


def test_demo_feed_archives_simulated_hours_of_the_published_static_feed(ws):
    import zipfile
    from datetime import date

    export = ws.exports / "gtfs" / "minato-city-bus" / "minato-city-bus_v1.zip"
    export.parent.mkdir(parents=True)
    with zipfile.ZipFile(export, "w") as z:
        for f in sorted(STATIC.glob("*.txt")):
            z.writestr(f.name, f.read_bytes())
    with deadline(120):
        res = rt_sim.demo_feed(ws, day=None, hours=(7, 8), seed=3)
    assert date.fromisoformat(res["service_date"]).weekday() < 5
    assert res["files"] == 2 * (3600 // 20 + 1) and len(res["hours"]) == 2  # 08:00:00 itself opens the next hour
    assert res["truth"] and 0 < res["on_time_share"] <= 1
    assert sum(p["rows_in_snapshots"]["rt_vehicle_positions"] for p in res["parsed"]["parsed"]) > 0


def test_a_static_feed_missing_a_column_gets_one_clear_message(tmp_path):
    from transforms.errors import InputError

    for f in STATIC.glob("*.txt"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    st = (tmp_path / "stop_times.txt").read_bytes().decode("cp932").splitlines()
    (tmp_path / "stop_times.txt").write_text("\n".join(line.rsplit(",", 6)[0] for line in st), encoding="utf-8")
    with pytest.raises(InputError, match="missing: stop_sequence"):
        rt_sim.simulator(tmp_path, DAY)
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        rt_sim.simulator(STATIC, "7 Dec")
