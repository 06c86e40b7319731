"""The ``ondemand:`` section: every mistake is one message naming its key and what to write."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from transforms.ondemand.area import district_names
from transforms.ondemand.spec import check_ondemand

ROOT = Path(__file__).resolve().parents[3]

GOOD = {
    "agency": {"name": "みなと市", "url": "https://example.jp/noriai"},
    "route": {"short_name": "のりあい号"},
    "area": {"districts": {"layer": "minato-districts", "names": ["北浜", "山手"]}},
    "valid": {"from": "2026-04-01", "to": "2027-03-31"},
    "hours": [{"days": "weekdays", "from": "08:00", "to": "18:00"}],
    "booking": {"by": ["phone"], "phone": "0123-00-0100", "same_day": {"minutes_before": 30}},
}


def check(section: dict) -> list[str]:
    return check_ondemand(section, where="od.yml", root=ROOT, layer_names=lambda layer: district_names(layer, ROOT))[1]


def with_(path: str, value) -> dict:
    doc = copy.deepcopy(GOOD)
    *keys, last = path.split(".")
    cur = doc
    for k in keys:
        cur = cur[int(k)] if k.isdigit() else cur[k]
    if value is None:
        del cur[last]
    else:
        cur[int(last) if last.isdigit() else last] = value
    return doc


def test_the_example_section_is_valid():
    assert check(GOOD) == []


def test_unknown_district_name_gets_did_you_mean():
    problems = check(with_("area.districts.names", ["北浜", "山の手"]))
    assert problems == ["od.yml: ondemand.area.districts.names[1]: '山の手' is not a district of layer minato-districts; "
                        "did you mean '山手'?"]


def test_unknown_zone_layer_names_the_layers_there():
    problems = check(with_("area.districts.layer", "minato-distrcts"))
    assert len(problems) == 1 and problems[0].startswith("od.yml: ondemand.area.districts.layer: 'minato-distrcts': no zones spec")
    assert "minato-districts" in problems[0]


def test_hours_that_end_before_they_start_are_refused():
    problems = check(with_("hours", [{"days": "weekdays", "from": "18:00", "to": "08:00"}]))
    assert len(problems) == 1 and problems[0].startswith("od.yml: ondemand.hours[0].to: 08:00 ends before it starts (18:00)")


def test_phone_booking_without_a_phone_number_is_refused():
    problems = check(with_("booking.phone", None))
    assert problems == ["od.yml: ondemand.booking.phone: missing; booking by phone needs the number to call, e.g. \"0123-00-0000\""]


def test_app_booking_needs_a_url():
    assert check(with_("booking.by", ["app"])) == [
        "od.yml: ondemand.booking.url: missing; booking by app or web needs the address to book at (https://...)"]


def test_both_same_day_and_day_before_is_refused():
    problems = check(with_("booking.day_before", {"until": "17:00"}))
    assert len(problems) == 1 and "ondemand.booking: give exactly one of" in problems[0]


def test_unknown_day_set_lists_the_known_ones():
    problems = check(with_("hours.0.days", "weekday"))
    assert len(problems) == 1 and problems[0].startswith("od.yml: ondemand.hours[0].days: 'weekday'; use one of: weekdays,")


def test_unknown_key_gets_did_you_mean():
    problems = check(with_("booking.phnoe", "0123"))
    assert len(problems) == 1 and "ondemand.booking.phnoe" in problems[0] and "did you mean 'phone'" in problems[0]


def test_two_areas_are_refused():
    problems = check(with_("area.geojson", "x.geojson"))
    assert any(p.startswith("od.yml: ondemand.area: give exactly one of") for p in problems)


def test_period_that_ends_before_it_starts_is_refused():
    assert check(with_("valid.to", "2026-03-01")) == ["od.yml: ondemand.valid.to: 2026-03-01 is before valid.from 2026-04-01"]


@pytest.mark.parametrize("rtype", [2, 700])
def test_route_type_other_than_bus_is_refused(rtype):
    assert check(with_("route.type", rtype)) == [
        f"od.yml: ondemand.route.type: {rtype}; use 3 (bus) or 715 (demand and response bus service)"]


def test_a_japanese_towns_spec_gets_each_problem_in_japanese_first_then_english():
    from transforms.ondemand.spec import check_ondemand

    sec = with_("hours", [{"days": "weekdays", "from": "18:00", "to": "08:00"}])
    _, ja = check_ondemand(sec, where="od.yml", root=ROOT, japanese=True)
    assert ja == ["od.yml: ondemand.hours[0].to: 08:00 が始まり（18:00）より前です。深夜0時をまたぐ時間は 24 時より後の形"
                  "（例: \"25:00\"）で書いてください / 08:00 ends before it starts (18:00); a window past midnight is written with "
                  "hours past 24, e.g. \"25:00\""]
    _, en = check_ondemand(sec, where="od.yml", root=ROOT)
    assert en == ["od.yml: ondemand.hours[0].to: 08:00 ends before it starts (18:00); a window past midnight is written with "
                  "hours past 24, e.g. \"25:00\""]


def test_every_problem_of_an_ondemand_spec_has_a_japanese_text():
    import ast

    tree = ast.parse((ROOT / "transforms" / "ondemand" / "spec.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "bad"]
    assert calls and [n.lineno for n in calls if len(n.args) < 3] == []
