"""docs/spec_reference.md is the generator's output, and the generator documents every field of the schema."""

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from cimkit.spec import HardwareSpec
from cimkit.spec.reference import sections

PAGE = Path(__file__).resolve().parents[1] / "docs" / "spec_reference.md"
REGENERATE = "regenerate it: .venv/bin/python -m cimkit.spec.reference > docs/spec_reference.md"


def _schema_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _schema_paths(annotation, f"{prefix}{name}.")
        else:
            paths.add(prefix + name)
    return paths


def test_the_committed_page_is_the_generators_output():
    # a fresh interpreter: plug-ins other tests register must not enter the page
    generated = subprocess.run(
        [sys.executable, "-m", "cimkit.spec.reference"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert PAGE.read_text(encoding="utf-8") == generated, f"docs/spec_reference.md is out of date; {REGENERATE}"


def test_every_field_of_the_schema_is_on_the_page():
    documented = {f.path for s in sections() for f in s.fields}
    assert documented == _schema_paths(HardwareSpec)
    text = PAGE.read_text(encoding="utf-8")
    missing = [p for p in sorted(documented) if f"| `{p}` |" not in text]
    assert not missing, f"fields missing from docs/spec_reference.md: {missing}; {REGENERATE}"


def test_every_field_has_a_unit_a_default_and_a_description():
    problems = []
    for section in sections():
        for f in section.fields:
            if not f.unit:
                problems.append(f"{f.path}: no unit (name it by suffix or add it to reference.FIELD_UNITS)")
            if not f.default:
                problems.append(f"{f.path}: no default")
            if len(f.description.split()) < 3:
                problems.append(f"{f.path}: no description (give the Field a description=...)")
            if not f.allowed:
                problems.append(f"{f.path}: no allowed values")
    assert not problems, "\n".join(problems)


def test_every_preset_and_its_sources_are_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    for name in HardwareSpec.presets():
        assert f"### `{name}`" in text
    assert "Wan et al., Nature 608" in text  # a source from a preset file's comments
