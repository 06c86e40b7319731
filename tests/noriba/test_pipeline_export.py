"""A feed run builds its export while the version is published (noriba.pipeline.start_export / finish_export)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import MINI_FEED, make_spec, write_feed


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("noriba-export")]


def test_the_export_is_built_while_the_version_is_published(ws, tmp_path, monkeypatch):
    from noriba import pipeline
    from warehouse import export as wx

    exported = threading.Event()
    seen: dict[str, object] = {}
    build = wx.export_version

    def export_version(*a, **k):
        seen["thread"] = threading.current_thread().name
        try:
            return build(*a, **k)
        finally:
            exported.set()

    publish = pipeline.publish_step

    def publish_step(*a, **k):  # the publish waits for the export: done in turn, this would wait in vain
        seen["whole_before_publish"] = exported.wait(timeout=60)
        return publish(*a, **k)

    monkeypatch.setattr(wx, "export_version", export_version)
    monkeypatch.setattr(pipeline, "publish_step", publish_step)
    out = pipeline.run_feed(make_spec("port-bus", write_feed(tmp_path / "in", MINI_FEED)), ws, contracts=False)
    assert seen == {"thread": seen["thread"], "whole_before_publish": True} and str(seen["thread"]).startswith("noriba-export")
    assert out["status"] == "new" and out["exports"]["gtfs_zip"].endswith(".zip") and _threads() == []


def test_a_failed_publish_waits_for_the_export_and_the_rerun_finishes(ws, tmp_path, monkeypatch):
    from noriba import pipeline

    publish = pipeline.publish_step

    def failing(*a, **k):
        raise OSError("disk full")

    spec = make_spec("port-bus", write_feed(tmp_path / "in", MINI_FEED))
    monkeypatch.setattr(pipeline, "publish_step", failing)
    with pytest.raises(OSError, match="disk full"):
        pipeline.run_feed(spec, ws, contracts=False)
    assert _threads() == []  # no export thread outlives the run
    monkeypatch.setattr(pipeline, "publish_step", publish)
    out = pipeline.run_feed(spec, ws, contracts=False)
    from warehouse.export import is_exported

    assert out["status"] in ("new", "published") and out["exports"] is not None and is_exported(ws, "port-bus", out["feed_version"])
