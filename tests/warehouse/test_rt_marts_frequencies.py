"""Realtime marts on frequency-based trips (the real Bull Runner timetable: frequencies.txt, exact_times 0 and 1), with
predictions carried forward and a vehicle position without a trip attributed through its vehicle's TripUpdate."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from noriba import rt
from noriba.cli import main
from tests.conftest import shared
from warehouse.rt_marts import build_feed_marts

DAY = "2017-09-13"  # a Wednesday (service Mo: Monday to Thursday), the day of the Tampa capture
BASE = int(datetime.fromisoformat(DAY).replace(tzinfo=ZoneInfo("America/New_York")).timestamp())
RUN, RUN2 = 8 * 3600, 8 * 3600 + 600  # runs of trip 1 (every 600 s from 07:00): 08:00:00 and 08:10:00
DELAY = 60


def _template(zip_path) -> list[tuple[int, str, int | None, float, float]]:
    """Return trip 1's stops in order: (stop_sequence, stop_id, seconds after its first time or None, lat, lon)."""
    with zipfile.ZipFile(zip_path) as z:
        def rows(name):
            return list(csv.DictReader(io.TextIOWrapper(z.open(name), encoding="utf-8-sig")))
        stops = {r["stop_id"]: (float(r["stop_lat"]), float(r["stop_lon"])) for r in rows("stops.txt")}
        st = sorted((r for r in rows("stop_times.txt") if r["trip_id"] == "1"), key=lambda r: int(r["stop_sequence"]))

    def secs(t):
        h, m, s = map(int, t.split(":"))
        return h * 3600 + m * 60 + s

    t0 = secs(st[0]["arrival_time"])
    return [(int(r["stop_sequence"]), r["stop_id"], secs(r["arrival_time"]) - t0 if r["arrival_time"] else None, *stops[r["stop_id"]])
            for r in st]


def _message(t: int) -> pb.FeedMessage:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = t
    return m


def _write_rt(folder, template):
    """The 08:00 run of trip 1: STOPPED_AT each of its first five timed stops DELAY s late (trip_id and start_time given), and two
    trip updates: before the start (stops 3 and 4 +50 s), then stop 4 alone (+70 s; stop 3 is no longer listed).
    The 08:10 run: a vehicle 'bus-2' whose positions have no trip, and a trip update naming the run and that vehicle."""
    folder.mkdir()
    timed = [(q, sid, off, lat, lon) for q, sid, off, lat, lon in template if off is not None][:5]  # trip 1 is a loop: not its end
    for q, sid, off, lat, lon in timed:
        t = BASE + RUN + off + DELAY
        m = _message(t)
        v = m.entity.add(id="v1").vehicle
        v.trip.trip_id, v.trip.start_time, v.trip.start_date = "1", "08:00:00", DAY.replace("-", "")
        v.vehicle.id = "bus-1"
        v.position.latitude, v.position.longitude = lat, lon
        v.current_status, v.stop_id, v.timestamp = pb.VehiclePosition.STOPPED_AT, sid, t
        t2 = BASE + RUN2 + off + DELAY
        v2 = m.entity.add(id="v2").vehicle  # no trip descriptor: only the vehicle
        v2.vehicle.id = "bus-2"
        v2.position.latitude, v2.position.longitude = lat, lon
        v2.current_status, v2.stop_id, v2.timestamp = pb.VehiclePosition.STOPPED_AT, sid, t2
        m.header.timestamp = max(t, t2)
        (folder / f"vp-{t}.pb").write_bytes(m.SerializeToString())
    seq = {q: i for i, (q, *_) in enumerate(template)}
    for t, preds in ((BASE + RUN - 120, {3: 50, 4: 50}), (BASE + RUN + 30, {4: 70})):
        m = _message(t)
        tu = m.entity.add(id="tu1").trip_update
        tu.trip.trip_id, tu.trip.start_time, tu.trip.start_date = "1", "08:00:00", DAY.replace("-", "")
        tu.trip.schedule_relationship = pb.TripDescriptor.UNSCHEDULED
        tu.vehicle.id = "bus-1"
        for q in sorted(preds):
            u = tu.stop_time_update.add(stop_sequence=template[seq[q]][0])
            u.arrival.delay = preds[q]
        tu2 = m.entity.add(id="tu2").trip_update
        tu2.trip.trip_id, tu2.trip.start_time, tu2.trip.start_date = "1", "08:10:00", DAY.replace("-", "")
        tu2.vehicle.id = "bus-2"
        tu2.stop_time_update.add(stop_sequence=template[-1][0]).arrival.delay = 0
        (folder / f"tu-{t}.pb").write_bytes(m.SerializeToString())


def _rows(ws, sql):
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("zip_name", ["bullrunner-gtfs.zip", "bullrunner-gtfs-timepoints-only-legacy-exact-times-1.zip"])
def test_frequency_based_runs_are_scheduled_observed_and_predicted(tmp_path, zip_name):
    from warehouse.workspace import Workspace

    zip_path = shared("gtfs", "rt", "bullrunner-tampa") / zip_name
    template = _template(zip_path)
    ws = Workspace(tmp_path / "home").ensure()
    assert main(["--home", str(ws.home), "ingest", str(zip_path), "--id", "br", "--quiet"]) == 0
    _write_rt(tmp_path / "caps", template)
    rt.ingest(ws, "br-rt", [tmp_path / "caps"], static="br", tz="America/New_York")
    rt.parse_feed(ws, "br-rt")
    build_feed_marts(ws, "br-rt")
    rows = _rows(ws, "SELECT * FROM marts.rt_stop_events WHERE trip_id = '1' ORDER BY trip_start_time, stop_sequence")
    runs = {r["trip_start_time"] for r in rows}
    assert {"08:00:00", "08:10:00"} <= runs and None not in runs  # the template is expanded into runs, each keyed by its start
    by = {(r["trip_start_time"], r["stop_sequence"]): r for r in rows}
    timed = [(q, off) for q, _, off, *_ in template if off is not None]
    for q, off in timed:
        if ("08:00:00", q) in by:
            assert by[("08:00:00", q)]["scheduled_arrival"] == BASE + RUN + off
            assert by[("08:10:00", q)]["scheduled_arrival"] == BASE + RUN2 + off
    seen = {q for q, _ in timed[1:5]}  # the stops the vehicle was STOPPED_AT (after the origin, whose arrival is its departure)
    observed = {r["stop_sequence"]: r for r in rows if r["trip_start_time"] == "08:00:00" and r["stop_sequence"] in seen}
    assert set(observed) == seen and all(r["observed_arrival_delay_s"] == DELAY for r in observed.values()), [
        (r["stop_sequence"], r["observed_method"], r["observed_arrival_delay_s"]) for r in observed.values()]
    if zip_name == "bullrunner-gtfs.zip":  # every stop has a time: predictions at stops 3 and 4
        r3, r4 = by[("08:00:00", template[2][0])], by[("08:00:00", template[3][0])]
        assert r3["predicted_arrival"] - r3["scheduled_arrival"] == 50  # its last prediction came in the earlier snapshot
        assert r4["predicted_arrival"] - r4["scheduled_arrival"] == 70
        assert r3["predicted_at"] == BASE + RUN - 120
        # bus-2's positions name no trip: its TripUpdate puts them on the 08:10 run, observed DELAY s late too
        late = {r["stop_sequence"]: r["observed_arrival_delay_s"] for r in rows if r["trip_start_time"] == "08:10:00" and r["stop_sequence"] in seen}
        assert set(late) == seen and set(late.values()) == {DELAY}
    trips = _rows(ws, "SELECT * FROM marts.rt_observed_trips WHERE route_id = 'A'")
    assert trips and trips[0]["trips_unscheduled"] == 0 and trips[0]["trips_scheduled"] >= 2
    q = _rows(ws, "SELECT sum(vp_rows) AS vp, sum(vp_no_trip_rows) AS no_trip, sum(vp_trip_inferred_rows) AS inferred FROM marts.rt_feed_quality")
    assert q == [{"vp": 10, "no_trip": 5, "inferred": 5}]


def test_tampa_positions_without_trip_are_counted_and_not_attributed(tmp_path):
    from warehouse.workspace import Workspace

    folder = shared("gtfs", "rt", "bullrunner-tampa")
    ws = Workspace(tmp_path / "home").ensure()
    assert main(["--home", str(ws.home), "ingest", str(folder / "bullrunner-gtfs.zip"), "--id", "br", "--quiet"]) == 0
    rt.ingest(ws, "br-rt", [folder / "bullrunner-vehicle-positions"], static="br", tz="America/New_York")
    rt.parse_feed(ws, "br-rt")
    build_feed_marts(ws, "br-rt")
    q = _rows(ws, "SELECT vp_rows, vp_trip_share, vp_no_trip_rows, vp_trip_inferred_rows FROM marts.rt_feed_quality")
    assert q == [{"vp_rows": 10, "vp_trip_share": 0.0, "vp_no_trip_rows": 10, "vp_trip_inferred_rows": 0}]  # no trip updates to infer from


def test_frequencies_of_one_second_headways_are_refused_with_the_row_named_before_any_run_is_made(tmp_path, capsys):
    """The Bull Runner timetable with every headway_secs set to 1 (up to 61,200 departures a row; ~14M scheduled stop times
    a service day): the marts are not built, and one message names the row and what to correct, without expanding
    a run; the CLI says it in one line."""
    import time

    from transforms.errors import InputError
    from warehouse.workspace import Workspace

    src = shared("gtfs", "rt", "bullrunner-tampa") / "bullrunner-gtfs.zip"
    hostile = tmp_path / "one-second.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "frequencies.txt":
                rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
                k = [c.strip() for c in rows[0]].index("headway_secs")
                data = "\n".join(",".join(r[:k] + ["1"] + r[k + 1:]) if i else ",".join(r) for i, r in enumerate(rows) if r).encode()
            zout.writestr(info.filename, data)
    ws = Workspace(tmp_path / "home").ensure()
    assert main(["--home", str(ws.home), "ingest", str(hostile), "--id", "br", "--quiet"]) == 0
    _write_rt(tmp_path / "caps", _template(src))
    rt.ingest(ws, "br-rt", [tmp_path / "caps"], static="br", tz="America/New_York")
    rt.parse_feed(ws, "br-rt")
    t0 = time.perf_counter()
    with pytest.raises(InputError) as raised:
        build_feed_marts(ws, "br-rt")
    assert time.perf_counter() - t0 < 30  # counted, not made (the runs with their stop times would be ~42M rows)
    said = str(raised.value)
    assert "frequencies.txt of static feed br" in said and "stop times a service day, more than 5,000,000" in said
    import re

    assert re.search(r"; line \d+ alone repeats trip \S+ every 1 s from 07:00:00 to \d\d:\d\d:00 \([\d,]+\)\. Check headway_secs", said)
    assert "frequencies.txt の headway_secs と時刻を確認し" in raised.value.ja
    capsys.readouterr()
    assert main(["--home", str(ws.home), "rt", "marts", "br-rt"]) != 0
    out = capsys.readouterr()
    lines = [x for x in (out.out + out.err).splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: br-rt: realtime marts of br-rt:") and "Traceback" not in out.err, lines
