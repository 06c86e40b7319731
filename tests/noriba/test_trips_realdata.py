"""Every trips dataset under ../shared/data/trips loads through its committed spec; counts match PROVENANCE exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.conftest import shared

SOURCES = ("nyc-yellow-samples", "nyc-green-2020-04", "nyc-azure-2016", "chicago-taxi-2013-2016")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    shared("trips")
    from noriba.trips_pipeline import run_all
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("trips") / "home").ensure()
    results = run_all(ws, ids=["nyc-taxi-zones", *SOURCES])
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    yield ws, con, {r["feed_id"]: r for r in results}
    con.close()


def _counts(con, source_id: str, prefix: str = "") -> dict[str, int]:
    return dict(con.execute("SELECT code, sum(rows)::BIGINT FROM quality.trip_rule_counts WHERE source_id = ? AND file LIKE ? || '%' "
                            "GROUP BY code", [source_id, prefix]).fetchall())


def _records_in(path: Path) -> int:
    """Count the data records of a file independently of the pipeline's readers."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return sum(1 for r in csv.reader(fh) if r) - 1  # a blank line is not a record
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if path.suffix == ".avro":
        import fastavro

        with open(path, "rb") as fh:
            return sum(1 for _ in fastavro.reader(fh))
    raise AssertionError(path)


def test_rows_in_equal_accepted_plus_quarantined_for_every_file(warehouse):
    ws, con, _ = warehouse
    from noriba.specs import load_spec

    for sid in SOURCES:
        spec = load_spec(Path(__file__).resolve().parents[2] / "specs" / "trips" / f"{sid}.yml")
        files = con.execute("SELECT file, rows_in, accepted, quarantined FROM trips.source_files WHERE source_id = ?", [sid]).fetchall()
        assert files, sid
        fct = dict(con.execute("SELECT source_file, count(*) FROM trips.fct_trips WHERE source_id = ? GROUP BY 1", [sid]).fetchall())
        quar = dict(con.execute("SELECT file, count(*) FROM quality.quarantine WHERE feed_id = ? GROUP BY 1", [sid]).fetchall())
        for file, rows_in, accepted, quarantined in files:
            assert rows_in == _records_in(spec.source.path / file), (sid, file)
            assert rows_in == accepted + quarantined, (sid, file)
            assert fct.get(file, 0) == accepted and quar.get(file, 0) == quarantined, (sid, file)


def test_file_counts_per_dataset(warehouse):
    _, con, _ = warehouse
    n = dict(con.execute("SELECT source_id, count(*) FROM trips.source_files GROUP BY 1").fetchall())
    assert n == {"nyc-yellow-samples": 43, "nyc-green-2020-04": 3, "nyc-azure-2016": 2, "chicago-taxi-2013-2016": 7}
    rows = dict(con.execute("SELECT source_id, sum(rows_in)::BIGINT FROM trips.source_files WHERE file LIKE 'monthly/%' OR source_id <> 'nyc-yellow-samples' GROUP BY 1").fetchall())
    assert rows["nyc-yellow-samples"] == 360_000
    assert rows["nyc-azure-2016"] == 10_000


def test_yellow_monthly_bad_rows_match_provenance(warehouse):
    """PROVENANCE: over the 360k monthly rows, 136 dropoff<pickup, 832 negative total_amount, 4,191 zero trip_distance,
    15,355 passenger_count 0/null, 4,348 pickup zone ids 264/265, 10 pickups outside the file's month, 1 trip > 24 h."""
    _, con, _ = warehouse
    c = _counts(con, "nyc-yellow-samples", "monthly/")
    assert c["dropoff_before_pickup"] == 136
    assert c["negative_amount"] == 832
    assert c["zero_distance"] == 4_191
    assert c["missing_passengers"] == 15_355
    assert c["unknown_pickup_zone"] == 4_348
    assert c["pickup_outside_period"] == 10
    assert c["duration_too_long"] == 1
    q = con.execute("SELECT count(*) FROM quality.quarantine WHERE feed_id = 'nyc-yellow-samples' AND file LIKE 'monthly/%'").fetchall()[0][0]
    assert q == 136 + 10 + 1 - _overlap(con, "monthly/")


def _overlap(con, prefix: str) -> int:
    """Rows failing more than one hard rule are quarantined once."""
    return con.execute("SELECT coalesce(sum(len(string_split(reason, ' | ')) - 1), 0)::BIGINT FROM quality.quarantine "
                       "WHERE feed_id = 'nyc-yellow-samples' AND file LIKE ? || '%'", [prefix]).fetchall()[0][0]


def test_green_full_month_bad_rows_match_provenance(warehouse):
    """PROVENANCE: 11,110 rows with null VendorID (dispatch-app trips), 122 negative total_amount, 1,750 zero-distance,
    6 out-of-month pickups."""
    _, con, _ = warehouse
    c = _counts(con, "nyc-green-2020-04", "green_tripdata_2020-04_with_index")
    assert (c["missing_vendor"], c["negative_amount"], c["zero_distance"], c["pickup_outside_period"]) == (11_110, 122, 1_750, 6)
    rows = con.execute("SELECT rows_in FROM trips.source_files WHERE file = 'green_tripdata_2020-04_with_index.csv'").fetchall()
    assert rows == [(35_612,)]


def test_azure_bad_rows_match_provenance(warehouse):
    """PROVENANCE: 5 green rows with 0.0 lat/lon; 6 negative totalAmount (green)."""
    _, con, _ = warehouse
    c = _counts(con, "nyc-azure-2016", "green")
    assert c["zero_coordinates"] == 5 and c["negative_amount"] == 6


def test_chicago_bad_rows_match_provenance(warehouse):
    """PROVENANCE (simple/data.csv, 15,002 rows): 483 without dropoff lat/lon, 4,091 zero trip_miles, 6 null trip_seconds."""
    _, con, _ = warehouse
    c = _counts(con, "chicago-taxi-2013-2016", "simple/")
    assert (c["missing_dropoff_point"], c["zero_distance"], c["missing_duration"]) == (483, 4_091, 6)


def test_chicago_csv_parquet_and_avro_copies_agree(warehouse):
    _, con, _ = warehouse
    got = {}
    for f in ("external/csv/data.csv", "external/parquet/data.parquet", "external/avro/data.avro"):
        got[f] = con.execute("SELECT count(*), sum(duration_s)::BIGINT, round(sum(distance_km), 1), min(pickup_time_utc), "
                             "count(pickup_zone) FROM trips.fct_trips WHERE source_file = ?", [f]).fetchall()[0]
    assert len(set(got.values())) == 1, got


def test_chicago_local_hour_agrees_with_the_trip_start_hour_column(warehouse):
    ws, con, _ = warehouse
    path = shared("trips", "chicago-taxi-2013-2016", "simple", "data.csv")
    with open(path, newline="") as fh:
        hours = {i: int(r["trip_start_hour"]) for i, r in enumerate(csv.DictReader(fh), start=1)}
    got = dict(con.execute("SELECT source_row, hour(pickup_time_local) FROM trips.fct_trips WHERE source_file = 'simple/data.csv'").fetchall())
    assert len(got) == 15_002 and all(got[i] == hours[i] for i in got)


def test_quarantined_raw_row_is_the_file_record_at_that_row(warehouse):
    _, con, _ = warehouse
    rows = con.execute("SELECT file, line, raw FROM quality.quarantine WHERE feed_id = 'nyc-yellow-samples' ORDER BY file, line").fetchall()
    assert rows
    by_file: dict[str, list] = {}
    for file, line, raw in rows:
        by_file.setdefault(file, []).append((line, json.loads(raw)))
    for file, items in by_file.items():
        with open(shared("trips", "nyc-yellow-samples", file), newline="") as fh:
            records = list(csv.DictReader(fh))
        for line, raw in items:
            rec = {k: (v if v != "" else None) for k, v in records[line - 1].items()}
            assert raw == rec, (file, line)


def test_azure_points_get_hand_verified_zones(warehouse):
    """Hand-verified sample (how: each point's coordinates were looked up against the known location of a landmark and
    the TLC zone lookup name; then, independently of the pipeline, the point is projected into the shapefile's own
    EPSG:2263 feet and tested against the raw polygon of that LocationID read with pyshp):

    - yellow row 11, (40.64527, -73.77670): JFK terminals -> 132 JFK Airport
    - green row 1488, (40.77406, -73.87196): LaGuardia terminals -> 138 LaGuardia Airport
    - yellow row 5, (40.76026, -73.98528): Broadway at W 47th St -> 230 Times Sq/Theatre District
    - green row 59, (40.79808, -73.95210): inside the park near the Harlem Meer -> 43 Central Park
    - green row 660, (40.57755, -74.16763): Staten Island Mall area -> 118 Heartland Village/Todt Hill
    - green row 816, (40.93013, -73.89346): Yonkers, north of the city line -> no zone
    """
    _, con, _ = warehouse
    sample = {("yellowTaxiData.csv", 11): "132", ("greenTaxiData.csv", 1488): "138", ("yellowTaxiData.csv", 5): "230",
              ("greenTaxiData.csv", 59): "43", ("greenTaxiData.csv", 660): "118", ("greenTaxiData.csv", 816): None}
    got = {}
    for (f, r), _zone in sample.items():
        got[(f, r)] = con.execute("SELECT pickup_zone, pickup_lat, pickup_lon FROM trips.fct_trips WHERE source_id = 'nyc-azure-2016' "
                                  "AND source_file = ? AND source_row = ?", [f, r]).fetchall()[0]
    assert {k: v[0] for k, v in got.items()} == sample
    names = dict(con.execute("SELECT zone_id, zone_name FROM trips.zones WHERE zone_layer = 'nyc-taxi-zones'").fetchall())
    assert names["132"] == "JFK Airport" and names["230"] == "Times Sq/Theatre District"
    # independent check in the shapefile's own CRS
    import shapefile
    from pyproj import Transformer
    from shapely.geometry import Point, shape

    to_ft = Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)
    with shapefile.Reader(str(shared("trips", "nyc-tlc-taxi-zones", "taxi_zones", "taxi_zones.shp"))) as r:
        polys = [(str(rec["LocationID"]), shape(shp.__geo_interface__)) for shp, rec in zip(r.shapes(), r.records())]
    for key, (zone, lat, lon) in got.items():
        x, y = to_ft.transform(lon, lat)
        inside = {zid for zid, g in polys if g.contains(Point(x, y))}
        assert inside == ({zone} if zone else set()), key


def test_azure_zone_assignment_covers_every_valid_point(warehouse):
    _, con, _ = warehouse
    n, zoned, outside = con.execute(
        "SELECT count(*) FILTER (WHERE pickup_lat IS NOT NULL), count(pickup_zone), count(*) FILTER (WHERE list_contains(flags, 'point_outside_zones')) "
        "FROM trips.fct_trips WHERE source_id = 'nyc-azure-2016'").fetchall()[0]
    assert zoned + outside == n and outside < n * 0.01


def test_zone_layer_reports_duplicate_ids_and_zones_without_polygons(warehouse):
    _, con, _ = warehouse
    notes = con.execute("SELECT code, value FROM quality.notices WHERE feed_id = 'nyc-taxi-zones' ORDER BY 1, 2").fetchall()
    assert ("duplicate_zone_id", "103") in notes and ("duplicate_zone_id", "56") in notes
    assert {v for c, v in notes if c == "zone_without_geometry"} == {"57", "104", "105", "264", "265"}


def test_trips_runs_read_the_zone_layer_the_zones_run_stored(warehouse, monkeypatch):
    ws, con, _ = warehouse
    import transforms.trips.zones as zones
    from noriba.trips_pipeline import ZONE_LAYER_STORE, zone_layer
    from noriba.specs import load_trip_specs

    stored = list((ws.lake / ZONE_LAYER_STORE / "layer_id=nyc-taxi-zones").glob("*.parquet"))
    assert len(stored) == 1

    def no_shapefile(*a, **k):
        raise AssertionError("the shapefile was read again")

    monkeypatch.setattr(zones, "load_layer", no_shapefile)
    layer = zone_layer({s.id: s for s in load_trip_specs()}["nyc-taxi-zones"], ws=ws)
    published = dict(con.execute("SELECT zone_id, polygons FROM trips.zones WHERE zone_layer = 'nyc-taxi-zones'").fetchall())
    assert {r["zone_id"]: r["polygons"] for r in layer.rows()} == published
    assert {"57", "104", "105", "264", "265"} <= layer.known_ids


def test_marts_and_exports_are_published(warehouse):
    ws, con, _ = warehouse
    total = con.execute("SELECT count(*) FROM trips.fct_trips WHERE source_id = 'nyc-yellow-samples'").fetchall()[0][0]
    assert con.execute("SELECT sum(trips) FROM marts.trips_by_zone_hour WHERE source_id = 'nyc-yellow-samples'").fetchall()[0][0] == total
    assert con.execute("SELECT sum(trips) FROM marts.trips_od_matrix WHERE source_id = 'nyc-yellow-samples'").fetchall()[0][0] == total
    exported = ws.exports / "trips" / "nyc-yellow-samples" / "trips_by_zone_hour.csv"
    with open(exported, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and min(int(r["trips"]) for r in rows) >= 10
    assert not {"pickup_lat", "pickup_lon", "pickup_time_utc", "pickup_time_local"} & set(rows[0])


def test_rerun_of_unchanged_sources_does_nothing(warehouse):
    ws, _, _ = warehouse
    from noriba.trips_pipeline import run_all

    out = run_all(ws, ids=["nyc-azure-2016"])
    assert out[0]["status"] == "unchanged"


def test_statistics_are_plausible(warehouse):
    _, con, _ = warehouse
    km = np.array([r[0] for r in con.execute("SELECT distance_km FROM trips.fct_trips WHERE source_id = 'nyc-yellow-samples' "
                                             "AND distance_km > 0").fetchall()])
    assert 2.0 < np.median(km) < 4.0  # a typical Manhattan yellow trip is 1-2 miles


def test_accepted_yellow_trips_meet_the_generated_gx_contract(warehouse):
    ws, _, _ = warehouse
    from noriba.trips_pipeline import check_contracts

    res = check_contracts(ws, "nyc-yellow-samples", sample=50_000)
    assert res.success and res.rows_checked == 50_000
    soft = {r["expectation"] + ":" + r["column"]: r["unexpected_count"] for r in res.results if r["severity"] == "warning"}
    assert soft["expect_column_values_to_be_between:passengers"] > 0  # zero-passenger trips are kept, flagged
