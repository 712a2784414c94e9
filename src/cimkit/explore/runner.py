"""Run a study: batches of trials asked from Optuna, priced together, told back, stored as they finish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..spec import HardwareSpec
from .study import StudyConfig, _sampler, _suggest, evaluate_batch, spec_for


@dataclass
class StudyResult:
    study: object  # optuna.Study
    completed: int
    evaluated_now: int
    seconds: float
    out_dir: Path

    @property
    def best_trials(self):
        """The best feasible trials, one per distinct design."""
        return _distinct([t for t in self.study.best_trials if _feasible(t)])


def _workloads(cfg: StudyConfig):
    from ..workload import Workload, zoo

    out = []
    for name in cfg.workloads:
        if name.endswith(".onnx"):
            out.append(Workload.from_onnx(name))
        elif name.endswith(".csv"):
            out.append(Workload.from_neurosim_csv(name))
        else:
            out.append(zoo.workload(name))
    return out


def _base(cfg: StudyConfig) -> HardwareSpec:
    path = Path(cfg.hardware)
    return HardwareSpec.from_yaml(path) if path.suffix in (".yaml", ".yml") else HardwareSpec.preset(cfg.hardware)


def run_study(cfg: StudyConfig, out_dir: str | Path = "out/study", *, trials: int | None = None,
              progress: Callable[[int, int, float], None] | None = None) -> StudyResult:
    """Search ``cfg`` until its storage holds ``trials`` (default ``cfg.trials``) completed trials.

    Completed trials in the storage are kept and never recomputed; trials a killed run left running
    are marked failed and asked again. ``progress(done, total, best)`` is called after each batch.
    """
    import time

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base, workloads = _base(cfg), _workloads(cfg)
    storage = cfg.storage or f"sqlite:///{(out_dir / (cfg.name + '.db')).resolve()}"
    n_obj = 1 if cfg.objective.mode != "pareto" else len(cfg.objective.metrics)
    try:
        study = optuna.create_study(study_name=cfg.name, storage=_open_storage(storage), sampler=_sampler(cfg),
                                    directions=["minimize"] * n_obj, load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - unreachable database etc.
        raise InputError(f"cannot open the study storage {storage!r}: {exc}") from None
    # before any work: can the roomiest design of the space hold every workload? (more of everything
    # holds more weights, except weight bits, which need more cells)
    if "tiles" in cfg.space or base.chip.tiles is not None:
        roomiest = {name: ((min if name == "weight_bits" else max)(p.choices) if p.choices is not None
                           else (p.low if name == "weight_bits" else p.high)) for name, p in cfg.space.items()}
        _, cons = evaluate_batch(cfg, base, workloads, [roomiest])
        if cons[0, 0] > 0:
            raise InputError(f"infeasible space: even the roomiest design {roomiest} cannot hold the weights of "
                             f"{', '.join(cfg.workloads)}")
    for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by a killed run
    # Sampling runs on an in-memory mirror of the stored study: with a whole batch of trials running, an
    # RDB-backed sampler re-reads every running trial for each new one (O(batch^2) queries). Finished
    # trials are written to the storage after each batch, and trials other processes stored are pulled
    # in before each batch, so several processes can share one database.
    memory = optuna.create_study(sampler=_sampler(cfg), directions=["minimize"] * n_obj)
    mirrored: set[str] = set()

    def pull() -> int:
        stored = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        new = [t for t in stored if t.user_attrs.get("cimkit_id", f"#{t.number}") not in mirrored]
        memory.add_trials(new)
        mirrored.update(t.user_attrs.get("cimkit_id", f"#{t.number}") for t in new)
        return len(stored)

    target = trials or cfg.trials
    done = pull()
    t0, evaluated = time.perf_counter(), 0
    while done < target:
        batch = [memory.ask() for _ in range(min(cfg.batch, target - done))]
        params = [{name: _suggest(t, name, p) for name, p in cfg.space.items()} for t in batch]
        values, constraints = evaluate_batch(cfg, base, workloads, params)
        for t, v, c in zip(batch, values, constraints):
            uid = uuid.uuid4().hex
            t.set_user_attr("cimkit_id", uid)
            t.set_user_attr("constraints", [float(x) for x in c])
            if hasattr(t, "set_constraint"):  # Optuna >= 5: samplers read constraints from the trial
                t.set_constraint("weights_fit", float(c[0]))
                t.set_constraint("area_over_cap_mm2", float(c[1]))
            memory.tell(t, [float(x) for x in v] if n_obj > 1 else float(v[0]))
            mirrored.add(uid)
        finished = memory.get_trials(deepcopy=False)
        study.add_trials([finished[t.number] for t in batch])  # one transaction per batch
        evaluated += len(batch)
        done = pull()
        if progress:
            progress(done, target, _best_value(study))
    result = StudyResult(study, done, evaluated, time.perf_counter() - t0, out_dir)
    write_outputs(cfg, base, result)
    return result


def _open_storage(url: str):
    """An Optuna storage for ``url``. SQLite runs in WAL mode with synchronous=NORMAL: every commit survives
    a killed process (what resuming needs), while each of the many small commits of ask/suggest/tell stops
    paying a full fsync (about 10 ms each here)."""
    import optuna

    if not url.startswith("sqlite"):
        return url
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})

    def pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened from here on get the pragmas
    return storage


def _distinct(trials: list) -> list:
    seen, out = set(), []
    for t in trials:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _feasible(t) -> bool:
    return all(c <= 0 for c in t.user_attrs.get("constraints", [0.0]))


def _best_value(study) -> float:
    vals = [t.values[0] for t in study.get_trials(deepcopy=False) if t.values and _feasible(t)]
    return min(vals) if vals else float("nan")


def write_outputs(cfg: StudyConfig, base: HardwareSpec, result: StudyResult) -> None:
    """trials.csv, convergence.png, pareto.png (multi-objective) and the best designs as YAML."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study, out = result.study, result.out_dir
    df = study.trials_dataframe()
    df.to_csv(out / "trials.csv", index=False)
    trials = [t for t in study.trials if t.values and _feasible(t)]
    if not trials:
        return
    first = np.array([t.values[0] for t in trials])
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    ax.plot([t.number for t in trials], np.minimum.accumulate(first), label="best so far")
    ax.scatter([t.number for t in trials], first, s=4, alpha=0.3, label="trials")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(cfg.objective.metrics[0] if cfg.objective.mode != "weighted" else "weighted score")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "convergence.png")
    plt.close(fig)
    best = _distinct([t for t in study.best_trials if _feasible(t)]) or sorted(trials, key=lambda t: t.values[0])[:1]
    if len(cfg.objective.metrics) > 1 and cfg.objective.mode == "pareto":
        fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
        all_v = np.array([t.values for t in trials])
        front = np.array([t.values for t in best])
        ax.scatter(all_v[:, 0], all_v[:, 1], s=4, alpha=0.3, label="feasible trials")
        ax.scatter(front[:, 0], front[:, 1], s=14, color="red", label="Pareto front")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(cfg.objective.metrics[0])
        ax.set_ylabel(cfg.objective.metrics[1])
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "pareto.png")
        plt.close(fig)
    for i, t in enumerate(best[:10]):
        spec_for(base, t.params).replace(name=f"{cfg.name}-best{i}").to_yaml(out / f"best_{i}.yaml")
