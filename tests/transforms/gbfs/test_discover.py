import pytest

from transforms.gbfs.discover import epoch_of, kind_from_content, kind_from_name, parse_discovery


def _v2(version="2.3"):
    return {"last_updated": 1690803922, "ttl": 0, "version": version, "data": {
        "en": {"feeds": [{"name": "system_information", "url": "https://x/en/system_information.json"},
                         {"name": "free_bike_status", "url": "https://x/en/free_bike_status.json"}]},
        "nb": {"feeds": [{"name": "system_information", "url": "https://x/nb/system_information.json"}]}}}


@pytest.mark.parametrize("version", ["1.1", "2.2", "2.3"])
def test_gbfs_json_of_1x_and_2x_lists_the_files_of_the_language_asked_or_the_first(version):
    d = parse_discovery(_v2(version))
    assert (d.version, d.language, d.ttl) == (version, "en", 0)
    assert d.feeds == {"system_information": "https://x/en/system_information.json", "free_bike_status": "https://x/en/free_bike_status.json"}
    assert parse_discovery(_v2(version), language="nb").feeds == {"system_information": "https://x/nb/system_information.json"}


def test_gbfs_json_of_1_0_without_a_version_lists_its_files():
    doc = _v2()
    del doc["version"]
    assert parse_discovery(doc).version is None and "free_bike_status" in parse_discovery(doc).feeds


def test_gbfs_json_of_3_0_lists_its_files_without_languages():
    doc = {"last_updated": "2023-07-17T13:34:13+02:00", "ttl": 60, "version": "3.0",
           "data": {"feeds": [{"name": "vehicle_status", "url": "https://x/vehicle_status.json"}]}}
    d = parse_discovery(doc)
    assert (d.version, d.language, d.feeds) == ("3.0", None, {"vehicle_status": "https://x/vehicle_status.json"})


def test_language_the_system_does_not_offer_is_refused_with_the_ones_it_has():
    with pytest.raises(ValueError, match="no feeds in language 'ja'; it has: en, nb"):
        parse_discovery(_v2(), language="ja")


def test_gbfs_json_without_a_feed_list_is_refused():
    with pytest.raises(ValueError, match="lists no feeds"):
        parse_discovery({"data": {"en": {}}})


@pytest.mark.parametrize("name, kind", [
    ("station_status_2022-02-15_UTC/1644883221.json", "station_status"),
    ("station_status_history/station_status_1732559361.json", "station_status"),
    ("free_bike_status_history/free_bike_status_1690892118.json", "free_bike_status"),
    ("head/gbfs.json", "gbfs"),
    ("gbfs_versions.json", "gbfs_versions"),
    ("vehicle_status/1700000000-abcd.json", "vehicle_status"),
    ("captures/1700000000.json", None),
])
def test_snapshot_kind_comes_from_its_name_or_its_folder_name(name, kind):
    assert kind_from_name(name) == kind


@pytest.mark.parametrize("data, kind", [
    ({"stations": [{"station_id": "1", "num_bikes_available": 0}]}, "station_status"),
    ({"stations": [{"station_id": "1", "name": "A", "lat": 1, "lon": 2}]}, "station_information"),
    ({"bikes": []}, "free_bike_status"),
    ({"vehicles": []}, "vehicle_status"),
    ({"vehicle_types": []}, "vehicle_types"),
    ({"system_id": "x", "name": "X"}, "system_information"),
    ({"en": {"feeds": []}}, "gbfs"),
    ({"something": 1}, None),
])
def test_snapshot_kind_comes_from_its_contents_when_the_name_says_nothing(data, kind):
    assert kind_from_content({"data": data}) == kind


def test_last_updated_is_posix_seconds_before_3_0_and_rfc3339_in_3_0():
    assert epoch_of(1644883221) == 1644883221
    assert epoch_of("2022-02-15T00:00:21Z") == 1644883221
    assert epoch_of("2022-02-15T01:00:21+01:00") == 1644883221
    assert epoch_of("2022-02-15T00:00:21") is None  # no offset: not a time GBFS allows
    assert epoch_of("soon") is None and epoch_of(None) is None and epoch_of(True) is None
