"""The gtfs-rt spec kind: its `realtime:` section is checked by the safe spec loader, with every mistake named."""

from __future__ import annotations

import pytest

from noriba.specs import SpecError, load_rt_specs, load_specs, parse_spec
from tests.conftest import ROOT


def _parse(**realtime):
    doc = {"id": "minato-bus-rt", "kind": "gtfs-rt", "timezone": "Asia/Tokyo", "realtime": realtime}
    return parse_spec(doc, where="minato-bus-rt.yml", root=ROOT)


def _problems(**realtime) -> str:
    with pytest.raises(SpecError) as exc:
        _parse(**realtime)
    return "\n".join(exc.value.problems)


def test_realtime_spec_with_three_urls_gets_the_defaults():
    spec = _parse(static="minato-city-bus", vehicle_positions="https://example.jp/vp.pb", trip_updates="https://example.jp/tu.pb",
                  alerts="https://example.jp/al.pb", headers={"X-Api-Key": {"env": "ODPT_KEY"}})
    rt = spec.realtime
    assert spec.kind == "gtfs-rt" and spec.timezone == "Asia/Tokyo"
    assert rt["urls"] == {"vehicle_positions": "https://example.jp/vp.pb", "trip_updates": "https://example.jp/tu.pb",
                          "alerts": "https://example.jp/al.pb"}
    assert rt["static"] == "minato-city-bus" and rt["poll_s"] == 20.0
    assert rt["headers"] == {"X-Api-Key": "ODPT_KEY"}  # the variable's name, never its value


def test_one_combined_url_is_enough_and_poll_interval_is_read():
    assert _parse(combined="http://127.0.0.1:9/all.pb", poll_s=15).realtime["poll_s"] == 15.0


def test_a_secret_written_in_the_spec_is_refused():
    text = _problems(vehicle_positions="https://example.jp/vp.pb", headers={"X-Api-Key": "abc123"})
    assert "realtime.headers.X-Api-Key" in text and "{env: NAME}" in text


def test_each_mistake_of_the_section_is_named_with_its_field():
    text = _problems(vehicle_position="https://example.jp/vp.pb", poll_s=0, combined="ftp://x", trip_updates="https://x/tu.pb",
                     params={"key": {"env": "not a name"}})
    assert "realtime.vehicle_position: unknown key; did you mean 'vehicle_positions'?" in text
    assert "realtime.poll_s" in text
    assert "realtime.combined" in text
    assert "realtime.params.key.env" in text


def test_a_realtime_spec_without_urls_or_with_a_source_is_refused():
    assert "give at least one of vehicle_positions" in _problems(static="x")
    with pytest.raises(SpecError) as exc:
        parse_spec({"id": "x", "kind": "gtfs-rt", "source": {"url": "https://x/vp.pb"}, "realtime": {"combined": "https://x/a.pb"}},
                   where="x.yml", root=ROOT)
    assert "a gtfs-rt feed gives its URLs under `realtime:`" in exc.value.problems[0]


def test_a_static_feed_with_a_realtime_section_is_refused():
    with pytest.raises(SpecError) as exc:
        parse_spec({"id": "x", "kind": "gtfs", "source": {"path": "x.zip"}, "realtime": {"combined": "https://x/a.pb"}},
                   where="x.yml", root=ROOT)
    assert "only a feed of kind gtfs-rt has a `realtime:` section" in exc.value.problems[0]


def test_realtime_specs_are_kept_out_of_the_static_feeds(tmp_path):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "bus-rt.yml").write_text("id: bus-rt\nkind: gtfs-rt\nrealtime:\n  combined: https://x/a.pb\n")
    (tmp_path / "feeds" / "bus.yml").write_text("id: bus\nkind: gtfs\nsource: {path: bus.zip}\n")
    assert [s.id for s in load_specs(tmp_path)] == ["bus"]
    specs, problems = load_rt_specs(tmp_path)
    assert [s.id for s in specs] == ["bus-rt"] and problems == []


def test_the_example_in_specs_readme_is_a_valid_spec():
    from transforms.specfile import load_yaml_text

    block = (ROOT / "specs" / "README.md").read_text().split("## Realtime feeds")[1].split("```yaml")[1].split("```")[0]
    spec = parse_spec(load_yaml_text(block, where="specs/README.md"), where="specs/README.md", root=ROOT)
    assert spec.realtime["params"] == {"acl:consumerKey": "ODPT_KEY"} and len(spec.realtime["urls"]) == 3
