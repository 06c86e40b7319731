"""TIDES exports: the demo's simulated realtime morning as vehicle_locations, trips_performed and stop_visits Parquet,
checked against the vendored TIDES v1.0 schemas twice (warehouse/tides.check_table, and jsonschema row by row)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from noriba.cli import DEMO_RT
from warehouse.tides import TABLES, TIDES_COMMIT, check_table, export_tides, load_schema

#: what `noriba demo` simulates (its realtime feed, day and hours), so these tests run on the demo's own input
DEMO = {**DEMO_RT, "day": date.fromisoformat(DEMO_RT["day"])}


def demo_realtime_workspace(home):
    """Return a workspace with the demo city bus published and its simulated realtime morning (as `noriba demo`:
    2026-06-01, 07:00-09:00 JST) archived, parsed, published and built into the realtime marts."""
    from noriba import rt_sim
    from noriba.pipeline import run_feed
    from noriba.specs import load_specs
    from warehouse.rt_marts import build_feed_marts
    from warehouse.workspace import Workspace

    ws = Workspace(home).ensure()
    run_feed(next(s for s in load_specs() if s.id == DEMO["static_feed_id"]), ws, export=True)
    rt_sim.demo_feed(ws, static_feed_id=DEMO["static_feed_id"], feed_id=DEMO["feed_id"], day=DEMO["day"], hours=DEMO["hours"])
    build_feed_marts(ws, DEMO["feed_id"])
    return ws


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ws = demo_realtime_workspace(tmp_path_factory.mktemp("tides") / "home")
    return ws, export_tides(ws, DEMO["feed_id"])


def _sql(ws, query, params=()):
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def _read(ws, table, day="2026-06-01", feed=DEMO["feed_id"]):
    return pq.read_table(ws.exports / "tides" / feed / day / f"{table}.parquet")


def test_every_vehicle_position_becomes_one_vehicle_location(demo):
    ws, res = demo
    assert list(res["dates"]) == ["2026-06-01"]  # 07:00-09:00 JST is 22:00-00:00 UTC of May 31: one service date
    vl = _read(ws, "vehicle_locations")
    lake = _sql(ws, "SELECT count(*) FROM rt.vehicle_positions WHERE feed_id = ?", [DEMO["feed_id"]])[0][0]
    assert vl.num_rows == lake == res["dates"]["2026-06-01"]["rows"]["vehicle_locations"] > 100
    rows = vl.to_pylist()
    assert len({r["location_ping_id"] for r in rows}) == len(rows)
    assert {r["service_date"] for r in rows} == {date(2026, 6, 1)}
    # each row is the lake row it came from: same vehicle, time and place
    lake_rows = set(_sql(ws, "SELECT vehicle_id, coalesce(\"timestamp\", header_timestamp), latitude, longitude FROM rt.vehicle_positions "
                             "WHERE feed_id = ?", [DEMO["feed_id"]]))
    assert {(r["vehicle_id"], int(r["event_timestamp"].timestamp()), r["latitude"], r["longitude"]) for r in rows} == lake_rows
    stopped = [r for r in rows if r["current_status"] == "Stopped at"]
    assert stopped and all(r["trip_type"] == "In service" and r["schedule_relationship"] == "Scheduled" for r in rows)
    assert all(r["trip_id_scheduled"] == r["trip_id_performed"] and r["trip_stop_sequence"] >= 1 for r in rows)


def test_the_exports_conform_to_the_vendored_tides_schemas(demo):
    ws, res = demo
    folder = ws.exports / "tides" / DEMO["feed_id"] / "2026-06-01"
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert package["tides"] == {"version": "1.0", "commit": TIDES_COMMIT} and package["problems"] == {}
    assert [r["path"] for r in package["resources"]] == [f"{t}.parquet" for t in TABLES]
    for table in TABLES:
        schema = load_schema(table)
        path = folder / f"{table}.parquet"
        assert check_table(path, schema) == []
        arrow = pq.read_schema(path)
        assert arrow.names == [f["name"] for f in schema["fields"]]  # every TIDES field, in the schema's order
        expected = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
                    "datetime": pa.timestamp("us", tz="UTC")}
        assert [arrow.field(f["name"]).type for f in schema["fields"]] == [expected[f["type"]] for f in schema["fields"]]
        _jsonschema_check(pq.read_table(path).to_pylist(), schema)


def _jsonschema_check(rows: list[dict], schema: dict) -> None:
    """Validate every row with jsonschema against a JSON Schema written from the TIDES table schema (an independent
    check of check_table): types, required, enum, minimum, maximum; dates and datetimes as ISO 8601 strings."""
    import jsonschema

    types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "date": "string", "datetime": "string"}
    props, required = {}, []
    for f in schema["fields"]:
        cons = f.get("constraints") or {}
        p = {"type": [types[f["type"]], "null"]}
        if f["type"] == "date":
            p["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
        if f["type"] == "datetime":
            p["pattern"] = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$"
        for k in ("minimum", "maximum"):
            if k in cons:
                p[k] = cons[k]
        if "enum" in cons:
            p["enum"] = cons["enum"] + [None]
        if cons.get("required"):
            required.append(f["name"])
            p["type"] = types[f["type"]]
        props[f["name"]] = p
    validator = jsonschema.Draft202012Validator({"type": "object", "properties": props, "required": required,
                                                 "additionalProperties": False})
    for row in rows:
        doc = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, (schema["name"], errors[:5])
    if isinstance(schema.get("primaryKey"), list):
        keys = [tuple(r[k] for k in schema["primaryKey"]) for r in rows]
        assert len(set(keys)) == len(keys)


def test_trips_performed_are_the_marts_delivered_trips_with_their_observed_ends(demo):
    ws, _ = demo
    tp = _read(ws, "trips_performed").to_pylist()
    delivered = dict(_sql(ws, "SELECT route_id, trips_delivered FROM marts.rt_observed_trips WHERE feed_id = ?", [DEMO["feed_id"]]))
    by_route = {}
    for r in tp:
        by_route[r["route_id"]] = by_route.get(r["route_id"], 0) + (r["trip_id_scheduled"] is not None)
    assert by_route == delivered and sum(delivered.values()) == len(tp)
    assert {r["route_type"] for r in tp} == {"Bus"} and all(r["vehicle_id"] for r in tp)
    ev = {(t, s): (dep, arr) for t, s, dep, arr in _sql(
        ws, "SELECT trip_id, stop_sequence, observed_departure, observed_arrival FROM marts.rt_stop_events WHERE feed_id = ?", [DEMO["feed_id"]])}
    for r in tp:
        seqs = sorted(s for t, s in ev if t == r["trip_id_performed"])
        first, last = ev[(r["trip_id_performed"], seqs[0])][0], ev[(r["trip_id_performed"], seqs[-1])][1]
        got = [None if x is None else int(x.timestamp()) for x in (r["actual_trip_start"], r["actual_trip_end"])]
        assert got == [first, last], r["trip_id_performed"]
    # a trip the archive saw only leave (its 09:00 departure, the last minutes archived) has no actual end
    assert any(r["actual_trip_start"] is not None and r["actual_trip_end"] is None for r in tp)


def test_stop_visits_are_the_stop_events_of_performed_trips(demo):
    ws, _ = demo
    sv = _read(ws, "stop_visits").to_pylist()
    performed = {r["trip_id_performed"] for r in _read(ws, "trips_performed").to_pylist()}
    events = _sql(ws, "SELECT trip_id, stop_sequence, stop_id, observed_arrival FROM marts.rt_stop_events WHERE feed_id = ? "
                      "ORDER BY trip_id, stop_sequence", [DEMO["feed_id"]])
    events = [e for e in events if e[0] in performed]
    assert [(r["trip_id_performed"], r["scheduled_stop_sequence"], r["stop_id"]) for r in sv] == [e[:3] for e in events]
    assert [None if r["actual_arrival_time"] is None else int(r["actual_arrival_time"].timestamp()) for r in sv] == [e[3] for e in events]
    for trip in performed:
        seq = [r["trip_stop_sequence"] for r in sv if r["trip_id_performed"] == trip]
        assert seq == list(range(1, len(seq) + 1))
    assert {r["schedule_relationship"] for r in sv} <= {"Scheduled", "Missing"}
    assert all(r["schedule_relationship"] == ("Missing" if r["actual_arrival_time"] is None and r["actual_departure_time"] is None
                                              else "Scheduled") for r in sv)


def test_positions_without_trip_vehicle_id_or_valid_values_are_kept_and_conform(demo, tmp_path):
    """A hostile snapshot: no vehicle descriptor, latitude 95, NaN speed, bearing 400, no trip, no position timestamp."""
    from noriba import rt
    from warehouse.rt_marts import build_feed_marts

    ws, _ = demo
    t = int(datetime(2026, 6, 1, 0, 30, tzinfo=timezone.utc).timestamp())  # 09:30 JST
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = t
    a = m.entity.add(id="ghost").vehicle
    a.position.latitude, a.position.longitude, a.position.speed, a.position.bearing = 95.0, 141.4, math.nan, 400.0
    b = m.entity.add(id="b").vehicle
    b.vehicle.label = "港 12"
    b.trip.trip_id = "not-in-the-timetable"
    b.position.latitude, b.position.longitude = 43.3, 141.4
    b.timestamp = t - 5
    (tmp_path / "snap.pb").write_bytes(m.SerializeToString())
    rt.ingest(ws, "hostile-rt", [tmp_path / "snap.pb"], static=DEMO["static_feed_id"], tz="Asia/Tokyo")
    rt.parse_feed(ws, "hostile-rt")
    build_feed_marts(ws, "hostile-rt")
    res = export_tides(ws, "hostile-rt")
    assert res["dates"]["2026-06-01"]["rows"] == {"vehicle_locations": 2, "trips_performed": 1, "stop_visits": 0}
    assert all(p == [] for p in res["dates"]["2026-06-01"]["problems"].values())
    vl = {r["vehicle_id"]: r for r in _read(ws, "vehicle_locations", feed="hostile-rt").to_pylist()}
    ghost, bus = vl["entity:ghost"], vl["港 12"]
    assert ghost["latitude"] is None and ghost["speed"] is None and ghost["heading"] is None and ghost["longitude"] == pytest.approx(141.4)
    assert ghost["trip_id_performed"] is None and ghost["trip_type"] is None and ghost["service_date"] == date(2026, 6, 1)
    assert int(ghost["event_timestamp"].timestamp()) == t and int(bus["event_timestamp"].timestamp()) == t - 5
    tp = _read(ws, "trips_performed", feed="hostile-rt").to_pylist()
    assert tp == [{**tp[0], "trip_id_performed": "not-in-the-timetable", "trip_id_scheduled": None, "vehicle_id": "港 12",
                   "schedule_relationship": None}]
    for table in TABLES:
        _jsonschema_check(_read(ws, table, feed="hostile-rt").to_pylist(), load_schema(table))


def test_check_table_names_each_violation(tmp_path):
    schema = load_schema("trips_performed")
    bad = pa.table({"service_date": pa.array([date(2026, 6, 1), date(2026, 6, 1), None]),
                    "trip_id_performed": ["a", "a", "b"], "vehicle_id": ["v", "v", None], "route_type": ["Bus", "Autobus", None],
                    "direction_id": pa.array([0, 1, 2], pa.int64()), "schedule_trip_start": ["08:00", None, None],
                    "colour": ["red", "red", "red"]})
    pq.write_table(bad, tmp_path / "trips_performed.parquet")
    problems = "\n".join(check_table(tmp_path / "trips_performed.parquet", schema))
    for expected in ("column 'colour' is not a field", "field 'block_id' is missing", "service_date is required but null in 1 row(s)",
                     "vehicle_id is required but null", "route_type is not one of the allowed values in 1 row(s), e.g. 'Autobus'",
                     "direction_id is not one of the allowed values in 1 row(s), e.g. '2'", "schedule_trip_start is VARCHAR, not a TIDES datetime",
                     "the primary key (service_date, trip_id_performed) repeats for 1 key(s)"):
        assert expected in problems, (expected, problems)


def test_cli_writes_the_tides_folder_and_says_which_dates_it_has(demo, capsys):
    from noriba.cli import main

    ws, _ = demo
    assert main(["--home", str(ws.home), "rt", "export-tides", DEMO["feed_id"], "--date", "2026-06-01"]) == 0
    out = capsys.readouterr().err  # the CLI speaks on stderr
    assert "minato-bus-rt 2026-06-01: TIDES 1.0 vehicle_locations" in out and "trips_performed 8 row(s)" in out
    # the catalog is rebuilt and lists the day's tables (the demo's static feed is public)
    index = (ws.exports / "site" / "index.html").read_text(encoding="utf-8")
    assert "catalog: " in out and "../tides/minato-bus-rt/2026-06-01/trips_performed.parquet" in index
    assert main(["--home", str(ws.home), "rt", "export-tides", DEMO["feed_id"], "--date", "2026-06-02"]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert "no realtime data of minato-bus-rt on 2026-06-02; service dates it has: 2026-06-01" in text and "Traceback" not in text


CAPTURES = {  # real captures in ../shared/data/gtfs/rt: (files, static zip or None, time zone)
    "bullrunner": (("bullrunner-tampa", "bullrunner-vehicle-positions"), ("bullrunner-tampa", "bullrunner-gtfs.zip"), "America/New_York"),
    "kcm": (("kcm-septa", "king-county-metro-1.pbf"), ("kcm-septa", "kcm_gtfs.zip"), "America/Los_Angeles"),
    "nyct": (("nyct-subway-2019", "feed_1_weekday.protobuf"), None, "America/New_York"),
    "nyct-nqrw": (("nyct-subway-2019", "feed_16_weekend.protobuf"), None, "America/New_York"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_captures_export_one_vehicle_location_per_position_and_conform(name, tmp_path):
    """Tampa (positions without trips), King County 2021 against its 2016 timetable, the NYC subway without one."""
    from noriba import rt
    from noriba.cli import main
    from tests.conftest import shared
    from warehouse.rt_marts import build_feed_marts
    from warehouse.workspace import Workspace

    files, static, tz = CAPTURES[name]
    ws = Workspace(tmp_path / "home").ensure()
    if static:
        # published either way: King County's 2016 subset is blocked by its policy (foreign keys), so the command exits 1
        assert main(["--home", str(ws.home), "ingest", str(shared("gtfs", "rt", *static)), "--id", f"{name}-static", "--quiet"]) in (0, 1)
    rt.ingest(ws, f"{name}-rt", [shared("gtfs", "rt", *files)], static=f"{name}-static" if static else None, tz=tz)
    rt.parse_feed(ws, f"{name}-rt")
    build_feed_marts(ws, f"{name}-rt")
    res = export_tides(ws, f"{name}-rt")
    assert all(p == [] for d in res["dates"].values() for p in d["problems"].values()), res
    positions = _sql(ws, "SELECT count(*) FROM rt.vehicle_positions WHERE feed_id = ?", [f"{name}-rt"])[0][0]
    assert sum(d["rows"]["vehicle_locations"] for d in res["dates"].values()) == positions > 0
    trips = _sql(ws, "SELECT count(DISTINCT trip_id) FROM rt.vehicle_positions WHERE feed_id = ? AND trip_id IS NOT NULL", [f"{name}-rt"])[0][0]
    performed = [r for d in res["dates"] for r in _read(ws, "trips_performed", day=d, feed=f"{name}-rt").to_pylist()]
    assert len({r["trip_id_performed"] for r in performed}) == trips
    for d in res["dates"]:
        for table in TABLES:
            _jsonschema_check(_read(ws, table, day=d, feed=f"{name}-rt").to_pylist(), load_schema(table))


@pytest.mark.realdata
def test_a_feed_of_trip_updates_only_is_refused_with_what_to_add(tmp_path):
    """SEPTA's capture holds TripUpdates only: no vehicle position, so no TIDES table (each is built from them)."""
    from noriba import rt
    from tests.conftest import shared
    from transforms.errors import InputError
    from warehouse.rt_marts import build_feed_marts
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home").ensure()
    rt.ingest(ws, "septa-rt", [shared("gtfs", "rt", "kcm-septa", "septa.pbf")])
    rt.parse_feed(ws, "septa-rt")
    build_feed_marts(ws, "septa-rt")
    with pytest.raises(InputError, match="septa-rt has no vehicle positions .only trip updates or alerts.; .* add the feed's "
                                         "VehiclePositions URL to its spec"):
        export_tides(ws, "septa-rt")
    assert not (ws.exports / "tides" / "septa-rt").exists() or not any((ws.exports / "tides" / "septa-rt").iterdir())


def test_without_the_marts_the_export_says_to_build_them(tmp_path):
    from noriba import rt
    from transforms.errors import InputError
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home").ensure()
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version, m.header.timestamp = "2.0", 1780300000
    v = m.entity.add(id="a").vehicle
    v.vehicle.id, v.position.latitude, v.position.longitude = "bus-1", 35.0, 139.0
    (tmp_path / "a.pb").write_bytes(m.SerializeToString())
    rt.ingest(ws, "x-rt", [tmp_path / "a.pb"])
    rt.parse_feed(ws, "x-rt")
    with pytest.raises(InputError, match=r"the realtime marts of x-rt are not built; build them first: noriba rt marts x-rt"):
        export_tides(ws, "x-rt")
