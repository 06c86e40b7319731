"""Parse of GTFS-Realtime snapshots: rows reconcile with the protobuf, unchanged rows are stored once, bad messages are quarantined."""

from __future__ import annotations

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from tests.conftest import shared
from transforms.gtfs_rt.parse import ROW_TABLES, SCHEMAS, HourParser, SnapshotError, content_part, header_timestamp, split_message

CAPTURE_SUFFIXES = (".pb", ".pbf", ".protobuf", "")


def captures():
    root = shared("gtfs", "rt")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES and p.name != "PROVENANCE.txt")
    assert len(found) >= 26, found
    return found


def protobuf_rows(data: bytes) -> dict[str, int]:
    """Count each table's rows straight from the protobuf (the whole message parsed by upb), independently of the parser."""
    m = pb.FeedMessage()
    m.ParseFromString(data)
    return {
        "rt_vehicle_positions": sum(e.HasField("vehicle") for e in m.entity),
        "rt_trip_updates": sum(e.HasField("trip_update") for e in m.entity),
        "rt_stop_time_updates": sum(len(e.trip_update.stop_time_update) for e in m.entity),
        "rt_alerts": sum(e.HasField("alert") for e in m.entity),
        "rt_alert_entities": sum(len(e.alert.informed_entity) for e in m.entity),
    }


def lake_rows(tables) -> dict[str, int]:
    return {t: sum(tables[t].column("snapshots").to_pylist()) for t in ROW_TABLES}


def test_every_real_capture_reconciles_row_for_row():
    for path in captures():
        data = path.read_bytes()
        parser = HourParser()
        assert parser.add(data, part="combined", file=path.name), path
        tables = parser.finish()
        assert lake_rows(tables) == protobuf_rows(data), path.name
        assert tables["rt_quarantine"].num_rows == 0


def test_every_real_capture_twice_is_stored_once_and_counted_twice():
    for path in captures():
        data = path.read_bytes()
        parser = HourParser()
        parser.add(data, part="combined")
        parser.add(data, part="combined")
        tables = parser.finish()
        once = protobuf_rows(data)
        assert lake_rows(tables) == {t: 2 * n for t, n in once.items()}, path.name
        assert {t: tables[t].num_rows for t in ROW_TABLES} == once, path.name  # stored once
        for t in ROW_TABLES:
            assert set(tables[t].column("snapshots").to_pylist()) <= {2}


def test_header_timestamp_is_on_every_row():
    data = shared("gtfs", "rt", "nyct-subway-2019", "feed_1_weekday.protobuf").read_bytes()
    ts = header_timestamp(data)
    parser = HourParser()
    parser.add(data, part="combined")
    tables = parser.finish()
    for t in ROW_TABLES:
        assert set(tables[t].column("header_timestamp").to_pylist()) <= {ts}
        assert tables[t].num_rows == 0 or set(tables[t].column("header_timestamp").to_pylist()) == {ts}


def _feed(ts: int, delays: dict[str, list[int]], *, vehicles: dict[str, tuple[float, float]] | None = None) -> bytes:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = ts
    for trip, ds in delays.items():
        e = m.entity.add(id=trip)
        e.trip_update.trip.trip_id = trip
        e.trip_update.trip.route_id = "R1"
        for i, d in enumerate(ds):
            s = e.trip_update.stop_time_update.add(stop_sequence=i + 1, stop_id=f"S{i + 1}")
            s.arrival.delay = d
    for vid, (lat, lon) in (vehicles or {}).items():
        e = m.entity.add(id=f"v-{vid}")
        e.vehicle.vehicle.id = vid
        e.vehicle.position.latitude, e.vehicle.position.longitude = lat, lon
    return m.SerializeToString()


def test_a_changed_stop_time_update_is_stored_again_and_the_unchanged_ones_are_extended():
    parser = HourParser()
    parser.add(_feed(100, {"T1": [0, 0, 0], "T2": [60]}), part="trip_updates")
    parser.add(_feed(120, {"T1": [0, 30, 0], "T2": [60]}), part="trip_updates")
    parser.add(_feed(140, {"T1": [0, 30, 0], "T2": [60]}), part="trip_updates")
    stus = parser.finish()["rt_stop_time_updates"].to_pylist()
    got = sorted((r["trip_id"], r["stop_sequence"], r["arrival_delay"], r["header_timestamp"], r["last_header_timestamp"],
                  r["snapshots"]) for r in stus)
    assert got == [("T1", 1, 0, 100, 140, 3), ("T1", 2, 0, 100, 100, 1), ("T1", 2, 30, 120, 140, 2), ("T1", 3, 0, 100, 140, 3),
                   ("T2", 1, 60, 100, 140, 3)]


def test_an_entity_that_disappears_and_comes_back_starts_a_new_row():
    parser = HourParser()
    for ts, trips in ((100, {"T1": [0]}), (120, {}), (140, {"T1": [0]})):
        parser.add(_feed(ts, trips), part="trip_updates")
    rows = sorted((r["header_timestamp"], r["snapshots"]) for r in parser.finish()["rt_trip_updates"].to_pylist())
    assert rows == [(100, 1), (140, 1)]


def test_parts_are_separate_sequences():
    parser = HourParser()
    data = _feed(100, {}, vehicles={"B1": (35.0, 139.0)})
    parser.add(data, part="vehicle_positions")
    parser.add(data, part="combined")
    assert parser.finish()["rt_vehicle_positions"].num_rows == 2


def test_a_duplicate_entity_inside_one_snapshot_reconciles():
    m = pb.FeedMessage.FromString(_feed(100, {"T1": [0, 5]}))
    m.entity.add().CopyFrom(m.entity[0])
    data = m.SerializeToString()
    parser = HourParser()
    parser.add(data, part="combined")
    parser.add(data, part="combined")
    assert lake_rows(parser.finish()) == {t: 2 * n for t, n in protobuf_rows(data).items()}


def test_a_truncated_snapshot_is_quarantined_whole_and_the_next_one_still_compares_to_the_last_good_one():
    good = _feed(100, {"T1": [0, 0]})
    parser = HourParser()
    parser.add(good, part="trip_updates")
    assert not parser.add(_feed(120, {"T1": [0, 9], "T2": [1]})[:-3], part="trip_updates", file="bad.pb")
    parser.add(good, part="trip_updates")
    tables = parser.finish()
    assert tables["rt_quarantine"].to_pylist()[0]["file"] == "bad.pb"
    assert "truncated" in tables["rt_quarantine"].to_pylist()[0]["reason"]
    assert tables["rt_stop_time_updates"].column("snapshots").to_pylist() == [2, 2]  # nothing of the bad one is kept
    assert tables["rt_snapshots"].num_rows == 2


@pytest.mark.parametrize("data", [b"<html>error</html>", b"\x12\xff\xff\xff\xff\x0f", b"\x0a\x05abc", b"\x08"])
def test_bytes_that_are_not_a_feed_message_are_quarantined_with_a_reason(data):
    parser = HourParser()
    assert not parser.add(data, part="combined")
    reason = parser.finish()["rt_quarantine"].to_pylist()[0]["reason"]
    assert reason and ("truncated" in reason or "not a GTFS-Realtime" in reason or "damaged" in reason)


def test_a_damaged_entity_quarantines_its_snapshot():
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    data = m.SerializeToString() + b"\x12\x03\x0a\x05a"  # an entity whose id runs past the entity's end
    parser = HourParser()
    assert not parser.add(data, part="combined")
    with pytest.raises(SnapshotError):
        split_message(b"\x12\x05ab")


def test_missing_optional_fields_are_null_and_nyct_extensions_are_skipped():
    parser = HourParser()
    parser.add(shared("gtfs", "rt", "nyct-subway-2019", "feed_1_weekday.protobuf").read_bytes(), part="combined")
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.entity.add(id="v").vehicle.vehicle.id = "B1"  # no position, no trip, no timestamp
    parser.add(m.SerializeToString(), part="vehicle_positions")
    vps = parser.finish()["rt_vehicle_positions"].to_pylist()
    bare = next(r for r in vps if r["vehicle_id"] == "B1")
    assert bare["latitude"] is None and bare["trip_id"] is None and bare["timestamp"] is None and bare["header_timestamp"] is None


def test_tables_have_their_documented_columns_even_when_empty():
    tables = HourParser().finish()
    for name, schema in SCHEMAS.items():
        if name != "rt_fetches":
            assert tables[name].schema == schema


def test_content_part_names_a_single_kind_feed():
    assert content_part(_feed(1, {}, vehicles={"B": (1.0, 2.0)})) == "vehicle_positions"
    assert content_part(_feed(1, {"T": [0]}, vehicles={"B": (1.0, 2.0)})) == "combined"
    assert content_part(_feed(1, {"T": [0]})) == "trip_updates"


def test_column_decoded_stop_time_updates_equal_what_upb_reads():
    from transforms.gtfs_rt.parse import _STU_DECODED

    for path in captures():
        data = path.read_bytes()
        m = pb.FeedMessage.FromString(data)
        parser = HourParser()
        parser.add(data, part="combined")
        got = parser.finish()["rt_stop_time_updates"].select(["entity_id", *_STU_DECODED]).to_pylist()
        want = []
        for e in m.entity:
            for s in e.trip_update.stop_time_update:
                a, d = s.arrival, s.departure
                want.append({"entity_id": e.id, "stop_sequence": s.stop_sequence if s.HasField("stop_sequence") else None,
                             "stop_id": s.stop_id or None,
                             "arrival_time": a.time if s.HasField("arrival") and a.HasField("time") else None,
                             "arrival_delay": a.delay if s.HasField("arrival") and a.HasField("delay") else None,
                             "arrival_uncertainty": a.uncertainty if s.HasField("arrival") and a.HasField("uncertainty") else None,
                             "departure_time": d.time if s.HasField("departure") and d.HasField("time") else None,
                             "departure_delay": d.delay if s.HasField("departure") and d.HasField("delay") else None,
                             "departure_uncertainty": d.uncertainty if s.HasField("departure") and d.HasField("uncertainty") else None,
                             "schedule_relationship": (pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.Name(s.schedule_relationship)
                                                       if s.HasField("schedule_relationship") else None)})
        key = lambda r: (r["entity_id"], str(r["stop_sequence"]), str(r["stop_id"]), str(r["arrival_time"]))  # noqa: E731
        assert sorted(got, key=key) == sorted(want, key=key), path.name


def test_negative_delays_large_times_and_unknown_fields_decode_like_upb():
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    tu = m.entity.add(id="T").trip_update
    tu.trip.trip_id = "T"
    s = tu.stop_time_update.add(stop_sequence=4294967295, stop_id="駅前")
    s.arrival.delay, s.arrival.time, s.arrival.uncertainty = -2147483648, 2**62, 30
    s.departure.delay = -1
    s.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    s2 = tu.stop_time_update.add()
    s2.stop_time_properties.assigned_stop_id = "X"  # a field the column decoder skips
    data = m.SerializeToString()
    parser = HourParser()
    parser.add(data, part="trip_updates")
    rows = parser.finish()["rt_stop_time_updates"].to_pylist()
    assert rows[0]["stop_sequence"] == 4294967295 and rows[0]["stop_id"] == "駅前"
    assert (rows[0]["arrival_delay"], rows[0]["arrival_time"], rows[0]["arrival_uncertainty"]) == (-2147483648, 2**62, 30)
    assert rows[0]["departure_delay"] == -1 and rows[0]["departure_time"] is None and rows[0]["schedule_relationship"] == "SKIPPED"
    assert rows[1]["stop_sequence"] is None and rows[1]["stop_id"] is None and rows[1]["arrival_time"] is None


def test_decoding_in_chunks_as_rows_accumulate_gives_the_same_tables(monkeypatch):
    import transforms.gtfs_rt.parse as parse

    seq = [p.read_bytes() for p in captures() if p.parent.name == "nyct-subway-2019"][:6]
    seq.insert(3, seq[2][:-5])  # a truncated one in the middle, quarantined

    def run():
        parser = HourParser()
        for data in seq:
            parser.add(data, part="combined")
        return {k: v.to_pylist() for k, v in parser.finish().items()}

    whole = run()
    monkeypatch.setattr(parse, "FLUSH_BYTES", 1)
    monkeypatch.setattr(parse, "DECODE_CHUNK", 7)
    assert run() == whole
    assert len(whole["rt_quarantine"]) == 1


def _rows(table) -> list[str]:
    return sorted(map(repr, table.to_pylist()))


def test_stop_time_updates_given_to_the_sink_once_final_are_the_rows_of_the_hour(monkeypatch):
    import pyarrow as pa

    import transforms.gtfs_rt.parse as parse

    seq = [_feed(100 + 20 * k, {"T1": [0, k // 2, 0], "T2": [60] * (k % 3 + 1), **({"T3": [k]} if k % 4 else {})}) for k in range(12)]
    seq += [p.read_bytes() for p in captures() if p.parent.name == "nyct-subway-2019"][:3]

    def run(sink=None):
        parser = HourParser(sink=sink)
        for data in seq:
            parser.add(data, part="trip_updates")
        return parser, parser.finish()

    _, whole = run()
    monkeypatch.setattr(parse, "FLUSH_BYTES", 1)
    monkeypatch.setattr(parse, "SINK_ROWS", 1)
    monkeypatch.setattr(parse, "DECODE_CHUNK", 5)
    given: list = []
    parser, rest = run(given.append)
    assert given and rest["rt_stop_time_updates"].num_rows < whole["rt_stop_time_updates"].num_rows
    assert parser.stu_written == sum(t.num_rows for t in given)
    assert _rows(pa.concat_tables([*given, rest["rt_stop_time_updates"]])) == _rows(whole["rt_stop_time_updates"])
    assert _rows(rest["rt_trip_updates"]) == _rows(whole["rt_trip_updates"])


def test_the_same_stop_time_update_twice_in_a_trip_is_two_rows_and_only_the_first_is_extended():
    def snap(ts: int, last: str) -> bytes:
        m = pb.FeedMessage()
        m.header.gtfs_realtime_version, m.header.timestamp = "2.0", ts
        tu = m.entity.add(id="T1").trip_update
        tu.trip.trip_id = "T1"
        for sid in ("A", "A", last):
            tu.stop_time_update.add(stop_sequence=1, stop_id=sid).arrival.delay = 0
        return m.SerializeToString()

    parser = HourParser()
    parser.add(snap(100, "B"), part="trip_updates")
    parser.add(snap(120, "C"), part="trip_updates")
    rows = sorted((r["stop_id"], r["header_timestamp"], r["snapshots"]) for r in parser.finish()["rt_stop_time_updates"].to_pylist())
    assert rows == [("A", 100, 1), ("A", 100, 2), ("A", 120, 1), ("B", 100, 1), ("C", 120, 1)]
