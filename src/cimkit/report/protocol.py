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

Summaries (inherited, for a terminal and for Jupyter):

- ``headline()``: the few figures a summary shows, as ``{to_dict name: to_dict value}`` (by default the names
  of ``HEADLINE_NAMES`` that ``to_dict()`` has, in that order; override to choose others).
- ``repr(result)``: the class name, the row count and the headline with units (SI prefixes), at most 15 lines;
  ``_repr_html_()`` the same as a small self-contained HTML block with the first rows as a table.
- ``to_pandas()``: ``records()`` as a ``pandas.DataFrame``, the ``csv_columns()`` first (pandas is optional:
  without it a ``MissingDependencyError`` says how to install it).

Subclasses keep their own older methods (``Report.summary``, ``Report.plot_energy``, ...); the protocol only
adds. ``check_names`` checks a ``to_dict()`` against the naming contract (the tests call it on every type).
"""

from __future__ import annotations

import abc
import contextlib
import csv
import html
import json
import math
import numbers
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import MissingDependencyError
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


#: the figures a result's summary (``repr``, ``_repr_html_``) shows, in this order, where ``to_dict`` has them
HEADLINE_NAMES = (
    "workload",
    "model",
    "data",
    "spec",
    "scheme",
    "name",
    "study",
    "x_name",
    "configurations",
    "feasible",
    "reason",
    "energy_j",
    "area_mm2",
    "latency_s",
    "tops_per_w",
    "tops_per_mm2",
    "fps",
    "throughput_per_s",
    "arrays",
    "tiles",
    "utilization",
    "trees",
    "depth",
    "bits",
    "rows",
    "features",
    "sparsity",
    "images",
    "chips",
    "mean_accuracy",
    "std_accuracy",
    "float_accuracy",
    "model_accuracy",
    "cam_accuracy",
    "quantized_accuracy",
    "workloads",
    "objectives",
    "completed",
    "evaluated_now",
    "largest",
    "improvement",
    "schemes",
    "curves",
    "seconds",
)
#: at most this many headline figures in a summary (a terminal ``repr`` stays within 15 lines)
HEADLINE_MAX = 13
#: rows and columns of ``records()`` an HTML summary shows
HTML_ROWS = 10
HTML_COLUMNS = 12


def import_pandas(what: str = "to_pandas") -> Any:
    """The ``pandas`` module, or a ``MissingDependencyError`` saying that ``what`` needs it."""
    try:
        import pandas
    except ImportError:
        raise MissingDependencyError(f"{what} needs pandas: pip install pandas") from None
    return pandas


def rows_frame(rows: Sequence[dict[str, Any]], columns: Iterable[str] = (), what: str = "to_pandas") -> Any:
    """``rows`` (flat dicts) as a ``pandas.DataFrame``: ``columns`` first, then every other key in order of
    first appearance (the column order of ``write_rows``); a key a row lacks is NaN there."""
    pd = import_pandas(what)
    names = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    return pd.DataFrame(list(rows), columns=names)


class Result(abc.ABC):
    """The protocol every cimkit result implements (see the module documentation for the contract)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # results are dataclasses: ``@dataclass`` adds a field-by-field __repr__ (the whole result, unreadable)
        # unless the class has one of its own, so each subclass gets the nearest inherited one as its own
        if "__repr__" not in cls.__dict__:
            for base in cls.__mro__[1:]:
                if "__repr__" in base.__dict__:
                    cls.__repr__ = base.__dict__["__repr__"]  # type: ignore[method-assign]
                    break

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

    def to_pandas(self) -> Any:
        """``records()`` as a ``pandas.DataFrame`` (one row per record), the ``csv_columns()`` first, then the
        other keys in order of first appearance; a ``MissingDependencyError`` when pandas is not installed."""
        import_pandas()
        return rows_frame(self.records(), self.csv_columns())

    # ---- summaries ---------------------------------------------------------------------------------------
    def headline(self) -> dict[str, Any]:
        """The figures a summary shows: ``{name: value}`` with the names and values of ``to_dict()`` (those of
        ``HEADLINE_NAMES`` it has, in that order, at most ``HEADLINE_MAX``; empty texts and lists left out,
        and undefined figures other than the totals). Override to choose others."""
        data = self.to_dict()
        out: dict[str, Any] = {}
        for name in HEADLINE_NAMES:
            if name not in data or len(out) >= HEADLINE_MAX:
                continue
            value = data[name]
            if (value is None and name not in TOTALS) or (isinstance(value, (str, list, dict)) and not value):
                continue
            out[name] = value
        return out

    def _summary(self) -> tuple[str, list[tuple[str, str]], list[dict[str, Any]]]:
        rows = self.records()
        items = [(figure_label(k), figure_text(k, v)) for k, v in self.headline().items()]
        return f"{len(rows)} row{'s' if len(rows) != 1 else ''}", items, rows

    def __repr__(self) -> str:
        """The class name, the row count and the headline figures with units: one short block."""
        try:
            subtitle, items, _ = self._summary()
        except Exception as exc:  # a repr never raises (a study whose storage is gone, ...)
            return f"<{type(self).__name__}: no summary ({type(exc).__name__}: {one_line(str(exc), 100)})>"
        return text_summary(type(self).__name__, subtitle, items)

    def _repr_html_(self) -> str:
        """A small self-contained HTML summary (Jupyter): the headline figures and the first records."""
        try:
            subtitle, items, rows = self._summary()
        except Exception:  # as the repr: a notebook cell shows what is wrong, not a traceback
            return f"<p>{html.escape(repr(self))}</p>"
        return html_summary(type(self).__name__, subtitle, items, rows, self.csv_columns())


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


# ---- summary formatting (shared by results, CAM programs, study files, chip summaries) ---------------------
#: SI factors and their prefixes, largest first (summaries, and the report's axes)
SI_PREFIXES: tuple[tuple[float, str], ...] = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "\u00b5"),
    (1e-9, "n"),
    (1e-12, "p"),
    (1e-15, "f"),
    (1e-18, "a"),
)
#: summary labels of the standard figures (others: the name less its unit suffix, "_" as spaces)
LABELS: dict[str, str] = {
    "tops_per_w": "TOPS/W",
    "tops_per_mm2": "TOPS/mm\u00b2",
    "tops": "TOPS",
    "fps": "throughput",
    "throughput_per_s": "throughput",
    "edp_js": "EDP",
    "seconds": "run time",
    "x_name": "swept",
}
_SUFFIX_UNITS = (("_per_s", "/s"), ("_mm2", "mm\u00b2"), ("_js", "J\u00b7s"), ("_j", "J"), ("_s", "s"), ("_w", "W"))
_FRACTIONS = ("accuracy", "utilization", "sparsity")


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def si(value: Any, unit: str = "", digits: int = 3) -> str:
    """``value`` with an SI prefix and ``digits`` significant digits: ``si(2.16e-7, "J")`` is "216 nJ";
    "n/a" for None or a non-finite number."""
    if not _real(value) or not math.isfinite(value):
        return "n/a"
    v = float(value)
    if v == 0:
        return f"0 {unit}".rstrip()
    for i, (scale, prefix) in enumerate(SI_PREFIXES):
        if abs(v) >= scale or i == len(SI_PREFIXES) - 1:
            mantissa = float(f"{v / scale:.{digits}g}")
            if abs(mantissa) >= 1000 and i > 0:  # 999.96 rounds up into the next prefix
                scale, prefix = SI_PREFIXES[i - 1]
                mantissa = float(f"{v / scale:.{digits}g}")
            if abs(v) >= 1e15 or abs(v) < 1e-18:
                return f"{v:.{digits}g} {unit}".rstrip()
            return f"{f'{mantissa:#.{digits}g}'.rstrip('.')} {prefix}{unit}".rstrip()
    raise AssertionError("unreachable")


def one_line(text: Any, limit: int = 60) -> str:
    """``text`` as one line (whitespace runs as one space) of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def figure_label(name: str) -> str:
    """The summary label of a figure named ``name`` (``energy_j`` -> "energy", ``tops_per_w`` -> "TOPS/W")."""
    if name in LABELS:
        return LABELS[name]
    for suffix, _ in _SUFFIX_UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].replace("_", " ")
    return name.replace("_", " ")


def _number_text(name: str, value: Any) -> str:
    if value is None or (_real(value) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if not _real(value):
        return one_line(value)
    if any(f in name for f in _FRACTIONS):
        return f"{100 * float(value):.2f}%"
    if name in ("tops_per_w", "tops_per_mm2", "tops"):
        return f"{float(value):.3g}"
    if name == "fps":
        return si(value, "/s")
    if name == "seconds":
        return si(value, "s")
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return f"{float(value):.4g} {unit}" if unit == "mm\u00b2" else si(value, unit)
    return f"{float(value):.4g}"


def figure_text(name: str, value: Any, limit: int = 60) -> str:
    """``value`` of the figure ``name`` as summary text, with its unit: SI prefixes for J, s, W and J s, mm^2
    as such, fractions (accuracy, utilization, sparsity) as percentages, yes / no for a bool, a list of numbers
    (one per configuration) as its range, a list of bools as how many are true, a list of records as its
    length, a list of names or a dict as its items (cut to ``limit`` characters)."""
    if isinstance(value, list):
        if value and all(isinstance(v, bool) for v in value):
            return f"{sum(value)} of {len(value)}"
        if value and all(v is None or _real(v) for v in value):
            known = [v for v in value if v is not None and math.isfinite(v)]
            if not known:
                return "n/a"
            lo, hi = _number_text(name, min(known)), _number_text(name, max(known))
            return lo if lo == hi else f"{lo} \u2026 {hi}"
        if value and all(isinstance(v, (dict, list)) for v in value):
            return str(len(value))
        return one_line(", ".join(str(v) for v in value), limit)
    if isinstance(value, dict):
        if value and all(v is None or _real(v) for v in value.values()):
            return one_line(", ".join(f"{k} {_number_text(name, v)}" for k, v in value.items()), limit)
        return one_line(", ".join(str(k) for k in value), limit)
    if isinstance(value, str):
        return one_line(value, limit)
    return _number_text(name, value)


def text_summary(title: str, subtitle: str, items: Sequence[tuple[str, str]], limit: int = 15) -> str:
    """A terminal summary: "title (subtitle)" then one indented "label  text" line per item, at most ``limit``
    lines in all (a last line says how many items were left out)."""
    lines = [f"{title} ({subtitle})" if subtitle else title]
    width = max((len(label) for label, _ in items), default=0)
    shown = list(items) if len(items) < limit else list(items)[: limit - 2]
    lines += [f"  {one_line(label, 30):<{width}}  {one_line(text, 100)}" for label, text in shown]
    if len(shown) < len(items):
        lines.append(f"  ... and {len(items) - len(shown)} more")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        value = json.dumps(json_safe(value), separators=(",", ":"))
    return one_line(value, 80)


def html_summary(
    title: str,
    subtitle: str,
    items: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]] = (),
    columns: Iterable[str] = (),
    *,
    max_rows: int = HTML_ROWS,
    max_columns: int = HTML_COLUMNS,
    total_rows: int | None = None,
) -> str:
    """A small self-contained HTML block (no scripts, no outside styles): ``title`` and ``subtitle``, the items
    as a definition list, then the first ``max_rows`` rows as a table of at most ``max_columns`` columns
    (``columns`` first), with notes on the rows and columns left out (``total_rows``: how many rows there are
    when ``rows`` holds only the first ones). Every text is HTML-escaped."""
    esc = html.escape
    out = [
        '<div class="cimkit-summary" style="font-family:sans-serif;font-size:13px">',
        f"<p><strong>{esc(title)}</strong>" + (f" <span>({esc(subtitle)})</span>" if subtitle else "") + "</p>",
    ]
    if items:
        out.append('<dl style="display:grid;grid-template-columns:max-content auto;gap:0 1em;margin:0 0 0.5em">')
        out += [f"<dt>{esc(label)}</dt><dd style='margin:0'>{esc(text)}</dd>" for label, text in items]
        out.append("</dl>")
    rows = list(rows)
    names = list(dict.fromkeys([*columns, *(k for r in rows[:max_rows] for k in r)]))
    if rows and names:
        shown = names[:max_columns]
        out.append('<table style="border-collapse:collapse;font-size:12px">')
        out.append("<thead><tr>" + "".join(f"<th>{esc(str(n))}</th>" for n in shown) + "</tr></thead><tbody>")
        for r in rows[:max_rows]:
            out.append("<tr>" + "".join(f"<td>{esc(_cell(r.get(n)))}</td>" for n in shown) + "</tr>")
        out.append("</tbody></table>")
        notes = []
        total = max(len(rows), total_rows or 0)
        if total > max_rows:
            notes.append(f"{total - max_rows} more rows")
        if len(names) > len(shown):
            notes.append(f"{len(names) - len(shown)} more columns")
        if notes:
            out.append(f"<p><em>{esc('; '.join(notes))}</em></p>")
    out.append("</div>")
    return "\n".join(out)
