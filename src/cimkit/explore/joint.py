"""The joint-design experiment of Krestinskaya et al. (ISCAS 2025, arXiv 2410.16759).

Designing a chip for the largest network and deploying the others on it wastes energy, latency and
area; optimizing for all networks at once recovers much of it. The experiment runs, with one study
configuration: (1) a study for the largest workload alone, whose best chip then runs every workload;
(2) a joint study over all workloads (max-energy x max-latency x area); (3) one study per workload (the
workload-specific optimum). Per workload it reports the energy x latency x area (EDAP) on each chip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..cost import estimate_many
from ..errors import InputError
from ..io import atomic_write, check_output_dir, json_safe
from ..report import Result, figure_folder, saved_figure
from .checks import load_base, load_workloads
from .runner import run_study
from .study import StudyConfig, spec_for

#: the paper's reported improvement of the joint design over the largest-network design (EDAP)
PAPER_IMPROVEMENT = {"vgg16": 0.36, "resnet18": 0.36, "alexnet": 0.20, "mobilenetv3": 0.69}


#: the columns of the joint experiment's table (terminal, HTML report): EDAP per chip, then signed changes
TABLE_COLUMNS = (
    "workload",
    "on largest-net chip",
    "on joint chip",
    "on own chip",
    "joint vs largest",
    "paper",
    "joint vs own",
)


@dataclass
class JointResult(Result):
    """EDAP (J s mm^2) of each workload on the largest-network chip, the joint chip and its own chip.

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (everything, with the
    improvements and the chosen designs), ``to_csv`` (one row per workload), ``table`` (``markdown`` is the
    same as a Markdown table), ``figures`` (EDAP per workload on each chip)."""

    workloads: list[str]
    largest: str
    edap_on_largest: dict[str, float]
    edap_on_joint: dict[str, float]
    edap_on_own: dict[str, float]
    designs: dict[str, dict]

    @property
    def improvement(self) -> dict[str, float]:
        """Relative EDAP reduction of the joint chip against the largest-network chip."""
        return {w: 1 - self.edap_on_joint[w] / self.edap_on_largest[w] for w in self.workloads}

    @property
    def loss_vs_own(self) -> dict[str, float]:
        """Relative EDAP increase of the joint chip against each workload's own optimum."""
        return {w: self.edap_on_joint[w] / self.edap_on_own[w] - 1 for w in self.workloads}

    def to_dict(self) -> dict:
        return json_safe(
            {
                "result": type(self).__name__,
                "workloads": self.workloads,
                "largest": self.largest,
                "edap_on_largest": self.edap_on_largest,
                "edap_on_joint": self.edap_on_joint,
                "edap_on_own": self.edap_on_own,
                "improvement": self.improvement,
                "loss_vs_own": self.loss_vs_own,
                "paper_improvement": PAPER_IMPROVEMENT,
                "designs": self.designs,
            }
        )

    def records(self) -> list[dict]:
        """One row per workload: its EDAP on each chip, the joint chip's improvement over the largest-network
        chip (and the paper's), and its loss against the workload's own optimum."""
        return [
            {
                "workload": w,
                "edap_on_largest": self.edap_on_largest[w],
                "edap_on_joint": self.edap_on_joint[w],
                "edap_on_own": self.edap_on_own[w],
                "improvement": self.improvement[w],
                "paper_improvement": PAPER_IMPROVEMENT.get(w),
                "loss_vs_own": self.loss_vs_own[w],
            }
            for w in self.workloads
        ]

    def table(self):
        from rich.table import Table

        t = Table(title=f"EDAP (J s mm^2) per workload; largest network: {self.largest}")
        for col in TABLE_COLUMNS:
            t.add_column(col, justify="right" if col != "workload" else "left")
        for w in self.workloads:
            paper = PAPER_IMPROVEMENT.get(w)
            t.add_row(
                w,
                f"{self.edap_on_largest[w]:.3e}",
                f"{self.edap_on_joint[w]:.3e}",
                f"{self.edap_on_own[w]:.3e}",
                f"{-100 * self.improvement[w]:+.0f}%",
                "-" if paper is None else f"{-100 * paper:+.0f}%",
                f"{100 * self.loss_vs_own[w]:+.0f}%",
            )
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``joint_edap.png``: EDAP of each workload on the three chips (log scale)."""
        import numpy as np

        path = figure_folder(folder) / "joint_edap.png"
        x = np.arange(len(self.workloads))
        with saved_figure(path, figsize=(max(5, 1.2 * len(self.workloads)), 3.6)) as (fig, ax):
            for i, (label, values) in enumerate(
                (
                    ("largest-network chip", self.edap_on_largest),
                    ("joint chip", self.edap_on_joint),
                    ("own chip", self.edap_on_own),
                )
            ):
                ax.bar(x + (i - 1) * 0.27, [values[w] for w in self.workloads], width=0.27, label=label)
            ax.set_xticks(x, self.workloads)
            ax.set_yscale("log")
            ax.set_ylabel("EDAP (J s mm^2)")
            ax.legend(fontsize=7)
        return [path]

    def markdown(self) -> str:
        """The table as Markdown (joint_experiment.md)."""
        lines = [
            "| workload | EDAP on largest-net chip (J s mm^2) | on joint chip | on own chip | joint vs largest "
            "| paper | joint vs own |",
            "|---|---|---|---|---|---|---|",
        ]
        for w in self.workloads:
            paper = PAPER_IMPROVEMENT.get(w)
            lines.append(
                f"| {w} | {self.edap_on_largest[w]:.3e} | {self.edap_on_joint[w]:.3e} | {self.edap_on_own[w]:.3e} "
                f"| {-100 * self.improvement[w]:+.0f}% | {'-' if paper is None else f'{-100 * paper:+.0f}%'} "
                f"| {100 * self.loss_vs_own[w]:+.0f}% |"
            )
        return "\n".join(lines)


def _edap_per_workload(base, params: dict, workloads: dict) -> dict[str, float]:
    """EDAP of each of ``workloads`` (name -> traced Workload) on the chip ``params`` of ``base``."""
    spec = spec_for(base, params)
    out = {}
    for name, wl in workloads.items():
        r = estimate_many(wl, [spec])
        out[name] = float(r.energy_j[0] * r.latency_s[0] * r.area_mm2[0])
    return out


def _entry(cfg: StudyConfig, label: str):
    """The study's workload entry (a name or a torch factory) whose label is ``label``."""
    return next(w for w, name in zip(cfg.workloads, cfg.workload_labels) if name == label)


def _best_params(result) -> dict:
    best = result.best_trials
    if not best:
        raise InputError(
            f"study {result.study.study_name!r} found no feasible design ({result.infeasibility()}); "
            f"its trials are in {result.out_dir / 'trials.csv'}"
        )
    return dict(best[0].params)


def run_joint_experiment(
    cfg: StudyConfig, out_dir: str | Path, *, trials: int | None = None, progress=None, adopt: bool = False
) -> JointResult:
    """Largest-network design, joint design and workload-specific designs, each a study of its own
    (stored in ``out_dir``, so the experiment resumes like any study)."""
    out_dir = check_output_dir(out_dir, create=False)
    names = cfg.workload_labels
    base = load_base(cfg)
    traced = dict(zip(names, load_workloads(cfg)))  # traced once, priced on every chip below
    out_dir = check_output_dir(out_dir)
    largest = max(traced, key=lambda n: traced[n].weights)
    single = cfg.with_overrides(objective={"mode": "single", "metrics": ["edap"], "joint": cfg.objective.joint})

    def study(name: str, workloads: list[str]):
        sub = single.with_overrides(name=f"{cfg.name}-{name}", workloads=[_entry(cfg, w) for w in workloads])
        return run_study(sub, out_dir / name, trials=trials, progress=progress, adopt=adopt)

    designs = {
        "largest": _best_params(study(f"only-{largest}", [largest])),
        "joint": _best_params(study("joint", names)),
    }
    own = {}
    for n in names:
        designs[n] = designs["largest"] if n == largest else _best_params(study(f"only-{n}", [n]))
        own[n] = _edap_per_workload(base, designs[n], {n: traced[n]})[n]
    result = JointResult(
        names,
        largest,
        _edap_per_workload(base, designs["largest"], traced),
        _edap_per_workload(base, designs["joint"], traced),
        own,
        designs,
    )
    atomic_write(out_dir / "joint_experiment.md", result.markdown() + "\n")
    result.to_json(out_dir / "joint_experiment.json")
    return result
