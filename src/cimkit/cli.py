"""The ``cimkit`` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .errors import CimkitError
from .spec import HardwareSpec

app = typer.Typer(help="cimkit: accuracy and cost of AI models on compute-in-memory hardware.",
                  no_args_is_help=True, add_completion=False)
console = Console()


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
    console.print(f"figure: {result.figure}   ({result.seconds:.0f} s)")


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
    try:
        app()
    except CimkitError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
