"""Reference networks with real shapes: ``workload(name)`` (shapes, for cost) and ``model(name)`` (torch).

CNNs (LeNet, VGG, AlexNet, ResNet, MobileNetV3) are written in plain torch (``zoo_nn``, no torchvision)
and traced on the meta device when asked for (torch is imported then, not with this module).
Transformer encoders ("bert-base", "minilm-l6") are built directly from the op registry's shape rules,
with a sequence length argument: ``workload("bert-base", seq_len=512)`` (default 128); their op list
equals ``Workload.from_torch`` of ``model(name)`` (``zoo_nn.BertEncoder``) on (1, seq_len) token ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError, short_repr
from .core import Workload
from .registry import OP_RULES, digital_op, embedding_op, linear_op, matmul_op


@dataclass(frozen=True)
class Encoder:
    """A BERT-style encoder: ``layers`` post-norm layers of width ``d``, ``heads`` heads, feed-forward
    ``ff`` with GELU; word, token-type and position embeddings (``vocab``, ``types``, ``max_len`` rows)."""

    layers: int
    d: int
    heads: int
    ff: int
    vocab: int = 30522
    max_len: int = 512
    types: int = 2


#: CNNs: (builder name in zoo_nn, input shape)
CNNS: dict[str, tuple[str, tuple[int, ...]]] = {
    "lenet": ("lenet", (1, 1, 28, 28)),
    "vgg8": ("vgg8", (1, 3, 32, 32)),
    "vgg16": ("vgg16", (1, 3, 224, 224)),
    "alexnet": ("alexnet", (1, 3, 224, 224)),
    "resnet18": ("resnet18", (1, 3, 224, 224)),
    "resnet20": ("resnet20", (1, 3, 32, 32)),
    "mobilenetv3": ("mobilenetv3", (1, 3, 224, 224)),
}
#: transformer encoders (Devlin et al. 2019, BERT-base; Wang et al. 2020, MiniLM-L6-H384 as in all-MiniLM-L6-v2)
TRANSFORMERS: dict[str, Encoder] = {
    "bert-base": Encoder(layers=12, d=768, heads=12, ff=3072),
    "minilm-l6": Encoder(layers=6, d=384, heads=12, ff=1536),
}
DEFAULT_SEQ_LEN = 128
#: every zoo name -> (kind, entry)
ZOO: dict[str, object] = {**CNNS, **TRANSFORMERS}


def names() -> list[str]:
    return list(ZOO)


def _check(name: str) -> None:
    if not isinstance(name, str) or name not in ZOO:
        raise InputError(f"unknown zoo network {short_repr(name)}; available: {', '.join(ZOO)}")


def model(name: str, **options):
    """The zoo network ``name`` as a torch module with (random) weights, for accuracy experiments."""
    _check(name)
    from . import zoo_nn

    if name in TRANSFORMERS:
        e = TRANSFORMERS[name]
        return zoo_nn.BertEncoder(e.layers, e.d, e.heads, e.ff, e.vocab, e.max_len, e.types)
    return getattr(zoo_nn, CNNS[name][0])(**options)


def encoder_ops(e: Encoder, seq_len: int) -> list:
    """The op list of encoder ``e`` on ``seq_len`` tokens (batch 1), from the registry's shape rules."""
    L, d, h, ff = seq_len, e.d, e.heads, e.ff
    tok, wide = (1, L, d), (1, L, ff)
    ln, add, gelu, softmax = (OP_RULES.get(k) for k in ("norm:layer_norm", "eltwise:add", "act:gelu", "softmax:softmax"))
    ops = [embedding_op("embeddings.word", e.vocab, d, (1, L), tok),
           embedding_op("embeddings.token_type", e.types, d, (1, L), tok),
           digital_op("embeddings.add", add, tok, tok),
           embedding_op("embeddings.position", e.max_len, d, (1, L), tok),
           digital_op("embeddings.add_1", add, tok, tok),
           digital_op("embeddings.norm", ln, tok, tok, {"normalized": 1})]
    for i in range(e.layers):
        p = f"layers.{i}"
        scores = (h, L, L)
        ops += [linear_op(f"{p}.query", d, d, tok, tok), linear_op(f"{p}.key", d, d, tok, tok),
                linear_op(f"{p}.value", d, d, tok, tok),
                matmul_op(f"{p}.qk", h, L, d // h, L),
                digital_op(f"{p}.softmax", softmax, scores, scores, {"dim": -1}),
                matmul_op(f"{p}.av", h, L, L, d // h),
                linear_op(f"{p}.output", d, d, tok, tok),
                digital_op(f"{p}.add1", add, tok, tok),
                digital_op(f"{p}.norm1", ln, tok, tok, {"normalized": 1}),
                linear_op(f"{p}.intermediate", d, ff, tok, wide),
                digital_op(f"{p}.act", gelu, wide, wide),
                linear_op(f"{p}.out", ff, d, wide, tok),
                digital_op(f"{p}.add2", add, tok, tok),
                digital_op(f"{p}.norm2", ln, tok, tok, {"normalized": 1})]
    return ops


def workload(name: str, *, seq_len: int | None = None) -> Workload:
    """The cost-model workload of zoo network ``name``; ``seq_len`` (transformers only, default 128, at
    most the encoder's ``max_len``) is the number of tokens."""
    _check(name)
    if name in TRANSFORMERS:
        e = TRANSFORMERS[name]
        length = DEFAULT_SEQ_LEN if seq_len is None else seq_len
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= e.max_len:
            raise InputError(f"{name}: seq_len = {short_repr(length)}; allowed: an integer from 1 to {e.max_len}")
        return Workload(name, (1, length), encoder_ops(e, length))
    if seq_len is not None:
        raise InputError(f"{name}: seq_len applies to the transformer encoders ({', '.join(TRANSFORMERS)}) only")
    import torch

    from . import zoo_nn

    builder, shape = CNNS[name]
    with torch.device("meta"):
        net = getattr(zoo_nn, builder)()
    return Workload.from_torch(net, shape, name=name)


#: the torch builders of the CNNs, importable from here as before (``cimkit.workload.zoo:resnet18`` in a
#: study's ``torch:`` workload); torch is imported only when one is asked for
_BUILDERS = ("lenet", "vgg8", "vgg16", "alexnet", "resnet18", "resnet20", "mobilenetv3")


def __getattr__(name: str):
    if name in _BUILDERS:
        from . import zoo_nn

        return getattr(zoo_nn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
