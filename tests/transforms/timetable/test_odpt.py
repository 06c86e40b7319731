import pytest

from tests.conftest import shared
from transforms.adapters import InputError
from transforms.timetable.odpt import read_odpt_patterns


def test_odpt_route_patterns_are_read_with_ordered_poles():
    path = shared("jp-sources", "odpt-toei-bus-2017", "bus_routes.json")
    patterns, poles = read_odpt_patterns(path.read_bytes(), path.name)
    assert len(patterns) == 887
    assert sum(len(p.stops) for p in patterns) == 17_101
    first = patterns[0]
    assert first.pattern_id == "odpt.BusroutePattern:Toei.Shinko21.68806.1"
    assert [s.name for s in first.stops] == ["東小松川車庫前", "船堀駅前"]
    pole = poles.stops["odpt.BusstopPole:Toei.Funaboriekimae.2032.3"]
    assert (pole.name, pole.code, pole.platform) == ("船堀駅前", "2032", "3")


def test_odpt_json_that_is_not_patterns_is_refused():
    with pytest.raises(InputError, match="item 0: @type is 'odpt:Station'"):
        read_odpt_patterns(b'[{"@type": "odpt:Station"}]', "x.json")
    with pytest.raises(InputError, match="x.json: line 1"):
        read_odpt_patterns(b"[{", "x.json")
