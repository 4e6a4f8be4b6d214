"""Servers the cluster tests start themselves: a PostgreSQL server (initdb + pg_ctl in a temporary
folder, on 127.0.0.1 and a private socket folder, password auth) and a local Ray cluster with a
fixed number of CPUs. Each skips its test with the reason when it cannot start here."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_USER = "bench"
RUN_AS = "nobody"  # initdb and postgres refuse to run as root


def pg_bin(name: str) -> str | None:
    """Debian keeps the server tools in /usr/lib/postgresql/VERSION/bin, off PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return found[0] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server():
    """Yields postgresql://bench:PASSWORD@127.0.0.1:PORT/postgres of a fresh server; stops and removes it after."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401 - the driver SQLAlchemy 2.1 uses for postgresql:// URLs
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    user = RUN_AS if os.geteuid() == 0 else None
    # a folder outside pytest's tmp_path: that one is private to root, and the server runs as `nobody`
    home = Path(tempfile.mkdtemp(prefix="ftbench-pg-"))
    password, port = secrets.token_hex(12), free_port()
    data = home / "data"
    try:
        home.chmod(0o755)
        (home / "pw").write_text(password + "\n")
        if user:
            shutil.chown(home, user)
            shutil.chown(home / "pw", user)

        def as_server(*cmd: str) -> subprocess.CompletedProcess:
            return subprocess.run(cmd, user=user, capture_output=True, text=True, timeout=120, cwd=home)

        made = as_server(initdb, "-D", str(data), "-U", PG_USER, "--auth=scram-sha-256", f"--pwfile={home / 'pw'}",
                         "-E", "UTF8", "--no-sync")
        (home / "pw").unlink()
        if made.returncode != 0:
            pytest.skip(f"initdb could not make a cluster here: {made.stderr.strip()[-300:]}")
        opts = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        started = as_server(pg_ctl, "-D", str(data), "-o", opts, "-l", str(home / "log"), "-w", "-t", "60", "start")
        if started.returncode != 0:
            log = (home / "log").read_text()[-300:] if (home / "log").exists() else started.stderr
            pytest.skip(f"the PostgreSQL server did not start: {log.strip()}")
        try:
            yield f"postgresql://{PG_USER}:{password}@127.0.0.1:{port}/postgres"
        finally:
            as_server(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def ray_cluster(num_cpus: int = 2):
    """A local Ray cluster in this process (`--launcher ray` then joins it instead of starting one)."""
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed (pip install ray)")
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                     p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")) if p)}})
    except Exception as exc:  # noqa: BLE001 - no room for its object store, a sandbox without shared memory
        pytest.skip(f"a local Ray cluster did not start: {exc}")
    try:
        yield ray
    finally:
        ray.shutdown()
