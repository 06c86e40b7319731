"""Validation alone: read, type and check one feed, judge it by its policy, write its report; publish nothing.

The input is fetched and staged in a scratch workspace that is removed afterwards, so nothing
reaches ``raw/``, the lake or the warehouse; only ``reports/<feed_id>/<version>/`` is written.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path

from noriba.specs import FeedSpec
from warehouse.workspace import Workspace
from transforms.adapters import Progress


def validate_feed(spec: FeedSpec, ws: Workspace, *, validation_date: date | None = None,
                  progress: Progress | None = None) -> tuple[dict, dict]:
    """Return the report of ``spec``'s current input and the paths of its report.json and report.html.

    If the input cannot be read, then InputError (or the fetch error) is raised and nothing is written.
    """
    from noriba import pipeline
    from noriba.report import build_report, staged_sources, write_report

    tmp = Path(tempfile.mkdtemp(prefix="noriba-validate-"))
    try:
        scratch = Workspace(tmp).ensure()
        fetched = pipeline.fetch(spec, scratch)
        staged = pipeline.parse_validate(spec, scratch, fetched, progress=progress, validation_date=validation_date, export=False)
        report = build_report(spec.id, staged["feed_version"], staged_sources(Path(staged["staging_dir"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ws.reports.mkdir(parents=True, exist_ok=True)
    return report, write_report(ws, report)


def brief(report: dict, paths: dict, *, examples: int = 3) -> dict:
    """Return the report without its long sample lists, with the report paths: what `noriba validate --json` prints."""
    out = {k: v for k, v in report.items() if k != "notices"}
    out["notices"] = [{**{k: v for k, v in d.items() if k != "samples"}, "samples": d["samples"][:examples]} for d in report["notices"]]
    out["report_json"], out["report_html"] = paths["json"], paths["html"]
    return out
