"""Parity with FeedValidator on the GTFS-JP 2019 corpus: the peer's logs are parsed whole, and we find what it finds."""

from __future__ import annotations

import pytest

from noriba import parity
from noriba.parity import (
    CLASSES,
    EXCLUDED,
    PEER_CLASSES,
    VALIDATION_DATE,
    OurNotice,
    finding_matched,
    notice_keys,
    parse_log,
)
from tests.conftest import shared

WRAPPED_LOG = """validating inputs/demo.zip
FeedValidator extension used: extensions.GTFS-JP
This feed will soon expire, on May 31, 2019 (feed_end_date in feed_info.txt)
The stops "大空団地入口" (ID S011200023500000) and "大空団地入口"
(ID S011200023500001) are 0.00m apart and probably represent the same
location.
 column route_long_name
Invalid value 富士川町コミュ二ティバス「市川大門駅
行」(富士川コミュ二ティ:富士川町コミュ二ティバス) in
field route_long_name
The same combination of route_short_name and route_long_name shouldn't be used
for more than one route, as it is for the for the two routes with IDs
"585_1077" and "585_1074".
中井 (ID 327_1) isn't used in any trips
The shapes with the following shape_ids aren't used by any trips: 3_210076_1,
3_210604_1
ERROR: 3 errors and 2 warnings found
"""


def test_wrapped_messages_are_joined_into_one_finding_each():
    log = parse_log(WRAPPED_LOG, "demo")
    assert log.unparsed == []
    assert log.lines == log.lines_accounted == len(WRAPPED_LOG.splitlines())
    got = [(f.cls, f.ids) for f in log.findings]
    assert got == [
        ("expiration_date", ()),
        ("stops_too_close", ("S011200023500000", "S011200023500001")),
        ("duplicate_route_name", ("585_1077", "585_1074")),
        ("unused_stop", ("327_1",)),
        ("unused_shape", ("3_210076_1",)),
        ("unused_shape", ("3_210604_1",)),
    ]
    assert (log.html_errors, log.html_warnings) == (3, 2)


def test_a_line_that_is_no_known_message_is_reported_unparsed():
    log = parse_log("validating inputs/x.zip\nFeedValidator extension used: extensions.GTFS-JP\n"
                    "Something FeedValidator never says\n中井 (ID 327_1) isn't used in any trips\nfeed validated successfully\n", "x")
    assert log.unparsed == [(3, "Something FeedValidator never says")]
    assert [f.ids for f in log.findings] == [("327_1",)]
    assert log.ok


def _notice(code, message, ids=()):
    return OurNotice(code, "WARNING", "stops.txt", 2, "stop_id", None, message, tuple(ids))


def test_a_pair_finding_needs_one_notice_naming_both_stops():
    f = parse_log(WRAPPED_LOG, "demo").findings[1]
    cls = CLASSES["stops_too_close"]
    both = _notice("stops_too_close", "0.0 m from stop 'S011200023500001'", ids=("S011200023500000",))
    one = _notice("stops_too_close", "0.0 m from another stop", ids=("S011200023500000",))
    other_code = _notice("duplicate_key", "S011200023500001", ids=("S011200023500000",))
    assert finding_matched(cls, f, [(both, notice_keys(both))])
    assert not finding_matched(cls, f, [(one, notice_keys(one))])
    assert not finding_matched(cls, f, [(other_code, notice_keys(other_code))])


def test_an_id_is_matched_whole_not_as_a_prefix():
    f = parse_log(WRAPPED_LOG, "demo").findings[3]  # unused stop 327_1
    cls = CLASSES["unused_stop"]
    longer = _notice("stop_without_stop_time", "stop 327_10 is not used by any trip", ids=("327_10",))
    exact = _notice("stop_without_stop_time", "stop is not used by any trip", ids=("327_1", "中井"))
    assert not finding_matched(cls, f, [(longer, notice_keys(longer))])
    assert finding_matched(cls, f, [(exact, notice_keys(exact))])


def test_every_excluded_class_is_a_peer_class_with_a_reason():
    for key, reason in EXCLUDED.items():
        assert key in CLASSES and len(reason) > 40


# ---------------------------------------------------------------------------------------------
# Real data: the corpus and the peer's logs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    return shared("gtfs", "jp", "corpus-2019")


@pytest.fixture(scope="module")
def logs(corpus):
    return parity.parse_corpus(corpus)


@pytest.mark.realdata
def test_every_line_of_every_peer_log_is_accounted_for(logs):
    assert len(logs) == 87
    unparsed = [(feed, ln, text) for feed, log in logs.items() for ln, text in log.unparsed]
    assert unparsed == []
    assert all(log.lines == log.lines_accounted for log in logs.values())
    # every log ends with a verdict, and every class the logs hold is one this module handles
    assert all(log.ok or log.html_errors or log.html_warnings or log.findings for log in logs.values())
    assert {f.cls for log in logs.values() for f in log.findings} <= {c.key for c in PEER_CLASSES}


@pytest.mark.realdata
def test_the_peer_counts_agree_with_its_summary_file(corpus, logs):
    import csv

    with open(corpus / "expected" / "summary.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            log = logs[row["output_dir"]]
            assert (log.html_errors, log.html_warnings) == (int(row["errors"]), int(row["warnings"])), row["output_dir"]
            assert log.ok == (row["status"] == "ok")


@pytest.mark.realdata
def test_validation_date_is_consistent_with_the_peers_expiry_warnings(corpus, logs):
    lo, hi, _why = parity.date_evidence(corpus, logs)
    assert lo <= VALIDATION_DATE <= hi


@pytest.fixture(scope="module")
def comparison(corpus, logs):
    ours = parity.validate_corpus(corpus, validation_date=VALIDATION_DATE)
    return parity.compare(logs, ours)


@pytest.mark.realdata
def test_every_corpus_feed_is_validated_by_us(comparison):
    assert comparison.feeds == 87
    assert comparison.unreadable == {}


@pytest.mark.realdata
@pytest.mark.parametrize("key", [c.key for c in PEER_CLASSES])
def test_recall_of_each_peer_class_is_at_least_95_percent(comparison, key):
    if key in EXCLUDED:
        pytest.skip(f"excluded: {EXCLUDED[key]}")
    r = comparison.recalls[key]
    assert r.peer_findings > 0
    missed = "; ".join(f"{f.feed}:{f.line} {f.text[:90]}" for f in r.missed[:3])
    assert r.feed_recall >= 0.95, f"{key}: feed-level recall {r.matched_feeds}/{r.peer_feeds}; missed feeds {r.missed_feeds[:5]}"
    assert r.count_recall >= 0.95, f"{key}: count-level recall {r.matched_findings}/{r.peer_findings}; e.g. {missed}"
