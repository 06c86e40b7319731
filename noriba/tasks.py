"""The pipeline steps as functions of JSON-able values, for Airflow tasks.

Each wraps the step of :mod:`noriba.pipeline` that ``noriba run`` chains: it loads the spec
``specs/feeds/<feed_id>.yml`` and the workspace (``NORIBA_HOME``), and passes dicts along.
"""

from __future__ import annotations

from warehouse.workspace import Workspace


def _log():
    import logging

    return logging.getLogger(__name__)


def _sync_up(ws: Workspace) -> None:
    """With NORIBA_HOME on object storage, send what a trips step wrote (the trips pipeline has no finer hooks)."""
    from warehouse.storage import sync_up

    sync_up(ws)


def _spec(feed_id: str):
    from noriba.specs import load_spec
    from transforms.schema import default_specs_dir

    return load_spec(default_specs_dir() / "feeds" / f"{feed_id}.yml")


def fetch(feed_id: str) -> dict:
    """Fetch the feed's input. If it fails, the failure is counted for notifications (noriba.notify)."""
    from noriba import notify, pipeline

    spec, ws = _spec(feed_id), Workspace.from_env()
    try:
        return pipeline.fetch(spec, ws)
    except Exception as exc:
        notify.failure(spec, ws, exc)
        raise


def parse_validate(feed_id: str, fetched: dict) -> dict:
    """Stage and validate the fetched input; the version's report is written under reports/ (see pipeline.stage).

    The outcome goes to the spec's notifications (a blocked or expiring version; a failure is counted).
    """
    from noriba import notify, pipeline

    spec, ws = _spec(feed_id), Workspace.from_env()
    try:
        staged = pipeline.stage(spec, ws, fetched)
    except Exception as exc:
        notify.failure(spec, ws, exc)
        raise
    notify.outcome(spec, ws, staged)
    return staged


def write_lake(staged: dict) -> dict:
    from noriba import pipeline

    return pipeline.write_lake(Workspace.from_env(), staged)


def publish(lake: dict) -> dict:
    from noriba import pipeline

    return pipeline.publish_step(Workspace.from_env(), lake)


def contracts(published: dict) -> dict:
    """Run the version's Great Expectations contracts (results go to quality.expectation_results), unless an unchanged
    version has them already: a run interrupted before storing them is finished here."""
    from noriba import pipeline

    out = pipeline.contracts_step(Workspace.from_env(), published)
    if published.get("status") == "unchanged" and out.get("contracts"):
        _log().info("%s: input unchanged; finished the data contracts left by an interrupted run", published["feed_id"])
    return out


def export(published: dict) -> dict:
    """Export the published version (unless an unchanged version's export is complete); a version its policy blocked
    is not exported and the task log says why."""
    from noriba import pipeline

    out = pipeline.export_step(Workspace.from_env(), published)
    if out.get("export_refused"):
        _log().warning("%s", out["export_refused"])
    elif published.get("status") == "unchanged" and out.get("exports"):
        _log().info("%s: input unchanged; finished the export left by an interrupted run", published["feed_id"])
    return out


def build_export(export_id: str) -> dict:
    """Build the export ``specs/exports/<export_id>.yml`` from the latest feed versions; unchanged inputs do nothing."""
    from noriba.exports import build_export as build

    out = build(export_id, Workspace.from_env())
    return {k: out.get(k) for k in ("export_id", "export_version", "status", "manifest", "validation")}


# --- trips and zones (specs/trips/), the steps `noriba trips` chains in noriba.trips_pipeline.run_trips ---

def _trip_spec(source_id: str):
    from noriba.specs import load_trip_specs

    specs = {s.id: s for s in load_trip_specs()}
    return specs[source_id], specs


def publish_zones(layer_id: str) -> dict:
    """Publish a zone layer (kind zones) into trips.zones; return its zone count and notices."""
    from noriba.trips_pipeline import run_trips

    spec, _ = _trip_spec(layer_id)
    out = run_trips(spec, ws := Workspace.from_env())
    _sync_up(ws)
    return {k: out[k] for k in ("feed_id", "status", "zones", "message")}


def trips_fetch(source_id: str) -> dict:
    """Archive the source's files; return them and the version they make."""
    from noriba.trips_pipeline import fetch_trips

    spec, _ = _trip_spec(source_id)
    return fetch_trips(spec, Workspace.from_env())


def trips_parse_validate(source_id: str, fetched: dict) -> dict:
    """Stage the source (mapping, rules, zones); a version already in the lake is not staged again."""
    from noriba.trips_pipeline import lake_version, parse_validate_trips

    ws = Workspace.from_env()
    spec, specs = _trip_spec(source_id)
    if lake_version(ws, source_id) == fetched["feed_version"]:
        return {"source_id": source_id, "feed_version": fetched["feed_version"], "unchanged": True}
    staged = parse_validate_trips(spec, ws, fetched, specs=specs)
    return {k: v for k, v in staged.items() if k != "rule_counts"}


def trips_write_lake(staged: dict) -> dict:
    from noriba.trips_pipeline import write_trips_lake

    out = write_trips_lake(ws := Workspace.from_env(), staged)
    _sync_up(ws)
    return out


def trips_publish(lake: dict) -> dict:
    """Publish the source's lake partitions (one transaction); an already published version does nothing."""
    from warehouse.trips import published_version, publish_trips

    ws = Workspace.from_env()
    sid, ver = lake["source_id"], lake["feed_version"]
    if published_version(ws, sid) == ver:
        return {"source_id": sid, "feed_version": ver, "status": "unchanged"}
    return {"source_id": sid, "feed_version": ver, "status": "new", "published": publish_trips(ws, sid)}


def trips_export(published: dict) -> dict:
    """Write the source's privacy-safe aggregates under exports/trips/<id>/ (and mark the version exported)."""
    from noriba.trips_pipeline import export_step

    spec, _ = _trip_spec(published["source_id"])
    out = {**published, "exports": export_step(spec, ws := Workspace.from_env(), published["feed_version"])}
    _sync_up(ws)
    return out
