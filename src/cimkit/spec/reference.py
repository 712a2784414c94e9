"""The ``HardwareSpec`` reference, generated from the pydantic schema.

``spec_reference_markdown()`` walks ``HardwareSpec`` and its sections and gives every field its YAML path,
type, unit, default, allowed values (the field's constraints, ``Literal`` choices, the registries a name is
checked against, and the cross-field rules of the validators) and its meaning and source (the field's
description), followed by the values every preset sets, with the comments the preset files give as their
sources. ``docs/spec_reference.md`` is this text; regenerate it with::

    python -m cimkit.spec.reference > docs/spec_reference.md
"""

from __future__ import annotations

import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .model import BUILTIN_ADC_KINDS, PRESET_DIR, HardwareSpec
from .noise import READ_NOISE
from .units import DAC_MODES, UNIT_TYPES

#: unit by field-name suffix, longest suffix first (the names say their unit, ``docs/spec.md``)
SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_fj_per_row", "fJ per row"),
    ("_per_s", "1/s"),
    ("_um2", "µm²"),
    ("_mm2", "mm²"),
    ("_f2", "F² (F: the feature size, technology.node_nm)"),
    ("_us", "µS"),
    ("_ohm", "Ω"),
    ("_hz", "Hz"),
    ("_nm", "nm"),
    ("_ns", "ns"),
    ("_pj", "pJ"),
    ("_fj", "fJ"),
    ("_j", "J"),
    ("_kb", "KiB"),
    ("_v", "V"),
    ("_s", "s"),
    ("_bits", "bits"),
    ("_cycles", "write cycles"),
    ("_frac", "dimensionless (fraction of device.g_max_us)"),
    ("_rel", "dimensionless (relative to the nominal value)"),
    ("_rate", "dimensionless (fraction of cells)"),
)

#: units of the fields whose name carries none; names, choices and switches are dimensionless
FIELD_UNITS: dict[str, str] = {
    "weight_bits": "bits",
    "device.bits_per_cell": "bits",
    "device.read_noise_frac": "dimensionless (relative std, or the 'pcm' model's cap; see read_noise_model)",
    "device.drift_nu": "dimensionless (exponent)",
    "device.drift_nu_std": "dimensionless (exponent)",
    "device.programming_noise_poly": "dimensionless (coefficients of a fraction of device.g_max_us)",
    "array.rows": "rows",
    "array.cols": "columns",
    "periphery.columns_per_adc": "columns per ADC",
    "chip.arrays_per_pe": "arrays",
    "chip.pes_per_tile": "processing elements",
    "chip.tiles": "tiles",
    "chip.layout_energy_factor": "dimensionless (ratio)",
    "chip.input_activity": "dimensionless (fraction of input bits that are 1)",
    "digital.lanes": "operations per cycle",
    "ap.words": "words (rows)",
    "ap.tile_rows": "rows",
    "cam_attention.rows": "rows",
    "cam_attention.cols": "columns (bits)",
    "cam_attention.arrays": "arrays",
    "cam_attention.search_cycles": "cycles",
    "cam_attention.rows_per_adc": "rows per ADC",
    "cam_attention.selector_lanes": "scores per cycle",
}

#: rules of the validators that a field's own constraints do not show
RULES: dict[str, str] = {
    "device.g_max_us": "above device.g_min_us; or give `r_on_ohm` (Ω) instead: g_max_us = 10⁶ / r_on_ohm",
    "device.g_min_us": "below device.g_max_us; or give `r_off_ohm` (Ω) instead: g_min_us = 10⁶ / r_off_ohm",
    "device.programming_noise_poly": "a non-empty list whose polynomial is ≥ 0 for every x in [0, 1]",
    "device.stuck_on_rate": "stuck_on_rate + stuck_off_rate ≤ 1",
    "device.stuck_off_rate": "stuck_on_rate + stuck_off_rate ≤ 1",
    "periphery.input_bits": "an integer (not null) with a bit-plane or pulse dac_mode ('bit_serial', "
    "'pulse_train'); ≥ 2 with signed_inputs 'sign_magnitude' and a bit-plane dac_mode",
    "periphery.adc_bits": "≥ 2 with array.signed_mapping 'differential'",
    "periphery.adc_range_per_input_bit": "true needs a bit-plane dac_mode, adc_range 'calibrated' and an "
    "adc_bits integer",
    "digital.data_bits": "2 to 32 with integer softmax / GELU / LayerNorm; 2 to 16 with an approximate "
    "multiplier or adder",
    "digital.multiplier": "'exact', 'truncate-k', 'mitchell' or 'drum-k' (cimkit.spec.arith.parse_multiplier; "
    "k fits digital.data_bits)",
    "digital.adder": "'exact', 'loa-k' or 'truncate-k' (cimkit.spec.arith.parse_adder; k from 1 to 62)",
    "ap.words": "≥ ap.tile_rows",
    "cam_attention.rows_per_adc": "≤ cam_attention.rows",
}


def _registries() -> dict[str, str]:
    """Fields whose value names an entry of a registry: the entries registered now."""
    kinds = ", ".join(f"'{k}'" for k in _op_kinds())
    units = ", ".join(f"'{u}'" for u in UNIT_TYPES.names())
    adc = ", ".join(f"'{k}'" for k in BUILTIN_ADC_KINDS)
    return {
        "device.read_noise_model": "a model of cimkit.spec.noise.READ_NOISE: "
        + ", ".join(f"'{n}'" for n in READ_NOISE.names()),
        "periphery.dac_mode": "a mode of cimkit.spec.units.DAC_MODES: "
        + ", ".join(f"'{n}'" for n in DAC_MODES.names()),
        "chip.adc_type": f"an ADC kind of cimkit.cost.components.ADC_KINDS: {adc}, or a registered plug-in",
        "cam_attention.adc_type": f"an ADC kind of cimkit.cost.components.ADC_KINDS: {adc}, or a registered plug-in",
        "routing": f"keys: op kinds ({kinds}); values: units of cimkit.spec.units.UNIT_TYPES ({units}) that "
        "can run the kind",
    }


def _op_kinds() -> tuple[str, ...]:
    from ..workload.registry import kinds

    return kinds()


@dataclass(frozen=True)
class FieldRef:
    """One leaf field of the schema as the reference shows it."""

    path: str
    type: str
    unit: str
    default: str
    allowed: str
    description: str


@dataclass(frozen=True)
class Section:
    """A sub-model of ``HardwareSpec`` (``""`` for its top-level fields) and its leaf fields."""

    path: str
    model: type[BaseModel]
    fields: tuple[FieldRef, ...]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "str"
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " | ".join(dict.fromkeys(names)) + (" | null" if type(None) in args else "")
    if origin is tuple:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping {_type_name(args[0])} → {_type_name(args[1])}"
    return {int: "int", float: "float", str: "str", bool: "bool"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'" if value else "'' (empty)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _number(value: Any) -> str:
    if isinstance(value, int) and value >= 1024 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return tuple(c for a in typing.get_args(annotation) for c in _literal_choices(a))


def _allowed(path: str, info: FieldInfo, registries: dict[str, str]) -> str:
    parts = []
    choices = _literal_choices(info.annotation)
    if choices:
        parts.append("one of " + ", ".join(_yaml_value(c) for c in choices))
    bounds = []
    for meta in info.metadata:
        if isinstance(meta, Ge):
            bounds.append(f"≥ {_number(meta.ge)}")
        elif isinstance(meta, Gt):
            bounds.append(f"> {_number(meta.gt)}")
        elif isinstance(meta, Le):
            bounds.append(f"≤ {_number(meta.le)}")
        elif isinstance(meta, Lt):
            bounds.append(f"< {_number(meta.lt)}")
    if bounds:
        parts.append(", ".join(bounds))
    if path in registries:
        parts.append(registries[path])
    if path in RULES:
        parts.append(RULES[path])
    annotation = info.annotation
    if type(None) in typing.get_args(annotation):
        parts.append("or null")
    if not parts:
        base = _type_name(annotation)
        parts.append({"bool": "true or false", "str": "any text"}.get(base, f"any finite {base}"))
    return "; ".join(parts)


def unit_of(path: str, info: FieldInfo) -> str:
    """The unit of the field at dotted ``path``: ``FIELD_UNITS``, else the name's suffix, else
    dimensionless for names, choices, switches and mappings; ``""`` when none of these says."""
    if path in FIELD_UNITS:
        return FIELD_UNITS[path]
    name = path.rsplit(".", 1)[-1]
    for suffix, unit in SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    base = _type_name(info.annotation).replace(" | null", "")
    if base in ("str", "bool") or base.startswith("mapping"):
        return "dimensionless"
    return ""


def sections() -> list[Section]:
    """``HardwareSpec``'s top-level fields, then each section, in schema order."""
    registries = _registries()
    result = []

    def leaves(model: type[BaseModel], prefix: str) -> tuple[FieldRef, ...]:
        refs = []
        for name, info in model.model_fields.items():
            if _is_model(info.annotation):
                continue
            path = prefix + name
            refs.append(
                FieldRef(
                    path=path,
                    type=_type_name(info.annotation),
                    unit=unit_of(path, info),
                    default=_yaml_value(info.get_default(call_default_factory=True)),
                    allowed=_allowed(path, info, registries),
                    description=info.description or "",
                )
            )
        return tuple(refs)

    result.append(Section("", HardwareSpec, leaves(HardwareSpec, "")))
    for name, info in HardwareSpec.model_fields.items():
        annotation = info.annotation
        if _is_model(annotation):
            assert isinstance(annotation, type)
            result.append(Section(name, annotation, leaves(annotation, name + ".")))
    return result


# ---- presets and the comments that give their sources ---------------------------------------------------
_KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(.*)$")


def preset_notes(path: Path) -> tuple[str, dict[str, str]]:
    """The header comment of a preset file, and the comment attached to each key by dotted key path: the
    comment lines just above the key and its trailing comment. A comment indented deeper than the key that
    follows it closes the section above, and is attached to that section."""
    header: list[str] = []
    notes: dict[str, str] = {}
    pending: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    seen_key = False

    def attach(key: str, lines: list[str]) -> None:
        if lines:
            notes[key] = " ".join(filter(None, [notes.get(key, ""), *lines]))

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append((len(line) - len(line.lstrip()), stripped.lstrip("#").strip()))
            continue
        if not stripped:
            if not seen_key and pending:
                header += [t for _, t in pending]
                pending = []
            continue
        match = _KEY.match(line)
        if not match:
            pending = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        if not seen_key:
            header += [t for _, t in pending]
            pending = []
            seen_key = True
        for depth, text in pending:
            if depth > indent:  # the end of the section above
                attach(".".join(k for i, k in stack if i < depth), [text])
        pending = [(d, t) for d, t in pending if d <= indent]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        trailing = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        attach(dotted, [t for _, t in pending] + ([trailing] if trailing else []))
        pending = []
        if not rest.split(" #", 1)[0].strip():
            stack.append((indent, key))
    return " ".join(header), notes


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "routing":
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def spec_reference_markdown() -> str:
    """The whole reference page as Markdown (``docs/spec_reference.md``)."""
    out = [
        "# HardwareSpec reference",
        "",
        "<!-- generated by `python -m cimkit.spec.reference > docs/spec_reference.md` from the pydantic schema "
        "in src/cimkit/spec/model.py; do not edit by hand -->",
        "",
        "Every field of a hardware description, as the YAML file (`HardwareSpec.from_yaml`) and "
        '`spec.replace(**{"section.field": value})` name it. `docs/spec.md` explains how the sections fit '
        "together; this page is generated from the schema, so it lists exactly what the validator accepts.",
        "",
        "Columns: **path** (YAML section and key), **type** (`null` where the field may be null), **unit** "
        "(from the name's suffix, e.g. `_us` µS, `_ohm` Ω, `_v` V, `_s` s, `_ns` ns, `_hz` Hz, `_pj` pJ, "
        "`_fj` fJ, `_um2` µm², `_kb` KiB, `_bits` bits; names, choices and switches are dimensionless), "
        "**default** (the value when the file leaves the field out), **allowed** (the validator's bounds, "
        "choices and cross-field rules; every number must also be finite, and a YAML `true` is never read as "
        "the number 1) and **meaning and source** (the field's description, with the source of its default "
        "where the default is taken from a publication or a reference run). The values the presets set, and "
        "the sources their files give, follow the fields.",
        "",
        "Besides these keys, the `device` section accepts `r_on_ohm` / `r_off_ohm` (Ω) in place of "
        "`g_max_us` / `g_min_us` (`g = 10⁶ / r` µS).",
        "",
    ]
    for section in sections():
        title = f"`{section.path}` ({section.model.__name__})" if section.path else "Top level (HardwareSpec)"
        out += [f"## {title}", ""]
        doc = " ".join((section.model.__doc__ or "").split())
        if doc:
            out += [doc, ""]
        out += ["| path | type | unit | default | allowed | meaning and source |", "|---|---|---|---|---|---|"]
        for f in section.fields:
            out.append(
                "| "
                + " | ".join(
                    _cell(c)
                    for c in (
                        f"`{f.path}`",
                        f.type,
                        f.unit,
                        f"`{f.default}`",
                        f.allowed,
                        " ".join(f.description.split()),
                    )
                )
                + " |"
            )
        out.append("")

    names = HardwareSpec.presets()
    values = {n: _flat(HardwareSpec.preset(n).model_dump(mode="json")) for n in names}
    default = _flat(HardwareSpec().model_dump(mode="json"))
    set_in_file = {n: _flat(yaml.safe_load((PRESET_DIR / f"{n}.yaml").read_text(encoding="utf-8"))) for n in names}
    out += [
        "## Presets",
        "",
        "`HardwareSpec.preset(name)` reads `src/cimkit/spec/presets/NAME.yaml`. The table gives every field a "
        "preset sets to something other than the default (resistances converted to µS); the notes after it "
        "are the comments of the preset files, which give the source or the assumption behind each value.",
        "",
        "| path | default | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for path in default:
        if path in ("name", "description") or all(values[n].get(path) == default[path] for n in names):
            continue
        cells = [_yaml_value(values[n].get(path)) if values[n].get(path) != default[path] else "" for n in names]
        out.append(f"| `{path}` | `{_yaml_value(default[path])}` | " + " | ".join(_cell(c) for c in cells) + " |")
    out.append("")
    for name in names:
        header, notes = preset_notes(PRESET_DIR / f"{name}.yaml")
        out += [f"### `{name}`", "", f"{values[name]['description']}.", ""]
        if header:
            out += [header, ""]
        for key, text in notes.items():
            out.append(f"- `{key}`: {text}")
        if notes:
            out.append("")
        unset = sorted(set(set_in_file[name]) - {"name", "description"})
        out += [f"Keys the file sets: {', '.join(f'`{k}`' for k in unset)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    """Print the reference (``python -m cimkit.spec.reference > docs/spec_reference.md``)."""
    sys.stdout.buffer.write(spec_reference_markdown().encode("utf-8"))


if __name__ == "__main__":
    main()
