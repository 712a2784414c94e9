"""One result protocol for every cimkit result: ``to_dict``, ``to_json``, ``to_csv``, ``table`` and ``figures``,
with the same names for the same things (``energy_j`` is always a float total, its parts in
``energy_breakdown_j``). See ``cimkit.report.protocol`` for the contract. ``write_report`` turns saved results into
one self-contained HTML page (``cimkit report``); ``section`` registers the renderer of a further result kind."""

from .html import load_results, render_html, write_report
from .protocol import ALIASES, BREAKDOWNS, NAMES, TOTALS, Result, check_names, figure_folder, saved_figure, write_rows
from .sections import section

__all__ = [
    "Result",
    "NAMES",
    "TOTALS",
    "BREAKDOWNS",
    "ALIASES",
    "check_names",
    "write_rows",
    "figure_folder",
    "saved_figure",
    "write_report",
    "render_html",
    "load_results",
    "section",
]
