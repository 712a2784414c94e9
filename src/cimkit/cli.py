"""The ``cimkit`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from .errors import CimkitError

if TYPE_CHECKING:
    from .spec import HardwareSpec

app = typer.Typer(
    help="cimkit: accuracy and cost of AI models on compute-in-memory hardware.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes get whole tables


def _version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"cimkit {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print cimkit's version and exit"
    ),
) -> None:
    """cimkit: accuracy and cost of AI models on compute-in-memory hardware."""


def _batch_option(batch: str, net, spec, x) -> int:
    """--batch as a number of images: a positive integer, or auto (``cimkit.sim.evaluate.auto_batch_size``)."""
    from .errors import InputError

    if batch.strip().lower() == "auto":
        from .sim.evaluate import auto_batch_size

        chosen = auto_batch_size(net, spec, x)
        console.print(f"--batch auto: {chosen} images per forward", highlight=False)
        return chosen
    try:
        value = int(batch)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"--batch must be a positive integer or auto, got {batch!r}")
    return value


def _spec(name_or_path: str) -> HardwareSpec:
    from .spec import HardwareSpec

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return HardwareSpec.from_yaml(path)
    return HardwareSpec.preset(name_or_path)


@app.command()
def demo(
    out: Path = typer.Option(Path("out"), help="folder for the figure"),
    chip_samples: int = typer.Option(3, min=1, help="programmed chips per preset (mean and spread)"),
    quick: bool = typer.Option(False, help="fewer test images and chips (a smoke test)"),
) -> None:
    """Train (once, cached) a small CNN on real MNIST digits and run it on every preset chip."""
    from .demo import run_demo
    from .io import check_output_dir

    check_output_dir(out, "output folder (--out)")

    with console.status("training or loading the CNN, then simulating each chip...") as status:
        result = run_demo(out, chip_samples=chip_samples, quick=quick, progress=lambda m: status.update(m))
    table = Table(title=f"Small CNN on MNIST (5,000 real digits): float accuracy {result.float_accuracy:.2%}")
    table.add_column("preset")
    table.add_column("CIM accuracy", justify="right")
    table.add_column("spread (std)", justify="right")
    table.add_column("chips", justify="right")
    table.add_column("change vs float", justify="right")
    for name, mean, std, accs in result.rows:
        table.add_row(name, f"{mean:.2%}", f"{std:.2%}", str(len(accs)), f"{mean - result.float_accuracy:+.2%}")
    console.print(table)
    sweep = Table(title="Accuracy against ADC bits (one chip each)")
    sweep.add_column("ADC bits", justify="right")
    for name in result.adc_sweep:
        sweep.add_column(name, justify="right")
    for i, (bits, _) in enumerate(next(iter(result.adc_sweep.values()))):
        sweep.add_row(str(bits), *(f"{pts[i][1]:.2%}" for pts in result.adc_sweep.values()))
    console.print(sweep)
    if result.costs:
        cost = Table(title="The same CNN: chip cost per inference (cimkit.estimate, same specs)")
        for col in ("preset", "area mm^2", "energy / inference", "latency", "TOPS/W"):
            cost.add_column(col, justify="right")
        for name, rep in result.costs.items():
            if rep is None:
                cost.add_row(name, "n/a", "ideal converters: not priceable", "", "")
            else:
                cost.add_row(
                    name,
                    f"{rep.area_mm2:.2f}",
                    f"{rep.energy_j * 1e9:.1f} nJ",
                    f"{rep.latency_s * 1e6:.1f} us",
                    f"{rep.tops_per_w:.1f}",
                )
        console.print(cost)
    console.print(f"figure: {result.figure}   ({result.seconds:.0f} s)")


def _unmapped_table(report, workload) -> Table:
    """The ops of ``workload`` the cost model left unpriced (``report.unmapped``), with what the workload
    knows of them: their type in the source model, shapes, output size and the weights they hold."""
    ops = {op.name: op for op in workload.ops}
    table = Table(
        title=f"NOT PRICED: {len(report.unmapped)} unmapped op(s) of {workload.name} (no rule maps them; "
        "their cost is not in the figures above)",
        title_justify="left",
    )
    for col in ("op", "kind", "source type", "input shape", "output shape", "output elements", "weights held"):
        table.add_column(col, justify="right" if col in ("output elements", "weights held") else "left")

    def shape(value) -> str:
        return "x".join(map(str, value)) if value else "-"

    for name in report.unmapped:
        op = ops.get(name)
        if op is None:
            table.add_row(name, "unmapped", "-", "-", "-", "-", "-")
            continue
        elements = getattr(op, "elements", 0)
        table.add_row(
            name,
            str(op.kind),
            getattr(op, "source_type", "") or "-",
            shape(getattr(op, "in_shape", ())),
            shape(getattr(op, "out_shape", ())),
            f"{elements:,}" if elements else "-",
            f"{getattr(op, 'unmapped_weights', 0):,}",
        )
    return table


def _named_sizes(items: list[str]) -> dict[str, int] | None:
    """``--dim NAME=SIZE`` options as a dict (None when there are none)."""
    from .errors import InputError

    out: dict[str, int] = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name.strip() or not size.strip().isdigit():
            raise InputError(f"--dim {item!r}: give NAME=SIZE, e.g. --dim sequence_length=128")
        out[name.strip()] = int(size)
    return out or None


@app.command()
def estimate(
    network: str = typer.Argument(..., help="a zoo name (cimkit zoo), a NeuroSim network .csv or an .onnx file"),
    hw: str = typer.Option("rram-22nm", "--hw", help="a preset name or a hardware YAML file"),
    json_out: Path | None = typer.Option(None, "--json", help="write the full report as JSON"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write per-layer energy and latency as CSV"),
    plot: Path | None = typer.Option(None, help="save a stacked-bar figure of the energy per layer"),
    neurosim_ops: bool = typer.Option(False, help="count operations as NeuroSim does (input map size)"),
    neurosim_compat: bool = typer.Option(
        False,
        help="count windows and map convolutions as DNN+NeuroSim V1.3 "
        "does (no padded windows, one kernel tap per array group)",
    ),
    unmapped: str = typer.Option(
        "warn",
        help="ops of an ONNX model that cimkit cannot map: 'warn' (keep them, "
        "listed as not priced) or 'error' (refuse the model)",
    ),
    seq: int | None = typer.Option(
        None,
        "--seq",
        help="tokens per inference of a transformer zoo entry "
        "(default 128; for --mode decode, the tokens in the KV cache)",
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        help="a decoder zoo entry (gpt2, smollm2-135m): 'prefill' "
        "(--seq tokens at once, the default) or 'decode' (one new token after --seq "
        "cached ones)",
    ),
    dim: list[str] = typer.Option(
        [],
        "--dim",
        help="NAME=SIZE: bind a symbolic size of an ONNX model's inputs (repeatable), e.g. --dim sequence_length=512",
    ),
) -> None:
    """Area, energy, latency and efficiency of a network on a chip, with its energy by op kind."""
    import warnings

    from .cost import estimate as run_estimate
    from .io import check_output_path, figure_suffixes
    from .workload import load_workload
    from .workload.core import check_unmapped_policy

    check_unmapped_policy(unmapped)
    for path, suffixes, what in (
        (json_out, None, "--json"),
        (csv_out, None, "--csv"),
        (plot, figure_suffixes(), "--plot"),
    ):
        if path is not None:  # before any work: a bad output path fails now, not after the run
            check_output_path(path, suffixes, what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if mode is None:
            wl = load_workload(network, unmapped=unmapped, seq_len=seq, dims=_named_sizes(dim))
        else:
            from .errors import InputError
            from .workload import zoo as z

            if network not in z.ZOO:
                raise InputError(
                    f"--mode {mode}: applies to the decoder zoo entries ({', '.join(z.DECODERS)}), not to {network!r}"
                )
            wl = z.workload(network, seq_len=seq, mode=mode)
    for w in caught:  # the importer's warnings (unmapped ops, unused weights), once each, on the console
        console.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    report = run_estimate(wl, _spec(hw), ops="neurosim" if neurosim_ops else "macs", neurosim_compat=neurosim_compat)
    console.print(report.table())
    if report.unmapped:
        console.print(_unmapped_table(report, wl))
    if json_out:
        report.to_json(json_out)
    if csv_out:
        report.to_csv(csv_out)
    if plot and report.feasible:
        report.plot_energy(plot)
    if not report.feasible:
        console.print(
            f"[red]error:[/red] infeasible: {report.reason}"
            + (f" (the report in {json_out} says so)" if json_out else ""),
            highlight=False,
        )
        raise typer.Exit(1)


@app.command()
def explore(
    study_file: Path = typer.Argument(..., help="a study YAML (see examples/explore_vgg8.yaml)"),
    out: Path = typer.Option(Path("out/study"), help="folder for the database, CSV, figures and best specs"),
    trials: int | None = typer.Option(None, help="override the study's number of trials"),
    dask: bool = typer.Option(False, "--dask", help="evaluate batches on a Dask cluster (local unless --scheduler)"),
    scheduler: str | None = typer.Option(None, help="tcp://host:port of an existing Dask scheduler"),
    workers: int | None = typer.Option(None, help="workers of the local Dask cluster"),
    adopt: bool = typer.Option(
        False,
        "--adopt",
        help="resume a study stored by an older cimkit (without a fingerprint of its settings) as this study file's",
    ),
) -> None:
    """Search the hardware design space of a study file (resumes from its storage if interrupted)."""
    import math

    from rich.progress import BarColumn, Progress, TextColumn

    from .explore import StudyConfig, run_joint_experiment, run_study
    from .io import check_output_dir

    cfg = StudyConfig.from_yaml(study_file)
    update: dict = {"executor": "dask"} if dask or scheduler is not None else {}
    for key, value in (("scheduler", scheduler), ("workers", workers), ("trials", trials)):
        if value is not None:  # --trials 0 and --workers 0 are refused, not ignored
            update[key] = value
    if update:
        cfg = cfg.with_overrides(**update)
    check_output_dir(out, "output folder (--out)", create=False)  # before any work; created once the study is checked

    def shown(best: float) -> str:
        return f"{best:.4g}" if math.isfinite(best) else "none feasible yet"

    try:
        if cfg.experiment == "joint_vs_largest":
            with console.status("running the studies (largest network, joint, each network)...") as status:
                joint = run_joint_experiment(
                    cfg,
                    out,
                    adopt=adopt,
                    progress=lambda done, total, best: status.update(f"{done}/{total}, best {shown(best)}"),
                )
            console.print(joint.table())
            console.print(f"tables in {out / 'joint_experiment.md'} and .json")
            return
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("best {task.fields[best]}"),
            console=console,
        ) as bar:
            task = bar.add_task(cfg.name, total=cfg.trials, best="-")
            result = run_study(
                cfg,
                out,
                adopt=adopt,
                progress=lambda done, total, best: bar.update(task, completed=done, best=shown(best)),
            )
    except KeyboardInterrupt as exc:  # run_study wrote the outputs of the stored trials first
        res = getattr(exc, "result", None)
        console.print(
            "interrupted: "
            + (
                f"{res.completed} trials stored in {res.storage}; trials.csv and the best designs so far are in {out}"
                if res
                else "the trials stored so far are kept"
            )
            + "; run the same command to resume",
            highlight=False,
        )
        raise typer.Exit(130) from None
    console.print(
        f"{result.completed} trials stored ({result.evaluated_now} evaluated now in {result.seconds:.1f} s); "
        f"outputs in {out}"
    )
    best = result.best_trials
    if not best:
        console.print(
            f"[red]error:[/red] no feasible design found ({result.infeasibility()}); the trials are in "
            f"{out / 'trials.csv'}",
            highlight=False,
        )
        raise typer.Exit(1)
    console.print(result.table(top=5))


@app.command()
def robustness(
    study_file: Path = typer.Argument(..., help="a robustness study YAML (see examples/robustness_quick.yaml)"),
    out: Path = typer.Option(Path("out/robustness"), help="folder for the parts, results.json and the figures"),
) -> None:
    """Run a robustness study (attacks, faults, drift, approximate computing); a rerun keeps finished parts."""
    from .io import check_output_dir
    from .robust.study import RobustnessStudy, run_study

    study = RobustnessStudy.from_yaml(study_file)
    check_output_dir(out, "output folder (--out)", create=False)
    try:
        results = run_study(study, out, say=lambda text: console.print(text, highlight=False))
    except KeyboardInterrupt:
        console.print(
            f"interrupted: the finished parts are kept in {out / 'parts'}; run the same command to resume",
            highlight=False,
        )
        raise typer.Exit(130) from None
    console.print(
        f"{len(results)} part(s); results in {out / 'results.json'}, figures in {out / 'figures'}", highlight=False
    )


def _simulation_model(name: str, data_name: str):
    """The model of ``cimkit simulate MODEL``: 'demo', a saved file or package.module:function."""
    import os

    import torch
    from torch import nn

    from .errors import InputError, short_repr
    from .io import build_model

    if name == "demo":
        if data_name != "mnist":
            raise InputError(
                f"MODEL 'demo' is the demo's CNN for 28x28 MNIST digits; use it with --data mnist "
                f"(got --data {data_name})"
            )
        from .data import mnist
        from .demo import train_or_load

        split = mnist()
        with console.status("training (once, then cached) or loading the demo CNN..."):
            return train_or_load(split.x_train, split.y_train)
    path = Path(name)
    if path.is_file():
        try:
            model = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - whatever the file holds
            raise InputError(
                f"MODEL {path}: cannot load it with torch.load ({type(exc).__name__}: {short_repr(str(exc), 200)})"
            ) from None
        if isinstance(model, dict):
            raise InputError(
                f"MODEL {path} holds a dict (a state_dict?), not a model; save the whole model with "
                "torch.save(model, path), or give a package.module:function that builds it and loads "
                "the weights"
            )
        if not isinstance(model, nn.Module):
            raise InputError(f"MODEL {path} holds a {type(model).__name__}, not a torch.nn.Module")
        return model
    if ":" not in name or path.suffix in (".pt", ".pth"):
        raise InputError(
            f"MODEL {name!r}: not 'demo', not an existing file (saved with torch.save(model)) and not "
            "package.module:function"
        )
    if os.getcwd() not in sys.path:  # as `python -m` does: modules of the current folder import
        sys.path.insert(0, os.getcwd())
    return build_model(name, f"MODEL {name!r}")


#: the arrays a --data file of ``cimkit simulate`` holds
SIMULATE_DATA_KEYS = ("x_test", "y_test", "x_train")


def _simulation_data(data: str, limit: int | None, calibrate_n: int):
    """(test inputs, test labels, calibration inputs or None, the data's name) for ``cimkit simulate``."""
    import numpy as np
    import torch

    from .errors import InputError

    if data.lower() in ("mnist", "digits"):
        from . import data as datasets

        split = getattr(datasets, data.lower())()
        arrays = {"x_test": split.x_test, "y_test": split.y_test, "x_train": split.x_train}
        name = data.lower()
    else:
        path = Path(data)
        if not path.is_file():
            raise InputError(f"--data {data!r}: not mnist, digits or an existing .pt / .npz file")
        if path.suffix.lower() not in (".pt", ".pth", ".npz"):
            raise InputError(
                f"--data {path}: unsupported file type {path.suffix or '(none)'!r}; give a .pt file "
                "(torch.save of a dict of tensors) or a .npz file (numpy.savez)"
            )
        try:
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    raw = {k: z[k] for k in z.files}
            else:
                raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - whatever is in the file
            raise InputError(f"--data {path}: cannot read it ({type(exc).__name__}: {str(exc)[:200]})") from None
        if not isinstance(raw, dict):
            raise InputError(
                f"--data {path} holds a {type(raw).__name__}; it must hold a dict of arrays "
                f"{', '.join(SIMULATE_DATA_KEYS)} (x_train optional)"
            )
        missing = [k for k in ("x_test", "y_test") if k not in raw]
        if missing:
            raise InputError(
                f"--data {path} has no {' and no '.join(missing)} (it holds: "
                f"{', '.join(map(str, raw)) or 'nothing'}); give x_test (inputs), y_test (integer labels) "
                "and optionally x_train (calibration inputs)"
            )
        arrays = {}
        for key in SIMULATE_DATA_KEYS:
            value = raw.get(key)
            if isinstance(value, np.ndarray):
                if value.dtype.kind not in "biuf":
                    raise InputError(f"--data {path}: {key} must hold numbers, got dtype {value.dtype}")
                value = torch.from_numpy(np.ascontiguousarray(value))
            if value is not None and not isinstance(value, torch.Tensor):
                raise InputError(f"--data {path}: {key} is a {type(value).__name__}, not an array or a tensor")
            if value is not None:
                arrays[key] = value
        name = path.name
    x, y = arrays["x_test"], arrays["y_test"]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    calibration = None
    if calibrate_n:
        if "x_train" not in arrays:
            raise InputError(
                f"--data {data} has no x_train to calibrate on; add x_train (calibration inputs) to the "
                "file, or pass --calibrate 0 to run the chips uncalibrated"
            )
        calibration = arrays["x_train"][:calibrate_n]
    return x, y, calibration, name


@app.command()
def simulate(
    model: str = typer.Argument(
        ...,
        help="'demo' (the demo's small CNN, trained once on the MNIST training images "
        "and cached; with --data mnist), package.module:function (called without arguments; "
        "returns a torch.nn.Module with its weights), or a file saved with torch.save(model) "
        "(loaded with torch.load(weights_only=False), which runs code stored in the file: "
        "load only files you trust)",
    ),
    data: str = typer.Option(
        ...,
        "--data",
        help="mnist or digits (calibration on the training split, test on the "
        "test split), or a .pt file (torch.save of a dict) or .npz file (numpy.savez) holding "
        "x_test (inputs, N x ...), y_test (N integer labels) and optionally x_train "
        "(calibration inputs)",
    ),
    hw: str = typer.Option(..., "--hw", help="a preset name or a hardware YAML file"),
    chips: int = typer.Option(1, min=1, help="chip samples: programming seeds --seed, --seed + 1, ..."),
    seed: int = typer.Option(0, help="seed of the first chip"),
    batch: str = typer.Option(
        "256",
        help="test images per forward (the read noise depends on it), or auto: the largest power of two up to 256 "
        "that fits in half the free memory (measured; the result records the number)",
    ),
    limit: int | None = typer.Option(None, min=1, help="test on the first N test images only"),
    calibrate_n: int = typer.Option(
        256,
        "--calibrate",
        min=0,
        help="calibrate each chip's converters on the first N training inputs, in batches of --batch (0: uncalibrated)",
    ),
    shards: int = typer.Option(
        1, min=1, help="split the test set into this many units per chip (for Dask); the results do not depend on it"
    ),
    executor: str = typer.Option("serial", help="serial, or dask (a local cluster unless --scheduler)"),
    workers: int = typer.Option(2, min=1, help="workers of the local Dask cluster"),
    scheduler: str | None = typer.Option(
        None, help="tcp://host:port of an existing Dask scheduler (implies --executor dask)"
    ),
    out: Path | None = typer.Option(
        None,
        help="folder for the checkpoint (simulate-checkpoint.json: rerunning the "
        "same command resumes) and the figure (simulate_accuracy.png)",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write the result as JSON (with every prediction)"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write one row per chip as CSV"),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
) -> None:
    """Test-set accuracy of a model on sampled chips: per chip, then mean and spread (resumable with --out)."""
    import warnings

    from .io import check_output_dir, check_output_path
    from .sim.evaluate import SimulationInterrupted
    from .sim.evaluate import simulate as run_simulate

    for path, what in ((json_out, "--json"), (csv_out, "--csv")):
        if path is not None:  # before any work
            check_output_path(path, None, what)
    if out is not None:
        check_output_dir(out, "output folder (--out)")
    if scheduler is not None and executor == "serial":
        executor = "dask"
    spec = _spec(hw)
    with warnings.catch_warnings():  # warnings (layers kept digital) once each, on the console, as they come
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *args, **kwargs: console.print(
            f"[yellow]warning:[/yellow] {message}", highlight=False
        )
        x, y, calibration, data_name = _simulation_data(data, limit, calibrate_n)
        net = _simulation_model(model, data_name)
        batch_size = _batch_option(batch, net, spec, x)
        try:
            cal_batches = max(1, -(-len(calibration) // batch_size)) if calibration is not None else 1
            result = run_simulate(
                net,
                spec,
                x,
                y,
                chips=chips,
                seed=seed,
                calibration=calibration,
                calibrate_batches=cal_batches,
                batch_size=batch_size,
                shards=shards,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                progress=not no_progress,
                checkpoint=out / "simulate-checkpoint.json" if out is not None else None,
            )
        except SimulationInterrupted as exc:
            kept = (
                f"kept in {exc.checkpoint}; run the same command to resume"
                if exc.checkpoint
                else "not kept (no --out); give --out DIR to keep finished work across runs"
            )
            console.print(
                f"interrupted: {exc.done} of {exc.total} units (chip x shard) finished, {kept}", highlight=False
            )
            raise typer.Exit(130) from None
    result.model_name = Path(model).name if Path(model).is_file() else model
    console.print(result.table())
    if result.resumed_units:
        console.print(f"{result.resumed_units} unit(s) read from {result.checkpoint}", highlight=False)
    if out is not None:
        console.print(f"figure: {result.figures(out)[0]}", highlight=False)
    if json_out:
        result.to_json(json_out)
    if csv_out:
        result.to_csv(csv_out)


@app.command()
def trees(
    data: str = typer.Option("breast_cancer", help="breast_cancer, wine, digits, shuttle or synthetic"),
    model: str = typer.Option("rf", help="rf, et, dt, gb, hgb, xgboost or lightgbm"),
    n_trees: int = typer.Option(100, "--trees", min=1, help="trees (per class for multi-class boosting)"),
    depth: int = typer.Option(8, min=1, help="maximum tree depth"),
    cam: Path | None = typer.Option(None, help="an analog-CAM description YAML (default: X-TIME-like 16 nm)"),
    rows: int | None = typer.Option(None, help="override the array rows"),
    cols: int | None = typer.Option(None, help="override the features per array"),
    bits: int | None = typer.Option(None, help="override the input and bound precision"),
    scale: str = typer.Option(
        "thresholds",
        help="input codes: 'thresholds' (bins between the model's thresholds, "
        "as X-TIME) or 'uniform' (a linear DAC over each feature's range)",
    ),
    variation_lsb: float = typer.Option(0.0, min=0.0, help="Gaussian variation of the stored bounds (code steps)"),
    samples: int = typer.Option(2000, min=1, help="test inputs the energy is averaged over"),
    seed: int = typer.Option(0, help="data split and model seed"),
    plot: str = typer.Option("out/trees.png", help="energy figure path ('' for none)"),
    json_out: Path | None = typer.Option(None, "--json", help="write the full result as JSON"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write the cost of each search scheme as CSV"),
) -> None:
    """Train a tree ensemble, compile it to analog CAM, and report accuracy and cost per decision."""
    from .cam import CamSpec
    from .cam.experiment import plot_trees, run_trees
    from .io import check_output_path, figure_suffixes

    if plot:
        check_output_path(plot, figure_suffixes(), "--plot")
    if json_out:
        check_output_path(json_out, None, "--json")
    if csv_out:
        check_output_path(csv_out, None, "--csv")

    spec = CamSpec.from_yaml(cam) if cam else CamSpec()
    overrides = {k: v for k, v in (("rows", rows), ("cols", cols), ("bits", bits)) if v is not None}
    if cols is not None and cols < spec.group_cols:
        overrides["group_cols"] = cols  # a segment cannot be wider than the array
    if overrides:
        spec = spec.replace(**overrides)
    with console.status(f"training {model} on {data}, compiling, searching..."):
        res, _ = run_trees(
            data,
            model,
            trees=n_trees,
            depth=depth,
            spec=spec,
            scale=scale,
            variation_lsb=variation_lsb,
            energy_samples=samples,
            seed=seed,
        )
    console.print(
        f"{model} ({n_trees} trees, depth {depth}) on {data}: {res.test_samples} test samples; "
        f"{res.rows} CAM rows x {res.features} features, sparsity {res.sparsity:.1%}",
        highlight=False,
    )
    console.print(
        f"accuracy: model {res.model_accuracy:.2%}; CAM exact {res.cam_accuracy:.2%} "
        f"(predictions {'identical' if res.cam_predictions_equal else 'DIFFER'}); "
        f"CAM {res.bits}-bit ({res.scale} codes"
        f"{f', bound variation {res.variation_lsb:g} LSB, seed {seed}' if res.variation_lsb else ''}) "
        f"{res.quantized_accuracy:.2%}",
        highlight=False,
    )
    console.print(res.table())
    if plot:
        console.print(f"figure: {plot_trees(res, plot)}")
    if json_out:
        res.to_json(json_out)
    if csv_out:
        res.to_csv(csv_out)


@app.command()
def report(
    results: list[Path] = typer.Argument(
        ...,
        help="JSON results (files written by estimate --json, simulate, explore, trees, robustness, ...) or folders of them",
    ),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="the HTML page to write"),
    title: str | None = typer.Option(None, help="the page's title (default: from the results)"),
) -> None:
    """One self-contained HTML page (figures embedded, sortable tables) from cimkit's JSON results."""
    from .report.html import write_report

    path = write_report(results, out, title=title)
    console.print(f"report: {path}", highlight=False)


@app.command()
def zoo() -> None:
    """List the reference networks."""
    from .workload import zoo as z

    table = Table(title="cimkit zoo (shapes only; cimkit.zoo.model(name) builds the torch model)")
    for col in ("name", "input", "weighted layers", "weights (M)", "GMAC"):
        table.add_column(col)
    for name in z.names():
        wl = z.workload(name)
        table.add_row(
            name,
            "x".join(map(str, wl.input_shape[1:])),
            str(len(wl.weighted_ops)),
            f"{wl.weights / 1e6:.2f}",
            f"{wl.macs / 1e9:.3f}",
        )
    console.print(table)


@app.command()
def presets() -> None:
    """List the hardware presets."""
    from .spec import HardwareSpec

    table = Table(title="cimkit hardware presets")
    for col in ("name", "device", "array", "signed", "weights", "inputs", "ADC"):
        table.add_column(col)
    for name in HardwareSpec.presets():
        s = HardwareSpec.preset(name)
        p = s.periphery
        table.add_row(
            name,
            f"{s.device.technology}, {s.device.bits_per_cell} b/cell",
            f"{s.array.rows}x{s.array.cols}",
            s.array.signed_mapping,
            f"{s.weight_bits or 'analog'} b",
            f"{p.input_bits or 'analog'} b {p.dac_mode}",
            f"{p.adc_bits or 'ideal'} b {p.adc_range}",
        )
    console.print(table)


@app.command()
def spec(name_or_path: str = typer.Argument(..., help="a preset name or a YAML file")) -> None:
    """Validate a hardware description and print it in full (defaults filled in) as YAML."""
    console.print(_spec(name_or_path).to_yaml(), highlight=False)


def main() -> None:
    """Run the CLI: bad input ends in one message and exit code 2, a failure to write (disk full,
    permissions) in 1; a traceback only for a bug, and only with CIMKIT_DEBUG=1."""
    import os

    try:
        app()  # usage errors and Ctrl-C are answered by typer itself (exit 2 and 1)
    except CimkitError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None
    except OSError as exc:
        console.print(
            f"[red]error:[/red] {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), highlight=False
        )
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if os.environ.get("CIMKIT_DEBUG"):
            raise
        console.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} (a bug in cimkit; set CIMKIT_DEBUG=1 "
            "for the traceback)",
            highlight=False,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
