"""Checks of a study before any storage is created (the base chip, every searched value, the workloads,
the roomiest design), and the study's fingerprint: what its stored trials were computed for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import CimkitError, InputError, SpecError, short_repr
from ..io import build_model, dict_differences
from ..spec import HardwareSpec
from ..spec.model import stored_content
from .study import (
    INTEGER_PARAMETERS,
    PARAMETERS,
    AccuracyFloor,
    ParamSpace,
    StudyConfig,
    TorchWorkload,
    _changes,
    evaluate_details,
    load_evaluator,
)

# ---- checks before any storage is created -------------------------------------------------------------


def load_base(cfg: StudyConfig) -> HardwareSpec:
    """The study's base chip: a preset name or a hardware YAML file."""
    path = Path(cfg.hardware)
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            if not path.is_file():
                raise InputError(
                    f"hardware: no such hardware description file: {path} (paths in a study file are "
                    "relative to the study file's folder)"
                )
            return HardwareSpec.from_yaml(path)
        return HardwareSpec.preset(cfg.hardware)
    except SpecError as exc:
        raise InputError(f"hardware: {exc}") from None
    except OSError as exc:
        raise InputError(f"hardware: cannot read {short_repr(cfg.hardware)}: {exc.strerror or exc}") from None


def check_space(cfg: StudyConfig, base: HardwareSpec) -> None:
    """Every searched value (each choice, or low and high) must build a valid chip from ``base``."""
    from ..spec.model import apply_dotted, mapping_fields

    for name, p in cfg.space.items():
        target = "array.rows and array.cols" if name == "crossbar" else PARAMETERS[name]
        for v in p.values_to_check():
            try:
                HardwareSpec.model_validate(
                    apply_dotted(base.model_dump(), _changes({name: v}), "HardwareSpec", mapping_fields(HardwareSpec))
                )
            except ValidationError as exc:
                reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
                raise InputError(f"space.{name}: {v:g} is outside what {target} allows ({reasons[:300]})") from None


def load_workloads(cfg: StudyConfig) -> list:
    """The study's workloads, traced (zoo names, .csv / .onnx files, torch factories)."""
    out = []
    for entry in cfg.workloads:
        try:
            out.append(_load_torch(entry) if not isinstance(entry, str) else _load_named(entry))
        except CimkitError as exc:
            text = str(exc)
            label = short_repr(entry if isinstance(entry, str) else entry.torch)
            raise InputError(text if label in text else f"workload {label}: {text}") from None
        except OSError as exc:
            raise InputError(f"workload {short_repr(entry)}: cannot read it: {exc.strerror or exc}") from None
    return out


def _load_named(name: str):
    from ..workload import load_workload

    if name.lower().endswith((".csv", ".onnx")):
        if not Path(name).is_file():
            raise InputError(
                f"workload {short_repr(name)}: no such file (paths in a study file are relative to the "
                "study file's folder)"
            )
        return load_workload(name)
    return _zoo_workload(name)


_ZOO_CACHE: dict[str, Any] = {}  # zoo workloads are pure functions of their name: trace each once


def _zoo_workload(name: str):
    from ..workload import load_workload

    if name not in _ZOO_CACHE:
        _ZOO_CACHE[name] = load_workload(name)
    return _ZOO_CACHE[name]


def _load_torch(entry: TorchWorkload):
    from ..workload import Workload

    model = build_model(entry.torch, f"workload {entry.torch!r}")
    try:
        return Workload.from_torch(model, tuple(entry.input_shape), name=entry.label)
    except CimkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - tracing user code
        raise InputError(
            f"workload {entry.torch!r}: cannot trace it on input_shape {entry.input_shape}: "
            f"{type(exc).__name__}: {short_repr(str(exc), 200)}"
        ) from None


def roomiest(cfg: StudyConfig) -> dict:
    """The design of the space that holds the most weights: more of everything holds more, except
    weight bits, which need more cells."""

    def pick(name: str, p: ParamSpace):
        if p.choices is not None:
            return (min if name == "weight_bits" else max)(p.choices)
        return p.low if name == "weight_bits" else p.high

    return {
        name: (int(v) if name in INTEGER_PARAMETERS else v) for name, p in cfg.space.items() for v in [pick(name, p)]
    }


def prepare_study(cfg: StudyConfig) -> tuple[HardwareSpec, list]:
    """Everything checked before a storage is created: the base chip loads, every searched value builds
    a valid chip, the workloads load, and the roomiest design of the space holds their weights. Returns
    the base chip and the traced workloads. Raises ``InputError`` naming the field and the value."""
    base = load_base(cfg)
    check_space(cfg, base)
    if cfg.accuracy is not None:
        load_evaluator(cfg.accuracy)  # importable and callable, before any storage
    workloads = load_workloads(cfg)
    if "tiles" in cfg.space or base.chip.tiles is not None:
        room = roomiest(cfg)
        _, cons, _ = evaluate_details(cfg, base, workloads, [room], accuracy=False)
        if cons[0, 0] > 0:
            raise InputError(
                f"infeasible space: even the roomiest design {room} cannot hold the weights of "
                f"{', '.join(cfg.workload_labels)}"
            )
    return base, workloads


# ---- what a stored study was computed for --------------------------------------------------------------

#: bump when the meaning of stored trials changes
FINGERPRINT_FORMAT = 1


def fingerprint(cfg: StudyConfig, base: HardwareSpec, workloads) -> dict[str, str]:
    """Everything that changes the trials of a study, as canonical JSON per key: the workloads (their
    traced content, so a changed .csv / .onnx / factory counts), the base chip's content, the space,
    the objective, the constraints and the sampler. Not the trial count, batch, storage or executor."""
    import hashlib

    def digest(wl) -> str:
        ops = json.dumps(
            {"input_shape": list(wl.input_shape), "ops": [_op_fields(op) for op in wl.ops]}, sort_keys=True, default=str
        )
        return hashlib.sha256(ops.encode()).hexdigest()[:16]

    sampler = cfg.sampler.model_dump()
    sampler["name"] = "nsga2" if sampler["name"] == "ga" else sampler["name"]
    parts = {
        "format": FINGERPRINT_FORMAT,
        "workloads": [{"name": wl.name, "sha256": digest(wl)} for wl in workloads],
        "hardware": {k: v for k, v in stored_content(base).items() if k not in ("name", "description")},
        "space": {k: cfg.space[k].model_dump() for k in sorted(cfg.space)},
        "objective": cfg.objective.model_dump(),
        "area_max_mm2": cfg.area_max_mm2,
        "accuracy": None if cfg.accuracy is None else _accuracy_fingerprint(cfg.accuracy),
        "sampler": sampler,
    }
    return {k: json.dumps(v, sort_keys=True) for k, v in parts.items()}


def _op_fields(op) -> dict:
    """An op's fields as fingerprinted: ``binary_input`` (added with spiking workloads) only when set, so that
    stored studies of other workloads still resume."""
    import dataclasses

    fields = dataclasses.asdict(op)
    if not fields.get("binary_input", False):
        fields.pop("binary_input", None)
    return fields


def _hardware_fingerprint(base: HardwareSpec) -> dict:
    """The chip's content; the ``neuron`` section (added after studies were first stored) only when it is not
    the default, so that stored studies of chips without spiking neurons still resume."""
    hw = base.model_dump(mode="json", exclude={"name", "description"})
    if hw.get("neuron") == type(base)().model_dump(mode="json")["neuron"]:
        del hw["neuron"]
    return hw


def _accuracy_fingerprint(accuracy: AccuracyFloor) -> dict:
    """The accuracy floor as fingerprinted: the demo evaluator under its older key ``model`` (so that studies
    stored before evaluators existed resume), any other under ``evaluator``."""
    acc = accuracy.model_dump()
    evaluator = acc.pop("evaluator")
    acc["model" if evaluator == "demo" else "evaluator"] = evaluator
    return acc


def fingerprint_difference(stored: dict, now: dict) -> list[str]:
    """What differs between two fingerprints, one short phrase per key (for the hardware, the fields)."""
    out = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key), now.get(key)
        if a == b:
            continue
        try:
            va, vb = json.loads(a) if a is not None else None, json.loads(b) if b is not None else None
        except (TypeError, ValueError):
            va, vb = a, b
        if key == "hardware" and isinstance(va, dict) and isinstance(vb, dict):
            fields = dict_differences(va, vb)
            out.append(f"hardware ({', '.join(fields[:6])}{', ...' if len(fields) > 6 else ''})")
        else:
            out.append(f"{key} (stored {short_repr(va, 100)}, now {short_repr(vb, 100)})")
    return out
