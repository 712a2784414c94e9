"""Workloads (operations with shapes) for the cost model, and the reference network zoo."""

from pathlib import Path

from ..errors import InputError, short_repr
from . import zoo
from .core import Op, Workload

#: file types ``load_workload`` reads, by lower-case suffix
_READERS = {".onnx": "ONNX model", ".csv": "NeuroSim network file"}


def load_workload(
    name: str | Path, *, unmapped: str = "error", seq_len: int | None = None, dims: dict[str, int] | None = None
) -> Workload:
    """A workload from a zoo name (``cimkit zoo`` lists them), a NeuroSim network ``.csv`` or an
    ``.onnx`` file (suffixes in any case). ``unmapped`` as for ``Workload.from_onnx``; ``seq_len``: tokens
    of a transformer zoo entry (``zoo.workload``); ``dims``: symbolic input sizes of an ONNX model bound by
    name (``Workload.from_onnx``).

    Raises an ``InputError`` naming what is allowed for an unknown zoo name, a missing file, a folder
    or an unsupported file type."""
    if isinstance(name, Path):
        name = str(name)
    if not isinstance(name, str) or not name.strip():
        raise InputError(
            f"workload must be a zoo name ({', '.join(zoo.names())}), a NeuroSim .csv file or an .onnx "
            f"file, got {short_repr(name)}"
        )
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix in _READERS:
        if path.is_dir():
            raise InputError(f"workload {name}: is a folder; give the {_READERS[suffix]} file itself")
        if not path.is_file():
            raise InputError(f"workload {name}: no such {_READERS[suffix]} (a file ending in {suffix})")
        if seq_len is not None:
            raise InputError(
                f"workload {name}: a sequence length applies to the transformer zoo entries "
                f"({', '.join(zoo.TRANSFORMERS)}) only, not to a {_READERS[suffix]}"
            )
        if suffix == ".onnx":
            return Workload.from_onnx(path, unmapped=unmapped, dims=dims)
        return Workload.from_neurosim_csv(path)
    if dims is not None:
        raise InputError(f"workload {name}: symbolic sizes (dims) bind the inputs of an .onnx file only")
    if name in zoo.ZOO:
        return zoo.workload(name, seq_len=seq_len)
    if path.is_dir():
        raise InputError(
            f"workload {name}: is a folder; give a zoo name ({', '.join(zoo.names())}), a NeuroSim .csv "
            "file or an .onnx file"
        )
    if path.exists() or suffix or "/" in name or "\\" in name:
        raise InputError(
            f"workload {name}: unsupported file type {path.suffix or '(no suffix)'!r}; give an .onnx model, "
            f"a NeuroSim .csv network file or a zoo name ({', '.join(zoo.names())})"
        )
    raise InputError(
        f"unknown workload {name!r}: not a zoo network ({', '.join(zoo.names())}) nor an .onnx or .csv file"
    )


def __getattr__(name: str):
    if name == "measure_activity":  # imports torch: loaded on first use
        from .activity import measure_activity

        return measure_activity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Op", "Workload", "zoo", "load_workload", "measure_activity"]
