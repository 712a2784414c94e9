"""Run a study: batches of trials asked from Optuna, priced together, told back, stored as they finish."""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..spec import HardwareSpec
from .study import StudyConfig, _sampler, _suggest, evaluate_batch, grid_points, spec_for


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
    from ..workload import Workload, load_workload

    out = []
    for name in cfg.workloads:
        if not isinstance(name, str):  # a torch factory
            import importlib

            module, _, attr = name.torch.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError, ValueError) as exc:
                raise InputError(f"workload {name.torch!r}: cannot import it ({exc}); expected 'package.module:function'") from None
            out.append(Workload.from_torch(factory(), tuple(name.input_shape), name=name.label))
        else:
            out.append(load_workload(name))
    return out


def _base(cfg: StudyConfig) -> HardwareSpec:
    path = Path(cfg.hardware)
    return HardwareSpec.from_yaml(path) if path.suffix in (".yaml", ".yml") else HardwareSpec.preset(cfg.hardware)


FAULT_ENV = "CIMKIT_FAULT_KILL_WORKER_ONCE"  # fault injection for tests: a path; see _evaluate_chunk


def _evaluate_chunk(cfg: StudyConfig, base: HardwareSpec, workloads, params: list[dict]):
    """One task of a distributed batch. With $CIMKIT_FAULT_KILL_WORKER_ONCE set to a path that does not
    exist yet, the worker creates it and dies mid-task (tests check that the task is rerun)."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return evaluate_batch(cfg, base, workloads, params)


class _Evaluator:
    """Prices batches in this process, or on a Dask cluster (a task per worker; Dask reruns the task
    of a worker that dies)."""

    def __init__(self, cfg: StudyConfig, base: HardwareSpec, workloads) -> None:
        self.cfg, self.base, self.workloads = cfg, base, workloads
        self.client = self.cluster = None
        if cfg.executor == "dask":
            from dask.distributed import Client, LocalCluster

            try:
                if cfg.scheduler:
                    self.client = Client(cfg.scheduler, timeout=f"{cfg.scheduler_timeout_s}s")
                else:
                    self.cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None)
                    self.client = Client(self.cluster)
            except (OSError, TimeoutError) as exc:
                raise InputError(f"cannot reach the Dask scheduler {cfg.scheduler!r}: {exc}") from None
            self.handles = self.client.scatter([base, workloads], broadcast=True)

    def __call__(self, params: list[dict]):
        if self.client is None:
            return evaluate_batch(self.cfg, self.base, self.workloads, params)
        n = max(1, min(len(params), len(self.client.scheduler_info()["workers"])))
        chunks = [params[i::n] for i in range(n)]
        futures = [self.client.submit(_evaluate_chunk, self.cfg, self.handles[0], self.handles[1], c, pure=False)
                   for c in chunks]
        parts = self.client.gather(futures)
        values = np.empty((len(params), parts[0][0].shape[1]))
        cons = np.empty((len(params), parts[0][1].shape[1]))
        for i, (v, c) in enumerate(parts):
            values[i::n], cons[i::n] = v, c
        return values, cons

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def run_study(cfg: StudyConfig, out_dir: str | Path = "out/study", *, trials: int | None = None,
              progress: Callable[[int, int, float], None] | None = None) -> StudyResult:
    """Search ``cfg`` until its storage holds ``trials`` (default ``cfg.trials``) completed trials.

    Completed trials in the storage are kept and never recomputed; trials a killed run left running
    are marked failed and asked again. ``progress(done, total, best)`` is called after each batch.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base, workloads = _base(cfg), _workloads(cfg)
    storage = cfg.storage or f"sqlite:///{(out_dir / (cfg.name + '.db')).resolve()}"
    n_obj = 1 if cfg.objective.mode != "pareto" else len(cfg.objective.metrics)
    for attempt in range(6):
        try:
            study = optuna.create_study(study_name=cfg.name, storage=_open_storage(storage), sampler=_sampler(cfg),
                                        directions=["minimize"] * n_obj, load_if_exists=True)
            break
        except Exception as exc:  # noqa: BLE001 - unreachable database etc.
            # processes that start together race to create Optuna's tables in a new database: retry
            if attempt < 5 and re.search(r"already exists|duplicate|UniqueViolation", str(exc), re.I):
                time.sleep(0.2 * (attempt + 1))
                continue
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
    target = trials or cfg.trials
    search = _Search(cfg, study, _Evaluator(cfg, base, workloads), n_obj)
    t0 = time.perf_counter()
    try:
        done = search.pull()
        if cfg.sampler.name == "grid":
            stored = {tuple(sorted(t.params.items())) for t in search.memory.get_trials(deepcopy=False)}
            points = grid_points(cfg)
            for point in points:
                if tuple(sorted(point.items())) not in stored:
                    search.memory.enqueue_trial(point)
            target = min(target, len(points))
        while done < target:
            done = search.batch(min(cfg.batch, target - done))
            if progress:
                progress(done, target, _best_value(study))
    finally:
        search.evaluate.close()
    result = StudyResult(study, done, search.evaluated, time.perf_counter() - t0, out_dir)
    write_outputs(cfg, base, result)
    return result


class _Search:
    """Sampling on an in-memory mirror of the stored study. With a whole batch of trials running, an
    RDB-backed sampler re-reads every running trial for each new one (O(batch^2) queries). Finished trials
    are written to the storage once per batch, and trials that other processes stored are pulled in
    before each batch, so several processes can share one database."""

    def __init__(self, cfg: StudyConfig, study, evaluate: "_Evaluator", n_obj: int) -> None:
        import optuna

        self.cfg, self.study, self.evaluate, self.n_obj = cfg, study, evaluate, n_obj
        self.memory = optuna.create_study(sampler=_sampler(cfg), directions=["minimize"] * n_obj)
        self.mirrored: set[str] = set()
        self.evaluated = 0

    def pull(self) -> int:
        """Mirror stored trials not seen yet; returns the number of completed trials in the storage."""
        import optuna

        stored = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        new = [t for t in stored if t.user_attrs.get("cimkit_id", f"#{t.number}") not in self.mirrored]
        self.memory.add_trials(new)
        self.mirrored.update(t.user_attrs.get("cimkit_id", f"#{t.number}") for t in new)
        return len(stored)

    def batch(self, size: int) -> int:
        """Ask, price, tell and store ``size`` trials; returns the completed trials in the storage."""
        trials = [self.memory.ask() for _ in range(size)]
        params = [{name: _suggest(t, name, p) for name, p in self.cfg.space.items()} for t in trials]
        values, constraints = self.evaluate(params)
        for t, v, c in zip(trials, values, constraints):
            uid = uuid.uuid4().hex
            t.set_user_attr("cimkit_id", uid)
            t.set_user_attr("constraints", [float(x) for x in c])
            if hasattr(t, "set_constraint"):  # Optuna >= 5: samplers read constraints from the trial
                t.set_constraint("weights_fit", float(c[0]))
                t.set_constraint("area_over_cap_mm2", float(c[1]))
                t.set_constraint("accuracy_below_floor", float(c[2]))
            self.memory.tell(t, [float(x) for x in v] if self.n_obj > 1 else float(v[0]))
            self.mirrored.add(uid)
        finished = self.memory.get_trials(deepcopy=False)
        self.study.add_trials([finished[t.number] for t in trials])  # one transaction per batch
        self.evaluated += size
        return self.pull()


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
