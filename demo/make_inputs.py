"""Write the demo region's input feeds (authored by the Noriba project, fictional, CC0).

みなと市 (Minato City) is fictional. Its community bus arrives as GTFS-JP in Shift_JIS with
CRLF line ends, the way many Japanese municipal files do; the Kita Coast Line is plain UTF-8 GTFS.
Run `python demo/make_inputs.py` to regenerate the committed bytes.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent / "inputs"

MINATO_STOPS = [
    # stop_id, name, kana, english, lat, lon, zone, location_type, parent
    ("minato_sta", "みなと駅", "みなとえき", "Minato Station", 43.30000, 141.40000, "Z1", 1, ""),
    ("minato_sta_1", "みなと駅", "みなとえき", "Minato Station", 43.30010, 141.40010, "Z1", 0, "minato_sta"),
    ("minato_sta_2", "みなと駅", "みなとえき", "Minato Station", 43.30012, 141.39990, "Z1", 0, "minato_sta"),
    ("shiyakusho", "市役所前", "しやくしょまえ", "City Hall", 43.30350, 141.40420, "Z1", 0, ""),
    ("takasaki", "髙﨑病院", "たかさきびょういん", "Takasaki Hospital", 43.30700, 141.40900, "Z1", 0, ""),
    ("kou_mae", "港前", "みなとまえ", "Harbour", 43.29620, 141.39500, "Z1", 0, ""),
    ("gyokou", "漁港", "ぎょこう", "Fishing Port", 43.29200, 141.38900, "Z2", 0, ""),
    ("kita_kou", "北高校", "きたこうこう", "North High School", 43.31100, 141.41400, "Z2", 0, ""),
    ("yamate", "山手団地", "やまてだんち", "Yamate Estate", 43.31500, 141.42000, "Z2", 0, ""),
    ("onsen", "みなと温泉", "みなとおんせん", "Minato Onsen", 43.32000, 141.42600, "Z2", 0, ""),
]
ROUTES = {
    "R1": ("1", "市街地循環線", ["minato_sta_1", "shiyakusho", "takasaki", "kita_kou", "yamate"], 3, "0A7F3C"),
    "R2": ("2", "港・温泉線", ["minato_sta_2", "kou_mae", "gyokou"], 4, "1F5FA8"),
}
SERVICES = {"heijitsu": (1, 1, 1, 1, 1, 0, 0), "doyou": (0, 0, 0, 0, 0, 1, 0), "kyujitsu": (0, 0, 0, 0, 0, 0, 1)}
DEPARTURES = {"heijitsu": ["06:40", "07:30", "08:20", "10:00", "12:00", "14:00", "16:30", "18:10", "23:50"],
              "doyou": ["08:00", "11:00", "15:00"], "kyujitsu": ["09:00", "14:00"]}


def hms(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def write(folder: Path, files: dict[str, list[list[str]]], *, encoding: str, newline: str) -> None:
    import csv
    import io

    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator=newline).writerows(rows)
        (folder / name).write_bytes(buf.getvalue().encode(encoding))


def minato() -> dict[str, list[list[str]]]:
    f: dict[str, list[list[str]]] = {}
    f["agency.txt"] = [["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang", "agency_phone"],
                       ["8000020999001", "みなと市", "https://example.jp/minato/bus", "Asia/Tokyo", "ja", "0143-00-0000"]]
    f["agency_jp.txt"] = [["agency_id", "agency_official_name", "agency_zip_number", "agency_address", "agency_president_pos", "agency_president_name"],
                          ["8000020999001", "みなと市交通局", "0500000", "北海道みなと市港町1-1", "局長", "髙橋 一郎"]]
    f["office_jp.txt"] = [["office_id", "office_name", "office_url", "office_phone"], ["minato_eigyo", "みなと営業所", "", "0143-00-0001"]]
    f["stops.txt"] = [["stop_id", "stop_code", "stop_name", "stop_desc", "stop_lat", "stop_lon", "zone_id", "location_type", "parent_station", "platform_code"]]
    for sid, name, _, _, lat, lon, zone, lt, parent in MINATO_STOPS:
        desc = "港前, 北口" if sid == "kou_mae" else ""
        plat = sid[-1] if parent else ""
        f["stops.txt"].append([sid, "", name, desc, f"{lat:.5f}", f"{lon:.5f}", zone if lt == 0 else "", str(lt), parent, plat])
    f["routes.txt"] = [["route_id", "agency_id", "route_short_name", "route_long_name", "route_type", "route_color", "route_text_color"]]
    f["routes_jp.txt"] = [["route_id", "route_update_date", "origin_stop", "via_stop", "destination_stop"]]
    names = {s[0]: s[1] for s in MINATO_STOPS}
    for rid, (short, long_, stops, _, color) in ROUTES.items():
        f["routes.txt"].append([rid, "8000020999001", short, long_, "3", color, "FFFFFF"])
        f["routes_jp.txt"].append([rid, "20260401", names[stops[0]], names[stops[1]], names[stops[-1]]])
    f["calendar.txt"] = [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "start_date", "end_date"]]
    for sid, days in SERVICES.items():
        f["calendar.txt"].append([sid, *map(str, days), "20260401", "20270331"])
    f["calendar_dates.txt"] = [["service_id", "date", "exception_type"],
                               ["heijitsu", "20261231", "2"], ["kyujitsu", "20261231", "1"],
                               ["kyujitsu", "20270101", "1"], ["kyujitsu", "20270102", "1"], ["kyujitsu", "20270103", "1"]]
    f["trips.txt"] = [["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "shape_id", "jp_trip_desc", "jp_office_id"]]
    f["stop_times.txt"] = [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "pickup_type", "drop_off_type"]]
    for rid, (_, _, stops, step, _) in ROUTES.items():
        for service, deps in DEPARTURES.items():
            for direction in (0, 1):
                seq = stops if direction == 0 else stops[::-1]
                for dep in deps:
                    h, m = map(int, dep.split(":"))
                    start = h * 60 + m + (20 if direction else 0)
                    trip = f"{rid}_{service}_{direction}_{dep.replace(':', '')}"
                    desc = "深夜便" if h >= 23 else ""
                    f["trips.txt"].append([rid, service, trip, names[seq[-1]], str(direction), f"{rid}_{direction}" if rid == "R1" else "", desc, "minato_eigyo"])
                    for i, stop in enumerate(seq):
                        t = hms(start + i * step)
                        f["stop_times.txt"].append([trip, t, t, stop, str(i + 1), "0", "0"])
    coords = {s[0]: (s[4], s[5]) for s in MINATO_STOPS}
    f["shapes.txt"] = [["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence", "shape_dist_traveled"]]
    for direction in (0, 1):
        seq = ROUTES["R1"][2] if direction == 0 else ROUTES["R1"][2][::-1]
        for i, stop in enumerate(seq):
            lat, lon = coords[stop]
            f["shapes.txt"].append([f"R1_{direction}", f"{lat:.5f}", f"{lon:.5f}", str(i + 1), ""])
    f["fare_attributes.txt"] = [["fare_id", "price", "currency_type", "payment_method", "transfers", "agency_id"],
                                ["F200", "200", "JPY", "0", "0", "8000020999001"], ["F300", "300", "JPY", "0", "0", "8000020999001"]]
    f["fare_rules.txt"] = [["fare_id", "route_id", "origin_id", "destination_id", "contains_id"],
                           ["F200", "R1", "", "", ""], ["F200", "R2", "Z1", "Z1", ""], ["F300", "R2", "Z1", "Z2", ""], ["F300", "R2", "Z2", "Z1", ""],
                           ["F200", "R2", "Z2", "Z2", ""]]
    f["feed_info.txt"] = [["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date", "feed_version"],
                          ["みなと市", "https://example.jp/minato", "ja", "20260401", "20270331", "2026年度版"]]
    f["translations.txt"] = [["table_name", "field_name", "language", "translation", "record_id", "record_sub_id", "field_value"]]
    for sid, name, kana, en, *_ in MINATO_STOPS:
        f["translations.txt"].append(["stops", "stop_name", "ja-Hrkt", kana, sid, "", ""])
        f["translations.txt"].append(["stops", "stop_name", "en", en, sid, "", ""])
    return f


def kita() -> dict[str, list[list[str]]]:
    stops = [("KC01", "みなと駅 (Minato)", 43.30020, 141.40025), ("KC02", "Kita Shore", 43.3150, 141.3900),
             ("KC03", "Lighthouse Point", 43.3320, 141.3820), ("KC04", "Cape Kita", 43.3510, 141.3790),
             ("KC05", "Kita Village", 43.3700, 141.3850), ("KC06", "Pine Forest", 43.3900, 141.3950)]
    f: dict[str, list[list[str]]] = {}
    f["agency.txt"] = [["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
                       ["KCL", "Kita Coast Line", "https://example.org/kita", "Asia/Tokyo", "en"]]
    f["stops.txt"] = [["stop_id", "stop_name", "stop_lat", "stop_lon"]] + [[s, n, f"{a:.5f}", f"{b:.5f}"] for s, n, a, b in stops]
    f["routes.txt"] = [["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"], ["KC", "KCL", "KC", "Kita Coast Line", "2"]]
    f["calendar.txt"] = [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "start_date", "end_date"],
                         ["ALL", "1", "1", "1", "1", "1", "1", "1", "20260401", "20270331"]]
    f["trips.txt"] = [["route_id", "service_id", "trip_id", "trip_headsign", "direction_id"]]
    f["stop_times.txt"] = [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]]
    for k, h in enumerate(range(6, 22, 2)):
        for direction in (0, 1):
            seq = stops if direction == 0 else stops[::-1]
            trip = f"KC{direction}{k:02d}"
            f["trips.txt"].append(["KC", "ALL", trip, seq[-1][1], str(direction)])
            for i, s in enumerate(seq):
                t = hms(h * 60 + direction * 50 + i * 6)
                f["stop_times.txt"].append([trip, t, t, s[0], str(i + 1)])
    f["feed_info.txt"] = [["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date"],
                          ["Kita Coast Line", "https://example.org/kita", "en", "20260401", "20270331"]]
    return f


if __name__ == "__main__":
    write(HERE / "minato-city-bus", minato(), encoding="cp932", newline="\r\n")
    write(HERE / "kita-coast-line", kita(), encoding="utf-8", newline="\n")
    print(f"wrote {HERE}")
