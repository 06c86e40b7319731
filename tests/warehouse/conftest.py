"""Fixtures for export tests: real-data exports built once per test session and shared by the test files."""

from __future__ import annotations

import fcntl
import os

import pytest

from tests.conftest import shared


def build_cached(tmp_path_factory, export_id: str, data: tuple[str, ...]):
    """Return (workspace, build result) of the repo's export spec ``export_id``, built once per session.

    Under pytest-xdist every worker shares the folder and a file lock, so the feeds are ingested once.
    """
    from noriba.exports import build_export
    from warehouse.workspace import Workspace

    shared(*data)
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's basetemp is inside the session's folder: share that one, never a previous session's
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"export-cache-{export_id}"
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root / "home").ensure()
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        result = build_export(export_id, ws)
    return ws, result


@pytest.fixture(scope="session")
def sfbay_export(tmp_path_factory):
    return build_cached(tmp_path_factory, "sfbay-511-2018", ("gtfs", "world", "sfbay-511-2018"))


@pytest.fixture(scope="session")
def gunma_export(tmp_path_factory):
    return build_cached(tmp_path_factory, "gunma-2019", ("gtfs", "jp", "corpus-2019", "feeds"))
