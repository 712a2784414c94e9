"""The result protocol: what every cimkit result (``Report``, ``ManyReport``, ``CamReport``, ``TreesResult``,
``StudyResult``, ``JointResult`` and the results to come) offers, with the same names for the same things.

A result implements four methods and inherits the rest:

- ``to_dict()`` (abstract): the whole result as JSON-safe plain data (``str`` keys; ``bool``, ``int``,
  ``float``, ``str``, ``None``, lists and dicts only; a non-finite number is ``None``). Figures use the
  standard names of ``NAMES``: ``energy_j`` is always the total energy in joules as a float (per inference,
  per decision: what the result prices), its parts by component in ``energy_breakdown_j``; likewise
  ``area_mm2`` / ``area_breakdown_mm2`` and ``latency_s`` / ``latency_breakdown_s``. A result of many
  configurations gives the same names with one value per configuration (a list). ``"result"`` names the
  result type (the class name). An undefined figure (an infeasible design) is ``None``, never NaN.
- ``records()`` (abstract): the result's natural table as a list of flat dicts, one per row (a Report: one
  per layer; a ManyReport: per configuration; a CamReport: per component; a TreesResult: per search
  scheme; a StudyResult: per trial). ``to_csv`` writes them. (Not called ``rows``: CAM results have a
  ``rows`` field, the program's rows.)
- ``table()`` (abstract): a ``rich.table.Table`` for the terminal.
- ``figures(folder)`` (abstract): the result's standard figures saved (atomically) into ``folder``, which
  is created if needed; returns their paths (an empty list when there is nothing to draw, e.g. a study with
  no feasible design).

Inherited (override only to keep an older file format):

- ``to_json(path=None)``: ``to_dict()`` as strict JSON (``NaN`` -> ``null``; never the non-standard
  ``NaN``/``Infinity`` tokens), written atomically to ``path`` when given; returns the text.
- ``to_csv(path)``: ``records()`` as CSV, header ``csv_columns()`` then any further keys in order of first
  appearance, written atomically; an empty or non-finite cell is empty; a nested value (a list or dict) is
  written as compact JSON. Only the header when there are no rows. Returns the path.
- ``csv_columns()``: the columns a CSV always has, even without rows (default: none beyond the rows' keys).

Subclasses keep their own older methods (``Report.summary``, ``Report.plot_energy``, ...); the protocol only
adds. ``check_names`` checks a ``to_dict()`` against the naming contract (the tests call it on every type).
"""

from __future__ import annotations

import abc
import contextlib
import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable

from ..io import atomic_path, atomic_write, check_output_dir, check_output_path, json_safe, strict_json

#: the standard names: a figure called so means this, in every result's ``to_dict`` and CSV rows
NAMES: dict[str, str] = {
    "result": "the result type (the class name)",
    "energy_j": "total energy (J) of one inference / decision: a float (None when undefined)",
    "energy_breakdown_j": "energy (J) by component: {component: float}",
    "area_mm2": "total area (mm^2): a float (None when undefined)",
    "area_breakdown_mm2": "area (mm^2) by component: {component: float}",
    "latency_s": "latency (s) of one inference / decision: a float (None when undefined)",
    "latency_breakdown_s": "latency (s) by component: {component: float}",
    "feasible": "whether the design can hold the workload (bool)",
    "reason": "why it cannot (str, empty when feasible)",
}
#: names whose value is a total (a number, or one number per configuration)
TOTALS = ("energy_j", "area_mm2", "latency_s")
#: names whose value is a breakdown by component
BREAKDOWNS = ("energy_breakdown_j", "area_breakdown_mm2", "latency_breakdown_s")
#: names an older version used for a standard figure: kept beside the standard name, never instead of it
ALIASES: dict[str, str] = {"energy_per_decision_j": "energy_j", "total_area_mm2": "area_mm2"}


class Result(abc.ABC):
    """The protocol every cimkit result implements (see the module documentation for the contract)."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The whole result as JSON-safe plain data with the standard names (``NAMES``); ``"result"`` is the
        class name; undefined figures are None."""

    @abc.abstractmethod
    def records(self) -> list[dict[str, Any]]:
        """The result's natural rows (flat dicts), as ``to_csv`` writes them."""

    @abc.abstractmethod
    def table(self):
        """A ``rich.table.Table`` of the result."""

    @abc.abstractmethod
    def figures(self, folder: str | Path) -> list[Path]:
        """Save the result's standard figures into ``folder`` (created if needed), atomically; their paths."""

    # ---- inherited ---------------------------------------------------------------------------------------
    def csv_columns(self) -> tuple[str, ...]:
        """The CSV columns present even without rows."""
        return ()

    def to_json(self, path: str | Path | None = None) -> str:
        """``to_dict()`` as strict JSON (non-finite numbers as null), written atomically to ``path`` if given."""
        text = strict_json(self.to_dict())
        if path is not None:
            atomic_write(path, text)
        return text

    def to_csv(self, path: str | Path) -> Path:
        """``records()`` as CSV, written atomically (only the header when there are no rows)."""
        return write_rows(path, self.records(), self.csv_columns())


def write_rows(path: str | Path, rows: Iterable[dict], columns: Iterable[str] = ()) -> Path:
    """Write ``rows`` (flat dicts) as CSV to ``path`` atomically: ``columns`` first, then every other key in
    order of first appearance; non-finite numbers and None as empty cells, lists and dicts as compact JSON."""
    rows = [json_safe(r) for r in rows]
    names = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    check_output_path(path, None, "CSV file")

    def cell(value: Any) -> Any:
        return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else value

    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return Path(path)


@contextlib.contextmanager
def saved_figure(path: str | Path, **subplots: Any):
    """``with saved_figure(path, figsize=...) as (fig, ax):`` draw; on leaving, the figure is laid out and
    saved atomically to ``path`` (never a half-written file) and always closed, even when drawing fails."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(**{"dpi": 120, **subplots})
    try:
        yield fig, ax
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


def figure_folder(folder: str | Path) -> Path:
    """``folder`` checked and created for figures (an ``InputError`` naming it otherwise)."""
    return check_output_dir(folder, "figure folder")


def check_names(data: dict[str, Any], *, many: bool = False) -> list[str]:
    """What in ``data`` (a ``to_dict()``) breaks the naming contract: a total that is not a float (or None),
    a breakdown that is not a dict of floats, an alias that disagrees with its standard name, a NaN. With
    ``many``, totals are lists (one value per configuration) and breakdowns dicts of such lists. An empty
    list when all is well."""
    problems: list[str] = []

    def number(value: Any) -> bool:
        return (
            value is None
            or (isinstance(value, float) and math.isfinite(value))
            or (isinstance(value, int) and not isinstance(value, bool))
        )

    def total(value: Any) -> bool:
        return isinstance(value, list) and all(number(v) for v in value) if many else number(value)

    for key in TOTALS:
        if key in data and not total(data[key]):
            problems.append(f"{key} = {data[key]!r:.80} is not a {'list of numbers' if many else 'number or None'}")
    for key in BREAKDOWNS:
        if key in data and not (
            isinstance(data[key], dict) and all(isinstance(k, str) and total(v) for k, v in data[key].items())
        ):
            problems.append(
                f"{key} = {data[key]!r:.80} is not a dict of component -> {'list of numbers' if many else 'number'}"
            )
    for old, new in ALIASES.items():
        if old in data and data.get(new) != data[old]:
            problems.append(f"{old} (an older name of {new}) = {data[old]!r} differs from {new} = {data.get(new)!r}")
    if "result" not in data or not isinstance(data["result"], str):
        problems.append("no 'result' key naming the result type")
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-safe: {exc}")
    return problems
