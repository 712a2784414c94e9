"""The ``cimkit`` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .errors import CimkitError
from .spec import HardwareSpec

app = typer.Typer(help="cimkit: accuracy and cost of AI models on compute-in-memory hardware.",
                  no_args_is_help=True, add_completion=False)
console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes get whole tables


def _spec(name_or_path: str) -> HardwareSpec:
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
                cost.add_row(name, f"{rep.area_mm2:.2f}", f"{rep.energy_j * 1e9:.1f} nJ", f"{rep.latency_s * 1e6:.1f} us",
                             f"{rep.tops_per_w:.1f}")
        console.print(cost)
    console.print(f"figure: {result.figure}   ({result.seconds:.0f} s)")


def _unmapped_table(report, workload) -> Table:
    """The ops of ``workload`` the cost model left unpriced (``report.unmapped``), with what the workload
    knows of them: their type in the source model, shapes, output size and the weights they hold."""
    ops = {op.name: op for op in workload.ops}
    table = Table(title=f"NOT PRICED: {len(report.unmapped)} unmapped op(s) of {workload.name} (no rule maps them; "
                        "their cost is not in the figures above)", title_justify="left")
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
        table.add_row(name, str(op.kind), getattr(op, "source_type", "") or "-", shape(getattr(op, "in_shape", ())),
                      shape(getattr(op, "out_shape", ())), f"{elements:,}" if elements else "-",
                      f"{getattr(op, 'unmapped_weights', 0):,}")
    return table


@app.command()
def estimate(
    network: str = typer.Argument(..., help="a zoo name (cimkit zoo), a NeuroSim network .csv or an .onnx file"),
    hw: str = typer.Option("rram-22nm", "--hw", help="a preset name or a hardware YAML file"),
    json_out: Path | None = typer.Option(None, "--json", help="write the full report as JSON"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write per-layer energy and latency as CSV"),
    plot: Path | None = typer.Option(None, help="save a stacked-bar figure of the energy per layer"),
    neurosim_ops: bool = typer.Option(False, help="count operations as NeuroSim does (input map size)"),
    neurosim_compat: bool = typer.Option(False, help="count windows and map convolutions as DNN+NeuroSim V1.3 "
                                         "does (no padded windows, one kernel tap per array group)"),
    unmapped: str = typer.Option("warn", help="ops of an ONNX model that cimkit cannot map: 'warn' (keep them, "
                                 "listed as not priced) or 'error' (refuse the model)"),
) -> None:
    """Area, energy, latency and efficiency of a network on a chip."""
    import warnings

    from .cost import estimate as run_estimate
    from .io import check_output_path, figure_suffixes
    from .workload import load_workload
    from .workload.core import check_unmapped_policy

    check_unmapped_policy(unmapped)
    for path, suffixes, what in ((json_out, None, "--json"), (csv_out, None, "--csv"), (plot, figure_suffixes(), "--plot")):
        if path is not None:  # before any work: a bad output path fails now, not after the run
            check_output_path(path, suffixes, what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wl = load_workload(network, unmapped=unmapped)
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
        console.print(f"[red]error:[/red] infeasible: {report.reason}" + (f" (the report in {json_out} says so)"
                                                                           if json_out else ""), highlight=False)
        raise typer.Exit(1)


@app.command()
def explore(
    study_file: Path = typer.Argument(..., help="a study YAML (see examples/explore_vgg8.yaml)"),
    out: Path = typer.Option(Path("out/study"), help="folder for the database, CSV, figures and best specs"),
    trials: int | None = typer.Option(None, help="override the study's number of trials"),
    dask: bool = typer.Option(False, "--dask", help="evaluate batches on a Dask cluster (local unless --scheduler)"),
    scheduler: str | None = typer.Option(None, help="tcp://host:port of an existing Dask scheduler"),
    workers: int | None = typer.Option(None, help="workers of the local Dask cluster"),
    adopt: bool = typer.Option(False, "--adopt", help="resume a study stored by an older cimkit (without a "
                               "fingerprint of its settings) as this study file's"),
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
                joint = run_joint_experiment(cfg, out, adopt=adopt, progress=lambda done, total, best: status.update(
                    f"{done}/{total}, best {shown(best)}"))
            console.print(joint.table())
            console.print(f"tables in {out / 'joint_experiment.md'} and .json")
            return
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("best {task.fields[best]}"), console=console) as bar:
            task = bar.add_task(cfg.name, total=cfg.trials, best="-")
            result = run_study(cfg, out, adopt=adopt,
                               progress=lambda done, total, best: bar.update(task, completed=done, best=shown(best)))
    except KeyboardInterrupt as exc:  # run_study wrote the outputs of the stored trials first
        res = getattr(exc, "result", None)
        console.print("interrupted: " + (f"{res.completed} trials stored in {res.storage}; trials.csv and the best "
                                         f"designs so far are in {out}" if res else "the trials stored so far are kept")
                      + "; run the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    console.print(f"{result.completed} trials stored ({result.evaluated_now} evaluated now in {result.seconds:.1f} s); "
                  f"outputs in {out}")
    best = result.best_trials
    if not best:
        console.print(f"[red]error:[/red] no feasible design found ({result.infeasibility()}); the trials are in "
                      f"{out / 'trials.csv'}", highlight=False)
        raise typer.Exit(1)
    console.print(result.table(top=5))


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
    scale: str = typer.Option("thresholds", help="input codes: 'thresholds' (bins between the model's thresholds, "
                              "as X-TIME) or 'uniform' (a linear DAC over each feature's range)"),
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
        res, _ = run_trees(data, model, trees=n_trees, depth=depth, spec=spec, scale=scale, variation_lsb=variation_lsb,
                           energy_samples=samples,
                           seed=seed)
    console.print(f"{model} ({n_trees} trees, depth {depth}) on {data}: {res.test_samples} test samples; "
                  f"{res.rows} CAM rows x {res.features} features, sparsity {res.sparsity:.1%}", highlight=False)
    console.print(f"accuracy: model {res.model_accuracy:.2%}; CAM exact {res.cam_accuracy:.2%} "
                  f"(predictions {'identical' if res.cam_predictions_equal else 'DIFFER'}); "
                  f"CAM {res.bits}-bit ({res.scale} codes"
                  f"{f', bound variation {res.variation_lsb:g} LSB, seed {seed}' if res.variation_lsb else ''}) "
                  f"{res.quantized_accuracy:.2%}", highlight=False)
    console.print(res.table())
    if plot:
        console.print(f"figure: {plot_trees(res, plot)}")
    if json_out:
        res.to_json(json_out)
    if csv_out:
        res.to_csv(csv_out)


@app.command()
def zoo() -> None:
    """List the reference networks."""
    from .workload import zoo as z

    table = Table(title="cimkit zoo (shapes only; cimkit.zoo.model(name) builds the torch model)")
    for col in ("name", "input", "weighted layers", "weights (M)", "GMAC"):
        table.add_column(col)
    for name in z.names():
        wl = z.workload(name)
        table.add_row(name, "x".join(map(str, wl.input_shape[1:])), str(len(wl.weighted_ops)),
                      f"{wl.weights / 1e6:.2f}", f"{wl.macs / 1e9:.3f}")
    console.print(table)


@app.command()
def presets() -> None:
    """List the hardware presets."""
    table = Table(title="cimkit hardware presets")
    for col in ("name", "device", "array", "signed", "weights", "inputs", "ADC"):
        table.add_column(col)
    for name in HardwareSpec.presets():
        s = HardwareSpec.preset(name)
        p = s.periphery
        table.add_row(
            name, f"{s.device.technology}, {s.device.bits_per_cell} b/cell", f"{s.array.rows}x{s.array.cols}",
            s.array.signed_mapping, f"{s.weight_bits or 'analog'} b", f"{p.input_bits or 'analog'} b {p.dac_mode}",
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
        console.print(f"[red]error:[/red] {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
                      highlight=False)
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if os.environ.get("CIMKIT_DEBUG"):
            raise
        console.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (a bug in cimkit; set CIMKIT_DEBUG=1 "
                      "for the traceback)", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
