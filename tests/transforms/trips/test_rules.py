"""Trip rules: hard failures go to quarantine with the raw row and reason, soft ones are flagged, nothing is lost."""

from __future__ import annotations

import json

from transforms.trips.rules import RULES

SECTION = {
    "currency": "USD", "time": {"format": "%Y-%m-%d %H:%M:%S", "zone": "local"},
    "period": {"from_name": r"_(\d{4}-\d{2})\."}, "zones": {"unknown_ids": ["264", "265"]},
    "columns": {"pickup_time": "pu", "dropoff_time": "do", "distance": "km", "total_amount": "total", "passengers": "pax",
                "pickup_zone": "puz"},
}
HEADER = "pu,do,km,total,pax,puz\n"


def test_every_rule_has_a_code_severity_and_one_line_why():
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    for r in RULES:
        assert r.severity in ("ERROR", "WARNING", "INFO") and r.why and "\n" not in r.why


def test_hard_rules_quarantine_with_raw_row_and_reason_soft_rules_flag(stage):
    rows = [
        "2020-05-01 10:00:00,2020-05-01 10:10:00,2,10,1,100",   # 1 clean
        "2020-05-01 10:00:00,2020-05-01 09:50:00,2,10,1,100",   # 2 dropoff before pickup (hard)
        "2020-04-30 23:59:00,2020-05-01 00:10:00,2,10,1,100",   # 3 outside the file's month (hard)
        "2020-05-02 10:00:00,2020-05-03 10:00:01,2,10,1,100",   # 4 over 24 h (hard)
        "not a time,2020-05-01 10:10:00,2,10,1,100",            # 5 unreadable pickup (hard)
        "2020-05-01 10:00:00,2020-05-01 10:10:00,0,-5,0,264",   # 6 soft: zero distance, negative, no passengers, unknown zone
        "2020-05-01 10:00:00,2020-05-01 10:01:00,10,10,1,100",  # 7 soft: 600 km/h
    ]
    staged, con = stage({"trips_2020-05.csv": (HEADER + "\n".join(rows) + "\n").encode()}, SECTION, timezone="America/New_York")
    f = staged.files[0]
    assert (f["rows_in"], f["accepted"], f["quarantined"]) == (7, 3, 4)
    q = {line: (code, reason, json.loads(raw)) for line, code, reason, raw in con.sql("SELECT line, code, reason, raw FROM quarantine").fetchall()}
    assert q[2][0] == "dropoff_before_pickup" and "earlier than the pickup" in q[2][1]
    assert q[2][2] == {"pu": "2020-05-01 10:00:00", "do": "2020-05-01 09:50:00", "km": "2", "total": "10", "pax": "1", "puz": "100"}
    assert q[3][0] == "pickup_outside_period"
    assert q[4][0] == "duration_too_long"
    assert q[5][0] == "missing_pickup_time" and q[5][2]["pu"] == "not a time"
    flags = dict(con.sql("SELECT source_row, flags FROM fct").fetchall())
    assert flags[1] == []
    assert set(flags[6]) == {"zero_distance", "negative_amount", "missing_passengers", "unknown_pickup_zone"}
    assert flags[7] == ["impossible_speed"]
    counts = staged.counts_by_code()
    assert counts["dropoff_before_pickup"] == 1 and counts["negative_amount"] == 1 and counts["impossible_speed"] == 1


def test_a_row_failing_two_hard_rules_is_quarantined_once_with_both_reasons(stage):
    row = "2020-06-01 10:00:00,2020-06-01 09:00:00,2,10,1,100\n"  # June pickup in a May file, and dropoff before pickup
    staged, con = stage({"trips_2020-05.csv": (HEADER + row).encode()}, SECTION, timezone="UTC")
    assert staged.quarantined == 1
    (reason,), = con.sql("SELECT reason FROM quarantine").fetchall()
    assert "dropoff_before_pickup" in reason and "pickup_outside_period" in reason
    assert staged.counts_by_code() == {"dropoff_before_pickup": 1, "pickup_outside_period": 1}


def test_speed_and_duration_limits_come_from_the_spec(stage):
    row = "2020-05-01 10:00:00,2020-05-01 13:00:00,100,10,1,100\n"  # 3 h, 33 km/h
    staged, con = stage({"trips_2020-05.csv": (HEADER + row).encode()},
                        {**SECTION, "rules": {"max_speed_kmh": 30, "max_duration_h": 2}}, timezone="UTC")
    assert staged.quarantined == 1 and staged.counts_by_code() == {"duration_too_long": 1, "impossible_speed": 1}
