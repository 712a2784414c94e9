"""Design-space studies: the study file, the search, persistence across interruptions."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("optuna")
import optuna  # noqa: E402

import cimkit as ck  # noqa: E402
from cimkit.errors import InputError  # noqa: E402
from cimkit.explore import StudyConfig, run_study, score  # noqa: E402

SMALL = {
    "name": "t",
    "workloads": ["resnet20", "lenet"],
    "hardware": "rram-22nm",
    "space": {
        "adc_bits": {"choices": [4, 5, 6]},
        "crossbar": {"choices": [64, 128, 256]},
        "supply_v": {"low": 0.6, "high": 0.9, "step": 0.1},
    },
    "sampler": {"name": "tpe", "seed": 1},
    "trials": 20,
    "batch": 10,
}


def cfg(**changes):
    data = {**SMALL, **changes}
    return StudyConfig.model_validate(data)


def write(tmp_path, text):
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, message",
    [
        ("workloads: [vgg8]\nspace: {adc_bitz: {choices: [4]}}\n", "unknown parameter"),
        ("workloads: [vgg8]\nspace: {adc_bits: {choices: []}}\n", "choices is empty"),
        ("workloads: []\nspace: {adc_bits: {choices: [4]}}\n", "workloads"),
        ("workloads: [vgg8]\nspace: {supply_v: {low: 0.9, high: 0.6}}\n", "above high"),
    ],
)
def test_bad_study_files_are_refused_before_any_work(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        StudyConfig.from_yaml(write(tmp_path, text))


def test_infeasible_space_and_unreachable_storage(tmp_path):
    with pytest.raises(InputError, match="infeasible space"):
        run_study(cfg(workloads=["vgg16"], space={"tiles": {"choices": [1, 2]}}), tmp_path / "a")
    with pytest.raises(InputError, match="cannot open the study storage"):
        run_study(cfg(storage="postgresql://nobody@127.0.0.1:1/none"), tmp_path / "b")


def test_joint_score_is_max_energy_times_max_latency_times_area():
    e = np.array([[1.0, 4.0], [3.0, 2.0]])  # (workloads, trials)
    lat = np.array([[5.0, 1.0], [2.0, 3.0]])
    a = np.array([[7.0, 8.0], [7.0, 8.0]])
    got = score(cfg(objective={"metrics": ["edap"], "joint": "max"}), e, lat, a)[:, 0]
    assert np.allclose(got, [3 * 5 * 7, 4 * 3 * 8])
    got = score(cfg(objective={"metrics": ["edap"], "joint": "mean"}), e, lat, a)[:, 0]
    assert np.allclose(got, [2 * 3.5 * 7, 3 * 2 * 8])


def test_search_improves_and_writes_outputs(tmp_path):
    result = run_study(cfg(trials=40), tmp_path)
    assert result.completed == 40
    values = [t.value for t in result.study.trials]
    assert min(values) < np.median(values)
    for name in ("trials.csv", "convergence.png", "best_0.yaml"):
        assert (tmp_path / name).exists()
    best = ck.HardwareSpec.from_yaml(tmp_path / "best_0.yaml")
    assert best.periphery.adc_bits in (4, 5, 6)


def test_resume_keeps_completed_trials_and_reasks_stale_ones(tmp_path):
    first = run_study(cfg(), tmp_path)
    before = {t.number: (t.params, t.value) for t in first.study.trials}
    stale = first.study.ask()  # as if a run was killed between ask and tell
    second = run_study(cfg(), tmp_path, trials=30)
    states = {t.number: t.state for t in second.study.trials}
    assert states[stale.number] == optuna.trial.TrialState.FAIL
    assert second.evaluated_now == 10 and second.completed == 30
    after = {t.number: (t.params, t.value) for t in second.study.trials}
    assert all(after[n] == before[n] for n in before)


def test_pareto_front(tmp_path):
    result = run_study(
        cfg(
            objective={"mode": "pareto", "metrics": ["energy", "latency", "area"]},
            sampler={"name": "nsga2", "population": 10, "seed": 0},
            trials=30,
        ),
        tmp_path,
    )
    front = [t.values for t in result.best_trials]
    assert front and (tmp_path / "pareto.png").exists()
    for a in front:  # no design on the front is dominated by another trial
        assert not any(
            all(b[i] <= a[i] for i in range(3)) and b != a for b in [t.values for t in result.study.trials if t.values]
        )


def _completed_trials_read_only(db) -> int:
    """COMPLETE trials in a study database, read without creating or changing anything in it (an Optuna storage
    opened here would create the schema, racing the run that is creating it)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_losing_trials(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: kill\nworkloads: [resnet20]\nspace:\n  adc_bits: {choices: [3, 4, 5, 6, 7]}\n"
        "  supply_v: {low: 0.5, high: 0.9}\nsampler: {name: random, seed: 0}\ntrials: 100000\nbatch: 20\n"
    )
    out = tmp_path / "out"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cimkit.cli", "explore", str(study), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    db = out / "kill.db"
    deadline = time.time() + 300
    completed = 0
    while time.time() < deadline and completed < 60 and proc.poll() is None:
        time.sleep(0.5)
        completed = _completed_trials_read_only(db)
    assert proc.poll() is None, f"cimkit explore exited early: {(tmp_path / 'stderr.txt').read_text()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    url = f"sqlite:///{db.resolve()}"
    kept = {
        t.number: t.params
        for t in optuna.load_study(study_name="kill", storage=url).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,)
        )
    }
    assert len(kept) >= 60
    cfg_k = StudyConfig.from_yaml(study)
    result = run_study(cfg_k, out, trials=len(kept) + 20)
    assert result.completed == len(kept) + 20 and result.evaluated_now == 20
    after = {t.number: t.params for t in result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    assert all(after[n] == p for n, p in kept.items())


_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from cimkit.explore import StudyConfig
from cimkit.explore.runner import _open_study
cfg = StudyConfig.model_validate({"name": "t", "workloads": ["lenet"], "space": {"adc_bits": {"choices": [4, 5]}}})
folder, start = Path(sys.argv[1]), float(sys.argv[2])
for k in range(int(sys.argv[3])):
    time.sleep(max(0.0, start + 0.6 * k - time.time()))
    _open_study(cfg, f"sqlite:///{folder / f'race{k}.db'}", 2)
"""


@pytest.mark.slow
def test_processes_that_open_one_new_database_together_all_get_the_study(tmp_path):
    """Workers started together each create Optuna's tables in the same new SQLite file; the ones that lose the
    race (a table or the schema-version row already there) open it again instead of failing."""
    start, rounds = time.time() + 8, 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_ONCE, str(tmp_path), str(start), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    failed = ["\n".join(line for line in e.splitlines() if not line.startswith("[I "))[-3000:] for _, e in outs]
    assert [p.returncode for p in procs] == [0] * 4, "\n---\n".join(f for f, p in zip(failed, procs) if p.returncode)
    for k in range(rounds):
        assert len(optuna.get_all_study_names(f"sqlite:///{tmp_path / f'race{k}.db'}")) == 1


def test_a_lost_table_creation_race_is_retried_and_other_storage_errors_are_not(tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError, OperationalError

    from cimkit.explore.runner import _open_study

    real, calls = optuna.create_study, []
    raced = [
        IntegrityError(
            "INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed: alembic_version.version_num")
        ),
        OperationalError("CREATE TABLE studies", {}, Exception("table studies already exists")),
        OperationalError("INSERT INTO studies", {}, Exception("database is locked")),
    ]

    def flaky(*args, **kwargs):
        calls.append(1)
        if raced:
            raise raced.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna, "create_study", flaky)
    study = _open_study(cfg(), f"sqlite:///{tmp_path / 'x.db'}", 2)
    assert len(calls) == 4 and study.study_name == "t"
    raced.append(OperationalError("SELECT", {}, Exception("unable to open database file")))
    with pytest.raises(InputError, match="cannot open the study storage.*unable to open database file"):
        _open_study(cfg(), f"sqlite:///{tmp_path / 'y.db'}", 2)


@pytest.mark.slow
def test_dask_gives_the_serial_results_even_when_a_worker_dies(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    serial = run_study(cfg(sampler={"name": "random", "seed": 3}), tmp_path / "serial")
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("CIMKIT_FAULT_KILL_WORKER_ONCE", str(marker))
    dask = run_study(cfg(sampler={"name": "random", "seed": 3}, executor="dask", workers=2), tmp_path / "dask")
    assert marker.exists()  # a worker did die mid-task, and its task was rerun
    key = lambda r: [(t.params, t.value) for t in sorted(r.study.trials, key=lambda t: t.number)]  # noqa: E731
    assert key(dask) == key(serial)


def test_unreachable_scheduler_is_refused_before_any_work(tmp_path):
    pytest.importorskip("dask.distributed")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_study(cfg(executor="dask", scheduler="tcp://127.0.0.1:9", scheduler_timeout_s=2), tmp_path)
    assert not any(
        t.state == optuna.trial.TrialState.COMPLETE
        for t in optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't.db'}").trials
    )


def test_joint_experiment_reports_each_chip(tmp_path):
    from cimkit.explore import run_joint_experiment

    base = tmp_path / "base.yaml"
    base.write_text(
        "name: b\nchip: {tiles: 40, tile_allocation: packed}\n"
        "device: {bits_per_cell: 2}\narray: {signed_mapping: offset}\n"
        "periphery: {dac_mode: bit_serial, adc_bits: 5}\n"
    )
    c = cfg(
        name="j",
        workloads=["resnet20", "lenet"],
        hardware=str(base),
        experiment="joint_vs_largest",
        space={
            "supply_v": {"low": 0.6, "high": 0.9, "step": 0.1},
            "crossbar": {"choices": [64, 128]},
            "tiles": {"choices": [20, 40]},
        },
        trials=12,
        batch=6,
    )
    r = run_joint_experiment(c, tmp_path / "out")
    assert r.largest == "resnet20"
    assert r.edap_on_largest["resnet20"] == pytest.approx(r.edap_on_own["resnet20"])  # its own chip
    assert all(np.isfinite(v) for v in r.improvement.values())
    assert (tmp_path / "out" / "joint_experiment.md").read_text().startswith("| workload")


@pytest.mark.slow
def test_accuracy_floor_from_the_simulator(tmp_path, monkeypatch):
    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path / "cache"))
    result = run_study(
        cfg(
            workloads=["lenet"],
            space={"adc_bits": {"choices": [2, 6]}},
            accuracy={"floor": 0.9, "samples": 100},
            sampler={"name": "grid"},
            trials=2,
            batch=2,
        ),
        tmp_path / "o",
    )
    by_bits = {t.params["adc_bits"]: t.user_attrs["constraints"][2] for t in result.study.trials}
    assert by_bits[2] > 0 > by_bits[6]  # 2-bit ADCs break the CNN; 6-bit ones keep it above 90%
    assert all(t.params["adc_bits"] == 6 for t in result.best_trials)  # the cheaper 2-bit chip is excluded


def test_torch_workloads_in_a_study(tmp_path):
    c = cfg(workloads=[{"torch": "cimkit.workload.zoo:lenet", "input_shape": [1, 1, 28, 28]}], trials=4, batch=2)
    assert run_study(c, tmp_path).completed == 4
    with pytest.raises(InputError, match="cannot import"):
        run_study(cfg(workloads=[{"torch": "nowhere.mod:fn", "input_shape": [1, 3]}]), tmp_path / "b")
