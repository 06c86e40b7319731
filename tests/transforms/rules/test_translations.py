"""translations.txt rules, for the GTFS layout and the GTFS-JP 1st edition layout, and kana readings."""

import pytest

from tests.conftest import shared
from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.translations import RULES

NEW = "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"
OLD = "trans_id,lang,translation\n"
GOOD_NEW = NEW + "stops,stop_name,en,Port,S1,,\nstops,stop_name,ja-Hrkt,みなとまえ,,,港前\nstops,stop_name,ja-Hrkt,えきまえ,S2,,\n"
GOOD_OLD = OLD + "港前,ja-Hrkt,みなとまえ\n駅前,ja-Hrkt,えきまえ\n港前,en,Port\n"

CASES = [
    # code, bad translations.txt, field reported
    ("translation_unknown_table_name", NEW + "stop,stop_name,en,Port,S1,,\n", "table_name"),
    ("translation_unknown_field_name", NEW + "stops,name,en,Port,S1,,\n", "field_name"),
    ("translation_unexpected_value", NEW + "feed_info,feed_publisher_name,en,Town,X,,\n", "record_id"),
    ("translation_unexpected_value", NEW + "stops,stop_name,en,Port,S1,,港前\n", "field_value"),
    ("translation_unexpected_value", NEW + "routes,route_long_name,en,Port line,R1,1,\n", "record_sub_id"),
    ("translation_without_target", NEW + "stops,stop_name,en,Port,,,\n", "record_id"),
    ("translation_foreign_key_violation", NEW + "stops,stop_name,en,Port,S9,,\n", "record_id"),
    ("translation_foreign_key_violation", NEW + "stop_times,stop_headsign,en,Station,T1,5,\n", "record_id"),
    ("translation_value_not_found", NEW + "stops,stop_name,en,Port,,,港まえ\n", "field_value"),
    ("duplicate_translation", NEW + "stops,stop_name,en,Port,S1,,\nstops,stop_name,en,Harbour,S1,,\n", "translation"),
    ("duplicate_translation", OLD + "港前,en,Port\n港前,en,Harbour\n", "translation"),
    ("old_style_translations", GOOD_OLD, "trans_id"),
    ("unused_translation", OLD + "山前,ja-Hrkt,やままえ\n", "trans_id"),
    ("invalid_kana_reading", OLD + "港前,ja-Hrkt,港まえ\n", "translation"),
    ("invalid_kana_reading", NEW + "stops,stop_name,ja-Hrkt,港まえ,S1,,\n", "translation"),
]


@pytest.mark.parametrize("code,bad,field", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_translation_rule_reports_the_bad_row(tmp_path, code, bad, field):
    result = run(tmp_path, feed(translations=bad), rule(RULES, code))
    assert codes(result) == {code}
    assert {n["field"] for n in found(result, code)} == {field}


@pytest.mark.parametrize("good", [GOOD_NEW, GOOD_OLD, GOOD_NEW + "stop_times,stop_headsign,en,Station,T1,2,\nfeed_info,feed_publisher_name,en,Town,,,\n"])
def test_well_formed_translations_raise_nothing(tmp_path, good):
    quiet = [r for r in RULES if r.code != "old_style_translations"]
    result = run(tmp_path, feed(translations=good), quiet, profile="gtfs-jp")
    assert not result.counts, result.notices.to_pylist()


def test_part_of_a_name_is_a_used_old_style_translation(tmp_path):
    result = run(tmp_path, feed(translations=OLD + "港,ja-Hrkt,みなと\n"), rule(RULES, "unused_translation"))
    assert not result.counts


@pytest.mark.parametrize("translations,missing", [
    (OLD + "港前,ja-Hrkt,みなとまえ\n", ["駅前"]),
    (NEW + "stops,stop_name,ja-Hrkt,みなとまえ,S1,,\n", ["駅前"]),
    (OLD + "港,ja-Hrkt,みなと\n前,ja-Hrkt,まえ\n駅,ja-Hrkt,えき\n", []),  # readings composed from parts
    (GOOD_NEW, []),
    (GOOD_OLD, []),
])
def test_gtfs_jp_stop_names_need_a_kana_reading(tmp_path, translations, missing):
    result = run(tmp_path, feed(translations=translations), rule(RULES, "missing_kana_reading"), profile="gtfs-jp")
    assert [n["value"] for n in found(result, "missing_kana_reading")] == missing


def test_kana_readings_are_a_gtfs_jp_rule_only(tmp_path):
    assert not run(tmp_path, feed(), rule(RULES, "missing_kana_reading")).counts
    assert codes(run(tmp_path / "jp", feed(), rule(RULES, "missing_kana_reading"), profile="gtfs-jp")) == {"missing_kana_reading"}


def test_real_feed_translating_a_text_that_is_not_in_the_feed(tmp_path):
    """The Kyoto shuttle translates stop_desc '上賀茂神社前（上賀茂シャトル）' (full-width brackets); stops.txt has half-width ones."""
    result = run(tmp_path, shared("gtfs", "jp", "kyoto-ksu-shuttle-v3"), rule(RULES, "translation_value_not_found"), profile="gtfs-jp")
    values = {n["value"] for n in found(result, "translation_value_not_found")}
    assert "上賀茂神社前（上賀茂シャトル）" in values
    assert "京都産業大学前（シャトルバス）" not in values


def test_a_platform_number_needs_no_reading_of_its_own(tmp_path):
    stops = "stop_id,stop_name,stop_lat,stop_lon\nS1,港前（２番のりば）,43.30,141.40\nS2,駅前 1番線,43.31,141.41\n"
    result = run(tmp_path, feed(stops=stops, translations=GOOD_OLD), rule(RULES, "missing_kana_reading"), profile="gtfs-jp")
    assert not result.counts
