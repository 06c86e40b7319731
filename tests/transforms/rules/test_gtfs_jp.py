"""GTFS-JP rules: required files, the _jp files against the GTFS files, corporate numbers, holidays, misspelled columns."""

import pytest

from tests.conftest import shared
from tests.transforms.rules._feed_b import DAY, codes, feed, found, rule, run, tables
from transforms.rules.engine import run_rules
from transforms.rules.gtfs_jp import RULES

AGENCY = "agency_id,agency_name,agency_url,agency_timezone\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type\n"
CORP = "5020001072478"  # 川崎鶴見臨港バス, from the GTFS-JP specification's sample feed
FI = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\nみなと町,https://example.jp,ja,20260401,20270331\n"
FA = "fare_id,price,currency_type,payment_method,transfers\n"
COMPLETE = {"feed_info": FI, "fare_attributes": FA + "F1,210,JPY,0,0\n", "translations": "trans_id,lang,translation\n港前,ja-Hrkt,みなとまえ\n"}


def test_misspelled_column_says_which_field_was_meant(tmp_path):
    files = feed(agency_jp="agency_id,agency_offilcal_name,memo\nA,みなと交通株式会社,x\n",
                 trips="route_id,service_id,trip_id,wheelchair_accesible\nR1,WD,T1,1\n")
    result = run(tmp_path / "bad", files, rule(RULES, "misspelled_column"))
    assert sorted((n["file"], n["field"], n["value"]) for n in found(result, "misspelled_column")) == [
        ("agency_jp.txt", "agency_offilcal_name", "agency_official_name"), ("trips.txt", "wheelchair_accesible", "wheelchair_accessible")]
    assert "did you mean agency_official_name?" in found(result, "misspelled_column")[0]["message"]
    good = feed(agency_jp="agency_id,agency_official_name,memo\nA,みなと交通株式会社,x\n")
    assert not run(tmp_path / "good", good, rule(RULES, "misspelled_column")).counts


def test_misspelled_columns_of_a_real_feed_are_found(tmp_path):
    zip_path = shared("gtfs", "jp", "corpus-2019", "feeds", "GTFS (2).zip")
    result = run(tmp_path, zip_path, rule(RULES, "misspelled_column"), profile="gtfs-jp")
    assert {(n["field"], n["value"]) for n in found(result, "misspelled_column")} == {
        ("shape_dist_travel", "shape_dist_traveled"), ("wheelchair_accesible", "wheelchair_accessible")}


def test_misspelled_header_of_an_empty_file_is_found(tmp_path):
    # agency_jp.txt of Shibukawa has a header and no rows; FeedValidator misses its typo
    zip_path = shared("gtfs", "jp", "corpus-2019", "feeds", "gtfs.1018.shibukawashi_com.zip")
    result = run(tmp_path, zip_path, rule(RULES, "misspelled_column"), profile="gtfs-jp")
    typo = [n for n in found(result, "misspelled_column") if n["field"] == "agency_offilcal_name"]
    assert [(n["file"], n["line"], n["value"]) for n in typo] == [("agency_jp.txt", 1, "agency_official_name")]
    assert "did you mean agency_official_name?" in typo[0]["message"]


def test_a_typo_gets_one_notice_and_an_extra_column_another(tmp_path):
    files = feed(agency_jp="agency_id,agency_offilcal_name,memo\n",
                 stops="stop_id,stop_name,stop_lat,stop_lon,stop_desc,stop_descr\nS1,港前,43.3,141.4,x,y\nS2,駅前,43.31,141.41,,\n")
    out, read = tables(tmp_path, files)
    unknown = {(n.file, n.field) for n in read.notices if n.code == "unknown_column"}
    assert unknown == {("agency_jp.txt", "memo"), ("stops.txt", "stop_descr")}  # stop_desc is there: stop_descr is extra
    result = run_rules(out, rules=rule(RULES, "misspelled_column"), validation_date=DAY)
    assert [(n["file"], n["field"]) for n in found(result, "misspelled_column")] == [("agency_jp.txt", "agency_offilcal_name")]


def test_gtfs_jp_requires_fares_translations_and_feed_info(tmp_path):
    bad = run(tmp_path / "bad", feed(), rule(RULES, "missing_gtfs_jp_required_file"), profile="gtfs-jp")
    assert sorted(n["file"] for n in found(bad, "missing_gtfs_jp_required_file")) == ["fare_attributes.txt", "feed_info.txt", "translations.txt"]
    assert not run(tmp_path / "plain", feed(), rule(RULES, "missing_gtfs_jp_required_file")).counts  # plain GTFS
    assert not run(tmp_path / "good", feed(**COMPLETE), rule(RULES, "missing_gtfs_jp_required_file"), profile="gtfs-jp").counts


def test_several_fares_need_fare_rules(tmp_path):
    files = feed(**{**COMPLETE, "fare_attributes": FA + "F1,210,JPY,0,0\nF2,250,JPY,0,0\n"})
    result = run(tmp_path, files, rule(RULES, "missing_gtfs_jp_required_file"), profile="gtfs-jp")
    assert [n["file"] for n in found(result, "missing_gtfs_jp_required_file")] == ["fare_rules.txt"]


@pytest.mark.parametrize("jp_id,missing", [("B", True), ("A", False)])
def test_every_agency_has_an_agency_jp_row(tmp_path, jp_id, missing):
    files = feed(agency_jp=f"agency_id,agency_official_name\n{jp_id},みなと交通株式会社\n")
    result = run(tmp_path, files, rule(RULES, "agency_missing_in_agency_jp"), profile="gtfs-jp")
    assert codes(result) == ({"agency_missing_in_agency_jp"} if missing else set())


@pytest.mark.parametrize("agency_id,bad", [("A", True), ("5020001072479", True), (CORP, False)])
def test_agency_id_should_be_a_corporate_number(tmp_path, agency_id, bad):
    files = feed(agency=AGENCY + f"{agency_id},臨港バス,https://example.jp,Asia/Tokyo\n", routes=ROUTES + f"R1,{agency_id},1,港線,3\n")
    result = run(tmp_path, files, rule(RULES, "agency_id_not_corporate_number"), profile="gtfs-jp")
    assert codes(result) == ({"agency_id_not_corporate_number"} if bad else set())
    if agency_id == "5020001072479":
        assert "check digit" in found(result, "agency_id_not_corporate_number")[0]["message"]


def test_office_no_trip_uses_is_reported(tmp_path):
    office = "office_id,office_name\nO1,港営業所\nO2,山営業所\n"
    result = run(tmp_path, feed(office_jp=office, trips="route_id,service_id,trip_id,jp_office_id\nR1,WD,T1,O1\n"),
                 rule(RULES, "unused_office"), profile="gtfs-jp")
    assert [n["value"] for n in found(result, "unused_office")] == ["O2"]
    both = run(tmp_path / "good", feed(office_jp="office_id,office_name\nO1,港営業所\n", trips="route_id,service_id,trip_id,jp_office_id\nR1,WD,T1,O1\n"),
               rule(RULES, "unused_office"), profile="gtfs-jp")
    assert not both.counts


def test_patterns_and_trips_must_refer_to_each_other(tmp_path):
    pattern = "jp_pattern_id,route_update_date,origin_stop,via_stop,destination_stop\nP1,20260401,港前,,駅前\nP2,20260401,駅前,,港前\n"
    picked = rule(RULES, "unused_pattern_jp") + rule(RULES, "trip_without_jp_pattern")
    with_pattern = run(tmp_path / "a", feed(pattern_jp=pattern, trips="route_id,service_id,trip_id,jp_pattern_id\nR1,WD,T1,P1\n"), picked, profile="gtfs-jp")
    assert [(n["code"], n["value"]) for n in with_pattern.notices.to_pylist()] == [("unused_pattern_jp", "P2")]
    without = run(tmp_path / "b", feed(pattern_jp=pattern), picked, profile="gtfs-jp")
    assert codes(without) == {"unused_pattern_jp", "trip_without_jp_pattern"}
    one = "jp_pattern_id,route_update_date,origin_stop,via_stop,destination_stop\nP1,20260401,港前,,駅前\n"
    assert not run(tmp_path / "c", feed(pattern_jp=one, trips="route_id,service_id,trip_id,jp_pattern_id\nR1,WD,T1,P1\n"), picked, profile="gtfs-jp").counts


@pytest.mark.parametrize("update,bad", [("2026/04/01", True), ("20260401", False)])
def test_routes_jp_rows_and_update_dates(tmp_path, update, bad):
    routes = ROUTES + "R1,A,1,港線,3\nR2,A,2,山線,3\n"
    routes_jp = f"route_id,route_update_date,origin_stop,via_stop,destination_stop\nR1,{update},港前,,駅前\nR2,20260401,駅前,,港前\n"
    picked = rule(RULES, "invalid_jp_update_date") + rule(RULES, "route_missing_in_routes_jp")
    result = run(tmp_path, feed(routes=routes, routes_jp=routes_jp), picked, profile="gtfs-jp")
    assert codes(result) == ({"invalid_jp_update_date"} if bad else set())
    partial = run(tmp_path / "partial", feed(routes=routes, routes_jp=routes_jp.split("R2,")[0]), picked, profile="gtfs-jp")
    assert [n["value"] for n in found(partial, "route_missing_in_routes_jp")] == ["R2"]


def test_weekday_service_on_a_national_holiday_without_exception_is_reported(tmp_path):
    result = run(tmp_path, feed(), rule(RULES, "holiday_without_service_exception"), profile="gtfs-jp")
    days = {n["value"]: n["message"] for n in found(result, "holiday_without_service_exception")}
    assert "20260429" in days and "昭和の日" in days["20260429"]
    handled = feed(calendar_dates="service_id,date,exception_type\nWD,20260429,2\n")
    assert "20260429" not in {n["value"] for n in found(run(tmp_path / "h", handled, rule(RULES, "holiday_without_service_exception"), profile="gtfs-jp"),
                                                         "holiday_without_service_exception")}
    every_day = feed(calendar="service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWD,1,1,1,1,1,1,1,20260401,20270331\n")
    assert not run(tmp_path / "e", every_day, rule(RULES, "holiday_without_service_exception"), profile="gtfs-jp").counts


def test_half_width_katakana_gets_the_full_width_form_as_the_fix(tmp_path):
    files = feed(stops="stop_id,stop_name,stop_lat,stop_lon\nS1,ﾊﾞｽﾀｰﾐﾅﾙ前,43.30,141.40\nS2,駅前,43.31,141.41\n",
                 trips="route_id,service_id,trip_id,trip_headsign\nR1,WD,T1,ﾊﾟｰｸ行｡\n")
    result = run(tmp_path / "bad", files, rule(RULES, "half_width_katakana"), profile="gtfs-jp")
    got = sorted((n["file"], n["line"], n["field"], n["value"]) for n in found(result, "half_width_katakana"))
    assert got == [("stops.txt", 2, "stop_name", "ﾊﾞｽﾀｰﾐﾅﾙ前"), ("trips.txt", 2, "trip_headsign", "ﾊﾟｰｸ行｡")]
    messages = {n["value"]: n["message"] for n in found(result, "half_width_katakana")}
    assert messages["ﾊﾞｽﾀｰﾐﾅﾙ前"].endswith("write it full-width: バスターミナル前")
    assert messages["ﾊﾟｰｸ行｡"].endswith("write it full-width: パーク行。")
    # full-width katakana, and half-width ASCII, are not half-width katakana
    good = feed(stops="stop_id,stop_name,stop_lat,stop_lon\nS1,バスターミナル前,43.30,141.40\nS2,Station A,43.31,141.41\n")
    assert not run(tmp_path / "good", good, rule(RULES, "half_width_katakana"), profile="gtfs-jp").counts
