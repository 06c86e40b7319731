"""The two README commands and a plain `uv run` share one environment, and `uv run` stays quiet."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _uv() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    return [sys.executable, "-m", "uv"]


def _make_dry_run(target: str) -> str:
    return subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_demo_and_test_sync_the_same_environment():
    # make demo used to sync --no-dev, a later `uv run` put the dev group back and the next make demo removed it again
    syncs = {t: [line for line in _make_dry_run(t).splitlines() if " sync " in line] for t in ("demo", "test")}
    assert syncs["demo"] and syncs["demo"] == syncs["test"]
    assert not any(re.search(r"--no-dev|--no-group|--only-", line) for line in syncs["demo"])


def test_plain_uv_run_installs_nothing_and_compiles_nothing():
    if not (ROOT / ".venv").exists():
        pytest.skip("no project environment (.venv) to check")
    env = {k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"}
    dry = subprocess.run([*_uv(), "sync", "--frozen", "--dry-run"], cwd=ROOT, capture_output=True, text=True, env=env)
    # the environment tests run in is the default one: no package to add or remove (noriba itself is
    # rebuilt after an edit of pyproject.toml, which is not what this is about)
    changes = [line for line in (dry.stdout + dry.stderr).splitlines() if line[:3] in (" - ", " + ") and "noriba" not in line]
    assert dry.returncode == 0 and changes == [], dry.stderr
    run = subprocess.run([*_uv(), "run", "--frozen", "python", "-c", "print('ok')"], cwd=ROOT, capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "ok"
    assert "Bytecode compiled" not in run.stderr and "Installed" not in run.stderr, run.stderr
