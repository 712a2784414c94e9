"""The op registry: every op kind, what runs it by default, what it costs in digital primitives, and
which frontend constructs (torch modules, torch functions, tensor methods, ONNX node types) produce it.

Two registries live here, neither of which imports torch, onnx or a frontend (the frontends import
this module, never the other way round, so that ``import cimkit.cost`` stays torch-free):

* **kinds** (``register_kind``, ``kind_info``, ``kinds``): one ``KindInfo`` per op kind with its default
  unit ("crossbar", "digital", "cam_attention" for HAD's "hamming_score" and "topn" (``cimkit.workload.hamming``),
  or "" for not priced), whether it holds weights mapped onto arrays, and
  ``events(op)``: the digital primitive operations (``DIGITAL_PRIMITIVES``) the op takes per inference.
* **op rules** (``register_op``, ``op_rules``): one ``OpRule`` per (kind, fn) naming the constructs that
  produce it, as dotted names resolved by the frontend (``"torch.nn.ReLU"``, ``"torch.nn.functional.gelu"``,
  ``"operator.add"``), tensor method names (``"relu"``), and ONNX op types (``"Relu"``), with the rule's
  parameters (the softmax axis, the normalized shape, ...) read from a module, a call or an ONNX node.
  Constructs that only move data (view, reshape, permute, cat, getitem, dropout, ...) are listed in
  ``DATA_FUNCTIONS`` / ``DATA_METHODS`` / ``DATA_ONNX`` and are not ops; anything else no rule names is
  kept as an op of kind "unmapped" with its shapes.

The per-function primitive counts are the table ``EVENTS`` below (documented line by line); the kind "neuron"
(spiking neuron updates, digital by default) counts from ``NEURON_EVENTS`` (``_neuron_table``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import InputError, short_repr
from ..registry import Registry

#: the digital primitive operations an op is counted in ("lookup" = one word read from a table)
DIGITAL_PRIMITIVES = ("add", "mul", "mac", "cmp", "exp", "div", "sqrt", "lookup")


# ---- kinds -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KindInfo:
    """One op kind: the unit that runs it unless the spec routes it elsewhere, whether its weights are
    mapped onto arrays, and ``events(op) -> {primitive: count}`` per inference."""

    kind: str
    default_unit: str
    weighted: bool = False
    events: Callable[[Any], dict[str, float]] = field(default=lambda op: {}, repr=False)
    description: str = ""


KINDS: Registry[KindInfo] = Registry("op kind")


def register_kind(
    kind: str,
    *,
    default_unit: str,
    weighted: bool = False,
    events: Callable[[Any], dict[str, float]] | None = None,
    description: str = "",
    replace: bool = False,
) -> KindInfo:
    """Register an op kind (e.g. a spiking or CAM kind). ``events(op)`` returns the digital primitive
    counts (keys from ``DIGITAL_PRIMITIVES``) of one op per inference; None counts nothing. It may read any
    field of the op (an ``Op`` subclass's own fields too) but not its name: the cost model counts ops alike
    but for their names (the layers of a transformer) once."""
    if not isinstance(default_unit, str):
        raise InputError(
            f"op kind {kind!r}: default_unit must be a unit name (a string), got {short_repr(default_unit)}"
        )
    if events is not None and not callable(events):
        raise InputError(f"op kind {kind!r}: events must be a function of the op, got {short_repr(events)}")
    info = KindInfo(kind, default_unit, bool(weighted), events or (lambda op: {}), description)
    return KINDS.register(kind, info, replace=replace)


def kind_info(kind: str) -> KindInfo:
    """The ``KindInfo`` of ``kind``; an ``InputError`` listing the registered kinds for an unknown one."""
    return KINDS.get(kind, "op kind")


def kinds() -> tuple[str, ...]:
    """The names of the registered op kinds, in registration order."""
    return KINDS.names()


# ---- events per function -----------------------------------------------------------------------------
def _sizes(op) -> tuple[int, int, int]:
    """(E output elements, rows = E // reduce, I input elements) of a digital op."""
    e = int(op.elements)
    rows = e // op.reduce if op.reduce and op.reduce > 0 else e
    i = math.prod(op.in_shape) if op.in_shape else e
    return e, rows, i


def _table() -> dict[str, Callable[[int, int, int], dict[str, float]]]:
    """E = output elements, R = rows (E // reduce), I = input elements. Each entry is what a plain digital
    datapath does (no lookup-table approximations): a transcendental (exp, erf, log, tanh's exp) is one
    "exp"; a reciprocal is one "div"."""
    sigmoid = lambda E: {"exp": E, "add": E, "div": E}  # 1 / (1 + exp(-x))  # noqa: E731
    tanh = lambda E: {"exp": E, "add": 2 * E, "div": E}  # (e^2x - 1) / (e^2x + 1)  # noqa: E731
    norm = lambda E, R: {"add": 4 * E + R, "mul": 3 * E + 2 * R, "sqrt": R, "div": R}  # noqa: E731
    # norm: mean (sum: add E, scale by 1/n: mul R), centre (add E), variance (square: mul E, sum: add E,
    # 1/n: mul R), + eps (add R), sqrt R, 1/std (div R), normalize (mul E), affine gamma (mul E), beta (add E)
    return {
        # softmax over rows of n: max (cmp E), x - max (add E), exp E, row sums (add E), 1/sum (div R), scale (mul E)
        "softmax": lambda E, R, I: {"cmp": E, "add": 2 * E, "exp": E, "div": R, "mul": E},
        "softmin": lambda E, R, I: {"cmp": E, "add": 2 * E, "exp": E, "div": R, "mul": E},
        # log_softmax: max, x - max, exp, row sums, log of the sum (exp R), subtract it (add E)
        "log_softmax": lambda E, R, I: {"cmp": E, "add": 3 * E, "exp": E + R},
        "layer_norm": lambda E, R, I: norm(E, R),
        "group_norm": lambda E, R, I: norm(E, R),
        "instance_norm": lambda E, R, I: norm(E, R),
        # rms_norm: square (mul E), sum (add E), 1/n (mul R), + eps (add R), sqrt R, 1/rms (div R), scale + gamma (mul 2E)
        "rms_norm": lambda E, R, I: {"mul": 3 * E + R, "add": E + R, "sqrt": R, "div": R},
        # batch_norm at inference: statistics folded into one scale and one shift per channel
        "batch_norm": lambda E, R, I: {"mul": E, "add": E},
        "local_response_norm": lambda E, R, I: {"mul": 2 * E, "add": E, "exp": 2 * E, "div": E},
        "lp_normalize": lambda E, R, I: {"mul": E, "add": E, "sqrt": R, "div": R},
        # mean_variance_norm (ONNX MeanVarianceNormalization): a layer norm without the affine step: mean (add E,
        # mul R), centre (add E), variance (mul E, add E, mul R), + eps (add R), sqrt R, 1/std (div R), normalize (mul E)
        "mean_variance_norm": lambda E, R, I: {"add": 3 * E + R, "mul": 2 * E + 2 * R, "sqrt": R, "div": R},
        "relu": lambda E, R, I: {"cmp": E},
        "relu6": lambda E, R, I: {"cmp": 2 * E},
        "hardtanh": lambda E, R, I: {"cmp": 2 * E},
        "threshold": lambda E, R, I: {"cmp": E},
        "leaky_relu": lambda E, R, I: {"cmp": E, "mul": E},
        "prelu": lambda E, R, I: {"cmp": E, "mul": E},
        "elu": lambda E, R, I: {"cmp": E, "exp": E, "add": E, "mul": E},
        "celu": lambda E, R, I: {"cmp": E, "exp": E, "add": E, "mul": E, "div": E},
        "selu": lambda E, R, I: {"cmp": E, "exp": E, "add": E, "mul": 2 * E},
        # gelu (erf form): x / sqrt(2) (mul), erf (exp), 1 + erf (add), x * (...) * 0.5 (mul 2E)
        "gelu": lambda E, R, I: {"mul": 3 * E, "exp": E, "add": E},
        # gelu (tanh form): x^3 (mul 2E), 0.044715 x^3 + x (mul E, add E), * sqrt(2/pi) (mul E), tanh,
        # 1 + tanh (add E), x * (...) * 0.5 (mul 2E)
        "gelu_tanh": lambda E, R, I: {"mul": 6 * E, "add": 4 * E, "exp": E, "div": E},
        "sigmoid": lambda E, R, I: sigmoid(E),
        "logsigmoid": lambda E, R, I: {"exp": 2 * E, "add": E},
        "silu": lambda E, R, I: {**sigmoid(E), "mul": E},
        "tanh": lambda E, R, I: tanh(E),
        "tanhshrink": lambda E, R, I: {**tanh(E), "add": 3 * E},
        "softplus": lambda E, R, I: {"exp": 2 * E, "add": E},  # log(1 + exp(x)): exp + log
        "mish": lambda E, R, I: {"exp": 3 * E, "add": 3 * E, "div": E, "mul": E},  # x * tanh(softplus(x))
        "softsign": lambda E, R, I: {"cmp": E, "add": E, "div": E},
        "hardswish": lambda E, R, I: {"add": E, "cmp": 2 * E, "mul": 2 * E},  # x * relu6(x + 3) / 6
        "hardsigmoid": lambda E, R, I: {"add": E, "cmp": 2 * E, "mul": E},  # relu6(x + 3) / 6
        "hardshrink": lambda E, R, I: {"cmp": 2 * E},
        "softshrink": lambda E, R, I: {"cmp": 2 * E, "add": E},
        "glu": lambda E, R, I: {**sigmoid(E), "mul": E},
        "erf": lambda E, R, I: {"exp": E},
        "add": lambda E, R, I: {"add": E},
        "sub": lambda E, R, I: {"add": E},
        "mul": lambda E, R, I: {"mul": E},
        "div": lambda E, R, I: {"div": E},
        "reciprocal": lambda E, R, I: {"div": E},  # c / x: one divide per element (the factor c folded)
        "pow": lambda E, R, I: {"mul": E},  # squaring (the common case); a general power is exp + log
        "sqrt": lambda E, R, I: {"sqrt": E},
        "rsqrt": lambda E, R, I: {"sqrt": E, "div": E},
        "exp": lambda E, R, I: {"exp": E},
        "log": lambda E, R, I: {"exp": E},
        "neg": lambda E, R, I: {"add": E},
        "abs": lambda E, R, I: {"cmp": E},
        "max": lambda E, R, I: {"cmp": E},
        "min": lambda E, R, I: {"cmp": E},
        "cmp": lambda E, R, I: {"cmp": E},
        "where": lambda E, R, I: {"cmp": E},
        # pooling and reductions, per input element
        "max_pool": lambda E, R, I: {"cmp": I},
        "avg_pool": lambda E, R, I: {"add": I, "mul": E},
        "lp_pool": lambda E, R, I: {"mul": I, "add": I, "sqrt": E},
        "sum": lambda E, R, I: {"add": I},
        "mean": lambda E, R, I: {"add": I, "mul": E},
        "reduce_max": lambda E, R, I: {"cmp": I},
        "reduce_min": lambda E, R, I: {"cmp": I},
        # resampling (nn.Upsample, F.interpolate, ONNX Resize): one linear blend per output element per
        # interpolated pair (2 mul, 1 add); nearest-neighbour copies cost less, so this is an upper bound
        "interpolate": lambda E, R, I: {"mul": 2 * E, "add": E},
        # a table lookup: one word read per output element
        "embedding": lambda E, R, I: {"lookup": E},
    }


#: counts per function, ``EVENTS[fn](E, R, I)``; see ``_table`` for each line's derivation
EVENTS = _table()
#: a function a kind does not list: the kind's fallback (an activation of unknown form is priced as a
#: sigmoid, an upper bound for the piecewise ones)
_FALLBACK = {
    "act": "sigmoid",
    "softmax": "softmax",
    "norm": "layer_norm",
    "eltwise": "add",
    "pool": "avg_pool",
    "embedding": "embedding",
}


def digital_events(op) -> dict[str, float]:
    """The primitive counts of a digital op by its ``fn`` (``EVENTS``; the kind's fallback for an unknown
    or empty fn)."""
    fn = op.fn if op.fn in EVENTS else _FALLBACK.get(op.kind, "")
    if not fn:
        return {}
    e, rows, i = _sizes(op)
    return {k: float(v) for k, v in EVENTS[fn](e, rows, i).items() if v}


def mac_events(op) -> dict[str, float]:
    return {"mac": float(op.macs)}


for _kind, _unit, _weighted, _events, _text in (
    ("linear", "crossbar", True, mac_events, "static weight matrix (in_features x out_features), one vector per token"),
    ("conv", "crossbar", True, mac_events, "1-D / 2-D convolution unrolled to (C_in/groups*kh*kw) x C_out/groups"),
    ("matmul", "digital", False, mac_events, "product of two activations: groups x (vectors x in) @ (in x out)"),
    ("softmax", "digital", False, digital_events, "softmax / log_softmax over rows of `reduce` elements"),
    ("norm", "digital", False, digital_events, "layer / RMS / batch / group norm; `reduce` = normalized length"),
    ("act", "digital", False, digital_events, "element-wise activation, named by fn"),
    ("eltwise", "digital", False, digital_events, "element-wise arithmetic between activations"),
    ("pool", "digital", False, digital_events, "pooling and reductions (per input element)"),
    ("embedding", "digital", False, digital_events, "table lookup; the table is digital memory, not crossbar weights"),
    (
        "unmapped",
        "",
        False,
        None,
        "an op no rule matched, or holding weights the cost model cannot map: listed, not priced",
    ),
    # HAD's binary attention (cimkit.workload.hamming): no digital primitives, the CAM attention unit prices them
    (
        "hamming_score",
        "cam_attention",
        False,
        None,
        "Hamming similarity of binarized queries to binarized keys: "
        "groups x vectors queries of in_features bits against "
        "out_features keys",
    ),
    (
        "topn",
        "cam_attention",
        False,
        None,
        "top-N selection: out_features of in_features scores kept per query (groups x vectors queries)",
    ),
):
    register_kind(_kind, default_unit=_unit, weighted=_weighted, events=_events, description=_text)


# ---- spiking neurons -----------------------------------------------------------------------------------
def _neuron_table() -> dict[str, Callable[[float, float], dict[str, float]]]:
    """Digital primitives of one spiking-neuron layer per inference, ``NEURON_EVENTS[fn](N, S)``: N neuron
    updates (neurons x time steps, ``Op.elements``), S spikes (``Op.activity`` x N). A neuron is a register
    file of its state variables and a small datapath; decays are multiplies by a constant (beta, alpha, a_m,
    a_s), a spike adds or subtracts a constant only when it happens (a conditional add), and a reset to zero
    is a select on the compare's result (a register clear, no arithmetic).

    LIF (snnTorch ``Leaky``, cimkit ``LIF``), per step:
      leak       mem <- beta mem                      1 mul
      integrate  mem <- mem + I                       1 add
      threshold  spike = [mem > theta]                1 cmp
    reset (the spike of the previous step, snnTorch's ``reset_delay``):
      subtract   mem <- mem - theta                   1 add per spike
      zero       mem <- 0                             nothing (a select on the spike)
      none       -                                    nothing
    adaptive threshold (``_adaptive``; cimkit ``LIF(adaptation=...)``): the excess e over theta0 is kept,
      decay      e <- d e                             1 mul per step
      threshold  theta = theta0 + e                   1 add per step (before the compare)
      rise       e <- e + adaptation                  1 add per spike
    Synaptic (snnTorch ``Synaptic``): a LIF whose input is a first-order synaptic current,
      synapse    syn <- alpha syn + I                 1 mul + 1 add per step (the LIF's integrate adds syn)
    Fang et al.'s neuron (cimkit ``FangNeuron``), per step:
      filter     m <- a_m m + I, k <- a_s k + I       2 mul + 2 add
                 psp = v0 (m - k)                     1 add + 1 mul
      membrane   V = psp - r                          1 add (the inhibition scale folded into r's increment)
      threshold  spike = [V > theta]                  1 cmp
      inhibition r <- a_m r                           1 mul
                 r <- r + inhibition                  1 add per spike
    """

    def lif(reset: str, adaptive: bool, synaptic: bool) -> Callable[[float, float], dict[str, float]]:
        def events(N: float, S: float) -> dict[str, float]:
            mul, add, cmp = N, N, N  # leak, integrate, threshold
            if reset == "subtract":
                add += S
            if adaptive:
                mul, add = mul + N, add + N + S
            if synaptic:
                mul, add = mul + N, add + N
            return {"mul": mul, "add": add, "cmp": cmp}

        return events

    table = {
        f"{base}_{reset}{'_adaptive' if adaptive else ''}": lif(reset, adaptive, base == "synaptic")
        for base in ("lif", "synaptic")
        for reset in NEURON_RESETS
        for adaptive in (False, True)
    }
    table["fang"] = lambda N, S: {"mul": 4 * N, "add": 4 * N + S, "cmp": N}
    return table


#: reset mechanisms of the LIF and synaptic neuron fns (snnTorch's ``reset_mechanism``)
NEURON_RESETS = ("subtract", "zero", "none")
#: digital primitives of a ``neuron`` op by its fn, ``NEURON_EVENTS[fn](N, S)`` (N neuron updates, S spikes);
#: see ``_neuron_table`` for each line. A plug-in neuron adds its own entry
NEURON_EVENTS: dict[str, Callable[[float, float], dict[str, float]]] = _neuron_table()
#: the fn of a ``neuron`` op that names none: snnTorch's default ``Leaky`` (subtractive reset)
DEFAULT_NEURON = "lif_subtract"


def neuron_events(op) -> dict[str, float]:
    """Digital primitives of a ``neuron`` op per inference: ``NEURON_EVENTS[op.fn]`` for N = ``op.elements``
    neuron updates (neurons x time steps) and S = ``op.activity`` x N spikes (the measured spike rate: spikes
    per neuron-step). ``activity`` None counts a spike at every update, an upper bound of the spike-dependent
    part. An unknown fn is an ``InputError`` listing the known ones."""
    fn = op.fn or DEFAULT_NEURON
    if fn not in NEURON_EVENTS:
        raise InputError(
            f"neuron op '{op.name}': fn = {short_repr(op.fn)} is no neuron update the cost model counts; "
            f"known: {', '.join(NEURON_EVENTS)} (add one to cimkit.workload.registry.NEURON_EVENTS)"
        )
    rate = 1.0 if op.activity is None else float(op.activity)
    n = float(op.elements)
    return {k: float(v) for k, v in NEURON_EVENTS[fn](n, rate * n).items() if v}


# "neuron" runs on the digital unit by default: a spiking neuron is a few adds, multiplies and one compare per
# update on a register of state per neuron, which is what the digital unit prices from primitive counts
# (Horowitz figures at digital.data_bits); a chip with dedicated (e.g. analog) neuron circuits registers a unit
# type and a cost component for them and routes "neuron" there (spec.routing)
register_kind(
    "neuron",
    default_unit="digital",
    events=neuron_events,
    description="spiking neuron updates (neurons x time steps in `elements`; fn names the update: "
    "lif_<reset>[_adaptive], synaptic_<reset>[_adaptive], fang; activity = spikes per "
    "neuron-step)",
)


# ---- op rules (frontend matchers) ----------------------------------------------------------------------
@dataclass(frozen=True)
class Arg:
    """A tensor argument as the rules see it: its full shape (batch dim included) and whether it is a
    constant (a parameter, a buffer, or computed from constants only)."""

    shape: tuple[int, ...]
    const: bool = False


@dataclass(frozen=True)
class OpRule:
    """How one (kind, fn) is recognised by each frontend.

    ``handler`` says which frontend routine builds the op: "digital" (element-wise, softmax, norm, pool:
    the generic shape rule ``digital_op``), "linear", "conv", "matmul", "addmm", "einsum", "embedding",
    "attention" (a module or function expanded into several ops by ``expand``), "gemm" (ONNX).
    ``module_params(module)``, ``call_params(args, kwargs)`` (tensors given as ``Arg``) and
    ``onnx_params(attrs, inputs)`` return the rule's parameters, e.g. {"dim": -1} for a softmax or
    {"normalized": 1} (trailing dims normalized) for a LayerNorm; ``reduce(params, x_shape)`` turns them
    into ``Op.reduce``."""

    kind: str
    fn: str
    handler: str = "digital"
    modules: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    onnx: tuple[str, ...] = ()
    module_params: Callable[[Any], dict] | None = None
    call_params: Callable[[tuple, dict], dict] | None = None
    onnx_params: Callable[[dict, list], dict] | None = None
    reduce: Callable[[dict, tuple], int] | None = None
    expand: Callable[..., list] | None = None
    #: binary arithmetic with a constant operand (a bias add, a scale) is folded into the op that
    #: produced the other operand, not listed; for sub and div only with the activation first (x - c,
    #: x / c): c - x is listed as a sub, c / x as a "reciprocal" (every frontend; ``REVERSED`` names the
    #: reflected operators), and c ** x (pow with the activation as the exponent) as an "exp"
    fold_constant: bool = False

    def __post_init__(self) -> None:
        if self.handler == "attention" and self.expand is None:
            raise InputError(f"op rule '{self.kind}:{self.fn}': the attention handler needs an expand function")


OP_RULES: Registry[OpRule] = Registry("op rule")
_VERSION = [0]


def register_op(kind: str, fn: str, *, replace: bool = False, **fields) -> OpRule:
    """Register how the frontends recognise ``kind`` / ``fn`` (see ``OpRule``); the kind must be
    registered. One rule per (kind, fn); each construct (module type, function, method, ONNX type)
    may be claimed by one rule only."""
    kind_info(kind)  # an unknown kind is an InputError listing the kinds
    rule = OpRule(kind, fn, **fields)
    name = f"{kind}:{fn}"
    for other_name in OP_RULES.names():
        other = OP_RULES.get(other_name)
        if other_name == name:
            continue
        for attr in ("modules", "functions", "methods", "onnx"):
            clash = set(getattr(rule, attr)) & set(getattr(other, attr))
            if clash and not replace:
                raise InputError(f"op rule {name!r}: {attr} {sorted(clash)} already belong to op rule {other_name!r}")
    OP_RULES.register(name, rule, replace=replace)
    _VERSION[0] += 1
    return rule


def op_rules() -> tuple[OpRule, ...]:
    """The registered ``OpRule``s, in registration order."""
    return tuple(OP_RULES.get(n) for n in OP_RULES.names())


def rules_version() -> int:
    """Changes whenever a rule is registered (frontends cache their lookup tables on it)."""
    return _VERSION[0]


# ---- constructs that only move data (not ops) -------------------------------------------------------
DATA_FUNCTIONS = frozenset(
    {
        "torch.cat",
        "torch.concat",
        "torch.concatenate",
        "torch.stack",
        "torch.flatten",
        "torch.reshape",
        "torch.transpose",
        "torch.permute",
        "torch.squeeze",
        "torch.unsqueeze",
        "torch.chunk",
        "torch.split",
        "torch.unbind",
        "torch.narrow",
        "torch.select",
        "torch.index_select",
        "torch.gather",
        "torch.roll",
        "torch.flip",
        "torch.tile",
        "torch.repeat_interleave",
        "torch.movedim",
        "torch.swapaxes",
        "torch.t",
        "torch.nn.functional.pad",
        "torch.nn.functional.dropout",
        "torch.nn.functional.dropout1d",
        "torch.nn.functional.dropout2d",
        "torch.nn.functional.dropout3d",
        "torch.nn.functional.alpha_dropout",
        "torch.dropout",
        "torch.zeros_like",
        "torch.ones_like",
        "torch.full_like",
        "torch.empty_like",
        "torch.clone",
        "torch.detach",
        "torch.broadcast_to",
        "torch.masked_fill",
        "torch.tensor_split",
        "torch.atleast_1d",
        "torch.atleast_2d",
        "torch.zeros",
        "torch.ones",
        "torch.full",
        "torch.empty",
        "torch.arange",
        "torch.tensor",
        "torch.as_tensor",
        "torch.is_floating_point",
        "torch.is_tensor",
        "torch.numel",
        "torch.finfo",
        "torch.iinfo",
        "torch._assert",
        "torch.nn.functional.unfold",
        "operator.getitem",
        "operator.setitem",
        "builtins.getattr",
        "builtins.len",
    }
)
#: binary operators whose first argument (``self``) is the right operand: ``2.0 - x`` is ``x.__rsub__(2.0)``
REVERSED = frozenset({"__rsub__", "__rtruediv__", "__rdiv__", "__rpow__", "__rfloordiv__", "__rmod__", "torch.rsub"})
#: torch.nn modules that move data (or do nothing at inference): not ops
DATA_MODULES = frozenset(
    {
        "torch.nn.Flatten",
        "torch.nn.Unflatten",
        "torch.nn.Identity",
        "torch.nn.Dropout",
        "torch.nn.Dropout1d",
        "torch.nn.Dropout2d",
        "torch.nn.Dropout3d",
        "torch.nn.AlphaDropout",
        "torch.nn.FeatureAlphaDropout",
        "torch.nn.ZeroPad1d",
        "torch.nn.ZeroPad2d",
        "torch.nn.ZeroPad3d",
        "torch.nn.ConstantPad1d",
        "torch.nn.ConstantPad2d",
        "torch.nn.ConstantPad3d",
        "torch.nn.ReflectionPad1d",
        "torch.nn.ReflectionPad2d",
        "torch.nn.ReflectionPad3d",
        "torch.nn.ReplicationPad1d",
        "torch.nn.ReplicationPad2d",
        "torch.nn.ReplicationPad3d",
        "torch.nn.PixelShuffle",
        "torch.nn.PixelUnshuffle",
        "torch.nn.ChannelShuffle",
    }
)
DATA_METHODS = frozenset(
    {
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "permute",
        "transpose",
        "t",
        "flatten",
        "unflatten",
        "unsqueeze",
        "squeeze",
        "contiguous",
        "expand",
        "expand_as",
        "repeat",
        "to",
        "type",
        "type_as",
        "float",
        "half",
        "double",
        "bfloat16",
        "int",
        "long",
        "bool",
        "__getitem__",
        "__setitem__",
        "size",
        "dim",
        "ndimension",
        "numel",
        "chunk",
        "split",
        "unbind",
        "narrow",
        "select",
        "index_select",
        "gather",
        "masked_fill",
        "masked_fill_",
        "clone",
        "detach",
        "detach_",
        "cpu",
        "cuda",
        "new_zeros",
        "new_ones",
        "new_empty",
        "new_full",
        "new_tensor",
        "zero_",
        "fill_",
        "copy_",
        "__len__",
        "__bool__",
        "__index__",
        "__int__",
        "__float__",
        "item",
        "tolist",
        "numpy",
        "requires_grad_",
        "is_floating_point",
        "is_contiguous",
        "get_device",
        "element_size",
        "dim_order",
        "data_ptr",
        "storage_offset",
        "stride",
        "movedim",
        "swapaxes",
        "roll",
        "flip",
        "tile",
        "repeat_interleave",
        "__iter__",
        "__format__",
        "__repr__",
        "__hash__",
        "__eq_ne__",
        "__contains__",
        "__reduce_ex__",
        "__deepcopy__",
        "__get__",
        "__set__",
        "__array__",
        "is_nested",
        "untyped_storage",
        "_is_view",
        "__torch_function__",
        "unfold",
        "as_strided",
        "squeeze_",
        "unsqueeze_",
        "resize_",
        "set_",
        "pin_memory",
    }
)
DATA_ONNX = frozenset(
    {
        "Identity",
        "Reshape",
        "Flatten",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Cast",
        "CastLike",
        "Dropout",
        "Shape",
        "Size",
        "GatherElements",
        "GatherND",
        "Concat",
        "Slice",
        "Split",
        "Expand",
        "Tile",
        "Pad",
        "ConstantOfShape",
        "DepthToSpace",
        "SpaceToDepth",
        "QuantizeLinear",
        "DequantizeLinear",
        "Range",
        "Trilu",
        "ScatterND",
        "ScatterElements",
        "Gather",
        "CumSum",
        "TopK",
        "ArgMax",
        "ArgMin",
        "NonZero",
        "EyeLike",
        "SplitToSequence",
        "SequenceAt",
        "SequenceConstruct",
        "ConcatFromSequence",
        "OneHot",
        "Compress",
    }
)


# ---- the shape rules ---------------------------------------------------------------------------------
def per_inference(shape) -> tuple[int, ...]:
    """An activation's shape without the batch dim (the frontends run batch 1): a leading 1 is dropped;
    a leading size that is not 1 (batch x heads after a reshape) is kept."""
    shape = tuple(int(d) for d in shape)
    return shape[1:] if shape and shape[0] == 1 else shape


def digital_op(name: str, rule: OpRule, x_shape, y_shape, params: Mapping | None = None):
    """The op of a digital rule from its first activation input ``x_shape`` and output ``y_shape``
    (full shapes, batch 1): elements = output size; reduce from the rule's parameters."""
    from .core import Op

    x, y = tuple(x_shape or y_shape or ()), tuple(y_shape or ())
    reduce = 0
    if rule.reduce is not None:
        reduce = int(rule.reduce(dict(params or {}), x) or 0)
    fn = (params or {}).get("fn") or rule.fn
    return Op(
        name,
        rule.kind,
        in_shape=per_inference(x),
        out_shape=per_inference(y),
        elements=math.prod(y) if y else 1,
        fn=fn,
        reduce=reduce,
    )


def linear_op(name: str, in_f: int, out_f: int, x_shape, y_shape, vectors: int | None = None, groups: int = 1):
    """A static-weight product: ``vectors`` rows (default: every dim of ``x`` but the last) of ``in_f``;
    ``groups`` independent weight matrices (e.g. one per head), each on ``vectors`` rows."""
    from .core import Op

    x = tuple(x_shape)
    if vectors is None:
        vectors = math.prod(x[:-1]) if len(x) > 1 else 1
    return Op(
        name,
        "linear",
        int(in_f),
        int(out_f),
        int(groups),
        (1, 1),
        (1, 1),
        per_inference(x),
        per_inference(y_shape),
        int(vectors),
        int(groups) * int(vectors) * int(in_f) * int(out_f),
        fn="linear",
    )


def conv_op(name: str, weight_shape, groups: int, stride, in_shape, out_shape):
    """A 1-D or 2-D convolution from its weight shape (C_out, C_in/groups, [kh,] kw) and its full input and
    output shapes (batch 1): unrolled to (C_in/groups * kh * kw) x (C_out/groups) per group, one input
    vector per output position."""
    from .core import Op

    k = tuple(weight_shape[2:]) if len(weight_shape) == 4 else (1, weight_shape[2])
    stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride,)
    s = stride if len(stride) == 2 else (1, stride[0]) if len(weight_shape) == 3 else (stride[0], stride[0])
    in_f = weight_shape[1] * k[0] * k[1]
    out_f = weight_shape[0] // groups
    vectors = math.prod(out_shape[2:])
    return Op(
        name,
        "conv",
        in_f,
        out_f,
        groups,
        k,
        s,
        tuple(in_shape[1:]),
        tuple(out_shape[1:]),
        vectors,
        vectors * in_f * out_f * groups,
        fn="conv",
    )


def einsum_linear(name: str, dims: tuple, const_first: bool, x_shape, y_shape):
    """The static product of an einsum with a constant operand, from ``einsum_operands``' (groups, free_a,
    contracted, free_b): the constant holds ``groups`` matrices of contracted x free (its batch dims are
    shared with the activation, so each is its own matrix) and the activation's free dims are the vectors.
    Constant second (x @ W): out = free_b, vectors = free_a; constant first (W @ x): out = free_a, vectors = free_b."""
    g, free_a, k, free_b = dims
    n, vectors = (free_a, free_b) if const_first else (free_b, free_a)
    return linear_op(name, k, n, x_shape, y_shape, vectors, groups=g)


def matmul_op(name: str, groups: int, vectors: int, in_f: int, out_f: int):
    """A product of two activations: ``groups`` independent (vectors x in_f) @ (in_f x out_f) products."""
    from .core import Op

    g, m, k, n = (int(v) for v in (groups, vectors, in_f, out_f))
    lead = (g,) if g != 1 else ()
    return Op(
        name,
        "matmul",
        k,
        n,
        g,
        in_shape=(*lead, m, k),
        out_shape=(*lead, m, n),
        vectors=m,
        macs=g * m * k * n,
        fn="matmul",
    )


def batched_matmul(name: str, a, b, y):
    """``a @ b`` with numpy/torch broadcasting (1-D operands promoted), as a matmul op."""
    a, b = tuple(a), tuple(b)
    k = a[-1]
    m = a[-2] if len(a) >= 2 else 1
    n = b[-1] if len(b) >= 2 else 1
    y = tuple(y)
    batch_dims = y[:-2] if len(a) >= 2 and len(b) >= 2 else y[:-1] if len(a) >= 2 or len(b) >= 2 else ()
    return matmul_op(name, math.prod(batch_dims) if batch_dims else 1, m, k, n)


def embedding_op(name: str, rows: int, dim: int, idx_shape, y_shape):
    from .core import Op

    tokens = math.prod(idx_shape) if idx_shape else 1
    return Op(
        name,
        "embedding",
        int(rows),
        int(dim),
        in_shape=per_inference(idx_shape),
        out_shape=per_inference(y_shape),
        vectors=int(tokens),
        elements=math.prod(y_shape) if y_shape else int(dim),
        fn="embedding",
    )


def einsum_operands(equation: str, shapes: list[tuple[int, ...]]):
    """(groups, vectors, in, out) if ``equation`` with these operand shapes is one batched matrix product
    of two operands (batch dims on both, one contracted set, free dims on each side), else None."""
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq or len(shapes) != 2:
        return None
    lhs, out = eq.split("->")
    terms = lhs.split(",")
    if len(terms) != 2 or any(len(t) != len(s) for t, s in zip(terms, shapes)):
        return None
    size: dict[str, int] = {}
    for t, s in zip(terms, shapes):
        for c, d in zip(t, s):
            if size.setdefault(c, d) != d and 1 not in (d, size[c]):
                return None
            size[c] = max(size[c], d)
    a, b = set(terms[0]), set(terms[1])
    o = set(out)
    batch = a & b & o
    contracted = (a & b) - o
    free_a, free_b = (a - b) & o, (b - a) & o
    if (a | b) - o - contracted:  # a summed-out dim of one operand only: not a plain product
        return None
    prod = lambda cs: math.prod(size[c] for c in cs) if cs else 1  # noqa: E731
    return prod(batch), prod(free_a), prod(contracted), prod(free_b)


# ---- parameter readers -------------------------------------------------------------------------------
def _arg(args: tuple, kwargs: dict, index: int, key: str, default=None):
    return args[index] if len(args) > index else kwargs.get(key, default)


def _axis_size(x: tuple, axis) -> int:
    if not x:
        return 1
    try:
        return int(x[int(axis)])
    except (TypeError, ValueError, IndexError):
        return int(x[-1])


def _softmax_reduce(p: dict, x: tuple) -> int:
    return _axis_size(x, p.get("dim", -1) if p.get("dim") is not None else -1)


def _layer_reduce(p: dict, x: tuple) -> int:
    n = p.get("normalized")
    if isinstance(n, int):  # the number of trailing dims normalized
        return math.prod(x[len(x) - n :]) if x and n > 0 else 1
    if isinstance(n, (tuple, list)):
        return math.prod(int(d) for d in n) if n else 1
    return int(x[-1]) if x else 1


def _group_reduce(p: dict, x: tuple) -> int:
    if len(x) < 2:
        return 1
    groups = max(int(p.get("groups", 1) or 1), 1)
    return x[1] // groups * math.prod(x[2:])


def _onnx_layer_reduce(attrs: dict, inputs: list) -> dict:
    x = inputs[0].shape if inputs else ()
    axis = int(attrs.get("axis", -1))
    axis = axis + len(x) if axis < 0 else axis
    return {"normalized": max(len(x) - axis, 0)}


def _mvn_reduce(p: dict, x: tuple) -> int:
    """MeanVarianceNormalization: the product of the normalized axes (ONNX default 0, 2, 3)."""
    axes = [int(a) + len(x) if int(a) < 0 else int(a) for a in p.get("axes", (0, 2, 3))]
    return math.prod(x[a] for a in axes if 0 <= a < len(x)) if x else 1


def _softmax_module(m) -> dict:
    return {"dim": getattr(m, "dim", None)}


def _softmax_call(args, kwargs) -> dict:
    return {"dim": _arg(args, kwargs, 1, "dim")}


_SOFTMAX = dict(
    module_params=_softmax_module,
    call_params=_softmax_call,
    onnx_params=lambda a, i: {"dim": a.get("axis", -1)},
    reduce=_softmax_reduce,
)
_LAYER = dict(
    module_params=lambda m: {"normalized": tuple(getattr(m, "normalized_shape", ()) or ())},
    call_params=lambda args, kwargs: {"normalized": tuple(_arg(args, kwargs, 1, "normalized_shape", ()) or ())},
    onnx_params=_onnx_layer_reduce,
    reduce=_layer_reduce,
)
_ONE = dict(reduce=lambda p, x: 1)


def _gelu_fn(approximate) -> str:
    return "gelu_tanh" if str(approximate) == "tanh" else "gelu"


def _builtin_rules() -> None:
    from . import attention

    nn, F = "torch.nn.", "torch.nn.functional."
    ops: list[tuple[str, str, dict]] = [
        (
            "linear",
            "linear",
            dict(handler="linear", modules=(nn + "Linear",), functions=(F + "linear",), onnx=("Gemm",)),
        ),
        (
            "conv",
            "conv",
            dict(
                handler="conv",
                modules=(nn + "Conv1d", nn + "Conv2d"),
                functions=(F + "conv1d", F + "conv2d", "torch.conv1d", "torch.conv2d"),
                onnx=("Conv",),
            ),
        ),
        (
            "matmul",
            "matmul",
            dict(
                handler="matmul",
                functions=("torch.matmul", "torch.bmm", "torch.mm", "operator.matmul"),
                methods=("matmul", "bmm", "mm", "__matmul__", "__rmatmul__"),
                onnx=("MatMul",),
            ),
        ),
        ("matmul", "einsum", dict(handler="einsum", functions=("torch.einsum",), onnx=("Einsum",))),
        # bias + mat1 @ mat2 (GPT-2's Conv1D: addmm(bias, x, W) with W of in x out): the product as a matmul
        # (a linear op where an operand is a parameter), the bias folded (a constant) or listed as an add
        (
            "matmul",
            "addmm",
            dict(handler="addmm", functions=("torch.addmm", "torch.baddbmm"), methods=("addmm", "baddbmm")),
        ),
        (
            "matmul",
            "attention",
            dict(
                handler="attention",
                modules=(nn + "MultiheadAttention",),
                functions=(F + "scaled_dot_product_attention",),
                expand=attention.expand_attention,
            ),
        ),
        (
            "matmul",
            "encoder_layer",
            dict(handler="attention", modules=(nn + "TransformerEncoderLayer",), expand=attention.expand_encoder_layer),
        ),
        (
            "embedding",
            "embedding",
            dict(handler="embedding", modules=(nn + "Embedding",), functions=(F + "embedding",), onnx=("Gather",)),
        ),
        (
            "softmax",
            "softmax",
            dict(
                modules=(nn + "Softmax",),
                functions=(F + "softmax", "torch.softmax"),
                methods=("softmax",),
                onnx=("Softmax",),
                **_SOFTMAX,
            ),
        ),
        (
            "softmax",
            "log_softmax",
            dict(
                modules=(nn + "LogSoftmax",),
                functions=(F + "log_softmax", "torch.log_softmax"),
                methods=("log_softmax",),
                onnx=("LogSoftmax",),
                **_SOFTMAX,
            ),
        ),
        ("softmax", "softmin", dict(modules=(nn + "Softmin",), functions=(F + "softmin",), **_SOFTMAX)),
        (
            "norm",
            "layer_norm",
            dict(
                modules=(nn + "LayerNorm",),
                functions=(F + "layer_norm", "torch.layer_norm"),
                onnx=("LayerNormalization",),
                **_LAYER,
            ),
        ),
        (
            "norm",
            "rms_norm",
            dict(
                modules=(nn + "RMSNorm",),
                functions=(F + "rms_norm", "torch.rms_norm"),
                onnx=("RMSNormalization", "SimplifiedLayerNormalization"),
                **_LAYER,
            ),
        ),
        (
            "norm",
            "batch_norm",
            dict(
                modules=(nn + "BatchNorm1d", nn + "BatchNorm2d", nn + "BatchNorm3d"),
                functions=(F + "batch_norm", "torch.batch_norm"),
                onnx=("BatchNormalization",),
                **_ONE,
            ),
        ),
        (
            "norm",
            "group_norm",
            dict(
                modules=(nn + "GroupNorm",),
                functions=(F + "group_norm", "torch.group_norm"),
                onnx=("GroupNormalization",),
                reduce=_group_reduce,
                module_params=lambda m: {"groups": m.num_groups},
                call_params=lambda a, k: {"groups": _arg(a, k, 1, "num_groups", 1)},
                onnx_params=lambda a, i: {"groups": a.get("num_groups", 1)},
            ),
        ),
        (
            "norm",
            "instance_norm",
            dict(
                modules=(nn + "InstanceNorm1d", nn + "InstanceNorm2d", nn + "InstanceNorm3d"),
                functions=(F + "instance_norm",),
                onnx=("InstanceNormalization",),
                reduce=lambda p, x: math.prod(x[2:]) if len(x) > 2 else 1,
            ),
        ),
        (
            "norm",
            "local_response_norm",
            dict(modules=(nn + "LocalResponseNorm",), functions=(F + "local_response_norm",), onnx=("LRN",), **_ONE),
        ),
        (
            "norm",
            "mean_variance_norm",
            dict(
                onnx=("MeanVarianceNormalization",),
                reduce=_mvn_reduce,
                onnx_params=lambda a, i: {"axes": tuple(a.get("axes", (0, 2, 3)))},
            ),
        ),
        (
            "norm",
            "lp_normalize",
            dict(
                functions=(F + "normalize",),
                onnx=("LpNormalization",),
                reduce=lambda p, x: _axis_size(x, p.get("dim", -1)),
                call_params=lambda a, k: {"dim": _arg(a, k, 2, "dim", 1)},
                onnx_params=lambda a, i: {"dim": a.get("axis", -1)},
            ),
        ),
        (
            "pool",
            "max_pool",
            dict(
                modules=tuple(nn + f"{p}MaxPool{d}d" for p in ("", "Adaptive") for d in (1, 2, 3)),
                functions=tuple(F + f"{p}max_pool{d}d" for p in ("", "adaptive_") for d in (1, 2, 3)),
                onnx=("MaxPool", "GlobalMaxPool"),
            ),
        ),
        (
            "pool",
            "avg_pool",
            dict(
                modules=tuple(nn + f"{p}AvgPool{d}d" for p in ("", "Adaptive") for d in (1, 2, 3)),
                functions=tuple(F + f"{p}avg_pool{d}d" for p in ("", "adaptive_") for d in (1, 2, 3)),
                onnx=("AveragePool", "GlobalAveragePool"),
            ),
        ),
        (
            "pool",
            "lp_pool",
            dict(
                modules=(nn + "LPPool1d", nn + "LPPool2d"),
                functions=(F + "lp_pool1d", F + "lp_pool2d"),
                onnx=("LpPool", "GlobalLpPool"),
            ),
        ),
        (
            "pool",
            "interpolate",
            dict(
                modules=(nn + "Upsample", nn + "UpsamplingNearest2d", nn + "UpsamplingBilinear2d"),
                functions=(F + "interpolate", F + "upsample", F + "upsample_nearest", F + "upsample_bilinear"),
                onnx=("Resize", "Upsample"),
            ),
        ),
        ("pool", "sum", dict(functions=("torch.sum",), methods=("sum",), onnx=("ReduceSum",))),
        ("pool", "mean", dict(functions=("torch.mean",), methods=("mean",), onnx=("ReduceMean",))),
        ("pool", "reduce_max", dict(functions=("torch.amax",), methods=("amax",), onnx=("ReduceMax",))),
        ("pool", "reduce_min", dict(functions=("torch.amin",), methods=("amin",), onnx=("ReduceMin",))),
        (
            "act",
            "relu",
            dict(
                modules=(nn + "ReLU",),
                functions=(F + "relu", "torch.relu", F + "relu_", "torch.relu_"),
                methods=("relu", "relu_"),
                onnx=("Relu",),
            ),
        ),
        ("act", "relu6", dict(modules=(nn + "ReLU6",), functions=(F + "relu6",))),
        (
            "act",
            "hardtanh",
            dict(
                modules=(nn + "Hardtanh",),
                functions=(F + "hardtanh", "torch.clamp", "torch.clip"),
                methods=("clamp", "clip", "clamp_"),
                onnx=("Clip",),
            ),
        ),
        ("act", "gelu", dict(modules=(nn + "GELU",), functions=(F + "gelu",), onnx=("Gelu",))),
        ("act", "silu", dict(modules=(nn + "SiLU",), functions=(F + "silu",), onnx=("Swish",))),
        (
            "act",
            "sigmoid",
            dict(
                modules=(nn + "Sigmoid",),
                functions=("torch.sigmoid", F + "sigmoid"),
                methods=("sigmoid",),
                onnx=("Sigmoid",),
            ),
        ),
        (
            "act",
            "tanh",
            dict(modules=(nn + "Tanh",), functions=("torch.tanh", F + "tanh"), methods=("tanh",), onnx=("Tanh",)),
        ),
        ("act", "leaky_relu", dict(modules=(nn + "LeakyReLU",), functions=(F + "leaky_relu",), onnx=("LeakyRelu",))),
        ("act", "prelu", dict(modules=(nn + "PReLU",), functions=(F + "prelu",), onnx=("PRelu",))),
        ("act", "elu", dict(modules=(nn + "ELU",), functions=(F + "elu",), onnx=("Elu",))),
        ("act", "selu", dict(modules=(nn + "SELU",), functions=(F + "selu",), onnx=("Selu",))),
        ("act", "celu", dict(modules=(nn + "CELU",), functions=(F + "celu",), onnx=("Celu",))),
        ("act", "mish", dict(modules=(nn + "Mish",), functions=(F + "mish",), onnx=("Mish",))),
        ("act", "softplus", dict(modules=(nn + "Softplus",), functions=(F + "softplus",), onnx=("Softplus",))),
        ("act", "softsign", dict(modules=(nn + "Softsign",), functions=(F + "softsign",), onnx=("Softsign",))),
        ("act", "hardswish", dict(modules=(nn + "Hardswish",), functions=(F + "hardswish",), onnx=("HardSwish",))),
        (
            "act",
            "hardsigmoid",
            dict(modules=(nn + "Hardsigmoid",), functions=(F + "hardsigmoid",), onnx=("HardSigmoid",)),
        ),
        ("act", "logsigmoid", dict(modules=(nn + "LogSigmoid",), functions=(F + "logsigmoid",))),
        ("act", "tanhshrink", dict(modules=(nn + "Tanhshrink",), functions=(F + "tanhshrink",))),
        (
            "act",
            "threshold",
            dict(modules=(nn + "Threshold",), functions=(F + "threshold",), onnx=("ThresholdedRelu",)),
        ),
        ("act", "glu", dict(modules=(nn + "GLU",), functions=(F + "glu",))),
        ("act", "hardshrink", dict(modules=(nn + "Hardshrink",), functions=(F + "hardshrink",), onnx=("Shrink",))),
        ("act", "softshrink", dict(modules=(nn + "Softshrink",), functions=(F + "softshrink",))),
        ("act", "erf", dict(functions=("torch.erf", "torch.special.erf"), methods=("erf",), onnx=("Erf",))),
        (
            "eltwise",
            "add",
            dict(
                functions=("operator.add", "operator.iadd", "torch.add"),
                methods=("add", "add_", "__add__", "__iadd__", "__radd__"),
                onnx=("Add", "Sum"),
                fold_constant=True,
            ),
        ),
        (
            "eltwise",
            "sub",
            dict(
                functions=("operator.sub", "operator.isub", "torch.sub", "torch.subtract", "torch.rsub"),
                methods=("sub", "sub_", "__sub__", "__isub__", "__rsub__"),
                onnx=("Sub",),
                fold_constant=True,
            ),
        ),
        (
            "eltwise",
            "mul",
            dict(
                functions=("operator.mul", "operator.imul", "torch.mul", "torch.multiply"),
                methods=("mul", "mul_", "__mul__", "__imul__", "__rmul__"),
                onnx=("Mul",),
                fold_constant=True,
            ),
        ),
        (
            "eltwise",
            "div",
            dict(
                functions=("operator.truediv", "operator.itruediv", "torch.div", "torch.divide", "torch.true_divide"),
                methods=("div", "div_", "__truediv__", "__itruediv__"),
                onnx=("Div",),
                fold_constant=True,
            ),
        ),
        (
            "eltwise",
            "reciprocal",
            dict(
                functions=("torch.reciprocal",),
                methods=("reciprocal", "reciprocal_", "__rtruediv__", "__rdiv__"),
                onnx=("Reciprocal",),
            ),
        ),
        (
            "eltwise",
            "pow",
            dict(
                functions=("operator.pow", "torch.pow", "torch.square"),
                methods=("pow", "pow_", "__pow__", "__ipow__", "__rpow__", "square"),
                onnx=("Pow",),
            ),
        ),
        ("eltwise", "sqrt", dict(functions=("torch.sqrt",), methods=("sqrt",), onnx=("Sqrt",))),
        ("eltwise", "rsqrt", dict(functions=("torch.rsqrt",), methods=("rsqrt",))),
        ("eltwise", "exp", dict(functions=("torch.exp",), methods=("exp",), onnx=("Exp",))),
        ("eltwise", "log", dict(functions=("torch.log",), methods=("log",), onnx=("Log",))),
        ("eltwise", "neg", dict(functions=("operator.neg", "torch.neg"), methods=("neg", "__neg__"), onnx=("Neg",))),
        (
            "eltwise",
            "abs",
            dict(functions=("torch.abs", "operator.abs", "builtins.abs"), methods=("abs", "__abs__"), onnx=("Abs",)),
        ),
        ("eltwise", "max", dict(functions=("torch.maximum",), methods=("maximum",), onnx=("Max",))),
        ("eltwise", "min", dict(functions=("torch.minimum",), methods=("minimum",), onnx=("Min",))),
        (
            "eltwise",
            "cmp",
            dict(
                functions=tuple(f"operator.{c}" for c in ("gt", "lt", "ge", "le", "eq", "ne"))
                + tuple(f"torch.{c}" for c in ("gt", "lt", "ge", "le", "eq", "ne")),
                methods=tuple(f"__{c}__" for c in ("gt", "lt", "ge", "le", "eq", "ne"))
                + ("gt", "lt", "ge", "le", "eq", "ne"),
                onnx=("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"),
            ),
        ),
        ("eltwise", "where", dict(functions=("torch.where",), methods=("where",), onnx=("Where",))),
    ]
    for kind, fn, spec in ops:
        if kind == "act" and fn == "gelu":
            spec = dict(
                spec,
                module_params=lambda m: {"fn": _gelu_fn(getattr(m, "approximate", "none"))},
                call_params=lambda a, k: {"fn": _gelu_fn(k.get("approximate", "none"))},
                onnx_params=lambda a, i: {"fn": _gelu_fn(a.get("approximate", "none"))},
            )
        register_op(kind, fn, **spec)


_builtin_rules()

__all__ = [
    "DIGITAL_PRIMITIVES",
    "EVENTS",
    "NEURON_EVENTS",
    "NEURON_RESETS",
    "neuron_events",
    "KindInfo",
    "OpRule",
    "Arg",
    "register_kind",
    "kind_info",
    "kinds",
    "register_op",
    "op_rules",
    "digital_events",
    "conv_op",
    "DATA_FUNCTIONS",
    "DATA_METHODS",
    "DATA_ONNX",
]
