"""The DAG's task functions produce the same report and policy verdict as `noriba run`."""

from __future__ import annotations

import json
import shutil

from tests.conftest import MINI_FEED, ROOT, write_feed


def test_dag_tasks_write_the_report_and_refuse_a_blocked_export(tmp_path, monkeypatch):
    from noriba import tasks

    bad = {**MINI_FEED, "stop_times.txt": MINI_FEED["stop_times.txt"].replace(",S2,2", ",S9,2")}
    src = write_feed(tmp_path / "in", bad)
    shutil.copytree(ROOT / "specs" / "schemas", tmp_path / "specs" / "schemas")
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "specs" / "feeds" / "my-bus.yml").write_text(f"id: my-bus\nkind: gtfs\nsource: {{path: {src}}}\n", encoding="utf-8")
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path / "specs"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    staged = tasks.parse_validate("my-bus", tasks.fetch("my-bus"))
    report = json.loads(open(staged["report"]["json"], encoding="utf-8").read())
    assert report["policy"]["blocked_by"] == {"foreign_key_violation": 1}
    out = tasks.export(tasks.publish(tasks.write_lake(staged)))
    assert out["exports"] is None and "foreign_key_violation ×1" in out["export_refused"]


def test_dag_tasks_of_an_unchanged_input_finish_the_contracts_and_export_an_interrupted_run_left(tmp_path, monkeypatch):
    from pathlib import Path

    from noriba import tasks

    src = write_feed(tmp_path / "in", MINI_FEED)
    for folder in ("schemas", "expectations"):
        shutil.copytree(ROOT / "specs" / folder, tmp_path / "specs" / folder)
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "specs" / "feeds" / "my-bus.yml").write_text(f"id: my-bus\nkind: gtfs\nsource: {{path: {src}}}\n", encoding="utf-8")
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path / "specs"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))

    def through_publish() -> dict:
        return tasks.publish(tasks.write_lake(tasks.parse_validate("my-bus", tasks.fetch("my-bus"))))

    assert through_publish()["status"] == "published"  # then the worker died: no contracts, no export
    again = through_publish()
    assert again["status"] == "unchanged"
    out = tasks.export(tasks.contracts(again))
    assert out["contracts"]["expectations"] > 0 and Path(out["exports"]["gtfs_zip"]).is_file()
    done = tasks.export(tasks.contracts(through_publish()))
    assert done["contracts"] is None and done["exports"] is None
