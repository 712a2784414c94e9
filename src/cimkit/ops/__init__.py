"""Integer-only operators for transformer inference on CIM chips: softmax, GELU and LayerNorm in int64
arithmetic from the input grid to the output codes (I-BERT, Kim et al., ICML 2021; SoftmAP, Rakka et al.,
arXiv 2411.17847), as functions, as modules, ``swap_integer_ops`` to put them into a model, and
``integer_functions`` for models that call them as functions (Hugging Face attention). Hamming attention
(HAD, Horton et al., arXiv 2502.01770: binary queries and keys, XNOR-popcount similarity, top-N keys per
query) in ``hamming`` (``HammingAttention``, ``swap_hamming_attention``, ``calibrate_hamming_scales``) and
its distillation training in ``had_train`` (``distill``, ``had_stages``). Approximate multipliers and adders
(truncation, Mitchell, DRUM, lower-part OR) with their exhaustive error statistics, integer-quantized
approximate layers and their energy table in ``approx``.

Each ``int_*`` function takes a float tensor, puts it on a signed ``input_bits`` grid (``grid.to_grid``),
runs the integer kernel (``softmax_codes``, ``gelu_codes``, ``layernorm_codes``: int64 in, int64 out) and
returns the output codes times their step as a float tensor. Output grids and error bounds are stated
in each function's docstring; ``benchmarks/bench_int_ops.py`` measures them.
"""

from . import approx  # noqa: F401  (cimkit.ops.approx, importable as an attribute)
from .functional import integer_functions
from .had_train import Stage, attention_kl, distill, had_stages, had_student, output_kl
from .hamming import (
    BINARIZERS,
    HammingAttention,
    HammingSelfAttention,
    binarize,
    calibrate_hamming_scales,
    hamming_modules,
    hamming_top_n,
    pack_signs,
    popcount_similarity,
    set_hamming_stage,
    swap_hamming_attention,
    top_n_mask,
)
from .intgelu import DEFAULT_ERF, IBERT_ERF, ErfPoly, gelu_codes, int_gelu
from .intmath import isqrt
from .intnorm import int_layernorm, layernorm_codes
from .intsoftmax import DEFAULT_EXP, IBERT_EXP, ExpPoly, int_exp, int_softmax, softmax_codes, softmax_error_bound
from .modules import IntGELU, IntLayerNorm, IntSoftmax, swap_integer_ops

__all__ = [
    "int_softmax",
    "int_exp",
    "softmax_codes",
    "softmax_error_bound",
    "ExpPoly",
    "IBERT_EXP",
    "DEFAULT_EXP",
    "int_gelu",
    "gelu_codes",
    "ErfPoly",
    "IBERT_ERF",
    "DEFAULT_ERF",
    "int_layernorm",
    "layernorm_codes",
    "isqrt",
    "IntSoftmax",
    "IntGELU",
    "IntLayerNorm",
    "swap_integer_ops",
    "integer_functions",
    "HammingAttention",
    "HammingSelfAttention",
    "swap_hamming_attention",
    "calibrate_hamming_scales",
    "pack_signs",
    "popcount_similarity",
    "top_n_mask",
    "binarize",
    "BINARIZERS",
    "hamming_modules",
    "set_hamming_stage",
    "hamming_top_n",
    "distill",
    "had_stages",
    "had_student",
    "Stage",
    "attention_kl",
    "output_kl",
]
