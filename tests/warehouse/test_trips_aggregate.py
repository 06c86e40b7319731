"""An aggregate trip file (one row per base per day with a trip count): the marts sum the counts, and the exports'
k-suppression counts trips, not rows; a row that is not a trip (trips.exclude) is counted apart, never as a trip."""

from __future__ import annotations

import csv
import json

import duckdb

from tests.conftest import ROOT

DAILY = ("日報 2026年4月,,,\n"
         "base,day,dispatched,status\n"
         "B01,2026-04-01,\" 1,234 \",ok\n"
         "B01,2026-04-02,16,ok\n"
         "B02,2026-04-01,3,ok\n"
         "B02,2026-04-02,2,ok\n"
         "B03,2026-04-01,40,cancelled\n"
         "合計,,\"1,295\",\n")


def _spec(tmp_path, **extra):
    from noriba.specs import parse_spec

    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "daily_2026-04.csv").write_text(DAILY, encoding="utf-8")
    section = {"files": ["*.csv"], "currency": "JPY", "header_row": "auto", "footer_rows": 1, "privacy": {"k": 10},
               "columns": {"pickup_zone": "base", "pickup_date": "day", "trip_count": "dispatched", "status": "status"},
               "exclude": {"status": "cancelled"}, **extra}
    return parse_spec({"id": "agg", "kind": "trips", "source": {"path": str(src)}, "timezone": "Asia/Tokyo",
                       "trips": section}, where="agg.yml", root=ROOT)


def test_marts_sum_trip_counts_and_suppression_counts_trips_not_rows(ws, tmp_path):
    from noriba.trips_pipeline import run_trips

    out = run_trips(_spec(tmp_path), ws, specs={})
    assert (out["rows_in"], out["rows_accepted"], out["rows_quarantined"], out["rows_excluded"]) == (5, 4, 0, 1)
    assert out["message"].endswith("1 excluded (not trips: trips.exclude)")
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        by_zone = con.sql("SELECT zone_id, sum(trips), any_value(hour) FROM marts.trips_by_zone_hour WHERE source_id = 'agg' "
                          "GROUP BY 1 ORDER BY 1").fetchall()
        # trips, not the 2 rows of each base; B03's cancelled 40 are not trips; dates without a time of day have no hour
        assert by_zone == [("B01", 1250, None), ("B02", 5, None)]
        assert con.sql("SELECT sum(trips) FROM marts.trips_od_matrix WHERE source_id = 'agg'").fetchall() == [(1255,)]
        assert con.sql("SELECT rows_in, accepted, quarantined, excluded FROM trips.source_files WHERE source_id = 'agg'").fetchall() == [
            (5, 4, 0, 1)]
        assert con.sql("SELECT rows FROM quality.trip_rule_counts WHERE source_id = 'agg' AND code = 'excluded_row'").fetchall() == [(1,)]
    finally:
        con.close()
    with open(ws.exports / "trips" / "agg" / "trips_by_zone_hour.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # B02 is 2 + 3 = 5 trips (< k = 10): suppressed. B01 (1,250 trips in the marts above) would give B02 as the layer's
    # total minus B01's: suppressed to protect it (warehouse.trips.suppress's groups)
    assert rows == []
    about = json.loads((ws.exports / "trips" / "agg" / "about.json").read_text(encoding="utf-8"))
    assert about["suppressed_cells"]["trips_by_zone_hour"] == 2 and about["of_which_to_protect_others"]["trips_by_zone_hour"] == 1


def test_a_count_column_missing_from_the_file_stops_the_source_saying_which_key_to_change(ws, tmp_path):
    import pytest

    from noriba.trips_pipeline import run_trips
    from transforms.adapters import InputError

    spec = _spec(tmp_path, columns={"pickup_zone": "base", "pickup_date": "day", "trip_count": "trips", "status": "status"})
    with pytest.raises(InputError) as exc:
        run_trips(spec, ws, specs={})
    msg = str(exc.value)
    assert msg.startswith("daily_2026-04.csv: line 2: none of the columns trips (trips.columns.trip_count) is in the header")
    assert "it has: base, day, dispatched, status" in msg


def test_a_warehouse_and_lake_from_before_trip_count_count_one_trip_per_row(ws, tmp_path):
    import pyarrow.parquet as pq

    from noriba.trips_pipeline import run_trips
    from warehouse.trips import publish_trips

    run_trips(_spec(tmp_path), ws, specs={})
    new = ("trip_count", "pickup_address", "dropoff_address")
    for part in (ws.lake / "trips_fct_trips" / "source_id=agg").glob("month=*/*.parquet"):  # lake files written before
        t = pq.read_table(part)
        pq.write_table(t.drop_columns([c for c in new if c in t.column_names]), part)
    files = ws.lake / "trips_files" / "source_id=agg" / "part-0.parquet"
    pq.write_table(pq.read_table(files).drop_columns(["excluded"]), files)
    con = duckdb.connect(str(ws.warehouse))
    con.execute("DROP TABLE marts.trips_by_zone_hour")
    for c in new:
        con.execute(f"ALTER TABLE trips.fct_trips DROP COLUMN {c}")
    con.execute("ALTER TABLE trips.source_files DROP COLUMN excluded")
    con.close()
    publish_trips(ws, "agg")
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.sql("SELECT sum(trip_count), count(*) FROM trips.fct_trips WHERE source_id = 'agg'").fetchall() == [(4, 4)]
        assert con.sql("SELECT excluded FROM trips.source_files WHERE source_id = 'agg'").fetchall() == [(0,)]
    finally:
        con.close()
