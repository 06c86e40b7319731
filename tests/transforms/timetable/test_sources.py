"""Stop and pattern sources other than a plain stop list: ODPT patterns, P11 stops, an existing GTFS stops.txt."""

import json

from tests.transforms.timetable.helpers import WEEKDAY_CSV, config, table, write_input
from transforms.adapters import adapter_for

POLES = [("odpt.BusstopPole:X.Minatoeki.1.2", "みなと駅:1:みなと駅2"), ("odpt.BusstopPole:X.Shiyakusho.2.1", "市役所前:2:市役所前1"),
         ("odpt.BusstopPole:X.Minatomae.3.1", "港前:3:港前1"), ("odpt.BusstopPole:X.Kitahama.4.1", "北浜海岸:4:北浜海岸1")]
ODPT = json.dumps([{"@type": "odpt:BusroutePattern", "owl:sameAs": "odpt.BusroutePattern:X.Minato1.1.1", "dc:title": "平日",
                    "odpt:busroute": "odpt.Busroute:X.Minato1", "odpt:direction": "1",
                    "odpt:busstopPoleOrder": [{"odpt:busstopPole": p, "odpt:note": n, "odpt:index": i + 1}
                                              for i, (p, n) in enumerate(POLES)]}], ensure_ascii=False)
GTFS_STOPS = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n" + "".join(
    f"{p},{n.split(':')[0]},43.3{i},141.4{i},0,\n" for i, (p, n) in enumerate(POLES)) + \
    "odpt.BusstopPole:X.Minatoeki.1.1,みなと駅,43.31,141.41,0,\n"


def test_odpt_pattern_gives_each_timetable_row_its_pole(tmp_path):
    stops = {"file": "stops.txt", "format": "gtfs", "patterns": {"file": "patterns.json", "format": "odpt", "key": "title"}}
    feed = adapter_for("timetable").read(write_input(
        tmp_path, {"平日.csv": WEEKDAY_CSV, "stops.txt": GTFS_STOPS, "patterns.json": ODPT}, config(stops=stops)))
    used = [r["stop_id"] for r in table(feed, "stop_times.txt") if r["trip_id"] == "R1_weekday_1"]
    # みなと駅 has two poles in the stop list; the pattern says which one this route uses
    assert used == [p for p, _ in POLES]
    assert not [n for n in feed.findings.notices if n.severity == "ERROR"]


def test_p11_stop_list_is_a_stop_source(tmp_path):
    p11 = ("bus_stop_name,municipality,operator_1,operator_2,operator_3,route_type_1,route_type_2,route_type_3,note,"
           "longitude,latitude,prefecture\n"
           "みなと駅,みなと市,みなと交通,,,3,,,,141.40,43.30,北海道\n市役所前,みなと市,みなと交通,,,3,,,,141.41,43.31,北海道\n"
           "港前,みなと市,みなと交通,,,3,,,,141.39,43.29,北海道\n北浜海岸,北浜町,みなと交通,,,3,,,,141.37,43.28,北海道\n")
    feed = adapter_for("timetable").read(write_input(
        tmp_path, {"平日.csv": WEEKDAY_CSV, "p11.csv": p11}, config(stops={"file": "p11.csv", "format": "p11"})))
    stops = {r["stop_name"]: (r["stop_lat"], r["stop_lon"]) for r in table(feed, "stops.txt")}
    assert stops == {"みなと駅": ("43.3", "141.4"), "市役所前": ("43.31", "141.41"), "港前": ("43.29", "141.39"),
                     "北浜海岸": ("43.28", "141.37")}
    assert len(table(feed, "stop_times.txt")) == 7


def test_station_platform_is_chosen_by_pole_number(tmp_path):
    stops = ("stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
             "0001,みなと駅,43.30,141.40,1,\n0001_A,みなと駅,43.30,141.40,0,0001\n0001_B,みなと駅,43.30,141.40,0,0001\n"
             "0002,市役所前,43.31,141.41,0,\n0003,港前,43.29,141.39,0,\n0004,北浜海岸,43.28,141.37,0,\n")
    tt = WEEKDAY_CSV.replace("みなと駅,発", "みなと駅,2").replace("市役所,発", "市役所,1")
    layout = {**config()["layout"], "pole_column": "B"}
    layout.pop("arrival_departure_column")
    feed = adapter_for("timetable").read(write_input(
        tmp_path, {"平日.csv": tt, "stops.txt": stops},
        config(layout=layout, stops={"file": "stops.txt", "format": "gtfs", "pole_child": "{parent}_{letter}"})))
    assert table(feed, "stop_times.txt")[0]["stop_id"] == "0001_B"
    written = {r["stop_id"]: (r["location_type"], r["parent_station"]) for r in table(feed, "stops.txt")}
    assert written["0001"] == ("1", "") and written["0001_B"] == ("0", "0001")
