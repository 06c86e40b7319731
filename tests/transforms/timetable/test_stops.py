import pytest

from tests.conftest import shared
from transforms.adapters import InputError
from transforms.timetable.stops import (
    StopList, Stop, StopMatcher, normalise_name, read_p11_stops, read_table_stops, stem_name, to_wgs84,
)


def test_names_are_normalised_for_width_kana_spaces_and_ke():
    assert normalise_name("ＪＡ みなと漁港前") == normalise_name("JAみなと漁港前")
    assert normalise_name("ｴﾈﾙｷﾞｰ前") == normalise_name("エネルギー前") == normalise_name("えねるぎー前")
    assert normalise_name("緑ヶ丘") == normalise_name("緑ケ丘")
    assert normalise_name("知利別２丁目") == normalise_name("知利別2丁目")
    assert stem_name("市役所前") == stem_name("市役所") and stem_name("東室蘭駅") == "東室蘭"


def _matcher():
    stops = StopList("stops.csv")
    for sid, name in [("S1", "市役所前"), ("S2", "緑ケ丘"), ("S3", "中央町"), ("S4", "中央町"), ("S5", "港前")]:
        stops.stops[sid] = Stop(sid, name, 43.0, 141.0)
    return StopMatcher(stops)


def test_stop_names_match_after_normalisation_and_suffixes():
    m = _matcher()
    assert m.match("市役所").stop.stop_id == "S1"
    assert m.match("緑ヶ丘").stop.stop_id == "S2"
    assert m.match("港前").how == "exact"


def test_unmatched_and_ambiguous_names_give_candidates_not_guesses():
    m = _matcher()
    none = m.match("港町")
    assert none.stop is None and none.how == "none" and "港前 (S5)" in none.candidates
    amb = m.match("中央町")
    assert amb.stop is None and amb.how == "ambiguous" and set(amb.candidates) == {"中央町 (S3)", "中央町 (S4)"}


def test_jgd2011_plane_rectangular_coordinates_become_wgs84():
    # the origin of zone IX (36°N, 139°50′E) is X = 0, Y = 0
    lat, lon = to_wgs84(0.0, 0.0, "jgd2011:9")
    assert lat == pytest.approx(36.0, abs=1e-9) and lon == pytest.approx(139 + 50 / 60, abs=1e-9)
    # 1 km north of the zone XII origin (44°N, 142°15′E)
    lat, lon = to_wgs84(1000.0, 0.0, "EPSG:6680")
    assert lat == pytest.approx(44.009, abs=1e-3) and lon == pytest.approx(142.25, abs=1e-6)


def test_stop_list_in_shift_jis_with_plane_coordinates(tmp_path):
    data = "番号,名前,X,Y\r\n1,髙﨑病院前,0,0\r\n".encode("cp932")
    stops = read_table_stops(data, "停留所.csv", columns={"id": "番号", "name": "名前", "x": "X", "y": "Y"}, crs="jgd2011:9")
    s = stops.stops["1"]
    assert s.name == "髙﨑病院前" and s.lat == pytest.approx(36.0) and s.lon == pytest.approx(139.8333333)


def test_stop_list_row_without_coordinates_names_its_line():
    data = "id,name,lat,lon\nS1,港前,43.3,141.4\nS2,駅前,,141.4\n".encode()
    with pytest.raises(InputError, match=r"stops.csv: line 3: stop '駅前' has no readable coordinates"):
        read_table_stops(data, "stops.csv", columns={"id": "id", "name": "name", "lat": "lat", "lon": "lon"})


def test_p11_with_shifted_columns_names_the_first_line():
    path = shared("jp-sources", "ksj-p11-bus-stops", "kanagawa_bus_stops_kokudonumerical.csv")
    with pytest.raises(InputError) as exc:
        read_p11_stops(path.read_bytes(), path.name)
    msg = str(exc.value)
    assert msg.startswith("kanagawa_bus_stops_kokudonumerical.csv: line 2: column 'municipality' holds '富士急バス(株)'")
    assert "shifted" in msg and "of 10706 rows" in msg


def test_p11_read_as_a_stop_source_once_its_columns_are_declared():
    path = shared("jp-sources", "ksj-p11-bus-stops", "tokyo_bus_stops_kokudonumerical.csv")
    stops = read_p11_stops(path.read_bytes(), path.name, columns={"municipality": None, "operator": "municipality"})
    # 12,389 rows; rows with the same name and point (one pole listed per operator) are one stop
    assert 10_000 < len(stops.stops) <= 12_389
    first = next(iter(stops.stops.values()))
    assert first.name == "中央診療所" and first.lat == pytest.approx(34.1222521) and first.line == 2
    assert StopMatcher(stops).match("中央診療所").stop is not None
