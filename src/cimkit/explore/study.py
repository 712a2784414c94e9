"""Design-space studies: a YAML file names the workloads, the base chip, the searched parameters, the
constraints and the objective; ``run_study`` searches it with Optuna (ask-and-tell, whole batches priced
in one vectorized cost-model pass) and keeps every trial in an Optuna storage (SQLite by default), so
that a killed run resumes where it stopped."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError, format_validation_error
from ..spec import HardwareSpec

#: searchable parameters -> their HardwareSpec field path
PARAMETERS: dict[str, str] = {
    "supply_v": "technology.supply_v", "node_nm": "technology.node_nm", "clock_hz": "technology.clock_hz",
    "bits_per_cell": "device.bits_per_cell", "weight_bits": "weight_bits",
    "rows": "array.rows", "cols": "array.cols", "crossbar": "array.rows",  # 'crossbar': square arrays
    "adc_bits": "periphery.adc_bits", "input_bits": "periphery.input_bits", "columns_per_adc": "periphery.columns_per_adc",
    "read_latency_ns": "periphery.read_latency_ns",
    "arrays_per_pe": "chip.arrays_per_pe", "pes_per_tile": "chip.pes_per_tile", "tiles": "chip.tiles",
    "tile_buffer_kb": "chip.tile_buffer_kb", "global_buffer_kb": "chip.global_buffer_kb",
}
METRICS = ("energy", "latency", "area", "edp", "edap")
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class ParamSpace(BaseModel):
    """One searched parameter: a list of ``choices``, or a ``low``..``high`` range (``step`` or ``log``)."""

    model_config = _FROZEN
    choices: list[float | int] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _shape(self) -> "ParamSpace":
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices is empty: give at least one value")
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
        elif self.low is None or self.high is None:
            raise ValueError("give choices, or both low and high")
        elif self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class Objective(BaseModel):
    model_config = _FROZEN
    mode: Literal["single", "weighted", "pareto"] = "single"
    metrics: list[Literal["energy", "latency", "area", "edp", "edap"]] = ["edap"]
    weights: list[float] | None = None  # weighted: minimise prod(metric_i ** weight_i) (scale-free)
    joint: Literal["max", "mean", "gmean"] = Field(
        "max", description="how workloads combine: 'max' takes each metric's worst workload (the paper's "
        "max-energy x max-latency x area); 'mean' its mean; 'gmean' its geometric mean, so that every "
        "workload's relative change counts alike however small it is")


class Sampler(BaseModel):
    model_config = _FROZEN
    name: Literal["nsga2", "nsga3", "tpe", "ga", "random", "grid"] = "nsga2"
    population: int = Field(70, ge=2)
    seed: int = 0


class AccuracyFloor(BaseModel):
    """A constraint from the functional simulator: the chip must keep a model's accuracy above ``floor``."""

    model_config = _FROZEN
    model: Literal["demo"] = Field("demo", description="'demo': the demo CNN on MNIST (trained once, cached)")
    floor: float = Field(gt=0, le=1)
    samples: int = Field(300, ge=10, le=1000, description="test images per candidate chip")
    seed: int = 0


class TorchWorkload(BaseModel):
    """A PyTorch model built by ``factory`` ('package.module:function', called without arguments)."""

    model_config = _FROZEN
    torch: str
    input_shape: list[int] = Field(min_length=2)
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.torch.rsplit(":", 1)[-1]


class StudyConfig(BaseModel):
    model_config = _FROZEN
    name: str = "study"
    workloads: list[str | TorchWorkload] = Field(min_length=1)
    hardware: str = "rram-22nm"
    space: dict[str, ParamSpace] = Field(min_length=1)
    objective: Objective = Objective()
    area_max_mm2: float | None = Field(None, gt=0)
    accuracy: AccuracyFloor | None = None
    sampler: Sampler = Sampler()
    trials: int = Field(700, ge=1)
    batch: int = Field(70, ge=1)
    storage: str | None = None  # an SQLAlchemy URL; default: sqlite file next to the outputs
    experiment: Literal["none", "joint_vs_largest"] = Field(
        "none", description="'joint_vs_largest': the ISCAS 2025 experiment (cimkit.explore.joint)")
    executor: Literal["serial", "dask"] = "serial"
    scheduler: str | None = None  # dask: tcp://host:port of an existing cluster; None starts a local one
    workers: int = Field(2, ge=1)  # dask: workers of the local cluster
    scheduler_timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _known(self) -> "StudyConfig":
        unknown = [k for k in self.space if k not in PARAMETERS]
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; searchable: {', '.join(PARAMETERS)}")
        if self.objective.weights is not None and len(self.objective.weights) != len(self.objective.metrics):
            raise ValueError("objective.weights needs one weight per metric")
        if self.objective.mode == "single" and len(self.objective.metrics) != 1:
            raise ValueError("objective.mode 'single' takes exactly one metric")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> "StudyConfig":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such study file: {path}")
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()) or {})
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, str(path), "study file", cls)) from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from None


def _suggest(trial, name: str, p: ParamSpace):
    if p.choices is not None:
        return trial.suggest_categorical(name, p.choices)
    integer = p.integer or all(float(v).is_integer() for v in (p.low, p.high, p.step or 1))
    if integer:
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)


def spec_for(base: HardwareSpec, params: dict[str, Any]) -> HardwareSpec:
    changes = {}
    for name, value in params.items():
        if name == "crossbar":
            changes["array.rows"] = changes["array.cols"] = int(value)
        else:
            changes[PARAMETERS[name]] = value
    return base.replace(**changes)


def _sampler(cfg: StudyConfig):
    import optuna

    s = cfg.sampler
    # Optuna >= 5 reads constraints set on the trial (Trial.set_constraint); older versions need the hook
    constraints = None if hasattr(optuna.trial.Trial, "set_constraint") else (lambda t: t.user_attrs.get("constraints", [0.0]))
    if s.name in ("nsga2", "ga"):  # NSGA-II is the GA (paper: population 70 x 10 generations)
        return optuna.samplers.NSGAIISampler(population_size=s.population, seed=s.seed, constraints_func=constraints)
    if s.name == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=s.population, seed=s.seed, constraints_func=constraints)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, constraints_func=constraints)
    # 'random', and 'grid', whose points are enqueued by the runner (Optuna's GridSampler stops the
    # study from inside the sampler, which ask-and-tell does not allow)
    return optuna.samplers.RandomSampler(seed=s.seed)


def grid_points(cfg: StudyConfig) -> list[dict]:
    """Every point of the space for grid search (ranges need a step)."""
    import itertools

    axes = {}
    for name, p in cfg.space.items():
        if p.choices is not None:
            axes[name] = list(p.choices)
        elif p.step is None:
            raise InputError(f"grid search needs choices or a step for '{name}'")
        else:
            axes[name] = [round(float(v), 12) for v in np.arange(p.low, p.high + p.step / 2, p.step)]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def score(cfg: StudyConfig, energy: np.ndarray, latency: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Objective values (trials, objectives) from per-workload metrics (workloads, trials)."""
    agg = {"max": np.max, "mean": np.mean, "gmean": lambda x, axis: np.exp(np.mean(np.log(x), axis=axis))}[cfg.objective.joint]
    e, lat, a = agg(energy, axis=0), agg(latency, axis=0), np.max(area, axis=0)
    metric = {"energy": e, "latency": lat, "area": a, "edp": e * lat, "edap": e * lat * a}
    cols = [metric[m] for m in cfg.objective.metrics]
    if cfg.objective.mode == "weighted":
        w = cfg.objective.weights or [1.0] * len(cols)
        return np.exp(sum(wi * np.log(c) for wi, c in zip(w, cols)))[:, None]
    return np.stack(cols, axis=1)


_ACCURACY_CACHE: dict[str, float] = {}  # a memo of a pure function: simulator-relevant spec -> accuracy


def simulated_accuracy(floor: AccuracyFloor, spec: HardwareSpec) -> float:
    """Accuracy of ``floor.model`` on the chip ``spec`` (the simulator; cached by the fields it reads)."""
    import json

    key = json.dumps([floor.model_dump(), spec.model_dump(include={"weight_bits", "weight_scale", "device", "array",
                                                                   "periphery"})], sort_keys=True, default=str)
    if key not in _ACCURACY_CACHE:
        from ..data import mnist
        from ..demo import cim_accuracy, train_or_load

        data = mnist()
        model = train_or_load(data.x_train, data.y_train)
        _ACCURACY_CACHE[key] = cim_accuracy(model, spec, floor.seed, data.x_train[:256],
                                            data.x_test[:floor.samples], data.y_test[:floor.samples])
    return _ACCURACY_CACHE[key]


def evaluate_batch(cfg: StudyConfig, base: HardwareSpec, workloads, params: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Objective values (B, objectives) and constraint values (B, 3), each <= 0 when satisfied: the
    weights fit, the area cap, the accuracy floor."""
    from ..cost import estimate_many

    specs = [spec_for(base, p) for p in params]
    results = [estimate_many(wl, specs) for wl in workloads]
    energy = np.stack([r.energy_j for r in results])
    latency = np.stack([r.latency_s for r in results])
    area = np.stack([r.area_mm2 for r in results])
    fits = np.all(np.stack([r.feasible for r in results]), axis=0)
    values = score(cfg, energy, latency, area)
    area_excess = np.nan_to_num(np.max(area, axis=0) - (cfg.area_max_mm2 or np.inf), nan=1.0)
    accuracy_gap = np.zeros(len(specs))
    if cfg.accuracy is not None:
        accuracy_gap = np.array([cfg.accuracy.floor - simulated_accuracy(cfg.accuracy, s) for s in specs])
    constraints = np.stack([np.where(fits, 0.0, 1.0), np.maximum(area_excess, -1.0), accuracy_gap], axis=1)
    values = np.where(np.isfinite(values), values, 1e30)  # infeasible: a finite sentinel, flagged by constraints
    return values, constraints
