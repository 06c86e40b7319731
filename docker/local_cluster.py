"""Noriba's production topology without containers: Postgres, Redis and Airflow with two Celery workers.

``python docker/local_cluster.py up`` starts, in a private folder (default ``.cluster/`` of the
repository, or ``--dir``), every process of ``docker/docker-compose.yaml`` on this machine:

- PostgreSQL (Airflow's metadata and the Celery result backend) and Redis (the Celery broker);
- ``airflow db migrate``, the ``noriba_publish`` pool (one slot: DuckDB has one writer);
- api-server, scheduler, dag-processor, triggerer and two Celery workers (``--workers N``).

Everything listens on 127.0.0.1 only: Postgres and Redis are told so, the api-server gets
``--host 127.0.0.1``, and every component that would start Airflow's log server (which binds
all interfaces and has no host setting) runs with ``--skip-serve-logs``; logs are files under
``<dir>/airflow/logs``. ``down`` stops every process ``up`` started, by the PIDs recorded in
``<dir>/pids.json``, and nothing else; data stays in the folder for the next ``up``
(``down --wipe`` removes the folder). ``status`` says what runs. ``env`` prints the
environment to use the cluster's Airflow CLI from a shell: ``eval "$(python docker/local_cluster.py env)"``.

Postgres refuses to run as root: as root, the server runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = "pids.json"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class ClusterError(Exception):
    """A step of up/down failed; the message says which and what to do."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    for folder in sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise ClusterError(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return found


def _as_db_user(cmd: list[str]) -> list[str]:
    """Return ``cmd`` run as the postgres user when this process is root (Postgres refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _airflow() -> str:
    found = Path(sys.executable).with_name("airflow")
    if not found.exists():
        raise ClusterError("airflow is not installed in this environment: run `make test` once (it installs the locked environment)")
    return str(found)


def load_state(base: Path) -> dict:
    """Return the recorded state of the cluster in ``base``, or {} if none was started there."""
    path = base / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(base: Path, state: dict) -> None:
    tmp = base / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, base / STATE)


def airflow_env(base: Path, state: dict, *, noriba_home: str | None = None, specs: str | None = None) -> dict[str, str]:
    """Return the environment every Airflow process of the cluster runs with (also the CLI's, for ``env``)."""
    db = f"airflow@127.0.0.1:{state['postgres_port']}/airflow"
    env = {
        "AIRFLOW_HOME": str(base / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__FERNET_KEY": state["fernet_key"],
        "AIRFLOW__CORE__PARALLELISM": str(state.get("parallelism", 8)),
        # SQLAlchemy 2.1 maps postgresql:// to psycopg 3: name the drivers that are installed
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+asyncpg://{db}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{state['redis_port']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(state.get("concurrency", 2)),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(state["api_port"]),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{state['api_port']}",
        "AIRFLOW__API__SECRET_KEY": state["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": state["jwt_secret"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{state['api_port']}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(base / "airflow" / "passwords.json"),
        # a task whose worker died is failed (and retried) after this many seconds without a heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(state.get("heartbeat_timeout", 300)),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(base / "airflow" / "logs"),
        "NORIBA_HOME": noriba_home or state.get("noriba_home") or str(base / "noriba-data"),
        "NORIBA_SPECS": specs or state.get("specs") or str(ROOT / "specs"),
        **({"NORIBA_RETRY_DELAY_S": str(state["retry_delay_s"])} if state.get("retry_delay_s") else {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return env


def _run(cmd: list[str], *, env: dict | None = None, what: str, timeout: float = 300) -> str:
    full_env = {**os.environ, **(env or {})}
    try:
        done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{what}: no answer in {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise ClusterError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _start(base: Path, state: dict, name: str, cmd: list[str], env: dict | None = None) -> None:
    """Start one long-running process in its own session, logging to <base>/logs/<name>.log; record its PID."""
    log = open(base / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True, cwd=ROOT)
    log.close()
    state["processes"][name] = proc.pid
    _save_state(base, state)


def _wait_for(check, *, what: str, timeout: float, base: Path | None = None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    hint = f" (see {base / 'logs' / log})" if base and log else ""
    raise ClusterError(f"{what} did not start within {timeout:.0f} s{hint}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _postgres_dir(base: Path, old: dict) -> Path:
    """Return the folder of the Postgres data: ``<base>/postgres``, or, as root when the postgres user cannot
    reach ``base`` (a private temporary folder), a folder of its own under the system's temporary folder."""
    if old.get("postgres_dir") and Path(old["postgres_dir"]).exists():
        return Path(old["postgres_dir"])
    if os.geteuid() != 0 or subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(base)]).returncode == 0:
        return base / "postgres"
    import tempfile

    own = Path(tempfile.mkdtemp(prefix="noriba-cluster-pg-"))
    shutil.chown(own, "postgres", "postgres")
    return own / "data"


def _start_postgres(base: Path, state: dict) -> None:
    data = Path(state["postgres_dir"])
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        _run(_as_db_user([_pg_bin("initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8",
                          "--locale", "C.UTF-8"]), what="initdb")
    port = state["postgres_port"]
    _start(base, state, "postgres", _as_db_user([_pg_bin("postgres"), "-D", str(data), "-p", str(port),
                                                  "-c", "listen_addresses=127.0.0.1",
                                                  "-c", f"unix_socket_directories={data}",
                                                  *(["-c", "fsync=off"] if state.get("fast") else [])]))
    _wait_for(lambda: _port_open(port), what="PostgreSQL", timeout=60, base=base, log="postgres.log")
    sql = "SELECT 1 FROM pg_database WHERE datname = 'airflow'"
    psql = [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "-d", "postgres", "-tAc"]
    for _ in range(40):  # the port opens a moment before connections are accepted
        try:
            exists = _run([*psql, sql], what="psql").strip() == "1"
            break
        except ClusterError:
            time.sleep(0.5)
    else:
        raise ClusterError(f"PostgreSQL accepts no connection (see {base / 'logs' / 'postgres.log'})")
    if not exists:
        _run([*psql, "CREATE DATABASE airflow"], what="CREATE DATABASE airflow")


def _start_redis(base: Path, state: dict) -> None:
    server = shutil.which("redis-server")
    if not server:
        raise ClusterError("redis-server not found: install it (Debian: apt-get install redis-server)")
    (base / "redis").mkdir(exist_ok=True)
    port = state["redis_port"]
    _start(base, state, "redis", [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(base / "redis"),
                                  "--save", "", "--appendonly", "no", "--protected-mode", "yes"])
    _wait_for(lambda: _port_open(port), what="Redis", timeout=30, base=base, log="redis.log")


def up(base: Path, *, workers: int = 2, concurrency: int = 2, noriba_home: str | None = None,
       specs: str | None = None, heartbeat_timeout: int = 300, retry_delay_s: int | None = None,
       fast: bool = False, say=print) -> dict:
    """Return the state of a cluster started in ``base``. If one is already running there, then raise ClusterError."""
    base = base.resolve()
    old = load_state(base)
    if any(_alive(pid) for pid in old.get("processes", {}).values()):
        raise ClusterError(f"a cluster is already running in {base}: `python docker/local_cluster.py down --dir {base}` first")
    t0 = time.monotonic()
    (base / "logs").mkdir(parents=True, exist_ok=True)
    (base / "airflow").mkdir(exist_ok=True)
    state = {
        "dir": str(base),
        "postgres_port": _free_port(), "redis_port": _free_port(), "api_port": _free_port(),
        "fernet_key": old.get("fernet_key") or _fernet_key(),
        "secret_key": old.get("secret_key") or secrets.token_urlsafe(32),
        "jwt_secret": old.get("jwt_secret") or secrets.token_urlsafe(32),
        "workers": workers, "concurrency": concurrency, "parallelism": max(8, workers * concurrency * 2),
        "heartbeat_timeout": heartbeat_timeout, "retry_delay_s": retry_delay_s, "fast": fast,
        "noriba_home": noriba_home or str(base / "noriba-data"), "specs": specs or str(ROOT / "specs"),
        "processes": {},
    }
    state["postgres_dir"] = str(_postgres_dir(base, old))
    _save_state(base, state)
    try:
        say(f"postgres on 127.0.0.1:{state['postgres_port']}")
        _start_postgres(base, state)
        say(f"redis on 127.0.0.1:{state['redis_port']}")
        _start_redis(base, state)
        env = airflow_env(base, state)
        af = _airflow()
        say("airflow db migrate")
        _run([af, "db", "migrate"], env=env, what="airflow db migrate", timeout=600)
        _run([af, "pools", "set", "noriba_publish", "1", "single DuckDB writer"], env=env, what="airflow pools set")
        say(f"api-server on http://127.0.0.1:{state['api_port']}")
        _start(base, state, "api-server", [af, "api-server", "--host", "127.0.0.1", "--port", str(state["api_port"])], env)
        _start(base, state, "scheduler", [af, "scheduler", "--skip-serve-logs"], env)
        _start(base, state, "dag-processor", [af, "dag-processor"], env)
        _start(base, state, "triggerer", [af, "triggerer", "--skip-serve-logs"], env)
        for n in range(1, workers + 1):
            say(f"celery worker w{n}")
            _start(base, state, f"worker-{n}", [af, "celery", "worker", "--celery-hostname", f"w{n}@%h",
                                                 "--concurrency", str(concurrency), "--skip-serve-logs"], env)
        _wait_for(lambda: _port_open(state["api_port"]), what="api-server", timeout=120, base=base, log="api-server.log")
        dead = [name for name, pid in state["processes"].items() if not _alive(pid)]
        if dead:
            raise ClusterError(f"{', '.join(dead)} exited at start (see {base / 'logs'})")
    except BaseException:
        down(base, say=lambda _m: None)
        raise
    state["started_s"] = round(time.monotonic() - t0, 1)
    _save_state(base, state)
    say(f"up in {state['started_s']} s; UI http://127.0.0.1:{state['api_port']} (admin, password in "
        f"{base / 'airflow' / 'passwords.json'}); logs in {base / 'logs'}")
    return state


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


#: Stop stages: Airflow's components together (workers finish their bookkeeping while the databases are up),
#: then the broker, then Postgres. Postgres gets SIGINT, its "fast" shutdown (SIGTERM waits for clients).
STOP_STAGES = (("api-server", "scheduler", "dag-processor", "triggerer", "worker"), ("redis",), ("postgres",))


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    """Return whether any process of group ``pgid`` is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _stop_groups(pids: list[int], *, first: int, timeout: float) -> None:
    """Send ``first`` to each process group, wait up to ``timeout`` s, then SIGKILL what is left."""
    for pid in pids:
        _signal_group(pid, first)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if _group_alive(p)]
    for pid in left:
        _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_group_alive(p) for p in left):
        time.sleep(0.2)


def down(base: Path, *, wipe: bool = False, say=print) -> list[str]:
    """Return the names of the processes stopped in ``base``'s cluster; with ``wipe``, then remove the folder."""
    base = base.resolve()
    state = load_state(base)
    procs: dict[str, int] = state.get("processes", {})
    stopped = []
    for stage in STOP_STAGES:
        names = [n for n in procs if n.startswith(stage) and _group_alive(procs[n])]
        if not names:
            continue
        _stop_groups([procs[n] for n in names], first=signal.SIGINT if stage == ("postgres",) else signal.SIGTERM,
                     timeout=30)
        for n in names:
            say(f"stopped {n} (pid {procs[n]})")
        stopped += names
    if state:
        state["processes"] = {}
        _save_state(base, state)
    if wipe:
        pg = Path(state.get("postgres_dir") or base / "postgres")
        if pg.parent.name.startswith("noriba-cluster-pg-"):
            shutil.rmtree(pg.parent, ignore_errors=True)
        if base.exists():
            shutil.rmtree(base)
    return stopped


def status(base: Path) -> dict[str, bool]:
    """Return {process name: running} of the cluster in ``base``."""
    return {name: _alive(pid) for name, pid in load_state(base.resolve()).get("processes", {}).items()}


def _db(state: dict):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=state["postgres_port"], user="airflow", dbname="airflow")


def _query(state: dict, sql: str, params: tuple = ()) -> list[tuple]:
    con = _db(state)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def run_dag(base: Path, dag_id: str, *, run_id: str, timeout: float = 1800, on_poll=None) -> str:
    """Return the final state of a run of ``dag_id`` triggered now (unpaused first, once the DAG is parsed).

    ``on_poll(state)`` is called every poll with the run's state, e.g. to kill a worker mid-run.
    If the run has not finished within ``timeout`` s, then raise ClusterError.
    """
    base = base.resolve()
    state = load_state(base)
    env = airflow_env(base, state)
    _wait_for(lambda: bool(_query(state, "SELECT 1 FROM dag WHERE dag_id = %s", (dag_id,))),
              what=f"DAG {dag_id} (parsed by the dag-processor)", timeout=180, base=base, log="dag-processor.log")
    af = _airflow()
    _run([af, "dags", "unpause", dag_id], env=env, what=f"airflow dags unpause {dag_id}")
    _run([af, "dags", "trigger", dag_id, "--run-id", run_id], env=env, what=f"airflow dags trigger {dag_id}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _query(state, "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        run_state = rows[0][0] if rows else "queued"
        if on_poll:
            on_poll(run_state)
        if run_state in ("success", "failed"):
            return run_state
        time.sleep(2)
    raise ClusterError(f"run {run_id} of {dag_id} did not finish within {timeout:.0f} s: {_run_summary(base, state, dag_id, run_id)}")


def _run_summary(base: Path, state: dict, dag_id: str, run_id: str) -> str:
    """Return what a run that did not finish was doing: its task instances counted by state, the tasks each Celery
    worker received, and the last lines of the scheduler's and the workers' logs (what to read first)."""
    try:
        rows = _query(state, "SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s "
                             "GROUP BY 1 ORDER BY 1", (dag_id, run_id))
        states = ", ".join(f"{n} {s}" for s, n in rows) or "no task instance"
    except Exception as exc:  # noqa: BLE001 - the database may be what is wrong
        states = f"task states unreadable ({exc})"
    workers = sorted(n for n in state.get("processes", {}) if n.startswith("worker-"))
    received = ", ".join(f"{w} received {tasks_received(base, w)}" for w in workers)
    tails = []
    for name in ("scheduler", *workers):
        log = base / "logs" / f"{name}.log"
        if log.exists():
            with open(log, "rb") as f:
                f.seek(max(0, log.stat().st_size - 1500))
                tails.append(f"--- {log} (end)\n" + f.read().decode("utf-8", "replace"))
    return f"tasks: {states}; {received}\n" + "\n".join(tails)


def task_states(base: Path, dag_id: str, run_id: str) -> list[tuple[str, int, str, int]]:
    """Return (task_id, map_index, state, try_number) of every task instance of one run."""
    state = load_state(base.resolve())
    return _query(state, "SELECT task_id, map_index, state, try_number FROM task_instance "
                         "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", (dag_id, run_id))


def tasks_received(base: Path, worker: str) -> int:
    """Return how many tasks the Celery worker ``worker`` (e.g. 'worker-1') has received, from its log."""
    log = base.resolve() / "logs" / f"{worker}.log"
    if not log.exists():
        return 0
    with open(log, "rb") as f:
        return sum(1 for line in f if b"] received" in line and b"execute_workload[" in line)


def _descendants(pid: int) -> set[int]:
    """Return the PIDs of every living process descended from ``pid`` (Airflow's task processes start their own process
    group, so a worker's group does not hold them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running_on(base: Path, worker: str, dag_id: str, run_id: str) -> list[tuple[str, int]]:
    """Return (task_id, map_index) of the task instances of one run that are running now in the Celery worker ``worker``
    (e.g. 'worker-1'): their process (task_instance.pid) descends from that worker."""
    state = load_state(base.resolve())
    rows = _query(state, "SELECT task_id, map_index, pid FROM task_instance WHERE dag_id = %s AND run_id = %s "
                         "AND state = 'running' AND pid IS NOT NULL", (dag_id, run_id))
    if not rows:
        return []
    mine = _descendants(state["processes"][worker])
    return [(t, m) for t, m, pid in rows if pid in mine]


def kill(base: Path, name: str) -> None:
    """SIGKILL ``name`` (e.g. 'worker-1'), its process group and every process descended from it (the task processes
    it started, in groups of their own), as a crash of that machine would."""
    pid = load_state(base.resolve())["processes"][name]
    below = _descendants(pid)
    _signal_group(pid, signal.SIGKILL)
    for child in below:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


#: Columns that differ between two runs of the same inputs (clock times, paths under NORIBA_HOME).
VOLATILE_COLUMNS = ("raw_path", "fetched_at", "ingested_at", "published_at", "built_at", "generated_at", "run_at")


def warehouse_checksums(db_path: Path) -> dict[str, tuple[int, int]]:
    """Return {schema.table: (rows, checksum)} of every table of a Noriba warehouse.

    The checksum is the sum of a hash of each row, so row order does not matter; the columns of
    ``VOLATILE_COLUMNS`` are left out, so two runs of the same inputs at different times compare equal. A table stored
    in parts (gtfs.stop_times: a view over ``gtfs._stop_times_*``, warehouse/publish.SPLIT) is checksummed as its view:
    its parts number the versions in the order they were published, which differs between runs of the same inputs.
    """
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        out = {}
        tables = con.sql("SELECT table_schema, table_name FROM information_schema.tables "
                         "WHERE table_type = 'BASE TABLE' AND NOT (table_schema = 'gtfs' AND starts_with(table_name, '_')) "
                         "OR table_type = 'VIEW' AND table_schema = 'gtfs' ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                              "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
                    if c not in VOLATILE_COLUMNS]
            row = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            n, h = con.execute(f'SELECT count(*), coalesce(sum(hash({row})), 0) FROM "{schema}"."{table}"').fetchall()[0]
            out[f"{schema}.{table}"] = (int(n), int(h))
        return out
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="local_cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["up", "down", "status", "env"])
    p.add_argument("--dir", type=Path, default=ROOT / ".cluster", help="the cluster's private folder (default .cluster/)")
    p.add_argument("--workers", type=int, default=2, help="Celery workers to start (default 2)")
    p.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    p.add_argument("--noriba-home", help="NORIBA_HOME of the tasks (default <dir>/noriba-data)")
    p.add_argument("--specs", help="NORIBA_SPECS of the tasks (default specs/ of the repository)")
    p.add_argument("--heartbeat-timeout", type=int, default=300,
                   help="seconds without heartbeat before a task of a dead worker is failed and retried (default 300)")
    p.add_argument("--wipe", action="store_true", help="with down: remove the folder (data, logs) too")
    args = p.parse_args(argv)
    try:
        if args.command == "up":
            up(args.dir, workers=args.workers, concurrency=args.concurrency, noriba_home=args.noriba_home,
               specs=args.specs, heartbeat_timeout=args.heartbeat_timeout)
        elif args.command == "down":
            if not down(args.dir, wipe=args.wipe):
                print(f"nothing was running in {args.dir.resolve()}")
        elif args.command == "status":
            st = status(args.dir)
            for name, alive in st.items():
                print(f"{name:<14} {'running' if alive else 'stopped'}")
            if not st:
                print(f"no cluster in {args.dir.resolve()}")
        else:
            state = load_state(args.dir.resolve())
            if not state:
                raise ClusterError(f"no cluster in {args.dir.resolve()}: run `up` first")
            for k, v in airflow_env(args.dir.resolve(), state).items():
                print(f"export {k}={_sh_quote(v)}")
    except ClusterError as exc:
        print(f"local_cluster: {exc}", file=sys.stderr)
        return 2
    return 0


def _sh_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


if __name__ == "__main__":
    sys.exit(main())
