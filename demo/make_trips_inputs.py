"""Write the demo region's trip inputs (authored by the Noriba project, fictional, CC0-1.0).

みなと市 (99001) and 北浜町 (99002) do not exist; every operator, trip and boundary here is invented,
drawn around the bus stops of demo/make_inputs.py so the transit-gap mart has something to say.

- ``inputs/minato-taxi/minato_taxi_2026-04.csv``: みなと交通タクシー's April 2026 trip log as
  operators hand it over: Shift_JIS (CP932), CRLF, Japanese headers, local times ``2026/04/01 8:05``,
  fares in yen, payment methods in Japanese. Known bad rows, on purpose (the tests count them):
  2 dropoffs before the pickup, 1 pickup in May (outside the file's month), 1 refund (negative fare),
  3 trips with 0 passengers.
- ``inputs/minato-ondemand/noriai_bookings_2026-04.jsonl``: the booking log of the on-demand bus
  「のりあい号」 (デマンド交通): one JSON object per booking, ISO 8601 times with +09:00, status
  completed / cancelled; cancelled bookings have no ride times (4 of them: quarantined, reason shown).
- ``inputs/minato-zones/municipalities.geojson``: the boundaries of みなと市 and 北浜町 (WGS84).
- ``inputs/minato-zones/districts.geojson``: six districts (zones) for demand maps, in
  JGD2011 / Japan Plane Rectangular CS XII (EPSG:6680, metres), as a survey office would send them.

Run ``python demo/make_trips_inputs.py`` to regenerate; the output is deterministic.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent / "inputs"

# Stops of みなと市コミュニティバス (from demo/make_inputs.py), where people actually go
STOPS = {
    "みなと駅": (43.30000, 141.40000), "市役所前": (43.30310, 141.40390), "髙﨑病院前": (43.30620, 141.40780),
    "北高校前": (43.30980, 141.41130), "山手第Ⅱ団地": (43.31390, 141.41420), "港前": (43.29640, 141.39560),
    "ＪＡみなと漁港前": (43.29260, 141.39020), "みなと温泉": (43.28830, 141.38610), "北浜入口": (43.30800, 141.39900),
    "北浜町役場前": (43.31350, 141.39700), "北浜海岸": (43.31800, 141.39300),
}
# Places without a bus stop nearby: the new hospital annex on the hill, farms, the ski ground, a housing estate
FAR = {"みなと丘陵病院": (43.2840, 141.4250), "東部農園": (43.2920, 141.4330), "みなとスキー場": (43.3240, 141.4300),
       "西浜団地": (43.2800, 141.3780)}

BBOX = (141.370, 43.275, 141.440, 43.330)  # lon min, lat min, lon max, lat max of the two municipalities
KITAHAMA = [(141.370, 43.310), (141.405, 43.310), (141.405, 43.330), (141.370, 43.330), (141.370, 43.310)]
MINATO = [(141.370, 43.275), (141.440, 43.275), (141.440, 43.330), (141.405, 43.330), (141.405, 43.310),
          (141.370, 43.310), (141.370, 43.275)]
LAT_BANDS = (43.275, 43.297, 43.310, 43.330)
LON_BANDS = (141.370, 141.405, 141.440)
DISTRICT_NAMES = {(0, 0): ("D01", "温泉・漁港"), (0, 1): ("D02", "港南・丘陵"), (1, 0): ("D03", "駅西・北浜入口"),
                  (1, 1): ("D04", "駅前・市役所"), (2, 0): ("D05", "北浜"), (2, 1): ("D06", "山手")}

PAYMENTS = ["現金", "現金", "クレジットカード", "交通系IC", "QRコード"]


def _jitter(rng: random.Random, lat: float, lon: float, metres: float) -> tuple[float, float]:
    r = metres * math.sqrt(rng.random())
    a = rng.random() * 2 * math.pi
    return round(lat + r * math.cos(a) / 110_574, 6), round(lon + r * math.sin(a) / (111_320 * math.cos(math.radians(lat))), 6)


def _place(rng: random.Random) -> tuple[float, float]:
    x = rng.random()
    if x < 0.6:
        lat, lon = STOPS[rng.choice(list(STOPS))]
        return _jitter(rng, lat, lon, 250)
    if x < 0.85:
        lat, lon = FAR[rng.choice(list(FAR))]
        return _jitter(rng, lat, lon, 200)
    return round(rng.uniform(BBOX[1], BBOX[3]), 6), round(rng.uniform(BBOX[0], BBOX[2]), 6)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 110.574
    dx = (a[1] - b[1]) * 111.320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def _pickup_time(rng: random.Random, day: int) -> datetime:
    hour = rng.choices(range(24), weights=[3, 2, 1, 1, 1, 2, 4, 8, 9, 7, 6, 6, 6, 6, 6, 7, 8, 9, 8, 7, 6, 5, 5, 4])[0]
    return datetime(2026, 4, day, hour, rng.randrange(60))


def taxi_rows() -> list[list[str]]:
    rng = random.Random(20260401)
    header = ["乗務員番号", "車両番号", "乗車日時", "降車日時", "乗車地緯度", "乗車地経度", "降車地緯度", "降車地経度",
              "走行距離(km)", "運賃(円)", "乗車人数", "支払方法"]
    rows = [header]
    for i in range(1200):
        day = 1 + i * 30 // 1200
        start = _pickup_time(rng, day)
        a, b = _place(rng), _place(rng)
        km = max(0.4, _km(a, b) * 1.3)
        minutes = max(3, round(km / 24 * 60 + rng.uniform(0, 6)))
        end = start + timedelta(minutes=minutes)
        fare = 600 + 100 * max(0, math.ceil((km - 1.2) / 0.3))
        pax = rng.choices([1, 2, 3, 4], weights=[70, 20, 7, 3])[0]
        rows.append([f"{1000 + rng.randrange(12)}", f"みなと500あ{10 + rng.randrange(20):02d}",
                     f"{start:%Y/%m/%d} {start.hour}:{start:%M}", f"{end:%Y/%m/%d} {end.hour}:{end:%M}",
                     f"{a[0]:.6f}", f"{a[1]:.6f}", f"{b[0]:.6f}", f"{b[1]:.6f}", f"{km:.1f}", str(fare), str(pax),
                     rng.choice(PAYMENTS)])
    # known bad rows (counted by tests/warehouse/test_trips_demo.py)
    rows[11][3], rows[11][2] = rows[11][2], rows[11][3]          # dropoff before pickup
    rows[222][3], rows[222][2] = rows[222][2], rows[222][3]      # dropoff before pickup
    rows[333][2], rows[333][3] = "2026/05/01 0:10", "2026/05/01 0:25"  # a May trip in the April file
    rows[444][9] = "-600"                                        # refund
    for r in (55, 555, 1055):
        rows[r][10] = "0"                                        # passengers not entered
    return rows


def ondemand_lines() -> list[str]:
    rng = random.Random(20260402)
    out = []
    for i in range(400):
        day = 1 + i * 30 // 400
        start = _pickup_time(rng, day).replace(hour=rng.randrange(8, 18))
        a, b = _place(rng), _place(rng)
        km = max(0.5, _km(a, b) * 1.4)
        end = start + timedelta(minutes=max(5, round(km / 20 * 60 + rng.uniform(2, 10))))
        cancelled = i in (17, 118, 219, 320)
        rec = {"booking_id": f"NR-2604-{i + 1:04d}", "status": "cancelled" if cancelled else "completed",
               "vehicle": f"のりあい{1 + i % 3}号", "requested_at": (start - timedelta(minutes=rng.randrange(20, 240))).isoformat() + "+09:00",
               "pickup_at": None if cancelled else start.isoformat() + "+09:00",
               "dropoff_at": None if cancelled else end.isoformat() + "+09:00",
               "pickup_lat": a[0], "pickup_lon": a[1], "dropoff_lat": b[0], "dropoff_lon": b[1],
               "riders": rng.choices([1, 2, 3], weights=[80, 15, 5])[0], "fare_yen": 300, "distance_m": round(km * 1000)}
        out.append(json.dumps(rec, ensure_ascii=False))
    return out


def _feature(props: dict, ring: list[tuple[float, float]]) -> dict:
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}}


def municipalities() -> dict:
    return {"type": "FeatureCollection", "features": [
        _feature({"code": "99001", "name": "みなと市"}, MINATO), _feature({"code": "99002", "name": "北浜町"}, KITAHAMA)]}


def districts() -> dict:
    from pyproj import Transformer

    to_plane = Transformer.from_crs("EPSG:4326", "EPSG:6680", always_xy=True)  # JGD2011 / Japan Plane Rectangular CS XII
    feats = []
    for (i, j), (code, name) in sorted(DISTRICT_NAMES.items()):
        lat0, lat1, lon0, lon1 = LAT_BANDS[i], LAT_BANDS[i + 1], LON_BANDS[j], LON_BANDS[j + 1]
        ring = []
        for k in range(4):  # densified edges so the projected polygon follows the lines of latitude and longitude
            for t in range(10):
                f = t / 10
                ring.append([(lon0 + (lon1 - lon0) * f, lat0), (lon1, lat0 + (lat1 - lat0) * f),
                             (lon1 - (lon1 - lon0) * f, lat1), (lon0, lat1 - (lat1 - lat0) * f)][k])
        ring.append(ring[0])
        ring = [tuple(round(c, 3) for c in to_plane.transform(x, y)) for x, y in ring]
        feats.append(_feature({"district_code": code, "name": name}, ring))
    return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:6680"}}, "features": feats}


def main() -> None:
    taxi = HERE / "minato-taxi"
    taxi.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(taxi_rows())
    (taxi / "minato_taxi_2026-04.csv").write_bytes(buf.getvalue().encode("cp932"))
    od = HERE / "minato-ondemand"
    od.mkdir(parents=True, exist_ok=True)
    (od / "noriai_bookings_2026-04.jsonl").write_text("\n".join(ondemand_lines()) + "\n", encoding="utf-8")
    zones = HERE / "minato-zones"
    zones.mkdir(parents=True, exist_ok=True)
    (zones / "municipalities.geojson").write_text(json.dumps(municipalities(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (zones / "districts.geojson").write_text(json.dumps(districts(), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {taxi}, {od}, {zones}")


if __name__ == "__main__":
    main()
