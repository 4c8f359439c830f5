"""``corpus scan --scheduler``: a real Dask scheduler and worker on 127.0.0.1 give the database the
same report as the local process pool (and as one process)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from test_corpus import build_wheel

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_cli() -> list[str]:
    pytest.importorskip("distributed", reason="Dask is not installed: pip install 'uk-depscan[distributed]'")
    exe = Path(sys.executable).with_name("dask")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dask")
    if found is None:
        pytest.skip("the dask command is not installed: pip install 'uk-depscan[distributed]'")
    return [found]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker`` (2 processes × 1 thread) on random free ports; stopped after."""
    dask = _dask_cli()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path.cwd()), *sys.path) if p)}
    log = (tmp_path / "dask.log").open("wb")
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=log, stderr=log, env=env, cwd=tmp_path,
        )
    ]  # fmt: skip
    try:
        procs.append(
            subprocess.Popen(
                [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--local-directory", str(tmp_path / "worker")],
                stdout=log, stderr=log, env=env, cwd=tmp_path,
            )
        )  # fmt: skip
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=100)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"the Dask cluster did not start: {(tmp_path / 'dask.log').read_text()[-2000:]}")
                time.sleep(1)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def test_dask_database_reports_like_the_local_one(tmp_path: Path, cluster: str) -> None:
    work = tmp_path / "w"
    wheels = [build_wheel(work / "dist", v, work) for v in ("1.0", "2.0")]
    reports = {}
    for name, extra in (("one", ["-j", "1"]), ("pool", ["-j", "2"]), ("dask", ["--scheduler", cluster])):
        db = tmp_path / f"{name}.db"
        code, _out, err = run_cli(
            ["corpus", "scan", *map(str, wheels), "--db", str(db), "--unikraft", "0.17.0", *extra]
        )
        assert code == 0, err
        code, out, err = run_cli(["corpus", "report", "--db", str(db), "--format", "json"])
        assert code == 0, err
        reports[name] = out
    texts = {
        name: run_cli(["corpus", "report", "--db", str(tmp_path / f"{name}.db"), "--format", "text"])[1]
        for name in reports
    }
    assert '"libraries": 4' in reports["one"]
    assert reports["dask"] == reports["one"] == reports["pool"]
    assert texts["dask"] == texts["one"]
    # the Dask run did write through the client, and says so
    import sqlite3

    conn = sqlite3.connect(tmp_path / "dask.db")
    engines = {e for (e,) in conn.execute("SELECT engine FROM provenance")}
    conn.close()
    assert engines == {f"dask {cluster}"}


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path: Path) -> None:
    _dask_cli()
    work = tmp_path / "w"
    whl = build_wheel(work / "dist", "1.0", work)
    port = _free_port()  # nothing listens there
    code, _out, err = run_cli(
        ["corpus", "scan", str(whl), "--db", str(tmp_path / "c.db"), "--scheduler", f"tcp://127.0.0.1:{port}"]
    )
    assert code == 2 and "cannot connect" in err and "Traceback" not in err
