"""Format rules: each has a value it reports and a value it accepts."""

import pytest

from tests.transforms.rules._feed_b import codes, feed, found, rule, run
from transforms.rules.formats import RULES

AGENCY = "agency_id,agency_name,agency_url,agency_timezone,agency_lang,agency_phone,agency_email\n"
STOPS = "stop_id,stop_name,stop_lat,stop_lon\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n"
TRIPS = "route_id,service_id,trip_id,direction_id\n"
FARES = "fare_id,price,currency_type,payment_method,transfers\n"


def agency(url="https://example.jp", tz="Asia/Tokyo", lang="ja", phone="0123-45-6789", email="info@example.jp"):
    return {"agency": AGENCY + f"A,みなと交通,{url},{tz},{lang},{phone},{email}\n"}


def stops(lat="43.30", stop_id="S1", name="港前"):
    return {"stops": STOPS + f"{stop_id},{name},{lat},141.40\nS2,駅前,43.31,141.41\n"}


def routes(route_type="3", color="FF0000"):
    return {"routes": ROUTES + f"R1,A,1,港線,{route_type},{color}\n"}


def fares(price="210", currency="JPY"):
    return {"fare_attributes": FARES + f"F1,{price},{currency},0,0\n"}


CASES = [
    # code, field, bad files, good files
    ("invalid_url", "agency_url", agency(url="www.example.jp"), agency(url="https://example.jp/bus/?line=1")),
    ("invalid_url", "agency_url", agency(url="http://"), agency(url="http://例え.jp/時刻表")),
    ("invalid_email", "agency_email", agency(email="info(at)example.jp"), agency(email="bus.info@city.example.lg.jp")),
    ("invalid_phone_number", "agency_phone", agency(phone="０１２３－４５－６７８９"), agency(phone="(0123) 45-6789")),
    ("invalid_phone_number", "agency_phone", agency(phone="TEL 01"), agency(phone="+81 123 45 6789")),
    ("invalid_color", "route_color", routes(color="#FF0000"), routes(color="00a0e9")),
    ("invalid_timezone", "agency_timezone", agency(tz="JST"), agency(tz="Asia/Tokyo")),
    ("invalid_language_code", "agency_lang", agency(lang="jp"), agency(lang="ja")),
    ("invalid_language_code", "agency_lang", agency(lang="日本語"), agency(lang="ja-Hrkt")),
    ("invalid_currency", "currency_type", fares(currency="YEN"), fares(currency="JPY")),
    ("invalid_currency_amount", "price", fares(price="210.5"), fares(price="210")),
    ("invalid_currency_amount", "price", fares(price="2.555", currency="USD"), fares(price="2.55", currency="USD")),
    ("unexpected_enum_value", "direction_id", {"trips": TRIPS + "R1,WD,T1,2\n"}, {"trips": TRIPS + "R1,WD,T1,1\n"}),
    ("unexpected_enum_value", "route_type", routes(route_type="99"), routes(route_type="700")),
    ("number_out_of_range", "stop_lat", stops(lat="143.30"), stops(lat="-43.30")),
    ("number_out_of_range", "price", fares(price="-210"), fares(price="0")),
    ("new_line_in_value", "stop_name", stops(name='"港\n前"'), stops(name='"港 前"')),
    ("non_ascii_or_non_printable_char", "stop_id", stops(stop_id="港1"), stops(stop_id="S1")),
]


@pytest.mark.parametrize("code,field,bad,good", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_format_rule_reports_the_bad_value_and_accepts_the_good_one(tmp_path, code, field, bad, good):
    wrong = run(tmp_path / "bad", feed(**bad), rule(RULES, code))
    assert codes(wrong) == {code}
    assert {n["field"] for n in found(wrong, code)} == {field}
    right = run(tmp_path / "good", feed(**good), rule(RULES, code))
    assert not right.counts, right.notices.to_pylist()


def test_messages_tell_japanese_publishers_what_to_write(tmp_path):
    result = run(tmp_path, feed(**agency(tz="JST", lang="jp", phone="０１２３－４５－６７８９")), RULES)
    messages = " ".join(n["message"] for n in result.notices.to_pylist())
    assert "Asia/Tokyo" in messages and "Japanese is ja" in messages and "half-width" in messages


def test_the_mini_feed_has_no_format_problem(tmp_path):
    assert not run(tmp_path, feed(), RULES).counts


def test_each_non_ascii_id_is_reported_once_where_it_is_defined(tmp_path):
    files = feed(trips="route_id,service_id,trip_id\nR1,平日,T1\n", calendar=(
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n平日,1,1,1,1,1,0,0,20260401,20270331\n"))
    result = run(tmp_path, files, rule(RULES, "non_ascii_or_non_printable_char"))
    assert [(n["file"], n["value"]) for n in found(result, "non_ascii_or_non_printable_char")] == [("calendar.txt", "平日")]


def test_part_b_codes_use_mobilitydata_names_and_severities():
    """Where MobilityData's gtfs-validator has a notice for a problem, the rule uses its code and severity."""
    from pathlib import Path

    from transforms.rules import agency, calendar, fares, feed_info, formats, gtfs_jp, translations

    tsv = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "mobilitydata-notice-codes.tsv"
    if not tsv.exists():
        pytest.skip(f"{tsv} is absent")
    severities = dict(reversed(line.split("\t")) for line in tsv.read_text(encoding="utf-8").split("\n") if line and not line.startswith("#"))
    ours = [r for m in (formats, agency, calendar, feed_info, fares, translations, gtfs_jp) for r in m.RULES]
    shared_codes = {r.code for r in ours if r.code in severities}
    assert len(shared_codes) >= 25
    for r in ours:
        if r.code in severities:
            assert r.severity == severities[r.code], r.code
        assert r.why.endswith(".") and r.why_ja and r.fix and r.fix_ja, r.code
