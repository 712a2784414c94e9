"""Robustness and approximation on the simulated chip: adversarial attacks through the Adversarial Robustness
Toolbox (``attacks``), fault injection, fault campaigns and drift studies (``faults``), approximate computing
placed in the AxC taxonomy (``axc``), the models those studies use (``models``) and the study runner behind
``cimkit robustness STUDY.yaml`` (``study``). Names load on first use (ART is imported only by the attacks)."""

from __future__ import annotations

import importlib

_NAMES = {
    "attacks": (
        "ATTACKS",
        "AttackKind",
        "AttackRun",
        "AttackResult",
        "StrengthCurve",
        "art_classifier",
        "run_attack",
        "accuracy_vs_strength",
        "transfer_matrix",
    ),
    "faults": (
        "FAULT_KINDS",
        "DRIFT_TIMES_S",
        "Faults",
        "flip_bits",
        "confidence_band",
        "Curve",
        "CurveResult",
        "fault_setting",
        "fault_campaign",
        "drift_study",
    ),
    "axc": ("TECHNIQUES", "AxcRow", "AxcResult", "Skipping", "axc_table", "count_macs", "thresholded"),
    "models": ("MODELS", "CCT_FULL", "CCT_CPU", "build", "train_classifier", "accuracy", "parameter_count"),
    "study": ("RobustnessStudy", "run_study"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
