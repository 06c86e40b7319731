"""The pipeline steps as functions of JSON-able values, for Airflow tasks.

Each wraps the step of :mod:`noriba.pipeline` that ``noriba run`` chains: it loads the spec
``specs/feeds/<feed_id>.yml`` and the workspace (``NORIBA_HOME``), and passes dicts along.
"""

from __future__ import annotations

from noriba.workspace import Workspace


def _spec(feed_id: str):
    from noriba.specs import load_spec
    from transforms.schema import default_specs_dir

    return load_spec(default_specs_dir() / "feeds" / f"{feed_id}.yml")


def fetch(feed_id: str) -> dict:
    from noriba import pipeline

    return pipeline.fetch(_spec(feed_id), Workspace.from_env())


def parse_validate(feed_id: str, fetched: dict) -> dict:
    """Stage and validate the fetched input; the version's report is written under reports/ (see pipeline.stage)."""
    from noriba import pipeline

    return pipeline.stage(_spec(feed_id), Workspace.from_env(), fetched)


def write_lake(staged: dict) -> dict:
    from noriba import pipeline

    return pipeline.write_lake(Workspace.from_env(), staged)


def publish(lake: dict) -> dict:
    from noriba import pipeline

    return pipeline.publish_step(Workspace.from_env(), lake)


def contracts(published: dict) -> dict:
    """Run the version's Great Expectations contracts; results go to quality.expectation_results."""
    from noriba import pipeline

    return pipeline.contracts_step(Workspace.from_env(), published)


def export(published: dict) -> dict:
    """Export the published version; a version its policy blocked is not exported and the task log says why."""
    import logging

    from noriba import pipeline

    out = pipeline.export_step(Workspace.from_env(), published)
    if out.get("export_refused"):
        logging.getLogger(__name__).warning("%s", out["export_refused"])
    return out


def build_export(export_id: str) -> dict:
    """Build the export ``specs/exports/<export_id>.yml`` from the latest feed versions; unchanged inputs do nothing."""
    from noriba.exports import build_export as build

    out = build(export_id, Workspace.from_env())
    return {k: out.get(k) for k in ("export_id", "export_version", "status", "manifest", "validation")}
