"""Agency rules: one time zone and language per feed, agency_id where several agencies exist."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.agency import RULES

AGENCY = "agency_id,agency_name,agency_url,agency_timezone,agency_lang\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type\n"
TWO_ROUTES = ROUTES + "R1,A,1,港線,3\nR2,B,2,山線,3\n"


def two(tz_b="Asia/Tokyo", lang_b="ja", id_b="B", name_b="やま交通"):
    return {"agency": AGENCY + f"A,みなと交通,https://a.example.jp,Asia/Tokyo,ja\n{id_b},{name_b},https://b.example.jp,{tz_b},{lang_b}\n",
            "routes": TWO_ROUTES}


def test_agencies_with_different_time_zones_are_inconsistent(tmp_path):
    bad = run(tmp_path / "bad", feed(**two(tz_b="Asia/Seoul")), rule(RULES, "inconsistent_agency_timezone"))
    (n,) = found(bad, "inconsistent_agency_timezone")
    assert n["line"] == 3 and n["value"] == "Asia/Seoul" and "Asia/Tokyo" in n["message"]
    assert not run(tmp_path / "good", feed(**two()), rule(RULES, "inconsistent_agency_timezone")).counts


def test_agencies_with_different_languages_are_inconsistent(tmp_path):
    bad = run(tmp_path / "bad", feed(**two(lang_b="en")), rule(RULES, "inconsistent_agency_lang"))
    assert [n["value"] for n in found(bad, "inconsistent_agency_lang")] == ["en"]
    assert not run(tmp_path / "good", feed(**two(lang_b="JA")), rule(RULES, "inconsistent_agency_lang")).counts


def test_agency_without_id_among_several_is_an_error_in_each_file(tmp_path):
    files = feed(agency=AGENCY + "A,みなと交通,https://a.example.jp,Asia/Tokyo,ja\n,やま交通,https://b.example.jp,Asia/Tokyo,ja\n",
                 routes=ROUTES + "R1,A,1,港線,3\nR2,,2,山線,3\n",
                 fare_attributes="fare_id,price,currency_type,payment_method,transfers\nF1,210,JPY,0,0\n")
    result = run(tmp_path / "bad", files, rule(RULES, "missing_required_agency_id") + rule(RULES, "missing_recommended_field"))
    assert codes(result) == {"missing_required_agency_id"}
    assert sorted(n["file"] for n in found(result, "missing_required_agency_id")) == ["agency.txt", "fare_attributes.txt", "routes.txt"]
    good = run(tmp_path / "good", feed(**two()), rule(RULES, "missing_required_agency_id"))
    assert not good.counts


def test_single_agency_without_id_is_only_a_recommendation(tmp_path):
    files = feed(agency=AGENCY + ",みなと交通,https://a.example.jp,Asia/Tokyo,ja\n", routes=ROUTES + "R1,,1,港線,3\n")
    result = run(tmp_path / "bad", files, rule(RULES, "missing_required_agency_id") + rule(RULES, "missing_recommended_field"))
    assert codes(result) == {"missing_recommended_field"}
    assert sorted(n["file"] for n in found(result, "missing_recommended_field")) == ["agency.txt", "routes.txt"]
    assert not run(tmp_path / "good", feed(), rule(RULES, "missing_recommended_field")).counts


def test_agency_running_no_route_is_unused(tmp_path):
    files = two()
    files["routes"] = ROUTES + "R1,A,1,港線,3\n"
    result = run(tmp_path / "bad", feed(**files), rule(RULES, "unused_agency"))
    assert [n["value"] for n in found(result, "unused_agency")] == ["B"]
    assert not run(tmp_path / "good", feed(**two()), rule(RULES, "unused_agency")).counts


@pytest.mark.parametrize("name_b,duplicate", [("みなと交通", True), ("やま交通", False)])
def test_two_agencies_with_one_name_are_reported(tmp_path, name_b, duplicate):
    result = run(tmp_path, feed(**two(name_b=name_b)), rule(RULES, "duplicate_agency_name"))
    assert codes(result) == ({"duplicate_agency_name"} if duplicate else set())
