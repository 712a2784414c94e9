"""One study, two processes, one real PostgreSQL server: no trial lost, none duplicated.

The set-up finds PostgreSQL (or installs Debian's `postgresql` with apt-get when running as root),
initialises a throw-away cluster as the `postgres` user on a free local port, and removes it afterwards.
Where that cannot be done, the test is skipped with the reason.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 is not installed")
import optuna  # noqa: E402


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(dirs[-1]) if dirs else None


def _install() -> str | None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL is not installed and this user cannot install it (needs root and apt-get)"
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"could not install Debian's postgresql: {exc}"
    return None


@pytest.fixture(scope="module")
def postgres_url():
    if _pg_bin() is None:
        reason = _install()
        if reason:
            pytest.skip(reason)
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("postgresql was installed but initdb was not found")
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if run_as and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="cimkit-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if run_as:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args, timeout=120):
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=timeout)

    init = pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr[-500:]}")
    start = pg(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(root / "log"),
        "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
        "start",
    )
    if start.returncode != 0:
        pytest.skip(f"the PostgreSQL server did not start: {start.stderr[-500:]}")
    try:
        created = pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "cimkit")
        if created.returncode != 0:
            pytest.skip(f"createdb failed: {created.stderr[-500:]}")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/cimkit"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path, postgres_url):
    study = tmp_path / "study.yaml"
    study.write_text(
        f"name: shared\nworkloads: [resnet20]\nstorage: {postgres_url}\n"
        "space:\n  adc_bits: {choices: [3, 4, 5, 6, 7]}\n  supply_v: {low: 0.5, high: 0.9}\n"
        "sampler: {name: random, seed: 0}\ntrials: 1500\nbatch: 10\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cimkit.cli", "explore", str(study), "--out", str(tmp_path / f"p{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    evaluated = [int(re.search(r"\((\d+) evaluated now", o).group(1)) for o in outputs]
    assert all(n > 0 for n in evaluated)  # both processes did work
    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)
    )
    ids = [t.user_attrs["cimkit_id"] for t in trials]
    assert len(ids) == len(set(ids))  # nothing stored twice
    assert len(trials) == sum(evaluated) >= 1500  # nothing evaluated was lost
