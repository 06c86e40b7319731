"""docker/: the compose file is valid, binds the host's loopback only, keeps secrets out, and the image installs uv.lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
SERVICES = {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "airflow-init", "noriba-serve", "noriba-rt-archiver"}
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_SECRET_KEY", "AIRFLOW_JWT_SECRET")


def _compose() -> str:
    found = shutil.which("docker-compose")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs it")
        pytest.skip("docker-compose is not installed here")
    return found


def _project(tmp_path, env: dict[str, str] | None):
    """Return the compose file in a copy of the project layout, with a docker/.env of ``env`` (none if None)."""
    (tmp_path / "docker").mkdir()
    (tmp_path / "specs").mkdir()
    shutil.copy(DOCKER / "docker-compose.yaml", tmp_path / "docker")
    if env is not None:
        (tmp_path / "docker" / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return tmp_path / "docker" / "docker-compose.yaml"


def _config(compose_file) -> subprocess.CompletedProcess:
    return subprocess.run([_compose(), "-f", str(compose_file), "config"], capture_output=True, text=True, timeout=60)


def test_compose_file_is_valid_and_has_every_service(tmp_path):
    done = _config(_project(tmp_path, {k: f"test-{k.lower()}" for k in SECRETS}))
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["services"]) == SERVICES
    assert config["services"]["airflow-worker"]["command"] in ("celery worker", ["celery", "worker"])
    assert config["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_compose_publishes_ports_on_the_host_loopback_only(tmp_path):
    done = _config(_project(tmp_path, {k: "x" for k in SECRETS}))
    published = [p for s in yaml.safe_load(done.stdout)["services"].values() for p in s.get("ports", [])]
    assert published, "the UI and the catalog are published"
    assert all(str(p).startswith("127.0.0.1:") for p in published), published


def test_catalog_server_can_write_the_catalog_it_refreshes(tmp_path):
    """`noriba serve` rewrites the catalog pages under exports/ at start, so NORIBA_HOME must not be mounted read-only."""
    done = _config(_project(tmp_path, {k: "x" for k in SECRETS}))
    volumes = yaml.safe_load(done.stdout)["services"]["noriba-serve"]["volumes"]
    home = [v for v in volumes if (v["target"] if isinstance(v, dict) else v.split(":")[1]) == "/data/noriba"]
    assert home, volumes
    assert all(not (v.get("read_only") if isinstance(v, dict) else v.endswith(":ro")) for v in home), home


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    done = _config(_project(tmp_path, {}))
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in docker/.env" in done.stderr + done.stdout


def test_no_secret_is_written_in_the_compose_file_or_the_example():
    text = (DOCKER / "docker-compose.yaml").read_text()
    assert not re.search(r"^\s+\w*(PASSWORD|SECRET|FERNET_KEY)\w*:[ \t]*(?!\$\{)\S", text, re.M), "a secret must come from docker/.env"
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert set(SECRETS) <= set(example)
    assert all(example[k] in ("", "change-me", "change-me-too") for k in SECRETS)
    assert "docker/.env" in (ROOT / ".gitignore").read_text().split()


def _locked() -> dict[str, dict]:
    return {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}


def _closure(locked: dict[str, dict], roots: list[dict]) -> dict[str, str]:
    """Return {name: version} of ``roots`` and everything they depend on in uv.lock (extras followed)."""
    out: dict[str, str] = {}
    todo = list(roots)
    seen = set()
    while todo:
        dep = todo.pop()
        key = (dep["name"], tuple(dep.get("extra", ())))
        if key in seen:
            continue
        seen.add(key)
        pkg = locked[dep["name"]]
        out[pkg["name"]] = pkg["version"]
        todo += pkg.get("dependencies", [])
        for extra in dep.get("extra", ()):
            todo += pkg.get("optional-dependencies", {}).get(extra, [])
    return out


def test_image_installs_exactly_the_locked_runtime_and_deploy_packages():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    locked = _locked()
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(locked['apache-airflow']['version'])}$", dockerfile, re.M), \
        "the base image must be the locked Airflow version"
    py = re.search(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", dockerfile, re.M).group(1)
    assert tuple(map(int, py.split("."))) >= (3, 11)
    export = re.search(r"uv (export [^\n&\\]+)", dockerfile).group(1).split()
    if "-o" in export:  # print to stdout instead of the image's file
        i = export.index("-o")
        del export[i:i + 2]
    uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
    exported = subprocess.run([*uv, *export], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", exported, re.M))
    noriba = locked["noriba"]
    expected = _closure(locked, [*noriba["dependencies"], *noriba["dev-dependencies"]["deploy"]])
    # a local path dependency (native/noriba_wire) is not pinned by version: the image builds it from its folder
    local = {n: p["source"]["directory"] for n, p in locked.items() if "directory" in p.get("source", {}) and n in expected}
    for name, folder in local.items():
        assert f"COPY --chown=airflow:0 {folder} " in dockerfile and f"--no-emit-package {name}" in dockerfile, name
        del expected[name]
    assert {k.lower(): v for k, v in pins.items()} == {k.lower(): v for k, v in expected.items()}
    # nothing else reaches the image: every install is the lock's export, uv itself, or the project with --no-deps
    for line in re.findall(r"(?:pip|uv pip) install[^\n\\&]*", dockerfile):
        assert "-r /tmp/requirements.txt" in line or line.rstrip().endswith(" uv") or "--no-deps" in line, line
