"""Design-space studies: a YAML file names the workloads, the base chip, the searched parameters, the
constraints and the objective; ``run_study`` searches it with Optuna (ask-and-tell, whole batches priced
in one vectorized cost-model pass) and keeps every trial in an Optuna storage (SQLite by default), so
that a killed run resumes where it stopped.

Everything a study file says is checked before any storage is created: ``StudyConfig`` checks the file on
its own (types, ranges, names, URLs), ``prepare_study`` against the base chip and the workloads (every
searched value builds a valid chip, the workloads load, the roomiest design holds their weights)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field, StrictBool, ValidationError, field_validator, model_validator

from ..errors import CimkitError, InputError, format_validation_error, short_repr
from ..report.protocol import html_summary, one_line, text_summary
from ..spec import HardwareSpec
from ..spec.model import StrictModel

#: searchable parameters -> their HardwareSpec field path
PARAMETERS: dict[str, str] = {
    "supply_v": "technology.supply_v",
    "node_nm": "technology.node_nm",
    "clock_hz": "technology.clock_hz",
    "bits_per_cell": "device.bits_per_cell",
    "weight_bits": "weight_bits",
    "rows": "array.rows",
    "cols": "array.cols",
    "crossbar": "array.rows",  # 'crossbar': square arrays
    "adc_bits": "periphery.adc_bits",
    "input_bits": "periphery.input_bits",
    "columns_per_adc": "periphery.columns_per_adc",
    "read_latency_ns": "periphery.read_latency_ns",
    "arrays_per_pe": "chip.arrays_per_pe",
    "pes_per_tile": "chip.pes_per_tile",
    "tiles": "chip.tiles",
    "tile_buffer_kb": "chip.tile_buffer_kb",
    "global_buffer_kb": "chip.global_buffer_kb",
}
#: the parameters whose spec field holds whole numbers
INTEGER_PARAMETERS = frozenset(
    {
        "bits_per_cell",
        "weight_bits",
        "rows",
        "cols",
        "crossbar",
        "adc_bits",
        "input_bits",
        "columns_per_adc",
        "arrays_per_pe",
        "pes_per_tile",
        "tiles",
    }
)
METRICS = ("energy", "latency", "area", "edp", "edap")
#: the constraints stored with each trial (each <= 0 when satisfied)
CONSTRAINTS = ("weights_do_not_fit", "area_over_cap_mm2", "accuracy_below_floor")
#: objective value of a design the cost model cannot price (its constraints mark it infeasible)
SENTINEL = 1e30
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX = 100
MAX_CHOICES = 1000
MAX_GRID_POINTS = 1_000_000
MAX_INPUT_ELEMENTS = 1 << 27  # 512 MiB of float32
_BIG = 1e15  # numbers beyond this are never a searched hardware value
_STORAGE_RE = re.compile(r"(sqlite|postgresql|postgres|mysql|mariadb|oracle|mssql)(\+[A-Za-z0-9_]+)?://", re.I)
_SCHEDULER_RE = re.compile(r"((tcp|tls|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})/?")


def _text(value: Any, what: str, limit: int = 1000) -> Any:
    """``value`` if it is a sensible short text (no control characters); else a ValueError."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{what} is empty")
        if len(value) > limit:
            raise ValueError(f"{what} is {len(value):,} characters long (at most {limit:,})")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{what} {short_repr(value)} contains control characters")
    return value


def _number(value: Any, what: str) -> Any:
    """Refuse booleans, non-numbers and absurd magnitudes among searched values (pydantic would read
    ``true`` as 1 inside a list)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} {short_repr(value)} is not a number")
    if isinstance(value, int) and abs(value) > _BIG:
        raise ValueError(f"{what} {short_repr(value)} is too large (at most {_BIG:g})")
    return value


def _whole(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


class ParamSpace(StrictModel):
    """One searched parameter: a list of ``choices``, or a ``low``..``high`` range (``step`` or ``log``)."""

    choices: list[float | int] | None = Field(None, max_length=MAX_CHOICES)
    low: float | None = Field(None, ge=-_BIG, le=_BIG)
    high: float | None = Field(None, ge=-_BIG, le=_BIG)
    step: float | None = Field(None, gt=0, le=_BIG)
    log: StrictBool = False
    integer: StrictBool = Field(False, description="search whole numbers only (implied for integer parameters)")

    @field_validator("choices", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if isinstance(value, list):
            for v in value:
                _number(v, "choice")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "ParamSpace":
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices is empty: give at least one value")
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("give either choices or low/high (with step or log), not both")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"choices {short_repr(self.choices)} repeat a value; give each once")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give choices, or both low and high")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined: a log range has no fixed step")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low:g}")
        if self.step is not None:
            n = (self.high - self.low) / self.step
            if abs(n - round(n)) > 1e-6 * max(1.0, abs(n)):
                raise ValueError(
                    f"high - low ({self.high - self.low:g}) is not a multiple of step ({self.step:g}): "
                    f"the range would stop short of high; adjust high or step"
                )
        if self.integer:
            bad = [
                (k, v)
                for k, v in (("low", self.low), ("high", self.high), ("step", self.step))
                if v is not None and not _whole(v)
            ]
            if bad:
                raise ValueError(f"integer: true needs whole numbers, got {', '.join(f'{k} {v:g}' for k, v in bad)}")
        return self

    def values_to_check(self) -> list[float | int]:
        """The values whose validity bounds the whole parameter: every choice, or low and high."""
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None  # _shape: choices, or both low and high
        return [self.low, self.high]


class Objective(StrictModel):
    """What a study minimises: one metric, a weighted product of metrics, or a Pareto front of them; ``joint``
    combines the workloads of a joint study."""

    mode: Literal["single", "weighted", "pareto"] = "single"
    metrics: list[Literal["energy", "latency", "area", "edp", "edap"]] = Field(["edap"], min_length=1, max_length=5)
    weights: list[float] | None = None  # weighted: minimise prod(metric_i ** weight_i) (scale-free)
    joint: Literal["max", "mean", "gmean"] = Field(
        "max",
        description="how workloads combine: 'max' takes each metric's worst workload (the paper's "
        "max-energy x max-latency x area); 'mean' its mean; 'gmean' its geometric mean, so that every "
        "workload's relative change counts alike however small it is",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Objective":
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics {self.metrics} repeat a metric; give each once")
        if self.mode == "single" and len(self.metrics) != 1:
            raise ValueError(
                f"mode 'single' takes exactly one metric, got {len(self.metrics)}: {self.metrics}; "
                "use mode 'weighted' or 'pareto' for several"
            )
        if self.weights is not None:
            if self.mode != "weighted":
                raise ValueError(f"weights apply to mode 'weighted' only, not {self.mode!r}")
            if len(self.weights) != len(self.metrics):
                raise ValueError(
                    f"weights needs one weight per metric: {len(self.metrics)} metric(s) "
                    f"{self.metrics}, {len(self.weights)} weight(s)"
                )
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                raise ValueError(
                    f"weights {self.weights} must be >= 0 with at least one > 0 (a negative weight "
                    "would maximise its metric)"
                )
        return self


class Sampler(StrictModel):
    """The Optuna sampler a study draws designs with, its population (genetic samplers) and seed."""

    name: Literal["nsga2", "nsga3", "tpe", "ga", "random", "grid"] = "nsga2"
    population: int = Field(70, ge=2, le=100_000)
    seed: int = Field(0, ge=0, lt=2**32)


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*")
#: the built-in accuracy evaluator: the demo CNN on MNIST ("demo" is its short name)
DEMO_EVALUATOR = "cimkit.demo:accuracy_floor_evaluator"


class AccuracyFloor(StrictModel):
    """A constraint from the functional simulator: the chip must keep a model's accuracy above ``floor``.

    ``evaluator`` measures it: "demo" (the default: the demo CNN on MNIST, trained once and cached; the
    same as ``cimkit.demo:accuracy_floor_evaluator``) or any function given as an import string
    "package.module:function", called as ``function(spec)`` with the candidate ``HardwareSpec`` and
    returning the accuracy, a number in [0, 1]. ``samples`` and ``seed`` configure the demo evaluator.
    The older key ``model: demo`` is read as ``evaluator: demo``."""

    evaluator: str = Field(
        "demo",
        max_length=500,
        description="'demo' (the demo CNN on MNIST) or "
        "'package.module:function', called as function(spec) -> accuracy in [0, 1]",
    )
    floor: float = Field(gt=0, le=1)
    samples: int = Field(300, ge=10, le=1000, description="demo evaluator: test images per candidate chip")
    seed: int = Field(0, ge=0, lt=2**32, description="demo evaluator: the programming seed of each chip")

    @model_validator(mode="before")
    @classmethod
    def _older_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            data = dict(data)
            model = data.pop("model")
            if "evaluator" in data and data["evaluator"] != model:
                raise ValueError(
                    f"give evaluator ({short_repr(data['evaluator'])}) or its older name model "
                    f"({short_repr(model)}), not both"
                )
            data["evaluator"] = model
        return data

    @field_validator("evaluator", mode="before")
    @classmethod
    def _evaluator(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic names the type
        value = value.strip()
        if value in ("demo", DEMO_EVALUATOR):
            return "demo"
        if not _IMPORT_RE.fullmatch(value):
            raise ValueError(
                f"{short_repr(value)} is neither 'demo' nor an import string 'package.module:function' "
                "(a function called as function(spec) that returns the accuracy in [0, 1])"
            )
        return value

    @model_validator(mode="after")
    def _demo_options(self) -> "AccuracyFloor":
        given = sorted({"samples", "seed"} & self.model_fields_set)
        if self.evaluator != "demo" and given:
            raise ValueError(
                f"{' and '.join(given)} {'configure' if len(given) > 1 else 'configures'} the demo "
                f"evaluator only; the evaluator "
                f"{self.evaluator!r} is called as function(spec) and chooses its own"
            )
        return self

    @property
    def model(self) -> str:
        """``evaluator`` (the older name)."""
        return self.evaluator


class TorchWorkload(StrictModel):
    """A PyTorch model built by ``factory`` ('package.module:function', called without arguments)."""

    torch: str = Field(max_length=500)
    input_shape: list[int] = Field(min_length=2, max_length=8)
    name: str | None = Field(None, max_length=NAME_MAX)

    @field_validator("torch")
    @classmethod
    def _factory(cls, value: str) -> str:
        if not _IMPORT_RE.fullmatch(value):
            raise ValueError(f"{short_repr(value)} is not 'package.module:function'")
        return value

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 1 << 20 for d in value):
            raise ValueError(f"input_shape {value}: every size must be from 1 to {1 << 20:,}")
        if math.prod(value) > MAX_INPUT_ELEMENTS:  # the model is traced on one real all-zero input
            raise ValueError(
                f"input_shape {value} holds {math.prod(value):,} elements; at most {MAX_INPUT_ELEMENTS:,} "
                "(costs are per inference: use batch size 1)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _text(value, "name", NAME_MAX)

    @property
    def label(self) -> str:
        return self.name or self.torch.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def workload_label(entry: "str | TorchWorkload") -> str:
    """The name a workload entry gets in tables and CSV columns (a file's stem, a zoo name, a factory)."""
    if isinstance(entry, str):
        return Path(entry).stem if entry.lower().endswith((".onnx", ".csv")) else entry
    return entry.label


def _check_storage(url: str) -> str:
    _text(url, "storage")
    if not _STORAGE_RE.match(url):
        raise ValueError(
            f"{short_repr(url)} is not a database URL; expected e.g. sqlite:///path/to/study.db or "
            "postgresql://user@host:5432/db (or leave storage out for a SQLite file in the output folder)"
        )
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except ImportError:  # pragma: no cover - optuna needs sqlalchemy
        pass
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's ArgumentError and friends
        raise ValueError(f"{short_repr(url)} is not a valid database URL ({short_repr(str(exc), 120)})") from None
    if url.lower().startswith("sqlite") and not url.lower().startswith("sqlite:///"):
        raise ValueError(f"{short_repr(url)}: a SQLite URL is sqlite:/// followed by the file path")
    return url


def _check_scheduler(address: str) -> str:
    _text(address, "scheduler")
    m = _SCHEDULER_RE.fullmatch(address.strip())
    if not m or not 1 <= int(m.group(4)) <= 65535:
        raise ValueError(
            f"{short_repr(address)} is not a Dask scheduler address; expected tcp://host:port "
            "(port 1-65535), e.g. tcp://127.0.0.1:8786"
        )
    return address.strip()


class StudyConfig(StrictModel):
    """A design-space study file: workloads, base hardware, the searched space, objective, constraints, sampler,
    trials, executor and storage (``cimkit explore STUDY.yaml``)."""

    name: str = Field("study", description="the study's name in its storage; also the SQLite file name")
    workloads: list[str | TorchWorkload] = Field(min_length=1, max_length=64)
    hardware: str = "rram-22nm"
    space: dict[str, ParamSpace] = Field(min_length=1, max_length=len(PARAMETERS))
    objective: Objective = Objective()
    area_max_mm2: float | None = Field(None, gt=0, le=1e9)
    accuracy: AccuracyFloor | None = None
    sampler: Sampler = Sampler()
    trials: int = Field(700, ge=1, le=10**9)
    batch: int = Field(70, ge=1, le=100_000)
    storage: str | None = None  # an SQLAlchemy URL; default: sqlite file next to the outputs
    experiment: Literal["none", "joint_vs_largest"] = Field(
        "none", description="'joint_vs_largest': the ISCAS 2025 experiment (cimkit.explore.joint)"
    )
    executor: Literal["serial", "dask"] = "serial"
    scheduler: str | None = None  # dask: tcp://host:port of an existing cluster; None starts a local one
    workers: int = Field(2, ge=1, le=1024)  # dask: workers of the local cluster
    scheduler_timeout_s: float = Field(10.0, gt=0, le=3600)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_RE.fullmatch(value) or ".." in value:
            raise ValueError(
                f"{short_repr(value)} is not a safe study name: use 1 to {NAME_MAX} letters, digits, '.', "
                "'_' or '-', starting with a letter or digit, without '..' (it names the SQLite file "
                "in the output folder)"
            )
        return value

    @field_validator("workloads")
    @classmethod
    def _workload_names(cls, value: list) -> list:
        for w in value:
            _text(w, "workload")
        labels = [workload_label(w) for w in value]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"workload(s) {twice} given twice; give each once (or name torch workloads apart)")
        return value

    @field_validator("hardware")
    @classmethod
    def _hardware(cls, value: str) -> str:
        return _text(value, "hardware")

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        return None if value is None else _check_storage(value)

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str | None) -> str | None:
        return None if value is None else _check_scheduler(value)

    @field_validator("space")
    @classmethod
    def _space(cls, value: dict[str, ParamSpace]) -> dict[str, ParamSpace]:
        unknown = [k for k in value if k not in PARAMETERS]
        if unknown:
            raise ValueError(f"unknown parameter(s) {short_repr(unknown)}; searchable: {', '.join(PARAMETERS)}")
        if "crossbar" in value and ({"rows", "cols"} & set(value)):
            raise ValueError("crossbar sets both array.rows and array.cols: search either crossbar, or rows and cols")
        out = {}
        for name, p in value.items():
            if name in INTEGER_PARAMETERS:
                given = p.values_to_check() + ([p.step] if p.step is not None else [])
                frac = [v for v in given if not _whole(v)]
                if frac:
                    raise ValueError(f"space.{name}: {short_repr(frac)} not whole number(s); {name} takes integers")
                if p.choices is not None:  # 4.0 -> 4, so that designs and tables show integers
                    p = p.model_copy(update={"choices": [int(v) for v in p.choices]})
                else:
                    p = p.model_copy(update={"integer": True})
            out[name] = p
        return out

    @model_validator(mode="after")
    def _consistent(self) -> "StudyConfig":
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(
                f"scheduler {self.scheduler!r} is given but executor is {self.executor!r}; set executor: "
                "dask (the command line's --scheduler does)"
            )
        if self.sampler.name == "grid":
            ranges = [n for n, p in self.space.items() if p.choices is None and p.step is None and not p.integer]
            if ranges:
                raise ValueError(f"sampler 'grid' needs choices or a step for {', '.join(ranges)}")
            size = math.prod(_grid_size(p) for p in self.space.values())
            if size > MAX_GRID_POINTS:
                raise ValueError(
                    f"sampler 'grid': the space has {size:,.0f} points (at most {MAX_GRID_POINTS:,}); "
                    "use fewer choices or coarser steps, or another sampler"
                )
        return self

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> "StudyConfig":
        """Read and check a study file. File paths in it (``hardware:`` YAML files, ``.csv`` and ``.onnx``
        workloads) are relative to the study file's folder."""
        from ..io import load_yaml

        path = Path(path)
        data = load_yaml(path, "study")
        return cls._validate(_resolve_paths(data, path.resolve().parent), str(path))

    @classmethod
    def _validate(cls, data: dict, source: str) -> "StudyConfig":
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(_cut(format_validation_error(exc, source, "study file", cls))) from None
        except (RecursionError, OverflowError) as exc:  # absurd input that pydantic cannot represent
            raise InputError(f"{source}: invalid study file ({type(exc).__name__}: {short_repr(str(exc))})") from None

    def with_overrides(self, **changes: Any) -> "StudyConfig":
        """A validated copy with ``changes`` (``model_copy(update=...)`` would skip validation). A bad
        override raises a one-line ``InputError`` naming it, e.g. ``trials = 0: ... >= 1``."""
        try:
            return self.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'study'} = {short_repr(e.get('input'))}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()[:3]
            )
            raise InputError(f"invalid override: {problems}") from None

    @property
    def workload_labels(self) -> list[str]:
        return [workload_label(w) for w in self.workloads]

    # ---- summaries -------------------------------------------------------------------------------------
    def space_points(self) -> float:
        """How many designs the space holds: the product of each parameter's values (``math.inf`` when a
        parameter is a continuous range)."""
        return math.prod(_grid_size(p) if _discrete(p) else math.inf for p in self.space.values())

    def headline(self) -> dict[str, str]:
        """What the study will run, as {label: text}: workloads, chip, space, objective, constraints, search."""
        o, s = self.objective, self.sampler
        labels = self.workload_labels
        points = self.space_points()
        if math.isinf(points):
            ranges = sum(not _discrete(p) for p in self.space.values())
            grid = math.prod(_grid_size(p) for p in self.space.values() if _discrete(p))
            size = f"continuous ({ranges} range{'s' if ranges != 1 else ''} x {grid:,.0f} discrete combinations)"
        else:
            size = f"{points:,.0f} design{'s' if points != 1 else ''}"
        if o.mode == "weighted" and o.weights is not None:
            objective = "weighted: " + " x ".join(f"{m}^{w:g}" for m, w in zip(o.metrics, o.weights))
        else:
            objective = f"{o.mode}: {', '.join(o.metrics)}"
        if len(self.workloads) > 1:
            objective += f" (workloads joined by {o.joint})"
        constraints = []
        if self.area_max_mm2 is not None:
            constraints.append(f"area <= {self.area_max_mm2:g} mm\u00b2")
        if self.accuracy is not None:
            constraints.append(f"accuracy >= {self.accuracy.floor:.2%} ({self.accuracy.evaluator})")
        sampler = s.name + (
            f" (population {s.population}, seed {s.seed})"
            if s.name in ("nsga2", "nsga3", "ga")
            else f" (seed {s.seed})"
        )
        executor: str = self.executor
        if self.executor == "dask":
            executor += f" at {self.scheduler}" if self.scheduler else f" ({self.workers} local workers)"
        out = {
            "workloads": f"{len(labels)}: {one_line(', '.join(labels), 70)}",
            "hardware": one_line(self.hardware, 70),
            "space": one_line("; ".join(f"{n} {_space_text(p)}" for n, p in self.space.items()), 70),
            "space size": size,
            "objective": objective,
            "constraints": "; ".join(constraints) or "none (designs must hold the weights)",
            "sampler": sampler,
            "trials": f"{self.trials} in batches of {self.batch}",
            "executor": executor,
        }
        if self.experiment != "none":
            out["experiment"] = self.experiment
        if self.storage is not None:
            out["storage"] = one_line(_hide_password(self.storage), 70)
        return out

    def __repr__(self) -> str:
        return text_summary(type(self).__name__, repr(self.name), list(self.headline().items()))

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        """The summary and one row per searched parameter (its values and how many)."""
        rows = [
            {
                "parameter": n,
                "field": "array.rows, array.cols" if n == "crossbar" else PARAMETERS[n],
                "values": _space_text(p, 200),
                "count": _count_text(p),
            }
            for n, p in self.space.items()
        ]
        return html_summary(
            type(self).__name__,
            repr(self.name),
            list(self.headline().items()),
            rows,
            ("parameter", "field", "values", "count"),
            max_rows=len(rows),
        )


def _cut(message: str, lines: int = 8) -> str:
    """A validation message of at most ``lines`` lines (a fuzzed file can have hundreds of errors)."""
    parts = message.splitlines()
    if len(parts) <= lines:
        return message
    return "\n".join(parts[:lines] + [f"  ... and {len(parts) - lines} more problem(s)"])


def _resolve_paths(data: dict, folder: Path) -> dict:
    """``data`` with relative file paths (hardware YAML, workload .csv/.onnx) made relative to ``folder``."""

    def fix(value: Any, suffixes: tuple[str, ...]) -> Any:
        if isinstance(value, str) and value.lower().endswith(suffixes) and "\x00" not in value and len(value) < 4096:
            p = Path(value).expanduser()
            return value if p.is_absolute() else str(folder / p)
        return value

    out = dict(data)
    if "hardware" in out:
        out["hardware"] = fix(out["hardware"], (".yaml", ".yml"))
    if isinstance(out.get("workloads"), list):
        out["workloads"] = [fix(w, (".csv", ".onnx")) for w in out["workloads"]]
    return out


def _discrete(p: ParamSpace) -> bool:
    """Whether the parameter takes finitely many values (choices, a stepped range or an integer range)."""
    return p.choices is not None or p.step is not None or p.integer


def _space_text(p: ParamSpace, limit: int = 40) -> str:
    """A parameter's values in a few characters: {4, 5, 6}, 0.6..1.0 step 0.1, 1e6..1e9 log."""
    if p.choices is not None:
        return one_line("{" + ", ".join(f"{v:g}" for v in p.choices) + "}", limit)
    text = f"{p.low:g}..{p.high:g}"
    if p.step is not None:
        text += f" step {p.step:g}"
    if p.log:
        text += " log"
    if p.integer and p.step is None:
        text += " integers"
    return text


def _count_text(p: ParamSpace) -> str:
    return f"{_grid_size(p):,.0f}" if _discrete(p) else "continuous"


def _hide_password(url: str) -> str:
    """``url`` with the password of ``user:password@host`` replaced by ***."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def _grid_size(p: ParamSpace) -> int:
    if p.choices is not None:
        return len(p.choices)
    assert p.low is not None and p.high is not None  # ParamSpace._shape: choices, or both low and high
    return math.floor((p.high - p.low) / (p.step or 1) + 1e-6) + 1


def _suggest(trial, name: str, p: ParamSpace):
    if p.choices is not None:
        return trial.suggest_categorical(name, p.choices)
    assert p.low is not None and p.high is not None  # ParamSpace._shape: choices, or both low and high
    if p.integer or name in INTEGER_PARAMETERS:
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)


def _changes(params: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for name, value in params.items():
        if name == "crossbar":
            changes["array.rows"] = changes["array.cols"] = int(value)
        else:
            changes[PARAMETERS[name]] = value
    return changes


def spec_for(base: HardwareSpec, params: dict[str, Any]) -> HardwareSpec:
    """``base`` with a trial's parameters (study parameter name -> value) applied, validated."""
    return base.replace(**_changes(params))


def _sampler(cfg: StudyConfig):
    import optuna

    s = cfg.sampler
    # Optuna >= 5 reads constraints set on the trial (Trial.set_constraint); older versions need the hook
    constraints = (
        None if hasattr(optuna.trial.Trial, "set_constraint") else (lambda t: t.user_attrs.get("constraints", [0.0]))
    )
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
    """Every point of the space for grid search (ranges need a step, or are integer ranges)."""
    import itertools

    axes = {}
    for name, p in cfg.space.items():
        if p.choices is not None:
            axes[name] = list(p.choices)
        elif p.step is None and not p.integer:
            raise InputError(f"grid search needs choices or a step for '{name}'")
        else:
            n, step, low = _grid_size(p), p.step or 1, p.low or 0.0
            values = [low + i * step for i in range(n)]
            axes[name] = [int(round(v)) for v in values] if p.integer else [round(float(v), 12) for v in values]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def score(cfg: StudyConfig, energy: np.ndarray, latency: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Objective values (trials, objectives) from per-workload metrics (workloads, trials)."""
    return _score(cfg, *_joint(cfg, energy, latency, area))


def _joint(cfg: StudyConfig, energy: np.ndarray, latency: np.ndarray, area: np.ndarray):
    """Energy, latency and area of the chip across workloads (each (trials,)): energy and latency by the
    objective's ``joint`` rule, area the largest."""
    rules: dict[str, Callable[..., Any]] = {
        "max": np.max,
        "mean": np.mean,
        "gmean": lambda x, axis: np.exp(np.mean(np.log(x), axis=axis)),
    }
    agg = rules[cfg.objective.joint]
    with np.errstate(all="ignore"):
        return agg(energy, axis=0), agg(latency, axis=0), np.max(area, axis=0)


def _metrics(e: np.ndarray, lat: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        return {"energy": e, "latency": lat, "area": a, "edp": e * lat, "edap": e * lat * a}


def _score(cfg: StudyConfig, e: np.ndarray, lat: np.ndarray, a: np.ndarray) -> np.ndarray:
    metric = _metrics(e, lat, a)
    cols = [metric[m] for m in cfg.objective.metrics]
    if cfg.objective.mode == "weighted":
        w = cfg.objective.weights or [1.0] * len(cols)
        with np.errstate(all="ignore"):
            return np.exp(sum(wi * np.log(c) for wi, c in zip(w, cols)))[:, None]
    return np.stack(cols, axis=1)


_ACCURACY_CACHE: dict[str, float] = {}  # a memo of a pure function: evaluator and chip -> accuracy


def load_evaluator(floor: AccuracyFloor) -> Callable[[HardwareSpec], float]:
    """The function behind ``floor.evaluator``, checked to be importable and callable (not yet called).
    The demo evaluator is imported only when called (it needs torch). Raises ``InputError`` naming
    ``accuracy.evaluator`` and the value for a module that cannot be imported, a missing attribute or
    something that is not callable."""
    import importlib

    if floor.evaluator == "demo":

        def demo(spec: HardwareSpec) -> float:
            from ..demo import accuracy_floor_evaluator

            return accuracy_floor_evaluator(spec, samples=floor.samples, seed=floor.seed)

        return demo
    where = f"accuracy.evaluator = {floor.evaluator!r}"
    module, _, attr = floor.evaluator.partition(":")
    try:
        fn = importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"{where}: cannot import the module {module!r} ({short_repr(str(exc), 200)}); expected "
            "'package.module:function'"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a module that fails while importing
        raise InputError(
            f"{where}: importing {module} failed: {type(exc).__name__}: {short_repr(str(exc), 200)}"
        ) from None
    for part in attr.split("."):
        try:
            fn = getattr(fn, part)
        except AttributeError:
            raise InputError(f"{where}: {module!r} has no attribute {attr!r}") from None
    if not callable(fn):
        raise InputError(
            f"{where}: {short_repr(fn)} is not callable; give a function called as function(spec) "
            "that returns the accuracy in [0, 1]"
        )
    return fn


def _accuracy_key(floor: AccuracyFloor, spec: HardwareSpec) -> str:
    """The memo key: the demo evaluator reads only the simulator's fields; another evaluator may read any."""
    if floor.evaluator == "demo":
        fields = spec.model_dump(include={"weight_bits", "weight_scale", "device", "array", "periphery"})
    else:
        fields = spec.model_dump(exclude={"name", "description"})
    return json.dumps([floor.model_dump(), fields], sort_keys=True, default=str)


def simulated_accuracy(floor: AccuracyFloor, spec: HardwareSpec) -> float:
    """Accuracy of ``floor.evaluator`` on the chip ``spec`` (memoized by what the evaluator reads). Raises
    ``InputError`` naming the evaluator when it fails or returns anything but a number in [0, 1]."""
    key = _accuracy_key(floor, spec)
    if key not in _ACCURACY_CACHE:
        fn = load_evaluator(floor)
        where = f"accuracy.evaluator = {floor.evaluator!r}"
        try:
            value = fn(spec)
        except CimkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code: one line naming it
            raise InputError(
                f"{where} failed on the chip {spec.name!r}: {type(exc).__name__}: {short_repr(str(exc), 200)}"
            ) from None
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not 0.0 <= float(value) <= 1.0
        ):
            raise InputError(
                f"{where} returned {short_repr(value)} on the chip {spec.name!r}; an evaluator returns "
                "the accuracy as a number in [0, 1]"
            )
        _ACCURACY_CACHE[key] = float(value)
    return _ACCURACY_CACHE[key]


def evaluate_details(
    cfg: StudyConfig, base: HardwareSpec, workloads, params: list[dict], *, accuracy: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``evaluate_batch``, plus every figure behind the score, one (B,) array per column: energy,
    latency and area per workload ('energy_j:<workload>', ...) and of the chip ('energy_j', 'latency_s',
    'area_mm2', 'edp', 'edap'), each constraint by name, and 'accuracy' with an accuracy floor.
    ``accuracy=False`` skips the simulator (its constraint is then 0)."""
    from ..cost import estimate_many

    specs = [spec_for(base, p) for p in params]
    results = [estimate_many(wl, specs) for wl in workloads]
    energy = np.stack([r.energy_j for r in results])
    latency = np.stack([r.latency_s for r in results])
    area = np.stack([r.area_mm2 for r in results])
    fits = np.all(np.stack([r.feasible for r in results]), axis=0)
    e, lat, a = _joint(cfg, energy, latency, area)
    values = _score(cfg, e, lat, a)
    with np.errstate(invalid="ignore"):
        area_excess = np.nan_to_num(a - (cfg.area_max_mm2 or np.inf), nan=1.0)
    columns: dict[str, np.ndarray] = {}
    for wl, r in zip(workloads, results):
        columns[f"energy_j:{wl.name}"], columns[f"latency_s:{wl.name}"] = r.energy_j, r.latency_s
        columns[f"area_mm2:{wl.name}"] = r.area_mm2
    m = _metrics(e, lat, a)
    columns.update({"energy_j": e, "latency_s": lat, "area_mm2": a, "edp": m["edp"], "edap": m["edap"]})
    accuracy_gap = np.zeros(len(specs))
    if cfg.accuracy is not None and accuracy:
        acc = np.array([simulated_accuracy(cfg.accuracy, s) for s in specs])
        columns["accuracy"] = acc
        accuracy_gap = cfg.accuracy.floor - acc
    # a design the cost model cannot price (a non-finite score) is infeasible, whatever the reason
    priced = np.all(np.isfinite(values), axis=1) & np.all(values < SENTINEL, axis=1)
    constraints = np.stack([np.where(fits & priced, 0.0, 1.0), np.maximum(area_excess, -1.0), accuracy_gap], axis=1)
    for i, name in enumerate(CONSTRAINTS):
        columns[name] = constraints[:, i]
    values = np.where(np.isfinite(values) & (values < SENTINEL), values, SENTINEL)
    return values, constraints, columns


def evaluate_batch(
    cfg: StudyConfig, base: HardwareSpec, workloads, params: list[dict]
) -> tuple[np.ndarray, np.ndarray]:
    """Objective values (B, objectives) and constraint values (B, 3), each <= 0 when satisfied: the
    weights fit (and the design can be priced), the area cap, the accuracy floor. A design that cannot be
    priced gets the objective ``SENTINEL`` (1e30) and a violated first constraint."""
    values, constraints, _ = evaluate_details(cfg, base, workloads, params)
    return values, constraints
