"""One result protocol for every cimkit result: ``to_dict``, ``to_json``, ``to_csv``, ``table`` and ``figures``,
with the same names for the same things (``energy_j`` is always a float total, its parts in
``energy_breakdown_j``). See ``cimkit.report.protocol`` for the contract."""

from .protocol import ALIASES, BREAKDOWNS, NAMES, TOTALS, Result, check_names, figure_folder, saved_figure, write_rows

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
]
