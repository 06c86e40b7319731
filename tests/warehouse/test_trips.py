"""Publishing trips: one transaction per source, marts, transit gaps against a GTFS feed, k-suppressed exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import MINI_FEED, ROOT, make_spec, write_feed

ZONES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"id": "A", "name": "駅前"},
     "geometry": {"type": "Polygon", "coordinates": [[[141.39, 43.29], [141.405, 43.29], [141.405, 43.305], [141.39, 43.305], [141.39, 43.29]]]}},
    {"type": "Feature", "properties": {"id": "B", "name": "山手"},
     "geometry": {"type": "Polygon", "coordinates": [[[141.405, 43.29], [141.45, 43.29], [141.45, 43.33], [141.405, 43.33], [141.405, 43.29]]]}},
]}
HEADER = "pickup,dropoff,plat,plon,dlat,dlon,pax\n"


def _specs(tmp_path: Path, trips: str, *, k: int = 10, gap: dict | None = None, privacy: dict | None = None) -> dict:
    from noriba.specs import parse_spec

    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "trips_2026-04.csv").write_text(HEADER + trips, encoding="utf-8")
    (tmp_path / "zones.geojson").write_text(json.dumps(ZONES, ensure_ascii=False), encoding="utf-8")
    zones = parse_spec({"id": "z", "kind": "zones", "source": {"path": str(tmp_path / "zones.geojson")},
                        "zones": {"id_field": "id", "name_field": "name"}}, where="z.yml", root=ROOT)
    section = {"files": ["*.csv"], "currency": "JPY", "time": {"format": "%Y-%m-%d %H:%M", "zone": "local"},
               "period": {"from_name": r"_(\d{4}-\d{2})\."}, "zones": {"layer": "z"}, "privacy": {"k": k, **(privacy or {})},
               "columns": {"pickup_time": "pickup", "dropoff_time": "dropoff", "pickup_lat": "plat", "pickup_lon": "plon",
                           "dropoff_lat": "dlat", "dropoff_lon": "dlon", "passengers": "pax"}}
    if gap:
        section["transit_gap"] = gap
    trips_spec = parse_spec({"id": "t", "kind": "trips", "source": {"path": str(src)}, "timezone": "Asia/Tokyo",
                             "municipality": {"name": "みなと市"}, "trips": section}, where="t.yml", root=ROOT)
    return {"z": zones, "t": trips_spec}


def _trip(hour: int, lat: float, lon: float, minute: int = 0, day: int = 6) -> str:
    return f"2026-04-{day:02d} {hour:02d}:{minute:02d},2026-04-{day:02d} {hour:02d}:{minute + 10:02d},{lat},{lon},{lat},{lon},1\n"


def _run(ws, specs):
    from noriba.trips_pipeline import run_trips

    return run_trips(specs["t"], ws, specs=specs)


def _export(ws, name: str) -> list[dict]:
    with open(ws.exports / "trips" / "t" / f"{name}.csv", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cells_under_k_are_suppressed_and_k_is_configurable(ws, tmp_path):
    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(10)) + "".join(_trip(8, 43.31, 141.41, m) for m in range(9))
    _run(ws, _specs(tmp_path, trips))
    rows = _export(ws, "trips_by_zone_hour")
    # B had 9 trips: not published; and A's 10 neither, or B would be the layer's total (19, in the report) minus A
    assert rows == []
    about = json.loads((ws.exports / "trips" / "t" / "about.json").read_text(encoding="utf-8"))
    assert about["k"] == 10 and about["suppressed_cells"]["trips_by_zone_hour"] == 2
    assert about["of_which_to_protect_others"]["trips_by_zone_hour"] == 1
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.sql("SELECT sum(trips) FROM marts.trips_by_zone_hour WHERE source_id = 't'").fetchall()[0][0] == 19  # inside: all
    con.close()
    _run(ws, _specs(tmp_path / "k5", trips, k=5))
    assert sorted(r["zone_id"] for r in _export(ws, "trips_by_zone_hour")) == ["A", "B"]


def test_exports_never_hold_points_or_exact_times(ws, tmp_path):
    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(12))
    out = _run(ws, _specs(tmp_path, trips))
    personal = {"pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon", "pickup_time_utc", "pickup_time_local",
                "dropoff_time_utc", "dropoff_time_local", "source_row", "trip_ref"}
    for name, path in out["exports"].items():
        if path.endswith(".csv"):
            with open(path, encoding="utf-8-sig") as fh:
                header = set(next(csv.reader(fh)))
            assert not header & personal, name
            text = Path(path).read_text(encoding="utf-8-sig")
            assert "43.3" not in text and "08:0" not in text


def test_transit_gap_trips_far_from_stops_or_outside_service_hours(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("minato-bus", write_feed(tmp_path / "gtfs", MINI_FEED)), ws, export=False)  # stops S1, S2; 08:00-24:10
    near = _trip(9, 43.3001, 141.4001)           # ~15 m from S1, inside service hours
    far = _trip(9, 43.2950, 141.3950)            # ~700 m from S1
    night = _trip(3, 43.3001, 141.4001)          # near a stop but at 03:00, after the last bus (24:10)
    after_midnight = _trip(0, 43.3001, 141.4001, 5)  # 00:05 is before 24:10 of the previous service day: covered
    _run(ws, _specs(tmp_path, near + far + night + after_midnight, gap={"gtfs_feed": "minato-bus", "max_distance_m": 300}))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    got = con.sql("SELECT source_row, far_from_stop, outside_service_hours, round(pickup_stop_distance_m) FROM marts.transit_gap_trips "
                  "ORDER BY source_row").fetchall()
    assert [(r[0], r[1], r[2]) for r in got] == [(2, True, False), (3, False, True)]
    assert 600 < got[0][3] < 800
    (muni, trips, gaps), = con.sql("SELECT municipality, trips, gap_trips FROM marts.transit_gap_by_municipality").fetchall()
    assert (muni, trips, gaps) == ("みなと市", 4, 2)
    con.close()


def test_republishing_replaces_the_source_rows(ws, tmp_path):
    from warehouse.trips import publish_trips

    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(3)) + "2026-04-06 08:00,2026-04-06 07:00,43.3,141.4,43.3,141.4,1\n"
    _run(ws, _specs(tmp_path, trips))
    publish_trips(ws, "t")
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.sql("SELECT count(*) FROM trips.fct_trips WHERE source_id = 't'").fetchall()[0][0] == 3
    assert con.sql("SELECT code, line FROM quality.quarantine WHERE feed_id = 't'").fetchall() == [("dropoff_before_pickup", 4)]
    assert con.sql("SELECT kind, rows_in, rows_accepted, rows_quarantined FROM meta.feed_versions WHERE feed_id = 't'").fetchall() == [
        ("trips", 4, 3, 1)]
    con.close()


@pytest.mark.parametrize("k,expected", [(2, 0), (3, 1), (4, 2)])
def test_suppress_drops_cells_below_k(k, expected):
    from warehouse.trips import suppress

    kept, n = suppress([{"trips": 2}, {"trips": 3}], k=k)
    assert n == expected and all(r["trips"] >= k for r in kept)


def test_trip_rows_leave_only_when_the_spec_allows_and_only_what_it_allows(ws, tmp_path):
    import pyarrow.parquet as pq

    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(3))
    out = _run(ws, _specs(tmp_path / "a", trips))
    assert "trips" not in out["exports"]
    out = _run(ws, _specs(tmp_path / "b", trips, privacy={"allow_points": True}))
    cols = set(pq.read_schema(out["exports"]["trips"]).names)
    assert {"pickup_lat", "pickup_hour_local"} <= cols and not {"pickup_time_local", "source_row", "trip_ref"} & cols


def test_fct_trips_survives_moving_the_workspace_and_deleting_the_lake(ws, tmp_path, monkeypatch):
    import shutil

    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(5))
    _run(ws, _specs(tmp_path, trips))
    moved = tmp_path / "elsewhere" / "noriba-data"
    shutil.copytree(ws.home, moved, symlinks=True)
    shutil.rmtree(ws.home)  # the original lake is gone: the warehouse must not point into it
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(str(moved / ws.warehouse.name), read_only=True)
    assert con.sql("SELECT count(*), count(DISTINCT pickup_zone) FROM trips.fct_trips WHERE source_id = 't'").fetchall() == [(5, 1)]
    assert con.sql("SELECT table_type FROM information_schema.tables WHERE table_schema = 'trips' "
                   "AND table_name = 'fct_trips'").fetchall() == [("BASE TABLE",)]
    con.close()


def test_an_older_fct_trips_view_becomes_a_table_keeping_every_published_source(ws, tmp_path):
    from warehouse.publish import connect
    from warehouse.trips import fct_columns, publish_trips

    trips = "".join(_trip(8, 43.30, 141.40, m) for m in range(4))
    _run(ws, _specs(tmp_path, trips))
    con = connect(ws)  # the layout of earlier versions: a view over the lake's Parquet
    lake = ws.lake / "trips_fct_trips" / "source_id=t" / "month=*" / "*.parquet"
    con.execute("DROP TABLE trips.fct_trips")
    con.execute(f"CREATE VIEW trips.fct_trips AS SELECT {', '.join(c for c, _ in fct_columns())} "
                f"FROM read_parquet('{lake}', hive_partitioning=false)")
    con.execute("INSERT INTO trips.sources VALUES ('other', 'v0', '{}', 'now')")  # a published source without lake rows
    con.close()
    publish_trips(ws, "t")
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.sql("SELECT table_type FROM information_schema.tables WHERE table_schema = 'trips' "
                   "AND table_name = 'fct_trips'").fetchall() == [("BASE TABLE",)]
    assert con.sql("SELECT source_id, count(*) FROM trips.fct_trips GROUP BY ALL").fetchall() == [("t", 4)]
    con.close()


def test_demand_mart_counts_public_holidays_with_sundays(ws, tmp_path):
    # Japan, April 2026: the 4th is a Saturday, the 5th a Sunday, the 6th a Monday, the 29th (Showa Day) a Wednesday holiday
    trips = "".join(_trip(8, 43.30, 141.40, day=d) for d in (4, 5, 6, 29))
    _run(ws, _specs(tmp_path, trips))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    got = dict(con.execute("SELECT day_type, sum(trips)::BIGINT FROM marts.trips_by_zone_hour WHERE source_id = 't' GROUP BY 1").fetchall())
    con.close()
    assert got == {"saturday": 1, "sunday_holiday": 2, "weekday": 1}


def test_a_trips_run_interrupted_before_its_exports_is_finished_by_the_rerun(ws, tmp_path):
    from noriba.trips_pipeline import run_trips

    specs = _specs(tmp_path, "".join(_trip(8, 43.30, 141.40, m) for m in range(3)), k=2)
    run_trips(specs["t"], ws, specs=specs, export=False)  # published, no exports: what a kill during the export leaves
    stale = [ws.staging / "t" / "0123456789abcdef-dead", ws.lake / "trips_fct_trips" / ".source_id=t.tmp-abcd",
             ws.lake / "trips_meta" / ".source_id=t.old-abcd"]
    for p in stale:
        p.mkdir(parents=True)
    again = run_trips(specs["t"], ws, specs=specs)
    assert again["status"] == "unchanged" and "finished the export left by an interrupted run" in again["message"]
    assert [r["trips"] for r in _export(ws, "trips_by_zone_hour")] == ["3"]
    assert not any(p.exists() for p in stale)
    third = run_trips(specs["t"], ws, specs=specs)
    assert third["status"] == "unchanged" and "nothing to do" in third["message"]


def test_no_suppressed_cell_can_be_recovered_from_a_published_total():
    """A zone's hours: 40, 25, 12 and 3 trips (total 80, which the OD matrix gives). Suppressing the 3 alone would publish it
    as 80 - 40 - 25 - 12; the smallest other cell (12) goes too, and the two add up to at least k."""
    from warehouse.trips import suppress_cells

    rows = [{"zone_layer": "L", "zone_id": "A", "hour": h, "trips": n} for h, n in ((7, 40), (8, 25), (9, 12), (10, 3))]
    kept, primary, secondary = suppress_cells(rows, k=10, groups=(("zone_layer", "zone_id"),))
    assert [(r["hour"], r["trips"]) for r in kept] == [(7, 40), (8, 25)] and (primary, secondary) == (1, 1)
    # two small suppressed cells adding up to fewer than k (4 + 3) are a figure below k too: one more cell goes
    rows.append({"zone_layer": "L", "zone_id": "A", "hour": 11, "trips": 4})
    kept, primary, secondary = suppress_cells(rows, k=10, groups=(("zone_layer", "zone_id"),))
    assert [(r["hour"], r["trips"]) for r in kept] == [(7, 40), (8, 25)] and (primary, secondary) == (2, 1)
    # a suppression in one group can leave another with one suppressed cell: it is protected too (zone B's hour 9)
    rows += [{"zone_layer": "L", "zone_id": "B", "hour": h, "trips": n} for h, n in ((7, 30), (9, 11))]
    kept, primary, secondary = suppress_cells(rows, k=10, groups=(("zone_layer", "zone_id"), ("zone_layer", "hour")))
    hours = {}
    for r in rows:
        hours.setdefault((r["zone_layer"], r["hour"]), []).append(r)
    published = {(r["zone_id"], r["hour"]) for r in kept}
    for group in [[r for r in rows if r["zone_id"] == z] for z in "AB"] + list(hours.values()):
        gone = [r["trips"] for r in group if (r["zone_id"], r["hour"]) not in published]
        shown = [r["trips"] for r in group if (r["zone_id"], r["hour"]) in published]
        # (a group whose cells are all suppressed has a total below k or made of suppressed cells: nothing to subtract)
        assert not gone or not shown or (len(gone) >= 2 and sum(gone) >= 10), group
    # without groups, only the primary suppression
    assert suppress_cells(rows, k=10)[1:] == (2, 0)
