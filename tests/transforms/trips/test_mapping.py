"""The mapping engine: encodings, timestamps and time zones, units, code lists, candidate columns."""

from __future__ import annotations

import datetime as dt

BASE = {
    "mode": "taxi", "currency": "JPY", "distance_unit": "km",
    "columns": {"pickup_time": ["乗車日時", "pickup"], "dropoff_time": ["降車日時", "dropoff"], "distance": ["距離", "dist"],
                "total_amount": ["運賃", "fare"], "passengers": ["人数"], "payment_type": ["支払"]},
}


def test_shift_jis_local_times_become_utc_and_local(stage):
    text = "乗車日時,降車日時,距離,運賃,人数,支払\r\n2026/04/01 08:05,2026/04/01 08:20,3.2,1500,1,現金\r\n"
    staged, con = stage({"タクシー.csv": text.encode("cp932")},
                        {**BASE, "time": {"format": "%Y/%m/%d %H:%M", "zone": "local"},
                         "codes": {"payment_type": {"現金": "cash", "カード": "card"}}}, encoding="cp932")
    row = con.sql("SELECT pickup_time_utc, pickup_time_local, dropoff_time_utc, duration_s, distance_km, total_amount, "
                  "payment_type, month, source_file FROM fct").fetchall()[0]
    assert row[0] == dt.datetime(2026, 3, 31, 23, 5)  # 08:05 JST is 23:05 UTC the day before
    assert row[1] == dt.datetime(2026, 4, 1, 8, 5)
    assert row[2] == dt.datetime(2026, 3, 31, 23, 20)
    assert row[3] == 15 * 60
    assert row[4] == 3.2 and row[5] == 1500
    assert row[6] == "cash"
    assert row[7] == "2026-04"  # the lake partition is the local month
    assert row[8] == "タクシー.csv"
    assert staged.files[0]["encoding"] == "cp932"


def test_utc_text_times_get_local_clock_across_dst(stage):
    csv = b"pickup,dropoff,dist,fare\n2019-03-10 06:30:00,2019-03-10 07:30:00,1,10\n2019-11-03 05:30:00,2019-11-03 06:30:00,1,10\n"
    _, con = stage({"t.csv": csv}, {**BASE, "currency": "USD", "time": {"zone": "utc"}}, timezone="America/New_York")
    rows = con.sql("SELECT pickup_time_local, dropoff_time_local, duration_s FROM fct ORDER BY source_row").fetchall()
    # 06:30Z on the spring-forward day is 01:30 EST; 07:30Z is 03:30 EDT: one hour of real time, two on the clock
    assert rows[0] == (dt.datetime(2019, 3, 10, 1, 30), dt.datetime(2019, 3, 10, 3, 30), 3600)
    # fall back: 05:30Z is 01:30 EDT, 06:30Z is 01:30 EST
    assert rows[1] == (dt.datetime(2019, 11, 3, 1, 30), dt.datetime(2019, 11, 3, 1, 30), 3600)


def test_epoch_seconds_and_milliseconds(stage, tmp_path):
    csv = b"pickup,secs,dist\n1356998400,600,1\n"
    _, con = stage({"a.csv": csv}, {"columns": {"pickup_time": "pickup", "duration": "secs", "distance": "dist"},
                                    "time": {"epoch": "s", "zone": "utc"}}, timezone="Asia/Tokyo")
    assert con.sql("SELECT pickup_time_utc, pickup_time_local, dropoff_time_utc FROM fct").fetchall() == [
        (dt.datetime(2013, 1, 1, 0, 0), dt.datetime(2013, 1, 1, 9, 0), dt.datetime(2013, 1, 1, 0, 10))]


def test_epoch_of_local_wall_clock(stage):
    # Chicago's copy stores wall-clock time as if it were UTC: 1400269500 reads 2014-05-16 19:45, which is local time
    _, con = stage({"c.csv": b"ts,secs\n1400269500,60\n"}, {"columns": {"pickup_time": "ts", "duration": "secs"},
                                                            "time": {"epoch": "s", "zone": "local"}}, timezone="America/Chicago")
    assert con.sql("SELECT pickup_time_local, pickup_time_utc FROM fct").fetchall() == [
        (dt.datetime(2014, 5, 16, 19, 45), dt.datetime(2014, 5, 17, 0, 45))]


def test_miles_minutes_and_minor_units(stage):
    csv = b"pickup,mins,dist,fare\n2020-01-01 10:00:00,12.5,2,1234\n"
    _, con = stage({"m.csv": csv}, {"currency": "USD", "distance_unit": "mi", "duration_unit": "min", "money_unit": "minor",
                                    "columns": {"pickup_time": "pickup", "duration": "mins", "distance": "dist", "total_amount": "fare"}},
                   timezone="UTC")
    (km, secs, amount, cur), = con.sql("SELECT distance_km, duration_s, total_amount, currency FROM fct").fetchall()
    assert abs(km - 3.218688) < 1e-9 and secs == 750 and amount == 12.34 and cur == "USD"


def test_codes_written_as_floats_match_and_unknown_codes_are_kept_and_flagged(stage):
    csv = b"pickup,pay,vendor\n2020-01-01 10:00:00,1.0,2.0\n2020-01-01 11:00:00,7,2\n2020-01-01 12:00:00,,\n"
    staged, con = stage({"c.csv": csv}, {"columns": {"pickup_time": "pickup", "payment_type": "pay", "vendor": "vendor"},
                                         "codes": {"payment_type": {1: "card", 2: "cash"}, "vendor": {2: "VeriFone"}}},
                        timezone="UTC")
    rows = con.sql("SELECT payment_type, vendor, flags FROM fct ORDER BY source_row").fetchall()
    assert rows[0][:2] == ("card", "VeriFone") and "unknown_code" not in rows[0][2]
    assert rows[1][0] == "unknown:7" and "unknown_code" in rows[1][2]
    assert rows[2][0] is None and "missing_vendor" in rows[2][2]


def test_one_spec_reads_several_naming_conventions(stage):
    a = b"pickup_datetime,trip_distance\n2019-01-05 10:00:00,1\n"
    b = b"tpep_pickup_datetime,TRIP_DISTANCE\n2019-01-06 10:00:00,2\n"
    staged, con = stage({"a.csv": a, "b.csv": b}, {"distance_unit": "km",
                                                   "columns": {"pickup_time": ["pickup_datetime", "tpep_pickup_datetime"],
                                                               "distance": "trip_distance"}}, timezone="UTC")
    assert con.sql("SELECT source_file, distance_km FROM fct ORDER BY 1").fetchall() == [("a.csv", 1.0), ("b.csv", 2.0)]


def test_file_without_the_pickup_column_is_a_clear_error(stage):
    import pytest

    from transforms.adapters import InputError

    with pytest.raises(InputError, match="trips.columns.pickup_time"):
        stage({"x.csv": b"a,b\n1,2\n"}, {"columns": {"pickup_time": "start"}}, timezone="UTC")


def test_clock_conversions_give_the_instants_of_icu_casts_in_every_zone_kind():
    """One ICU call per clock gives exactly what the two-cast forms give: DST gaps and overlaps, half-hour and
    45-minute zones, LMT before 1900, infinities and NULL."""
    import duckdb

    from transforms.trips.mapping import local_of_utc, utc_of_local

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    grid = ("SELECT unnest(generate_series(TIMESTAMP '1880-01-01', TIMESTAMP '2040-01-01', INTERVAL 97 MINUTE)) AS x UNION ALL "
            "SELECT * FROM (VALUES (TIMESTAMP 'infinity'), (TIMESTAMP '-infinity'), (NULL::TIMESTAMP), (TIMESTAMP '2019-03-10 02:30'), "
            "(TIMESTAMP '2019-11-03 01:30'), (TIMESTAMP '0001-01-01'), (TIMESTAMP '9999-12-31 23:59:59.999999')) v(x)")
    for zone in ("America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/London", "America/St_Johns"):
        tz = f"'{zone}'"
        n, utc_diff, local_diff = con.sql(
            f"SELECT count(*), count(*) FILTER (WHERE {utc_of_local(tz, 'x')} IS DISTINCT FROM CAST(timezone({tz}, x) AS TIMESTAMP)), "
            f"count(*) FILTER (WHERE {local_of_utc(tz, 'x')} IS DISTINCT FROM CAST(timezone({tz}, CAST(x AS TIMESTAMPTZ)) AS TIMESTAMP)) "
            f"FROM ({grid})").fetchall()[0]
        assert n > 860_000
        assert (zone, utc_diff, local_diff) == (zone, 0, 0)
