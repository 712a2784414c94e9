"""Design-space exploration over the vectorized cost model (Optuna studies with persistent storage)."""

from .checks import fingerprint, prepare_study
from .joint import JointResult, run_joint_experiment
from .runner import StudyInterrupted, StudyResult, run_study
from .study import PARAMETERS, StudyConfig, evaluate_batch, evaluate_details, score, spec_for

__all__ = [
    "StudyConfig",
    "run_study",
    "run_joint_experiment",
    "JointResult",
    "StudyResult",
    "StudyInterrupted",
    "PARAMETERS",
    "evaluate_batch",
    "evaluate_details",
    "score",
    "spec_for",
    "prepare_study",
    "fingerprint",
]
