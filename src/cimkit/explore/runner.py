"""Run a study: batches of trials asked from Optuna, priced together, told back, stored as they finish."""

from __future__ import annotations

import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import InputError, short_repr
from ..io import atomic_path, check_output_dir, json_safe
from ..report import Result, figure_folder, saved_figure
from ..spec import HardwareSpec
from .checks import fingerprint, fingerprint_difference, prepare_study
from .study import CONSTRAINTS, SENTINEL, StudyConfig, _sampler, _suggest, evaluate_details, grid_points, spec_for

if TYPE_CHECKING:
    import optuna

#: the study user attribute that records what the stored trials were computed for
FINGERPRINT_ATTR = "cimkit_fingerprint"
#: the trial user attribute holding every figure behind a trial's score (see evaluate_details)
FIGURES_ATTR = "figures"


@dataclass
class StudyResult(Result):
    """A study's trials (``study``, an Optuna study) and how this run went.

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (the run, the objective, the
    best feasible designs with their figures under the standard names ``energy_j``, ``latency_s``,
    ``area_mm2``), ``to_csv`` (one row per trial: the trials.csv format), ``table`` (the best designs),
    ``figures`` (``convergence.png``: the score history; ``pareto.png``: the Pareto front of a multi-objective
    study; none while no design is feasible)."""

    study: optuna.Study
    completed: int
    evaluated_now: int
    seconds: float
    out_dir: Path
    storage: str = ""  # where the trials are (a path or a URL without password)
    config: StudyConfig | None = None  # the study file it ran (labels the figures and tables)

    @property
    def best_trials(self):
        """The best feasible trials (the Pareto front of the feasible ones), one per distinct design;
        empty when no stored design is feasible."""
        return best_feasible(self.study)

    def infeasibility(self) -> str:
        """Why the stored designs are infeasible: how many violate each constraint."""
        return infeasibility(self.study)

    # ---- the result protocol ---------------------------------------------------------------------------
    def objectives(self) -> list[str]:
        """The names of the objective values (a metric each, or "weighted score")."""
        o = self.config.objective if self.config is not None else None
        n = len(self.study.directions)
        if o is None:
            return [f"objective_{i}" for i in range(n)]
        if o.mode == "weighted":
            return ["weighted score"]
        metrics: list[str] = list(o.metrics)
        return metrics[:n]

    def to_dict(self) -> dict:
        """The run (name, trials completed and evaluated now, seconds, outputs, storage), the objective, how
        many stored designs are feasible and why the others are not, and the best feasible designs: trial
        number, parameters, objective values and every figure stored with them (``energy_j``, ``latency_s``,
        ``area_mm2``, ``edp``, ``edap``, per workload ``energy_j:<workload>``, ..., the constraints); and every
        completed trial (``trials``: number, feasible, objective values, parameters, energy, latency, area), which
        the HTML report plots around the front."""
        import optuna

        done = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = [
            {
                "number": t.number,
                "params": dict(t.params),
                "values": list(t.values),
                **(t.user_attrs.get(FIGURES_ATTR) or {}),
            }
            for t in self.best_trials
        ]
        return json_safe(
            {
                "result": type(self).__name__,
                "name": self.study.study_name,
                "completed": self.completed,
                "evaluated_now": self.evaluated_now,
                "seconds": self.seconds,
                "out_dir": None if self.out_dir is None else str(self.out_dir),
                "storage": self.storage,
                "workloads": self.config.workload_labels if self.config is not None else None,
                "objectives": self.objectives(),
                "feasible": sum(_feasible(t) for t in done),
                "infeasibility": self.infeasibility(),
                "best": best,
                "trials": [
                    {
                        "number": t.number,
                        "feasible": _feasible(t),
                        "values": list(t.values),
                        "params": dict(t.params),
                        **{
                            k: v
                            for k, v in (t.user_attrs.get(FIGURES_ATTR) or {}).items()
                            if k in ("energy_j", "latency_s", "area_mm2")
                        },
                    }
                    for t in done
                ],
            }
        )

    def records(self) -> list[dict]:
        """One row per trial, as trials.csv holds them."""
        return [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in _trials_frame(self.study).to_dict("records")
        ]

    def csv_columns(self) -> tuple[str, ...]:
        return ("number", "state", "feasible")

    def to_csv(self, path: str | Path) -> Path:
        """Every trial (trials.csv): number, state, feasible, objective values, parameters, figures and
        constraints; written atomically."""
        _write_csv(self.study, Path(path))
        return Path(path)

    def table(self, top: int = 10):
        """The best feasible designs (at most ``top``): parameters, objective values, energy, latency, area."""
        from rich.table import Table

        best = self.best_trials[:top]
        names = list(self.config.space) if self.config is not None else sorted({k for t in best for k in t.params})
        t = Table(
            title=f"study {self.study.study_name!r}: {self.completed} trials, "
            f"{len(self.best_trials)} best feasible design(s)"
        )
        for col in ("trial", *names, *self.objectives(), "energy J", "latency s", "area mm^2"):
            t.add_column(col, justify="right")

        def num(x) -> str:
            return f"{x:.4g}" if isinstance(x, float) else str(x)

        for trial in best:
            figures = trial.user_attrs.get(FIGURES_ATTR) or {}
            t.add_row(
                f"#{trial.number}",
                *(num(trial.params.get(n, "")) for n in names),
                *(num(v) for v in trial.values),
                *(num(figures.get(k, "n/a")) for k in ("energy_j", "latency_s", "area_mm2")),
            )
        if not best:
            t.caption = f"no feasible design: {self.infeasibility()}"
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``convergence.png`` (best score so far against trial) and, for a Pareto study of two or more
        objectives, ``pareto.png`` (the feasible trials and their front); nothing while no design is
        feasible."""
        folder = figure_folder(folder)
        trials = [t for t in self.study.get_trials(deepcopy=False) if _feasible(t)]
        if not trials:
            return []
        labels = self.objectives()
        out = [folder / "convergence.png"]
        first = np.array([t.values[0] for t in trials])
        with saved_figure(out[0], figsize=(5, 3.4)) as (fig, ax):
            ax.plot([t.number for t in trials], np.minimum.accumulate(first), label="best so far")
            ax.scatter([t.number for t in trials], first, s=4, alpha=0.3, label="trials")
            ax.set_yscale("log")
            ax.set_xlabel("trial")
            ax.set_ylabel(labels[0])
            ax.legend()
        pareto = (self.config.objective.mode == "pareto") if self.config is not None else True
        if len(self.study.directions) > 1 and pareto:
            out.append(folder / "pareto.png")
            with saved_figure(out[1], figsize=(5, 3.6)) as (fig, ax):
                all_v = np.array([t.values for t in trials])
                front = np.array([t.values for t in self.best_trials])
                ax.scatter(all_v[:, 0], all_v[:, 1], s=4, alpha=0.3, label="feasible trials")
                ax.scatter(front[:, 0], front[:, 1], s=14, color="red", label="Pareto front")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel(labels[0])
                ax.set_ylabel(labels[1])
                ax.legend()
        return out


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``run_study``: the outputs were written for the trials stored so far
    (``result``; None when it came before the study was opened)."""

    def __init__(self, result: StudyResult | None) -> None:
        super().__init__("study interrupted")
        self.result = result


FAULT_ENV = "CIMKIT_FAULT_KILL_WORKER_ONCE"  # fault injection for tests: a path; see _evaluate_chunk


def _evaluate_chunk(cfg: StudyConfig, base: HardwareSpec, workloads, params: list[dict]):
    """One task of a distributed batch. With $CIMKIT_FAULT_KILL_WORKER_ONCE set to a path that does not
    exist yet, the worker creates it and dies mid-task (tests check that the task is rerun)."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return evaluate_details(cfg, base, workloads, params)


class _Evaluator:
    """Prices batches in this process, or on a Dask cluster (a task per worker; Dask reruns the task
    of a worker that dies). The chip and the traced workloads (kilobytes) travel inside each task, not
    as scattered data: scattered data dies with the worker holding it, and with it every task that
    needs it, while a task's own arguments stay with the scheduler for the rerun."""

    def __init__(self, cfg: StudyConfig, base: HardwareSpec, workloads) -> None:
        self.cfg, self.base, self.workloads = cfg, base, workloads
        self.client = self.cluster = None
        if cfg.executor == "dask":
            from dask.distributed import Client, LocalCluster

            try:
                if cfg.scheduler:
                    self.client = Client(cfg.scheduler, timeout=f"{cfg.scheduler_timeout_s}s")
                else:
                    self.cluster = LocalCluster(
                        n_workers=cfg.workers, threads_per_worker=1, processes=True, dashboard_address=None
                    )
                    self.client = Client(self.cluster)
            except (OSError, TimeoutError, ValueError) as exc:
                self.close()
                raise InputError(
                    f"cannot reach the Dask scheduler {cfg.scheduler!r}: {short_repr(str(exc), 300)}"
                ) from None

    def __call__(self, params: list[dict]):
        if self.client is None:
            return evaluate_details(self.cfg, self.base, self.workloads, params)
        n = max(1, min(len(params), len(self.client.scheduler_info()["workers"])))
        chunks = [params[i::n] for i in range(n)]
        futures = [
            self.client.submit(_evaluate_chunk, self.cfg, self.base, self.workloads, c, pure=False) for c in chunks
        ]
        parts = self.client.gather(futures)
        values = np.empty((len(params), parts[0][0].shape[1]))
        cons = np.empty((len(params), parts[0][1].shape[1]))
        columns = {k: np.empty(len(params)) for k in parts[0][2]}
        for i, (v, c, cols) in enumerate(parts):
            values[i::n], cons[i::n] = v, c
            for k, col in cols.items():
                columns[k][i::n] = col
        return values, cons, columns

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _storage_errors() -> tuple[type[BaseException], ...]:
    import optuna

    errors: tuple[type[BaseException], ...] = (OSError, optuna.exceptions.StorageInternalError)
    try:
        from sqlalchemy.exc import SQLAlchemyError

        errors += (SQLAlchemyError,)
    except ImportError:  # pragma: no cover - optuna's RDB storage needs sqlalchemy
        pass
    return errors


def _where(url: str) -> str:
    """The storage for messages: the SQLite file, or the URL without its password."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message only
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def run_study(
    cfg: StudyConfig,
    out_dir: str | Path = "out/study",
    *,
    trials: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    adopt: bool = False,
) -> StudyResult:
    """Search ``cfg`` until its storage holds ``trials`` (default ``cfg.trials``) completed trials.

    Everything is checked before the storage is opened (``prepare_study``). A stored study of the same
    name must have been computed for the same settings (its fingerprint: workloads, chip, space,
    objective, constraints, sampler); otherwise an ``InputError`` says what differs. A study stored by a
    cimkit without fingerprints is refused unless it holds no completed trial or ``adopt`` is set.

    Completed trials in the storage are kept and never recomputed; trials a killed run left running
    are marked failed and asked again. ``progress(done, total, best)`` is called after each batch
    (``best`` is NaN while no design is feasible). Ctrl-C writes the outputs for the trials stored so far
    and raises ``StudyInterrupted`` (a KeyboardInterrupt). ``result.best_trials`` is empty when no design
    is feasible (``result.infeasibility()`` says why).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise InputError(f"trials = {short_repr(trials)}: give a whole number of trials >= 1")
    out_dir = check_output_dir(out_dir, create=False)
    base, workloads = prepare_study(cfg)  # everything checked before a storage (or the folder) is created
    out_dir = check_output_dir(out_dir)
    storage = cfg.storage or f"sqlite:///{(out_dir / (cfg.name + '.db')).resolve()}"
    n_obj = 1 if cfg.objective.mode != "pareto" else len(cfg.objective.metrics)
    study = _open_study(cfg, storage, n_obj)
    _check_fingerprint(cfg, study, fingerprint(cfg, base, workloads), storage, adopt, n_obj)
    failures = _storage_errors()
    try:
        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by a killed run
    except failures as exc:
        raise InputError(f"the study storage {_where(storage)} failed: {short_repr(str(exc), 300)}") from None
    target = trials or cfg.trials
    search = _Search(cfg, study, _Evaluator(cfg, base, workloads), n_obj)
    t0 = time.perf_counter()
    interrupted = False
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
    except KeyboardInterrupt:
        interrupted = True
    except failures as exc:
        raise InputError(
            f"the study storage {_where(storage)} failed: {short_repr(str(exc), 300)}; the trials "
            "stored before are kept: run again to resume"
        ) from None
    finally:
        search.evaluate.close()
    completed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    result = StudyResult(study, completed, search.evaluated, time.perf_counter() - t0, out_dir, _where(storage), cfg)
    write_outputs(cfg, base, result)
    if interrupted:
        raise StudyInterrupted(result)
    return result


def _lost_creation_race(exc: BaseException) -> bool:
    """Whether opening a storage failed only because another process was creating Optuna's tables (or stamping
    its schema version) in the same new database at that moment; opening it again then succeeds. SQLite says
    "table ... already exists" or "UNIQUE constraint failed: alembic_version...", or "database is locked" when
    a reading transaction cannot become a writer while another process writes (SQLite answers that at once,
    without its busy timeout, to avoid a deadlock); PostgreSQL says "duplicate ..." / UniqueViolation."""
    return bool(
        re.search(
            r"already exists|duplicate|UniqueViolation|UNIQUE constraint failed|database is locked", str(exc), re.I
        )
    )


def _open_study(cfg: StudyConfig, storage: str, n_obj: int):
    import optuna

    for attempt in range(6):
        try:
            return optuna.create_study(
                study_name=cfg.name,
                storage=_open_storage(storage),
                sampler=_sampler(cfg),
                directions=["minimize"] * n_obj,
                load_if_exists=True,
            )
        except Exception as exc:  # noqa: BLE001 - unreachable database etc.
            if attempt < 5 and _lost_creation_race(exc):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise InputError(
                f"cannot open the study storage {_where(storage)!r}: {short_repr(str(exc), 300)}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _afresh(cfg: StudyConfig, storage: str) -> str:
    if cfg.storage is None:
        return f"to start afresh, use another --out, give the study another `name:`, or delete {_where(storage)}"
    return (
        f"to start afresh, give the study another `name:`, or delete the study from the storage "
        f"(optuna delete-study --study-name {cfg.name} --storage <url>)"
    )


def _check_fingerprint(cfg: StudyConfig, study, fp: dict[str, str], storage: str, adopt: bool, n_obj: int) -> None:
    """Refuse a stored study computed for other settings; record the fingerprint of a new one."""
    import optuna

    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is not None:
        if stored != fp:
            raise InputError(
                f"the stored study {cfg.name!r} in {_where(storage)} was computed for other settings "
                f"than this study file; differing: {'; '.join(fingerprint_difference(stored, fp))}. "
                f"Its trials cannot be mixed with this study's: {_afresh(cfg, storage)}"
            )
        return
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if completed:
        if not adopt:
            raise InputError(
                f"the stored study {cfg.name!r} in {_where(storage)} holds {len(completed)} trials from "
                "an older cimkit that did not record what they were computed for (workloads, chip, "
                "space, objective, constraints, sampler), so they cannot be checked against this study "
                "file. If they come from this same study file, resume with --adopt (run_study(..., "
                f"adopt=True)) to record its settings; otherwise {_afresh(cfg, storage)}"
            )
        names = set(cfg.space)
        odd = [t.number for t in completed if set(t.params) != names]
        if odd or len(study.directions) != n_obj:
            raise InputError(
                f"cannot adopt the stored study {cfg.name!r} in {_where(storage)}: its trials search "
                f"other parameters or objectives than this study file (e.g. trial {odd[0] if odd else 0}: "
                f"{sorted(completed[0].params)}, {len(study.directions)} objective(s)); "
                f"{_afresh(cfg, storage)}"
            )
    study.set_user_attr(FINGERPRINT_ATTR, fp)


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
        values, constraints, columns = self.evaluate(params)
        for i, (t, v, c) in enumerate(zip(trials, values, constraints)):
            uid = uuid.uuid4().hex
            t.set_user_attr("cimkit_id", uid)
            t.set_user_attr("constraints", [float(x) for x in c])
            # every figure behind the score, for trials.csv (one attribute: each is a row in an RDB storage)
            t.set_user_attr(FIGURES_ATTR, json_safe({key: col[i] for key, col in columns.items()}))
            if hasattr(t, "set_constraint"):  # Optuna >= 5: samplers read constraints from the trial
                for name, x in zip(CONSTRAINTS, c):
                    t.set_constraint(name, float(x))
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
    """A completed trial whose constraints hold and whose objective values are real (not the sentinel)."""
    return (
        bool(t.values)
        and all(math.isfinite(v) and v < SENTINEL for v in t.values)
        and all(c <= 0 for c in t.user_attrs.get("constraints", [0.0]))
    )


def _front(trials: list) -> list:
    """The trials no other of ``trials`` dominates (all objectives minimised), best first objective first."""
    ordered = sorted(trials, key=lambda t: tuple(t.values))
    front: list = []
    for t in ordered:
        v = t.values
        if not any(all(a <= b for a, b in zip(f.values, v)) and f.values != v for f in front):
            front.append(t)
    return front


def best_feasible(study) -> list:
    """The best feasible trials of ``study``: the lowest score, or the Pareto front of the feasible
    trials (not the front of all trials filtered afterwards), one per distinct design."""
    import optuna

    feasible = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if _feasible(t)]
    if not feasible:
        return []
    if len(study.directions) == 1:
        best = min(t.values[0] for t in feasible)
        return _distinct([t for t in feasible if t.values[0] == best])
    return _distinct(_front(feasible))


def infeasibility(study) -> str:
    """How many completed trials violate each constraint (a trial can violate several)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    counts = {
        name: 0
        for name in (
            "weights do not fit (or the design cannot be priced)",
            "area over the cap",
            "accuracy below the floor",
        )
    }
    for t in done:
        for name, c in zip(counts, t.user_attrs.get("constraints", [])):
            counts[name] += c > 0
    listed = ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
    return f"{len(done)} completed trial(s){'; ' + listed if listed else ''}"


def _best_value(study) -> float:
    vals = [t.values[0] for t in study.get_trials(deepcopy=False) if t.values and _feasible(t)]
    return min(vals) if vals else float("nan")


_BEST_RE = re.compile(r"best_(\d+)\.yaml")


def _describe(cfg: StudyConfig, base: HardwareSpec, t, i: int) -> str:
    """What a best design is: the study, the trial, the searched values and the objective values."""

    def num(x) -> str:
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    params = ", ".join(f"{k}={num(v)}" for k, v in t.params.items())
    o = cfg.objective
    if o.mode == "weighted":
        w = o.weights or [1.0] * len(o.metrics)
        objective = f"weighted score {' x '.join(f'{m}^{wi:g}' for m, wi in zip(o.metrics, w))} = {t.values[0]:.4g}"
    else:
        objective = ", ".join(f"{m} = {v:.4g}" for m, v in zip(o.metrics, t.values))
    figures = t.user_attrs.get(FIGURES_ATTR) or {}
    chip = [
        f"{label} {figures[key]:.4g} {unit}"
        for key, label, unit in (
            ("energy_j", "energy", "J"),
            ("latency_s", "latency", "s"),
            ("area_mm2", "area", "mm^2"),
        )
        if isinstance(figures.get(key), float)
    ]
    joint = (
        f" across {', '.join(cfg.workload_labels)} (joint: {o.joint})"
        if len(cfg.workloads) > 1
        else f" for {cfg.workload_labels[0]}"
    )
    return (
        f"Best design {i} of study '{cfg.name}' (trial #{t.number}){joint}: {params}; objective {objective}"
        f"{'; ' + ', '.join(chip) if chip else ''}. Base chip: {base.name}."
    )


def write_outputs(cfg: StudyConfig, base: HardwareSpec, result: StudyResult) -> None:
    """trials.csv (every trial with its figures and constraints), convergence.png, pareto.png
    (multi-objective) and the best designs as ``best_<i>.yaml``, each written atomically. Files of an
    earlier run that this one does not replace (more best designs, figures of feasible trials) are
    removed, so that the folder never shows a stale design as a best one."""
    study, out = result.study, result.out_dir
    _write_csv(study, out / "trials.csv")
    best = best_feasible(study)[:10]
    for f in out.glob("best_*.yaml"):
        m = _BEST_RE.fullmatch(f.name)
        if m and int(m.group(1)) >= len(best):
            f.unlink(missing_ok=True)
    made = {p.name for p in result.figures(out)}
    for name in ("convergence.png", "pareto.png"):  # figures of an earlier run that this one does not redraw
        if name not in made:
            (out / name).unlink(missing_ok=True)
    for i, t in enumerate(best):
        spec = spec_for(base, t.params).replace(name=f"{cfg.name}-best{i}", description=_describe(cfg, base, t, i))
        spec.to_yaml(out / f"best_{i}.yaml")


def _write_csv(study, path: Path) -> None:
    """Every trial: number, state, feasible, objective values, parameters, then every figure stored
    with it (per-workload and chip energy, latency and area, edp, edap, constraints, accuracy)."""
    df = _trials_frame(study)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _trials_frame(study):
    """The trials of ``study`` as a pandas DataFrame in the trials.csv layout (see ``_write_csv``)."""
    import pandas as pd

    df = study.trials_dataframe()
    if len(df):
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        df["feasible"] = df["number"].map({n: _feasible(t) for n, t in trials.items()})
        figures = pd.DataFrame([trials[n].user_attrs.get(FIGURES_ATTR) or {} for n in df["number"]], index=df.index)
        df = df.drop(columns=[c for c in (f"user_attrs_{FIGURES_ATTR}",) if c in df.columns])
        df = pd.concat([df, figures], axis=1)
        df = df.rename(columns={c: c[len("user_attrs_") :] for c in df.columns if c.startswith("user_attrs_")})
        df = df.drop(columns=[c for c in df.columns if c.startswith("system_attrs_constraints:")])  # named below
        cols = list(df.columns)

        def rank(c: str) -> tuple[int, int]:
            for i, group in enumerate(
                (
                    ("number", "state", "feasible"),
                    ("value", "values_"),
                    ("params_",),
                    ("energy_j", "latency_s", "area_mm2", "edp", "edap", "accuracy"),
                    CONSTRAINTS,
                )
            ):
                if c in group or any(c.startswith(g) for g in group if g.endswith("_") or ":" in c):
                    return i, cols.index(c)
            return 9, cols.index(c)

        df = df[sorted(cols, key=rank)]
    else:
        df = pd.DataFrame(columns=["number", "state", "feasible"])
    return df
