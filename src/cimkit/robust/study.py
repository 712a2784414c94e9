"""``cimkit robustness STUDY.yaml``: one file that says which models, which chip and which studies (attacks,
faults, drift, approximate computing), run part by part with a checkpoint per part.

A study file (all sections optional except ``models``; at least one study section)::

    name: mnist-robustness
    hardware: rram-22nm          # preset or YAML file (relative to the study file)
    images: 200                  # test images per evaluation (the first of the test split)
    calibration_images: 256      # training images the chips' ADC / DAC ranges are calibrated on
    chips: 3                     # sampled chips per point of the fault, drift and AxC curves
    seed: 0
    models:
      - {name: small_cnn, data: mnist, epochs: 10, batch_size: 64}
      - {name: cct, data: mnist, epochs: 10, options: {layers: 2, dim: 64, tokenizer_convs: 2}, schedule: cosine}
    attacks:
      strengths: {fgsm: [0, 0.05, 0.1, 0.2], pgd: [0, 0.05, 0.1], deepfool: [0.5, 1, 2]}
      sides: [ideal, chip]
      transfer: {attack: pgd, eps: 0.1}
    faults: {kinds: {dead_column: [0, 0.01, 0.05], adc_bit_flip: [0, 0.001, 0.01]}}
    drift: {hardware: pcm, times_s: [1, 3600, 86400, 3.15e7, 3.15e8]}
    axc: {multipliers: [mitchell, drum-6, drum-4]}

Models are built and trained here (``cimkit.robust.models``), once: their weights are saved under
``OUT/models`` with the settings that made them, and reused while those settings stay the same. Each part of
the study (an attack on one model, a fault kind, a drift curve, a transfer matrix, an AxC table) writes its
result to ``OUT/parts/<part>.json`` with the settings it was computed under; a rerun skips the parts whose
settings are unchanged (interrupted long parts resume from their own ``simulate`` checkpoints under
``OUT/checkpoints``). ``OUT/results.json`` gathers every part; figures go to ``OUT/figures``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import InputError, format_validation_error, short_repr
from ..io import atomic_write, check_output_dir, load_yaml, strict_json
from ..report.protocol import html_summary, one_line, text_summary
from ..spec import HardwareSpec
from ..spec.model import StrictModel
from .faults import DRIFT_TIMES_S, FAULT_KINDS

DATA_SETS = ("mnist", "composite", "digits")
SIDES = ("ideal", "chip")


def part_key(section: str, *names: str) -> str:
    """The name of one part of a study (its file under ``OUT/parts``, its checkpoint): the section, then what it
    is about, joined by "-" (``attack-small_cnn-pgd-chip``); ``RobustnessStudy.parts`` and the runner both use it."""
    return "-".join((section, *names))


class ModelEntry(StrictModel):
    """A model of ``cimkit.robust.models`` trained on one offline data set."""

    name: str
    data: Literal["mnist", "composite", "digits"] = "mnist"
    label: str | None = Field(None, description="its name in results (default: the model name)")
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0, le=10)
    schedule: Literal["constant", "cosine"] = "constant"
    seed: int = Field(0, ge=0)
    options: dict[str, Any] = Field({}, description="size settings of the builder (e.g. the CCT's layers, dim)")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from .models import MODELS

        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; models: {', '.join(MODELS)}")
        return value

    @property
    def key(self) -> str:
        return self.label or self.name


class TransferSection(StrictModel):
    """The transfer matrix: adversarial examples crafted on each model (float or chip) and evaluated on all."""

    attack: str = "pgd"
    eps: float | None = Field(0.1, ge=0, le=1)
    models: list[str] | None = Field(
        None, description="the models crafted on and evaluated (default: the attack section's)"
    )
    sides: list[Literal["ideal", "chip"]] = Field(
        ["ideal", "chip"], min_length=1, description="attack the float model (ideal), its chip, or both"
    )


class AttackSection(StrictModel):
    """Accuracy against attack strength, per attack, on the float models and/or their chips."""

    strengths: dict[str, list[float]] = Field(
        min_length=1,
        description="attack -> strengths (L-inf eps of a budgeted attack, L2 radii of a minimal-perturbation attack)",
    )
    sides: list[Literal["ideal", "chip"]] = Field(
        ["ideal", "chip"], min_length=1, description="attack the float model (ideal), its chip, or both"
    )
    settings: dict[str, dict[str, Any]] = Field({}, description="attack -> ART settings overriding cimkit's")
    eot_samples: int = Field(1, ge=1, le=1000)
    backward: Literal["straight_through", "chip"] = "straight_through"
    images: int | None = Field(None, ge=1, description="images attacked (default: the study's images)")
    models: list[str] | None = None
    transfer: TransferSection | None = None

    @field_validator("strengths")
    @classmethod
    def _attacks(cls, value: dict) -> dict:
        from .attacks import ATTACKS

        for name, values in value.items():
            if name not in ATTACKS:
                raise ValueError(f"unknown attack {name!r}; attacks: {', '.join(ATTACKS)}")
            if not values or any(not (v >= 0) for v in values):
                raise ValueError(f"{name}: give a non-empty list of strengths >= 0, got {short_repr(values)}")
        return value

    @model_validator(mode="after")
    def _transfer_attack(self) -> "AttackSection":
        from .attacks import ATTACKS

        if self.transfer is not None and self.transfer.attack not in ATTACKS:
            raise ValueError(f"transfer.attack {self.transfer.attack!r} is unknown; attacks: {', '.join(ATTACKS)}")
        if self.transfer is not None and ATTACKS[self.transfer.attack].budgeted and self.transfer.eps is None:
            raise ValueError(f"transfer.attack {self.transfer.attack!r} takes a budget; give transfer.eps")
        unknown = [a for a in self.settings if a not in self.strengths]
        if unknown:
            raise ValueError(f"settings for attack(s) {unknown} that the study does not run")
        return self


class FaultSection(StrictModel):
    """Fault campaigns: accuracy against the rate of each fault kind, over chips."""

    kinds: dict[str, list[float]] = Field(min_length=1, description="fault kind -> rates in [0, 1]")
    layers: list[str] | None = None
    models: list[str] | None = None

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: dict) -> dict:
        for kind, rates in value.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; fault kinds: {', '.join(FAULT_KINDS)}")
            if not rates or any(not (0 <= r <= 1) for r in rates):
                raise ValueError(f"{kind}: give a non-empty list of rates in [0, 1], got {short_repr(rates)}")
        return value


class DriftSection(StrictModel):
    """Accuracy against read time after programming (s), with and without drift compensation."""

    hardware: str | None = Field(None, description="the chip read over time (default: the study's hardware)")
    times_s: list[float] = Field(list(DRIFT_TIMES_S), min_length=1)
    compensation: list[Literal["none", "global"]] = Field(["none", "global"], min_length=1)
    models: list[str] | None = None

    @field_validator("times_s")
    @classmethod
    def _times(cls, value: list[float]) -> list[float]:
        if any(not (0 < t < float("inf")) for t in value):
            raise ValueError(f"read times must be positive numbers of seconds, got {short_repr(value)}")
        return value


class AxcSection(StrictModel):
    """The approximate-computing table: approximate multipliers and adders, lowered precision, skipping."""

    multipliers: list[str] = ["truncate-2", "truncate-4", "mitchell", "drum-6", "drum-4"]
    adders: list[str] = ["loa-4", "loa-8", "truncate-4"]
    digital_multipliers: list[str] = []
    precision: dict[str, list[int]] | None = None
    skipping: list[float] = [0.05, 0.1, 0.2]
    memory: list[float] = [1e-4, 1e-3, 1e-2]
    models: list[str] | None = None

    @model_validator(mode="after")
    def _names(self) -> "AxcSection":
        from ..errors import CimkitError
        from ..ops.approx import parse_adder, parse_multiplier

        try:
            for n in self.multipliers + self.digital_multipliers:
                parse_multiplier(n)
            for n in self.adders:
                parse_adder(n)
        except CimkitError as exc:
            raise ValueError(str(exc)) from None
        return self


class RobustnessStudy(StrictModel):
    """A robustness study file (see the module docstring)."""

    name: str = "robustness"
    hardware: str = "rram-22nm"
    images: int = Field(200, ge=1, le=1_000_000)
    calibration_images: int = Field(256, ge=1, le=1_000_000)
    chips: int = Field(3, ge=1, le=10_000)
    seed: int = Field(0, ge=0)
    executor: Literal["serial", "dask"] = "serial"
    workers: int = Field(2, ge=1, le=1024)
    scheduler: str | None = None
    models: list[ModelEntry] = Field(min_length=1, max_length=64)
    attacks: AttackSection | None = None
    faults: FaultSection | None = None
    drift: DriftSection | None = None
    axc: AxcSection | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "RobustnessStudy":
        keys = [m.key for m in self.models]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"model(s) {twice} given twice; give each a distinct label")
        if not any((self.attacks, self.faults, self.drift, self.axc)):
            raise ValueError("the study runs nothing: give at least one of the sections attacks, faults, drift, axc")
        for section in ("attacks", "faults", "drift", "axc"):
            sec = getattr(self, section)
            if sec is None:
                continue
            named = (sec.models or []) + (
                (sec.transfer.models or []) if section == "attacks" and sec.transfer is not None else []
            )
            unknown = [m for m in named if m not in keys]
            if unknown:
                raise ValueError(f"{section}.models names {unknown}, which are not models of the study ({keys})")
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(
                f"scheduler {self.scheduler!r} is given but executor is {self.executor!r}; set executor: dask"
            )
        return self

    # ---- what will run --------------------------------------------------------------------------------
    def models_for(self, names: list[str] | None) -> list[ModelEntry]:
        """The models a section runs on: those it names (by label), or all of them."""
        return [m for m in self.models if names is None or m.key in names]

    def parts(self) -> list[str]:
        """The parts the study runs, in order, by the names of their files under ``OUT/parts``."""
        out: list[str] = []
        if self.attacks is not None:
            a = self.attacks
            out += [
                part_key("attack", m.key, attack, side)
                for m in self.models_for(a.models)
                for attack in a.strengths
                for side in a.sides
            ]
            if a.transfer is not None:
                out.append(part_key("transfer", a.transfer.attack))
        if self.faults is not None:
            out += [
                part_key("faults", m.key, kind)
                for m in self.models_for(self.faults.models)
                for kind in self.faults.kinds
            ]
        if self.drift is not None:
            out += [part_key("drift", m.key) for m in self.models_for(self.drift.models)]
        if self.axc is not None:
            out += [part_key("axc", m.key) for m in self.models_for(self.axc.models)]
        return out

    def headline(self) -> dict[str, str]:
        """What the study will run, as {label: text}: models, chip, evaluation sizes, each section, parts."""

        def models(names: list[str] | None) -> str:
            return "" if names is None else f" on {', '.join(names)}"

        def values(named: dict[str, list[float]], what: str) -> str:
            return ", ".join(f"{k} ({len(v)} {what}{'s' if len(v) != 1 else ''})" for k, v in named.items())

        out = {
            "models": f"{len(self.models)}: "
            + ", ".join(f"{m.key} ({m.data}, {m.epochs} epoch{'s' if m.epochs != 1 else ''})" for m in self.models),
            "hardware": self.hardware,
            "images": f"{self.images} test, {self.calibration_images} calibration; {self.chips} chip"
            f"{'s' if self.chips != 1 else ''} per point; seed {self.seed}",
        }
        if self.attacks is not None:
            a = self.attacks
            text = f"{values(a.strengths, 'strength')}; sides {', '.join(a.sides)}{models(a.models)}"
            if a.transfer is not None:
                eps = "" if a.transfer.eps is None else f" eps {a.transfer.eps:g}"
                text += f"; transfer {a.transfer.attack}{eps}"
            out["attacks"] = text
        if self.faults is not None:
            out["faults"] = values(self.faults.kinds, "rate") + models(self.faults.models)
        if self.drift is not None:
            d = self.drift
            out["drift"] = (
                f"{len(d.times_s)} read time{'s' if len(d.times_s) != 1 else ''} "
                f"({min(d.times_s):g} s to {max(d.times_s):g} s), compensation "
                f"{', '.join(d.compensation)}" + (f", on {d.hardware}" if d.hardware else "") + models(d.models)
            )
        if self.axc is not None:
            x = self.axc
            counts = [
                (len(x.multipliers), "multiplier"),
                (len(x.adders), "adder"),
                (len(x.digital_multipliers), "digital multiplier"),
                (len(x.skipping), "skipping rate"),
                (len(x.memory), "memory error rate"),
            ]
            out["axc"] = ", ".join(f"{n} {w}{'s' if n != 1 else ''}" for n, w in counts if n) + models(x.models)
        parts = self.parts()
        out["parts"] = f"{len(parts)}: {', '.join(parts)}"
        out["executor"] = self.executor + (
            (f" at {self.scheduler}" if self.scheduler else f" ({self.workers} local workers)")
            if self.executor == "dask"
            else ""
        )
        return {k: one_line(v, 100) for k, v in out.items()}

    def __repr__(self) -> str:
        return text_summary(type(self).__name__, repr(self.name), list(self.headline().items()))

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        """The summary and one row per part the study runs."""
        rows = [{"part": p, "section": p.split("-", 1)[0]} for p in self.parts()]
        return html_summary(
            type(self).__name__, repr(self.name), list(self.headline().items()), rows, ("section", "part")
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RobustnessStudy":
        """Read and check a study file; a hardware YAML path in it is relative to the study file's folder."""
        path = Path(path)
        data = load_yaml(path, "robustness study")
        folder = path.resolve().parent
        holders: list[dict[str, Any]] = [data, *([data["drift"]] if isinstance(data.get("drift"), dict) else [])]
        for holder in holders:
            hw = holder.get("hardware")
            if isinstance(hw, str) and hw.endswith((".yaml", ".yml")) and not Path(hw).is_absolute():
                holder["hardware"] = str(folder / hw)
        return cls.validate_data(data, str(path))

    @classmethod
    def validate_data(cls, data: dict, source: str = "study") -> "RobustnessStudy":
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, source, "robustness study", cls)) from None


def _spec(name: str) -> HardwareSpec:
    return HardwareSpec.from_yaml(name) if name.endswith((".yaml", ".yml")) else HardwareSpec.preset(name)


def _digest(obj: Any) -> str:
    return hashlib.sha256(strict_json(obj, indent=None).encode()).hexdigest()[:16]


def _load_data(name: str):
    from ..data.composite import composite_digits
    from ..data.digits import digits, mnist

    return {"mnist": mnist, "composite": composite_digits, "digits": digits}[name]()


class _Runner:
    def __init__(self, study: RobustnessStudy, out: Path, say: Callable[[str], None]) -> None:
        self.study, self.out, self.say = study, out, say
        self.spec = _spec(study.hardware)
        self.data: dict[str, Any] = {}
        self.models: dict[str, torch.nn.Module] = {}
        self.chips: dict[str, torch.nn.Module] = {}
        self.results: dict[str, Any] = {}
        for sub in ("models", "parts", "figures", "checkpoints"):
            (out / sub).mkdir(parents=True, exist_ok=True)

    # ---- data and models ----------------------------------------------------------------------------
    def split(self, name: str):
        if name not in self.data:
            self.data[name] = _load_data(name)
        return self.data[name]

    def test(self, entry: ModelEntry, n: int | None = None):
        d = self.split(entry.data)
        n = min(n or self.study.images, len(d.y_test))
        return d.x_test[:n], d.y_test[:n]

    def calibration(self, entry: ModelEntry):
        d = self.split(entry.data)
        return d.x_train[: self.study.calibration_images]

    def model(self, entry: ModelEntry) -> torch.nn.Module:
        from . import models as M

        if entry.key in self.models:
            return self.models[entry.key]
        d = self.split(entry.data)
        shape = tuple(d.x_train.shape[1:])
        settings = {**entry.model_dump(mode="json"), "input_shape": list(shape)}
        path = self.out / "models" / f"{entry.key}.pt"
        try:
            model = M.build(
                entry.name, in_channels=shape[0], image_size=shape[-1], num_classes=10, seed=entry.seed, **entry.options
            )
        except TypeError as exc:
            raise InputError(
                f"model {entry.key!r}: options {short_repr(entry.options)} do not fit {entry.name}: {exc}"
            ) from None
        saved = torch.load(path, weights_only=True) if path.is_file() else None
        if saved is not None and saved.get("settings") == _digest(settings):
            model.load_state_dict(saved["state"])
            self.say(f"model {entry.key}: trained weights reused ({path})")
        else:
            t0 = time.perf_counter()
            M.train_classifier(
                model,
                d.x_train,
                d.y_train,
                epochs=entry.epochs,
                batch_size=entry.batch_size,
                lr=entry.lr,
                seed=entry.seed,
                schedule=entry.schedule,
            )
            import io

            buf = io.BytesIO()
            torch.save({"settings": _digest(settings), "state": model.state_dict()}, buf)
            atomic_write(path, buf.getvalue())
            self.say(f"model {entry.key}: trained in {time.perf_counter() - t0:.1f} s")
        model.eval()
        self.models[entry.key] = model
        return model

    def chip(self, entry: ModelEntry) -> torch.nn.Module:
        import warnings

        from ..sim.convert import calibrate, convert

        if entry.key not in self.chips:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                chip = convert(self.model(entry), self.spec, seed=self.study.seed)
            calibrate(chip, [self.calibration(entry)], num_batches=1)
            self.chips[entry.key] = chip.eval()
        return self.chips[entry.key]

    def entries(self, names: list[str] | None) -> list[ModelEntry]:
        return self.study.models_for(names)

    # ---- parts -------------------------------------------------------------------------------------
    def part(self, key: str, settings: dict, compute: Callable[[], Any]) -> dict:
        """The part ``key``: from its file when computed under the same ``settings``, else computed (its
        figures drawn) and saved."""
        path = self.out / "parts" / f"{key}.json"
        digest = _digest(settings)
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
                if stored.get("settings_digest") == digest:
                    self.say(f"{key}: done before, kept")
                    self.results[key] = stored["result"]
                    return stored["result"]
            except (OSError, ValueError):
                pass
        t0 = time.perf_counter()
        result = compute()
        result.figures(self.out / "figures")
        data = result.to_dict()
        atomic_write(path, strict_json({"settings": settings, "settings_digest": digest, "result": data}))
        self.results[key] = data
        self.say(f"{key}: {time.perf_counter() - t0:.1f} s")
        self.show(result)
        return data

    def show(self, result) -> None:
        from rich.console import Console

        console = Console(width=160)
        console.print(result.table())
        if getattr(result, "transfer", None):
            console.print(result.transfer_table())

    def base_settings(self, entry: ModelEntry | None = None) -> dict:
        s = self.study
        d = {
            "hardware": self.spec.model_dump(mode="json"),
            "images": s.images,
            "calibration": s.calibration_images,
            "chips": s.chips,
            "seed": s.seed,
        }
        if entry is not None:
            d["model"] = entry.model_dump(mode="json")
        return d

    # ---- studies -------------------------------------------------------------------------------------
    def attacks(self, sec: AttackSection) -> None:
        from .attacks import accuracy_vs_strength, transfer_matrix

        for entry in self.entries(sec.models):
            x, y = self.test(entry, sec.images)
            for attack, strengths in sec.strengths.items():
                for side in sec.sides:
                    settings = {
                        **self.base_settings(entry),
                        "attack": attack,
                        "strengths": strengths,
                        "side": side,
                        "settings": sec.settings.get(attack, {}),
                        "eot": sec.eot_samples,
                        "backward": sec.backward,
                        "attack_images": len(y),
                    }

                    def compute(attack=attack, strengths=strengths, side=side, entry=entry, x=x, y=y):
                        model = self.model(entry) if side == "ideal" else self.chip(entry)
                        return accuracy_vs_strength(
                            {f"{entry.key}@{side}": model},
                            attack,
                            x,
                            y,
                            strengths,
                            seed=self.study.seed,
                            settings=sec.settings.get(attack),
                            eot_samples=sec.eot_samples,
                            backward=sec.backward if side == "chip" else None,
                        )

                    self.part(part_key("attack", entry.key, attack, side), settings, compute)
        if sec.transfer is not None:
            t = sec.transfer
            entries = self.entries(t.models if t.models is not None else sec.models)
            shapes = {tuple(self.split(e.data).x_test.shape[1:]) for e in entries}
            if len(shapes) > 1:
                raise InputError(
                    f"attacks.transfer: the models take inputs of different shapes {sorted(shapes)}; a "
                    "transfer matrix needs models of one data set (list them in attacks.models)"
                )
            x, y = self.test(entries[0], sec.images)
            settings = {
                **self.base_settings(),
                "transfer": t.model_dump(mode="json"),
                "models": [e.model_dump(mode="json") for e in entries],
                "attack_images": len(y),
                "eot": sec.eot_samples,
                "backward": sec.backward,
                "art_settings": sec.settings.get(t.attack, {}),
            }

            def compute():  # type: ignore[misc]  # another compute above: this part's own
                models = {}
                for e in entries:
                    for side in t.sides:
                        models[f"{e.key}@{side}"] = self.model(e) if side == "ideal" else self.chip(e)
                return transfer_matrix(
                    models,
                    x,
                    y,
                    attack=t.attack,
                    eps=t.eps,
                    seed=self.study.seed,
                    settings=sec.settings.get(t.attack),
                    eot_samples=sec.eot_samples,
                    backward=sec.backward,
                )

            self.part(part_key("transfer", t.attack), settings, compute)

    def _sim_args(self, entry: ModelEntry, key: str, settings: dict) -> dict:
        """``simulate`` arguments of a part; its checkpoints go to a folder named by the part and its settings, so
        a part recomputed under new settings never meets the checkpoints of the old ones."""
        s = self.study
        folder = self.out / "checkpoints" / f"{key}-{_digest(settings)}"
        folder.mkdir(parents=True, exist_ok=True)
        return dict(
            chips=s.chips,
            seed=s.seed,
            calibration=self.calibration(entry),
            executor=s.executor,
            workers=s.workers,
            scheduler=s.scheduler,
            checkpoint_dir=folder,
        )

    def faults(self, sec: FaultSection) -> None:
        from .faults import fault_campaign

        for entry in self.entries(sec.models):
            x, y = self.test(entry)
            for kind, rates in sec.kinds.items():
                key = part_key("faults", entry.key, kind)
                settings = {**self.base_settings(entry), "kind": kind, "rates": rates, "layers": sec.layers}

                def compute(kind=kind, rates=rates, entry=entry, x=x, y=y, key=key, settings=settings):
                    return fault_campaign(
                        self.model(entry),
                        self.spec,
                        x,
                        y,
                        kind=kind,
                        rates=rates,
                        layers=sec.layers,
                        **self._sim_args(entry, key, settings),
                    )

                self.part(key, settings, compute)

    def drift(self, sec: DriftSection) -> None:
        from .faults import drift_study

        spec = _spec(sec.hardware) if sec.hardware else self.spec
        for entry in self.entries(sec.models):
            x, y = self.test(entry)
            key = part_key("drift", entry.key)
            settings = {
                **self.base_settings(entry),
                "drift": sec.model_dump(mode="json"),
                "drift_hardware": spec.model_dump(mode="json"),
            }

            def compute(entry=entry, x=x, y=y, key=key, settings=settings):
                return drift_study(
                    self.model(entry),
                    spec,
                    x,
                    y,
                    times_s=sec.times_s,
                    compensation=sec.compensation,
                    **self._sim_args(entry, key, settings),
                )

            self.part(key, settings, compute)

    def axc(self, sec: AxcSection) -> None:
        from .axc import axc_table

        for entry in self.entries(sec.models):
            x, y = self.test(entry)
            settings = {**self.base_settings(entry), "axc": sec.model_dump(mode="json")}

            def compute(entry=entry, x=x, y=y):
                return axc_table(
                    self.model(entry),
                    x,
                    y,
                    self.spec,
                    name=entry.key,
                    calibration=self.calibration(entry),
                    multipliers=sec.multipliers,
                    adders=sec.adders,
                    digital_multipliers=sec.digital_multipliers,
                    precision=sec.precision,
                    skipping=sec.skipping,
                    memory=sec.memory,
                    chips=self.study.chips,
                    seed=self.study.seed,
                )

            self.part(part_key("axc", entry.key), settings, compute)


def run_study(
    study: RobustnessStudy | str | Path, out: str | Path, *, say: Callable[[str], None] = lambda text: None
) -> dict:
    """Run ``study`` (a ``RobustnessStudy`` or a study YAML path), writing into the folder ``out`` (see the module
    docstring); parts finished before under the same settings are kept. Returns ``{part: result dict}``, also
    written to ``out/results.json``. ``say`` receives one line per step."""
    if not isinstance(study, RobustnessStudy):
        study = RobustnessStudy.from_yaml(study)
    out = check_output_dir(out, "robustness output folder")
    runner = _Runner(study, out, say)
    for section in ("attacks", "faults", "drift", "axc"):
        sec = getattr(study, section)
        if sec is not None:
            getattr(runner, section)(sec)
    atomic_write(out / "results.json", strict_json({"study": study.model_dump(mode="json"), "parts": runner.results}))
    return runner.results


__all__ = [
    "RobustnessStudy",
    "ModelEntry",
    "AttackSection",
    "TransferSection",
    "FaultSection",
    "DriftSection",
    "AxcSection",
    "run_study",
]
