"""Isolate Airflow for the DAG tests: its config is read once, when airflow is first imported.

So AIRFLOW_HOME and friends are set here, at conftest import time, before any DAG test imports
airflow; each pytest-xdist worker gets its own temporary home and SQLite metadata database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

if "airflow" not in sys.modules:
    _HOME = Path(tempfile.mkdtemp(prefix="noriba_airflow_"))
    atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
    os.environ.update({
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
    })


@pytest.fixture(scope="session")
def airflow_db():
    """Create the metadata database once, with the one-slot publish pool the DAGs use."""
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    initdb()
    Pool.create_or_update_pool(name="noriba_publish", slots=1, description="single DuckDB writer", include_deferred=False)
