"""Design-space exploration over the vectorized cost model (Optuna studies with persistent storage)."""

from .joint import JointResult, run_joint_experiment
from .runner import StudyResult, run_study
from .study import PARAMETERS, StudyConfig, evaluate_batch, score, spec_for

__all__ = ["StudyConfig", "run_study", "run_joint_experiment", "JointResult", "StudyResult", "PARAMETERS", "evaluate_batch", "score", "spec_for"]
