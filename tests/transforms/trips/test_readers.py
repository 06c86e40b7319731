"""Readers: Parquet, JSON, JSON lines, Avro, XLSX and MDS payloads all reach the same canonical rows."""

from __future__ import annotations

import io
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import shared

SECTION = {"currency": "JPY", "time": {"epoch": "ms", "zone": "utc"},
           "columns": {"pickup_time": "start", "dropoff_time": "end", "distance": "km", "total_amount": "fare"}}
RECORDS = [{"start": 1775001600000, "end": 1775002200000, "km": 2.5, "fare": 900},
           {"start": 1775005200000, "end": 1775005500000, "km": 1.0, "fare": 500}]


def _canonical(con):
    return con.sql("SELECT pickup_time_utc, duration_s, distance_km, total_amount FROM fct ORDER BY source_row").fetchall()


@pytest.fixture
def expected(stage):
    _, con = stage({"r.jsonl": "\n".join(json.dumps(r) for r in RECORDS).encode()}, SECTION, timezone="Asia/Tokyo")
    rows = _canonical(con)
    assert len(rows) == 2 and rows[0][1] == 600
    return rows


def test_json_array(stage, expected):
    _, con = stage({"r.json": json.dumps(RECORDS).encode()}, SECTION, timezone="Asia/Tokyo")
    assert _canonical(con) == expected


def test_parquet_keeps_record_numbers(stage, expected):
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(RECORDS), buf)
    staged, con = stage({"r.parquet": buf.getvalue()}, SECTION, timezone="Asia/Tokyo")
    assert _canonical(con) == expected
    assert con.sql("SELECT source_row FROM fct ORDER BY 1").fetchall() == [(1,), (2,)]


def test_avro(stage, expected):
    import fastavro

    schema = {"type": "record", "name": "t", "fields": [{"name": "start", "type": "long"}, {"name": "end", "type": "long"},
                                                        {"name": "km", "type": "double"}, {"name": "fare", "type": "int"}]}
    buf = io.BytesIO()
    fastavro.writer(buf, schema, RECORDS)
    _, con = stage({"r.avro": buf.getvalue()}, SECTION, timezone="Asia/Tokyo")
    assert _canonical(con) == expected


def test_xlsx(stage, expected):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(RECORDS[0]))
    for r in RECORDS:
        ws.append(list(r.values()))
    buf = io.BytesIO()
    wb.save(buf)
    _, con = stage({"r.xlsx": buf.getvalue()}, SECTION, timezone="Asia/Tokyo")
    assert _canonical(con) == expected


def _mds_trip(**over):
    t = {"provider_name": "みなとシェアサイクル", "provider_id": str(uuid.UUID(int=1)), "device_id": str(uuid.UUID(int=2)),
         "vehicle_id": "B-01", "vehicle_type": "bicycle", "propulsion_types": ["human"], "trip_id": str(uuid.UUID(int=3)),
         "trip_duration": 600, "trip_distance": 2500, "accuracy": 10, "start_time": 1775001600000, "end_time": 1775002200000,
         "actual_cost": 200, "currency": "JPY",
         "route": {"type": "FeatureCollection", "features": [
             {"type": "Feature", "properties": {"timestamp": 1775001600000}, "geometry": {"type": "Point", "coordinates": [141.40, 43.30]}},
             {"type": "Feature", "properties": {"timestamp": 1775002200000}, "geometry": {"type": "Point", "coordinates": [141.41, 43.31]}}]}}
    t.update(over)
    return t


def test_mds_trips_validated_against_the_schema_and_invalid_trips_quarantined(stage):
    schema = shared("mds", "mds-1.2.0-provider-jsonschema", "trips.json")
    payload = {"version": "1.2.0", "data": {"trips": [_mds_trip(), _mds_trip(vehicle_type="hovercraft")]}}
    section = {"format": "mds", "mode": "micromobility", "currency": "JPY", "money_unit": "major", "mds_schema": str(schema),
               "time": {"epoch": "ms", "zone": "utc"}, "distance_unit": "m",
               "columns": {"trip_ref": "trip_id", "provider": "provider_name", "pickup_time": "start_time", "dropoff_time": "end_time",
                           "distance": "trip_distance", "total_amount": "actual_cost", "pickup_lat": "start_lat",
                           "pickup_lon": "start_lon", "dropoff_lat": "end_lat", "dropoff_lon": "end_lon"}}
    staged, con = stage({"trips.json": json.dumps(payload, ensure_ascii=False).encode()}, section, timezone="Asia/Tokyo")
    assert (staged.rows_in, staged.accepted, staged.quarantined) == (2, 1, 1)
    (ref, prov, km, lat), = con.sql("SELECT trip_ref, provider, distance_km, pickup_lat FROM fct").fetchall()
    assert ref == str(uuid.UUID(int=3)) and prov == "みなとシェアサイクル" and km == 2.5 and lat == 43.30
    (code, reason, raw), = con.sql("SELECT code, reason, raw FROM quarantine").fetchall()
    assert code == "invalid_record" and "vehicle_type" in reason and json.loads(raw)["vehicle_type"] == "hovercraft"
