"""Route rules: each finds a tiny broken feed and stays quiet on its corrected twin."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.routes import RULES

H = "route_id,agency_id,route_short_name,route_long_name,route_desc,route_type,route_url,route_color,route_text_color\n"


def routes(*rows: str) -> dict:
    return {"routes": H + "".join(r + "\n" for r in rows)}


# (code, bad routes, good routes, ids the notice must name)
CASES = [
    ("route_both_short_and_long_name_missing", routes("R1,A,,,,3,,,"), routes("R1,A,1,,,3,,,"), ["R1"]),
    ("route_short_name_too_long", routes("R1,A,みなと中央循環線東回り駅経由,,,3,,,"), routes("R1,A,1,みなと中央循環線東回り駅経由,,3,,,"), ["R1"]),
    ("route_long_name_contains_short_name", routes("R1,A,1,1 港線,,3,,,"), routes("R1,A,1,港線,,3,,,"), ["R1"]),
    ("route_short_and_long_name_equal", routes("R1,A,City,city,,3,,,"), routes("R1,A,,City,,3,,,"), ["R1"]),
    ("same_name_and_description_for_route", routes("R1,A,1,港線,港線,3,,,"), routes("R1,A,1,港線,港から駅まで,3,,,"), ["R1"]),
    ("same_route_and_agency_url", routes("R1,A,1,港線,,3,https://example.jp,,"), routes("R1,A,1,港線,,3,https://example.jp/r1,,"), ["R1"]),
    ("duplicate_route_name", routes("R1,A,1,港線,,3,,,", "R2,A,1,港線 ,,3,,,"), routes("R1,A,1,港線,,3,,,", "R2,A,2,港線,,3,,,"), ["R1", "R2"]),
    ("route_color_contrast", routes("R1,A,1,港線,,3,,000080,000000"), routes("R1,A,1,港線,,3,,000080,FFFFFF"), ["R1"]),
    ("unused_route", routes("R1,A,1,港線,,3,,,", "R2,A,2,駅線,,3,,,"), routes("R1,A,1,港線,,3,,,"), ["R2"]),
]


@pytest.mark.parametrize("code,bad,good,named", CASES, ids=[c[0] for c in CASES])
def test_route_rule_reports_the_broken_feed_and_not_the_corrected_one(tmp_path, code, bad, good, named):
    picked = rule(RULES, code)
    hits = found(run(tmp_path / "bad", feed(**bad), picked), code)
    assert hits, f"{code} found nothing"
    assert all(any(n in h["message"] for h in hits) for n in named), hits
    assert code not in codes(run(tmp_path / "good", feed(**good), picked))


def test_every_route_rule_has_a_case():
    assert {r.code for r in RULES} == {c[0] for c in CASES}


def test_duplicate_route_names_are_compared_across_agencies_and_types_as_feedvalidator_does(tmp_path):
    files = feed(agency="agency_id,agency_name,agency_url,agency_timezone\nA,みなと交通,https://example.jp,Asia/Tokyo\nB,港船,https://b.example.jp,Asia/Tokyo\n",
                 **routes("R1,A,,港線,,3,,,", "R2,B,,港線,,4,,,", "R3,A,,港線,,3,,,"))
    hits = found(run(tmp_path, files, rule(RULES, "duplicate_route_name")), "duplicate_route_name")
    assert sorted(h["line"] for h in hits) == [3, 4]  # every route after the first of its name, each naming R1
    assert all("R1" in h["message"] for h in hits)
    assert "agencies B and A" in hits[0]["message"] and "route_type 4 and 3" in hits[0]["message"]


def test_short_name_length_limit_is_a_parameter(tmp_path):
    picked = rule(RULES, "route_short_name_too_long")
    files = feed(**routes("R1,A,1234567,港線,,3,,,"))
    assert not run(tmp_path / "a", files, picked).counts
    assert run(tmp_path / "b", files, picked, params={"route_short_name_max_length": 6}).counts
