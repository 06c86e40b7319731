"""The merged realtime feed of a merged export: ids rewritten through the export's crosswalk, unmappable entities
dropped and counted, ids all in the merged GTFS zip, no realtime error its inputs did not have."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from tests.conftest import ROOT, make_spec, shared, write_feed
from tests.warehouse.test_merge import FEED_A, FEED_B

AT = int(datetime(2026, 6, 1, 0, 5, tzinfo=timezone.utc).timestamp())  # 09:05 in Tokyo, a Monday


def _message(ts: int, entities: list[pb.FeedEntity]) -> bytes:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.incrementality = pb.FeedHeader.FULL_DATASET
    m.header.timestamp = ts
    m.entity.extend(entities)
    return m.SerializeToString()


def _tu(eid: str, trip: str, route: str, stops: list[tuple[int, str]], ts: int, vehicle: str) -> pb.FeedEntity:
    e = pb.FeedEntity(id=eid)
    tu = e.trip_update
    tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date = trip, route, "20260601"
    tu.vehicle.id = vehicle
    tu.timestamp = ts
    for seq, stop in stops:
        stu = tu.stop_time_update.add(stop_sequence=seq, stop_id=stop)
        stu.arrival.delay = 60
    return e


def _vp(eid: str, trip: str, route: str, stop: str, ts: int, vehicle: str, lat: float, lon: float) -> pb.FeedEntity:
    e = pb.FeedEntity(id=eid)
    v = e.vehicle
    v.trip.trip_id, v.trip.route_id, v.trip.start_date = trip, route, "20260601"
    v.vehicle.id, v.stop_id, v.timestamp = vehicle, stop, ts
    v.position.latitude, v.position.longitude = lat, lon
    return e


def _alert(eid: str, *selectors: dict) -> pb.FeedEntity:
    e = pb.FeedEntity(id=eid)
    for s in selectors:
        e.alert.informed_entity.add(**s)
    e.alert.header_text.translation.add(text="運休", language="ja")
    e.alert.effect = pb.Alert.NO_SERVICE
    return e


def _ingest(ws, tmp_path, feed_id: str, static: str, name: str, data: bytes) -> None:
    from noriba import rt

    folder = tmp_path / f"snap-{feed_id}-{name}"
    folder.mkdir()
    (folder / name).write_bytes(data)
    rt.ingest(ws, feed_id, [folder / name], static=static, tz="Asia/Tokyo")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """Export mini-region of feeds mini-a and mini-b (S1, R1 and T1 collide; B's H1 is unified with A's S2), with realtime for both."""
    from noriba.exports import build_export, parse_export_spec
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    tmp = tmp_path_factory.mktemp("rtmerge")
    ws = Workspace(tmp / "home").ensure()
    run_feed(make_spec("mini-a", write_feed(tmp / "a", FEED_A), timezone="Asia/Tokyo"), ws, contracts=False, export=False)
    run_feed(make_spec("mini-b", write_feed(tmp / "b", FEED_B), timezone="Asia/Tokyo"), ws, contracts=False, export=False)
    spec = parse_export_spec({"id": "mini-region", "feeds": {"ids": ["mini-a", "mini-b"]}, "license": {"id": "CC0-1.0"},
                              "formats": ["gtfs"]}, where="test", root=ROOT)
    build_export(spec, ws, validate=False)
    a = [_tu("1", "T1", "R1", [(2, "S2"), (3, "S3")], AT - 30, "12"), _tu("2", "T9", "R1", [(1, "S1")], AT - 30, "13")]
    _ingest(ws, tmp, "mini-a-rt", "mini-a", "tu.pb", _message(AT - 20, a))
    _ingest(ws, tmp, "mini-a-rt", "mini-a", "vp.pb", _message(AT - 20, [_vp("v1", "T1", "R1", "S2", AT - 30, "12", 43.31, 141.41)]))
    _ingest(ws, tmp, "mini-a-rt", "mini-a", "alerts.pb", _message(AT - 20, [
        _alert("al1", {"route_id": "R1"}, {"stop_id": "S1"}),
        _alert("al2", {"stop_id": "S1"}, {"stop_id": "X9"}),  # keeps S1, loses X9
        _alert("al3", {"stop_id": "X9"})]))  # names nothing of the export: dropped
    b = [_tu("1", "T1", "R1", [(1, "S1"), (2, "H1")], AT - 10, "12")]
    _ingest(ws, tmp, "mini-b-rt", "mini-b", "tu.pb", _message(AT, b))
    _ingest(ws, tmp, "mini-b-rt", "mini-b", "vp.pb", _message(AT, [_vp("v1", "T1", "R1", "H1", AT - 10, "12", 43.31005, 141.41005)]))
    return ws, tmp


def test_ids_become_the_exports_namespaced_and_unified_ids(mini):
    from warehouse import rt_merge

    ws, _ = mini
    tu = rt_merge.build(ws, "mini-region", "trip-updates").message
    got = {(e.trip_update.trip.trip_id, e.trip_update.trip.route_id, tuple(s.stop_id for s in e.trip_update.stop_time_update))
           for e in tu.entity}
    # T1, R1 and S1 collide: both feeds' become <namespace>:<id>; B's H1 was unified with A's S2
    assert got == {("a:T1", "a:R1", ("S2", "S3")), ("b:T1", "b:R1", ("b:S1", "S2"))}
    vp = rt_merge.build(ws, "mini-region", "vehicle-positions").message
    assert {(e.vehicle.trip.trip_id, e.vehicle.stop_id) for e in vp.entity} == {("a:T1", "S2"), ("b:T1", "S2")}


def test_every_trip_route_and_stop_id_is_in_the_merged_static_zip(mini):
    from transforms.gtfs_rt.rules import StaticIndex
    from warehouse import rt_merge

    ws, _ = mini
    idmap = rt_merge.load_id_map(ws, "mini-region")
    static = StaticIndex.from_gtfs_zip(idmap.zip_path)
    seen = 0
    for kind in rt_merge.KINDS:
        for e in rt_merge.build(ws, "mini-region", kind).message.entity:
            trips = [e.trip_update.trip] if e.HasField("trip_update") else [e.vehicle.trip] if e.HasField("vehicle") else []
            trips += [s.trip for s in e.alert.informed_entity if s.HasField("trip")]
            stops = [s.stop_id for s in e.trip_update.stop_time_update] + [e.vehicle.stop_id] + [s.stop_id for s in e.alert.informed_entity]
            routes = [t.route_id for t in trips] + [s.route_id for s in e.alert.informed_entity]
            for t in trips:
                assert not t.trip_id or t.trip_id in static.trips, t.trip_id
            assert all(r in static.routes for r in routes if r), routes
            assert all(s in static.stops for s in stops if s), stops
            seen += 1
    assert seen == 6


def test_an_entity_whose_ids_have_no_merged_id_is_dropped_and_counted(mini):
    from warehouse import rt_merge

    ws, _ = mini
    tu = rt_merge.build(ws, "mini-region", "trip-updates")
    a = next(i for i in tu.status["inputs"] if i["feed_id"] == "mini-a-rt")
    assert (a["entities_in"], a["entities_out"]) == (2, 1)
    assert a["dropped"] == {"trip": {"entities": 1, "samples": ["T9"]}}
    assert tu.status["dropped_entities"] == 1 and tu.status["entities"] == 2
    alerts = rt_merge.build(ws, "mini-region", "alerts")
    assert [e.id for e in alerts.message.entity] == ["mini-a-rt:al1", "mini-a-rt:al2"]
    assert [s.stop_id for s in alerts.message.entity[1].alert.informed_entity] == ["a:S1"]  # X9 left out, the alert stays
    assert {(s.route_id, s.stop_id) for s in alerts.message.entity[0].alert.informed_entity} == {("a:R1", ""), ("", "a:S1")}
    a = alerts.status["inputs"][0]
    assert a["dropped"] == {"stop": {"entities": 1, "samples": ["X9"]}} and a["informed_entities_dropped"] == 1
    assert alerts.message.entity[0].alert.header_text.translation[0].text == "運休"
    assert '"text": "運休"'.encode() in alerts.json()  # the JSON form keeps Japanese as it is, not \u escapes


def test_header_is_a_2_0_full_dataset_with_the_newest_input_timestamp(mini):
    from warehouse import rt_merge

    ws, _ = mini
    for kind, want in (("trip-updates", AT), ("vehicle-positions", AT), ("alerts", AT - 20)):
        h = rt_merge.build(ws, "mini-region", kind).message.header
        assert (h.gtfs_realtime_version, h.incrementality, h.timestamp) == ("2.0", pb.FeedHeader.FULL_DATASET, want), kind


def test_two_operators_vehicles_stay_apart_and_entity_ids_are_unique(mini):
    from warehouse import rt_merge

    ws, _ = mini
    for kind in ("trip-updates", "vehicle-positions"):
        msg = rt_merge.build(ws, "mini-region", kind).message
        ids = [e.id for e in msg.entity]
        assert len(ids) == len(set(ids)) and all(i.startswith(("mini-a-rt:", "mini-b-rt:")) for i in ids)
        vehicles = {(e.trip_update.vehicle.id if e.HasField("trip_update") else e.vehicle.vehicle.id) for e in msg.entity}
        assert vehicles == {"a:12", "b:12"}, kind


def test_a_repeated_build_is_cached_until_a_newer_snapshot_is_archived(mini):
    from warehouse import rt_merge

    ws, tmp = mini
    first = rt_merge.build(ws, "mini-region", "vehicle-positions")
    assert rt_merge.build(ws, "mini-region", "vehicle-positions") is first
    _ingest(ws, tmp, "mini-b-rt", "mini-b", "vp2.pb",
            _message(AT + 20, [_vp("v1", "T1", "R1", "S1", AT + 15, "12", 43.40, 141.50)]))
    again = rt_merge.build(ws, "mini-region", "vehicle-positions")
    assert again is not first and again.etag != first.etag and again.message.header.timestamp == AT + 20
    assert {e.vehicle.stop_id for e in again.message.entity} == {"S2", "b:S1"}


def test_the_merged_feed_has_no_realtime_error_its_inputs_did_not_have(mini):
    from transforms.gtfs_rt.rules import Snapshot, StaticIndex, validate
    from warehouse import rt_merge

    ws, tmp = mini
    merged_static = StaticIndex.from_gtfs_zip(rt_merge.load_id_map(ws, "mini-region").zip_path)
    inputs = {"mini-a-rt": StaticIndex.from_gtfs_zip(_zip(tmp, "a", FEED_A)), "mini-b-rt": StaticIndex.from_gtfs_zip(_zip(tmp, "b", FEED_B))}
    for kind in rt_merge.KINDS:
        built = rt_merge.build(ws, "mini-region", kind)
        before = set()
        for i in (i for i in built.status["inputs"] if i["snapshot"]):  # mini-b-rt has no alerts
            msg = pb.FeedMessage()
            msg.ParseFromString((ws.raw / i["snapshot"]).read_bytes())
            before |= _errors(validate(Snapshot(msg, i["snapshot"]), static=inputs[i["feed_id"]]))
        assert _errors(validate(Snapshot(built.message, kind), static=merged_static)) <= before, kind


def _zip(tmp, name: str, files: dict) -> object:
    import zipfile

    path = tmp / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n, text in files.items():
            z.writestr(n, text)
    return path


def _errors(findings) -> set[str]:
    return {code for (code, sev), n in findings.counts.items() if sev == "ERROR" and n}


def test_an_export_without_realtime_or_not_built_is_not_served_and_says_why(mini, tmp_path):
    from noriba.exports import build_export, parse_export_spec
    from warehouse import rt_merge

    ws, _ = mini
    with pytest.raises(rt_merge.NotServed, match="no built export 'nowhere'"):
        rt_merge.build(ws, "nowhere", "trip-updates")
    for bad in ("..", "../etc", "a/b", ""):
        with pytest.raises(rt_merge.NotServed):
            rt_merge.build(ws, bad, "trip-updates")
    spec = parse_export_spec({"id": "only-b", "feeds": {"ids": ["mini-b"]}, "license": {"id": "CC0-1.0"}, "formats": ["gtfs"]},
                             where="test", root=ROOT)
    build_export(spec, ws, validate=False)
    assert rt_merge.build(ws, "only-b", "vehicle-positions").message.entity  # mini-b-rt belongs to it
    (ws.raw / "mini-b-rt" / "rt" / "feed.json").rename(ws.raw / "mini-b-rt" / "rt" / "feed.json.off")
    try:
        with pytest.raises(rt_merge.NotServed, match="export 'only-b' has no realtime input"):
            rt_merge.build(ws, "only-b", "vehicle-positions")
    finally:
        (ws.raw / "mini-b-rt" / "rt" / "feed.json.off").rename(ws.raw / "mini-b-rt" / "rt" / "feed.json")
    assert "only-b" in rt_merge.served_exports(ws) and "mini-region" in rt_merge.served_exports(ws)


def test_status_names_each_inputs_snapshot_and_what_it_dropped(mini):
    from warehouse import rt_merge

    ws, _ = mini
    doc = rt_merge.status(ws, "mini-region")
    assert set(doc["parts"]) == {"trip-updates", "vehicle-positions", "alerts"}
    tu = doc["parts"]["trip-updates"]
    assert {i["feed_id"] for i in tu["inputs"]} == {"mini-a-rt", "mini-b-rt"}
    assert all(i["snapshot"].endswith(".pb") and (ws.raw / i["snapshot"]).is_file() for i in tu["inputs"])
    assert "crosswalk" in doc["why_dropped"]


def test_an_added_trip_is_kept_in_its_feeds_namespace_with_its_route_and_stops_mapped(mini):
    from warehouse import rt_merge

    ws, tmp = mini
    added = _tu("3", "X1", "R1", [(1, "S3")], AT + 30, "14")
    added.trip_update.trip.schedule_relationship = pb.TripDescriptor.ADDED
    _ingest(ws, tmp, "mini-a-rt", "mini-a", "tu2.pb", _message(AT + 40, [_tu("1", "T1", "R1", [(3, "S3")], AT + 30, "12"), added]))
    built = rt_merge.build(ws, "mini-region", "trip-updates")
    got = {e.id: (e.trip_update.trip.trip_id, e.trip_update.trip.route_id, e.trip_update.stop_time_update[0].stop_id)
           for e in built.message.entity}
    assert got["mini-a-rt:3"] == ("a:X1", "a:R1", "S3") and got["mini-a-rt:1"] == ("a:T1", "a:R1", "S3")
    a = next(i for i in built.status["inputs"] if i["feed_id"] == "mini-a-rt")
    assert a["added_trips_kept"] == 1 and a["dropped"] == {} and a["snapshot"].split("/")[-1].startswith("trip_updates-")


def test_an_id_the_exports_extract_cut_is_dropped_though_the_crosswalk_has_it(mini):
    from noriba.exports import build_export, parse_export_spec
    from warehouse import rt_merge

    ws, _ = mini
    spec = parse_export_spec({"id": "route-a", "feeds": {"ids": ["mini-a", "mini-b"]}, "routes": ["a:R1"],
                              "license": {"id": "CC0-1.0"}, "formats": ["gtfs"]}, where="test", root=ROOT)
    build_export(spec, ws, validate=False)
    idmap = rt_merge.load_id_map(ws, "route-a")
    assert idmap.crosswalk[("trip", "mini-b")]["T1"] == "b:T1" and "b:T1" not in idmap.present["trip"]
    built = rt_merge.build(ws, "route-a", "trip-updates")
    trips = {e.trip_update.trip.trip_id for e in built.message.entity}
    assert "a:T1" in trips and not any(t.startswith("b:") for t in trips)
    b = next(i for i in built.status["inputs"] if i["feed_id"] == "mini-b-rt")
    assert b["entities_out"] == 0 and b["dropped"] == {"trip": {"entities": 1, "samples": ["T1"]}}


def test_a_raw_folder_linking_out_of_noriba_home_is_not_an_input(mini):
    from noriba import rt as noriba_rt
    from warehouse import rt_merge
    from warehouse.workspace import Workspace

    ws, tmp = mini
    outside = Workspace(tmp / "outside").ensure()  # a realtime feed archived elsewhere, for mini-a
    (tmp / "snap-out").mkdir()
    (tmp / "snap-out" / "vp.pb").write_bytes(_message(AT + 50, [_vp("v9", "T1", "R1", "S1", AT + 50, "99", 43.3, 141.4)]))
    noriba_rt.ingest(outside, "evil-rt", [tmp / "snap-out" / "vp.pb"], static="mini-a")
    (ws.raw / "evil-rt").symlink_to(outside.raw / "evil-rt")
    try:
        built = rt_merge.build(ws, "mini-region", "vehicle-positions")
        assert {i["feed_id"] for i in built.status["inputs"]} == {"mini-a-rt", "mini-b-rt"}
        assert not any(e.id.startswith("evil-rt:") for e in built.message.entity)
    finally:
        (ws.raw / "evil-rt").unlink()


def test_the_latest_snapshot_of_a_part_is_the_newest_of_its_own_or_combined_files(tmp_path):
    from warehouse.rt_merge import latest_snapshot
    from warehouse.workspace import Workspace

    ws = Workspace(tmp_path / "home").ensure()
    base = ws.raw / "f" / "rt"
    sha = "0" * 64
    files = {"2026-06-01/09": ["trip_updates-091000", "vehicle_positions-095900", "combined-093000"],
             "2026-06-01/10": ["vehicle_positions-100000"], "2026-05-31/23": ["alerts-235959"]}
    for hour, names in files.items():
        (base / hour).mkdir(parents=True)
        for n in names:
            (base / hour / f"{n}-{sha}.pb").write_bytes(b"")
        (base / hour / "fetches.jsonl").write_text("")
    (base / "2026-06-01" / "11").mkdir()  # an hour with nothing in it yet
    assert latest_snapshot(ws, "f", "trip_updates").name.startswith("combined-093000")
    assert latest_snapshot(ws, "f", "vehicle_positions").name.startswith("vehicle_positions-100000")
    assert latest_snapshot(ws, "f", "alerts").name.startswith("combined-093000")
    assert latest_snapshot(ws, "nothing-here", "alerts") is None


# ---------------------------------------------------------------- a real capture: Tampa's Bull Runner merged with another feed

@pytest.fixture(scope="module")
def tampa(tmp_path_factory):
    """Export tampa-region: USF Bull Runner's static feed and the synthetic test agency (both America/New_York), and
    the Bull Runner VehiclePositions capture ingested as realtime of the first."""
    from noriba import rt
    from noriba.exports import build_export, parse_export_spec
    from warehouse.workspace import Workspace

    data = shared("gtfs", "rt", "bullrunner-tampa")
    ws = Workspace(tmp_path_factory.mktemp("tampa") / "home").ensure()
    spec = parse_export_spec({
        "id": "tampa-region", "license": {"id": "Apache-2.0"}, "formats": ["gtfs"],
        "ingest": [{"path": str(data / "bullrunner-gtfs.zip"), "id": "bullrunner", "timezone": "America/New_York"},
                   {"path": str(data / "testagency.zip"), "id": "testagency", "timezone": "America/New_York",
                    # a deliberately flawed synthetic feed: let it in, as the Bay Area export lets in its 2018 feeds
                    "policy": {"allow": ["foreign_key_violation", "invalid_integer", "transfer_with_invalid_trip_and_stop",
                                         "stop_time_with_arrival_before_previous_departure_time"]}}]},
        where="test", root=ROOT)
    build_export(spec, ws, validate=False)
    rt.ingest(ws, "bullrunner-rt", [data / "bullrunner-vehicle-positions"], static="bullrunner", tz="America/New_York")
    return ws, data


def test_tampa_capture_is_served_in_the_merged_exports_ids_without_new_errors(tampa):
    from transforms.gtfs_rt.rules import Snapshot, StaticIndex, validate
    from warehouse import rt_merge

    ws, data = tampa
    built = rt_merge.build(ws, "tampa-region", "vehicle-positions")
    src = pb.FeedMessage()
    src.ParseFromString((data / "bullrunner-vehicle-positions").read_bytes())
    assert len(built.message.entity) == len(src.entity) == 10 and built.status["dropped_entities"] == 0
    merged_static = StaticIndex.from_gtfs_zip(rt_merge.load_id_map(ws, "tampa-region").zip_path)
    routes = {e.vehicle.trip.route_id for e in built.message.entity}
    assert routes and routes <= merged_static.routes
    crosswalk = rt_merge.load_id_map(ws, "tampa-region").crosswalk[("route", "bullrunner")]
    assert routes == {crosswalk[e.vehicle.trip.route_id] for e in src.entity}
    assert built.message.header.timestamp == src.header.timestamp and built.message.header.gtfs_realtime_version == "2.0"
    before = _errors(validate(Snapshot(src, "capture"), static=StaticIndex.from_gtfs_zip(data / "bullrunner-gtfs.zip")))
    assert _errors(validate(Snapshot(built.message, "merged"), static=merged_static)) <= before
