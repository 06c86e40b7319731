"""The pipeline steps as functions of JSON-able values: what Airflow tasks and the CLI both call.

Each takes the previous step's dict and returns the next; the workspace comes from
``NORIBA_HOME`` and the spec from ``specs/feeds/<feed_id>.yml``.
"""

from __future__ import annotations

from noriba.workspace import Workspace


def _spec(feed_id: str):
    from noriba.specs import load_spec
    from transforms.schema import default_specs_dir

    return load_spec(default_specs_dir() / "feeds" / f"{feed_id}.yml")


def fetch(feed_id: str, *, home: str | None = None) -> dict:
    """Return the archived input of the feed and, if it was ingested before, its version."""
    from noriba import pipeline

    return pipeline.fetch(_spec(feed_id), Workspace.from_env(home))


def parse_validate(feed_id: str, fetched: dict, *, home: str | None = None) -> dict:
    """Return the staged version. If the input is known, then nothing is parsed and unchanged is true."""
    from noriba import pipeline

    if fetched.get("known_version"):
        return {"feed_id": feed_id, "feed_version": fetched["known_version"], "unchanged": True, "staging_dir": None}
    return pipeline.parse_validate(_spec(feed_id), Workspace.from_env(home), fetched)


def write_lake(staged: dict, *, home: str | None = None) -> dict:
    from noriba import pipeline

    return pipeline.write_lake(Workspace.from_env(home), staged)


def publish(lake: dict, *, home: str | None = None) -> dict:
    """Return the lake dict with what was published. If the version is already published and unchanged, then nothing is done."""
    from warehouse.publish import is_published, publish as publish_version

    ws = Workspace.from_env(home)
    if lake.get("unchanged") and is_published(ws, lake["feed_id"], lake["feed_version"]):
        return {**lake, "published": {}, "status": "unchanged"}
    return {**lake, **publish_version(ws, lake["feed_id"], lake["feed_version"]), "status": "published"}


def export(published: dict, *, home: str | None = None) -> dict:
    from warehouse.export import export_version

    if published.get("status") == "unchanged":
        return {**published, "exports": None}
    return {**published, "exports": export_version(Workspace.from_env(home), published["feed_id"], published["feed_version"])}
