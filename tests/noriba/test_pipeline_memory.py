"""noriba.pipeline: the memory a feed's parse and rules freed goes back to the system after a big feed, not a small one."""

from __future__ import annotations

from tests.conftest import MINI_FEED, make_spec, write_feed


def _gave_back(tmp_path, monkeypatch, *, rows: int) -> int:
    import noriba.pipeline as pipeline
    from warehouse.workspace import Workspace

    calls = []
    monkeypatch.setattr(pipeline, "give_back_memory", lambda: calls.append(1))
    monkeypatch.setattr(pipeline, "GIVE_BACK_ROWS", rows)
    ws = Workspace(tmp_path / "h").ensure()
    spec = make_spec("mini", write_feed(tmp_path / "f", MINI_FEED))
    staged = pipeline.stage(spec, ws, pipeline.fetch(spec, ws))
    assert not staged["unchanged"] and staged["rows_in"] > 5
    return len(calls)


def test_a_small_feed_keeps_its_freed_memory_for_the_next_feed(tmp_path, monkeypatch):
    """Below GIVE_BACK_ROWS rows the collection and heap trim (~17 ms a feed) are skipped."""
    assert _gave_back(tmp_path, monkeypatch, rows=250_000) == 0


def test_a_big_feed_gives_back_memory_after_its_parse_and_after_its_rules(tmp_path, monkeypatch):
    """At or above GIVE_BACK_ROWS rows (here 1) the freed memory is given back twice: after the parse, after the rules."""
    assert _gave_back(tmp_path, monkeypatch, rows=1) == 2
