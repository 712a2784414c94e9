"""Dynamic matmuls (both operands activations: attention's Q K^T and A V) on crossbars rewritten per input.

When a spec routes the ``matmul`` op kind to the ``crossbar`` unit (``routing: {matmul: crossbar}``), the
cost model prices each dynamic matmul as arrays written with its second operand at every input (cell writes,
endurance); the simulator then runs it the same way: ``A @ B`` writes ``B`` (K^T, V) into arrays, one
matrix per batch element and head, with the programming noise, stuck cells and weight quantization of a
programmed layer, and drives ``A`` (Q, the attention probabilities) through the DAC, read noise and ADCs of
the spec's periphery. Each write draws the next programming-noise sample, as writing the arrays anew would.

The products are found while the model runs (``convert`` enters a function mode around every forward):
``torch.matmul`` / ``@`` / ``torch.bmm`` / ``torch.baddbmm`` between two tensors that are not parameters,
and ``F.scaled_dot_product_attention``, expanded into its two products around a softmax (which the digital
unit's integer softmax then computes when the spec asks for one). Products inside crossbar layers and
products with a parameter operand (weights the converter left digital) are left alone; ``torch.einsum`` and
``torch.tensordot`` between two activations stay digital, with a warning that says so.

Each call site is a ``CIMDynamicMatmul`` layer, named by the module that makes the call and its call
index in that module's forward (``encoder.layer.0.attention.self.matmul0``), created at the first forward
that reaches it and kept under the model's ``cim_dynamic`` submodule. A site is a crossbar layer like any
other: ``calibrate`` sets its DAC and ADC ranges (from every call it sees), the stage hooks reach it, and its
random streams are seeded from the model seed and its name. Its operands are read right after they are
written (at the device's ``drift_t0_s``, whatever ``set_time`` says for the programmed weights), and it trains
by straight-through gradients only. The sites are found by call order within a forward, so a converted
model with dynamic matmuls runs one forward at a time (not from several threads at once).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InputError
from ..mapping import map_matrix
from ..spec import HardwareSpec
from .kernel import ChipProduct, run
from .layers import CIMLayer, layer_seed
from .layout import ConvLayout
from .tile import CrossbarTile

_MATMUL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__}
_BMM = {torch.bmm, torch.Tensor.bmm}
_MM = {torch.mm, torch.Tensor.mm}
_BADDBMM = {torch.baddbmm, torch.Tensor.baddbmm}
_ADDMM = {torch.addmm, torch.Tensor.addmm}
_LINEAR = {F.linear}
_MHA = {F.multi_head_attention_forward}
_SDPA = {F.scaled_dot_product_attention}
_UNSEEN = {torch.einsum: "torch.einsum", torch.tensordot: "torch.tensordot"}  # products not taken to arrays


def routes_matmul_to_crossbar(spec: HardwareSpec) -> bool:
    """Whether ``spec`` runs dynamic matmuls on its crossbars (rewritten per input)."""
    return spec.unit_for("matmul") == "crossbar"


def _layout(groups: int, k: int, n: int, spec: HardwareSpec, name: str):
    """Mapping and layout of ``groups`` independent (k x n) operands: a grouped 1x1 convolution whose
    "images" are the rows of ``A`` (one output position each).

    An operand shorter than an array (a head's 32 or 64 features on 256 rows) is simulated on its own rows
    only: the rows below it get no input, so they add neither current nor read noise, and leaving them out
    saves most of the work of writing and reading (8x for 32 of 256 rows). IR drop and the global drift
    compensation's read-out depend on the whole array, so with either the arrays keep all their rows."""
    mapping = map_matrix(k, n, spec, groups=groups, name=name)
    no_ir_drop = spec.array.ir_drop == "none" or spec.array.wire_resistance_ohm == 0
    whole_array_gain = spec.periphery.drift_compensation == "global"  # its read-out sums every row
    if no_ir_drop and not whole_array_gain and mapping.row_tiles == 1 and k < mapping.rows_per_tile:
        mapping = dataclasses.replace(mapping, rows_per_tile=k)
    layout = ConvLayout(
        mapping,
        kernel=(1, 1),
        stride=(1, 1),
        dilation=(1, 1),
        groups=groups,
        in_channels=groups * k,
        out_channels=groups * n,
        aligned=False,
        pre_pad=(0, 0, 0, 0),
        padding_mode="constant",
    )
    return mapping, layout


def _as_weight(b: torch.Tensor) -> torch.Tensor:
    """(G, K, N) operands as the grouped convolution's weight (G*N, K, 1, 1)."""
    g, k, n = b.shape
    return b.transpose(1, 2).reshape(g * n, k, 1, 1)


#: what a dynamic site keeps of its tile when saved: what it learned, not the operand it last held
_KEPT = ("input_range", "input_signed", "adc_full_scale", "inference_time_s", "program_index", "rng_state")


class _DynamicTile(CrossbarTile):
    """A tile whose cells hold an input: saved and loaded without them (and without their shape)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.rng_state[0], self.rng_state[1] = self.rng.seed, self.rng.draws
        for name in _KEPT:
            value = getattr(self, name)
            destination[prefix + name] = value if keep_vars else value.detach()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        for name in _KEPT:
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            mine, theirs = getattr(self, name), state_dict[key]
            if tuple(mine.shape) != tuple(theirs.shape):
                raise InputError(
                    f"{self.name}: saved {name} has shape {tuple(theirs.shape)}, this site's is "
                    f"{tuple(mine.shape)} (a chip with another spec)"
                )
            mine.copy_(theirs)
        if prefix + "rng_state" in state_dict:
            self.rng.draws = int(self.rng_state[1])
        self._consts = None
        self.rederive()


class CIMDynamicMatmul(CIMLayer):
    """One dynamic-matmul call site on crossbars: ``forward(a, b)`` is ``a @ b`` for (G, M, K) and (G, K, N)
    operands, ``b`` written into arrays at every call (each write the next programming-noise sample). The
    arrays are re-laid when the operands' shape changes (another batch or sequence length); the calibrated
    ranges, the time of reading and the positions of the random streams carry over. Nothing of the written
    operand is saved with the model (it is an input)."""

    tile_class = _DynamicTile
    writes_per_input = True
    #: an operand written per input has one way to be trained through: the ideal product's gradients
    backward_modes = ("straight_through",)

    def allowed(self, setting: str) -> tuple[str, ...]:
        """A site's only settings: straight-through gradients, a new programming-noise sample at every write
        (``per_step``), and a range that follows each operand (``dynamic``)."""
        return {"backward_mode": self.backward_modes, "program_noise": ("per_step",), "weight_range": ("dynamic",)}[
            setting
        ]

    def set_time(self, t_inference_s: float) -> None:
        """Nothing to do: the operands are written at every input and read right away (at the device's
        ``drift_t0_s``), whatever time the programmed weights are read at."""

    def __init__(self, b: torch.Tensor, spec: HardwareSpec, *, seed: int, name: str) -> None:
        g, k, n = b.shape
        mapping, layout = _layout(g, k, n, spec, name)
        super().__init__(_as_weight(b.detach().float()), None, spec, mapping, layout, seed=seed, name=name)
        weight = self.weight.detach()
        del self.weight  # the operand is an input, not a trainable weight of the model
        self.register_buffer("weight", weight, persistent=False)
        self.writes = 0  # since this object was made (the saved count of writes is ``tile.program_index``)
        self.tile.program_index.fill_(-1)  # the first write takes sample 0

    def _check_input(self, x):
        pass

    def _relayout(self, g: int, k: int, n: int) -> None:
        """New arrays for (g, k, n) operands; everything that is not the written operand carries over."""
        old = self.tile
        self.mapping, self.layout = _layout(g, k, n, self.spec, self.layer_name)
        tile = _DynamicTile(self.spec, self.mapping, seed=self.seed, name=self.layer_name)
        tile.to(old.g_programmed.device)
        for buf in _KEPT:
            getattr(tile, buf).copy_(getattr(old, buf))
        tile.rng.draws = old.rng.draws
        tile.calibrating, tile.stage_hooks = old.calibrating, old.stage_hooks
        self.tile = tile

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        g, m, k = a.shape
        n = b.shape[2]
        if (g, k, n) != (self.mapping.groups, self.mapping.in_features, self.mapping.out_features):
            self._relayout(g, k, n)
        w = _as_weight(b.float())
        if not bool(torch.isfinite(w).all()):
            raise InputError(f"{self.layer_name}: the operand to write has non-finite values (NaN or inf)")
        # (a view of the operand: the site holds it until the next write); a buffer here, a Parameter in CIMLayer
        self.weight = w.detach()  # type: ignore[assignment]
        self.tile.program(self.weight, next_sample=True)  # each write: the next programming-noise sample
        self.programmed_weight = self.weight
        self.writes += 1
        x = a.float().transpose(0, 1).reshape(m, g * k, 1, 1)  # row i of every group is "image" i
        if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
            y = ChipProduct.apply(x, w, None, self)
        else:
            with torch.no_grad():
                y = run(self.tile, self.layout, x)[0]
        return y.reshape(m, g, n).transpose(0, 1).to(a.dtype)

    def extra_repr(self) -> str:
        m = self.mapping
        return (
            f"{self.layer_name}: dynamic, {m.groups} operand(s) of {m.in_features}x{m.out_features} "
            f"written per input, {m.slices} slice(s), {self.writes} write(s)"
        )


class DynamicMatmuls(nn.Module):
    """The dynamic-matmul sites of a converted model (``model.cim_dynamic``), by name."""

    def __init__(self, spec: HardwareSpec, seed: int) -> None:
        super().__init__()
        self.spec, self.seed = spec, int(seed)
        self.sites = nn.ModuleDict()
        self.calls = 0  # products run on crossbars since conversion

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "/")  # ModuleDict keys cannot hold dots

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self.sites

    def site(self, name: str, b: torch.Tensor) -> CIMDynamicMatmul:
        key = self._key(name)
        if key in self.sites:
            return cast(CIMDynamicMatmul, self.sites[key])  # the sites hold only these
        layer = self.sites[key] = CIMDynamicMatmul(b, self.spec, seed=layer_seed(self.seed, name), name=name)
        return layer

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # sites appear at the first forward: a fresh model learns them from the saved ones (any shape)
        start = prefix + "sites."
        for key in state_dict:
            if key.startswith(start):
                site = key[len(start) :].split(".", 1)[0]
                if site not in self.sites:
                    self.site(site.replace("/", "."), torch.zeros(1, 1, 1))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def _operands(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
    """``a`` (..., M, K) and ``b`` (..., K, N) broadcast and flattened to (G, M, K), (G, K, N)."""
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = a.expand(*batch, *a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b3 = b.expand(*batch, *b.shape[-2:]).reshape(-1, *b.shape[-2:])
    return a3, b3, batch


def _weight_storages(model: nn.Module) -> set[int]:
    """Where the model's parameters and buffers live: a tensor sharing their storage (a view, a transpose,
    a tied weight) is a weight, not an operand to write per input. The dynamic sites' own buffers are left
    out: the operand a site last wrote may be a view of an activation whose memory the next forward reuses."""
    tensors = [
        t for name, t in (*model.named_parameters(), *model.named_buffers()) if not name.startswith("cim_dynamic.")
    ]
    return {t.untyped_storage().data_ptr() for t in tensors if t.numel()}


def _is_activation(t, weights: set[int] | frozenset[int] = frozenset()) -> bool:
    return (
        isinstance(t, torch.Tensor)
        and not isinstance(t, nn.Parameter)
        and t.is_floating_point()
        and t.dim() >= 2
        and t.untyped_storage().data_ptr() not in weights
    )


class _DynamicMatmulMode(TorchFunctionMode):
    def __init__(self, model: "_Tracked") -> None:
        super().__init__()
        self.model = model

    def _product(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        tracked = self.model
        path = tracked.path[-1]
        index = tracked.counts.get(path, 0)
        tracked.counts[path] = index + 1
        name = f"{path}.matmul{index}" if path else f"matmul{index}"
        if a.shape[-1] != b.shape[-2]:
            raise InputError(f"{name}: cannot multiply shapes {tuple(a.shape)} and {tuple(b.shape)}")
        if tracked.digital is not None:  # the digital unit's approximate arithmetic (cimkit.sim.digital)
            return tracked.digital(a, b)
        a3, b3, batch = _operands(a, b)
        assert tracked.container is not None  # attach() makes one whenever there is no digital product
        if name not in tracked.container and not bool(torch.isfinite(b).all()):  # a site's forward checks
            raise InputError(f"{name}: the operand to write has non-finite values (NaN or inf)")  # every later one
        site = tracked.container.site(name, b3)
        tracked.container.calls += 1
        out = site(a3, b3)
        return out.reshape(*batch, a.shape[-2], b.shape[-1])

    def _attention(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if enable_gqa and k.shape[-3] != q.shape[-3]:
            reps = q.shape[-3] // k.shape[-3]
            k, v = k.repeat_interleave(reps, -3), v.repeat_interleave(reps, -3)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        scores = self._product(q, k.transpose(-2, -1)) * scale
        lq, lk = q.shape[-2], k.shape[-2]
        if is_causal:
            keep = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        probs = torch.softmax(scores, dim=-1)  # through the integer softmax when the digital unit has one
        blocked = torch.isneginf(scores).all(dim=-1, keepdim=True)
        if bool(blocked.any()):  # a query that may attend to nothing gets zeros, as torch's sdpa gives it
            probs = probs.masked_fill(blocked, 0.0)
        if dropout_p > 0:
            probs = F.dropout(probs, dropout_p)
        return self._product(probs, v)

    def _bound(self, names: tuple[str, ...], args, kwargs) -> dict | None:
        bound = {**dict(zip(names, args)), **kwargs}
        return bound if set(bound) <= set(names) else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.model.inside_layer:
            return func(*args, **kwargs)
        act = lambda t: _is_activation(t, self.model.weights)  # noqa: E731
        if func in _MATMUL or func in _BMM or func in _MM:
            if len(args) == 2 and act(args[0]) and act(args[1]):
                if not kwargs and (func not in _BMM or args[0].dim() == 3):
                    return self._product(*args)
                self.model.warn_unseen(f"{getattr(func, '__name__', func)} with out=")
            elif (
                len(args) == 2
                and all(isinstance(a, torch.Tensor) and a.is_floating_point() and a.dim() >= 1 for a in args)
                and min(a.dim() for a in args) == 1
                and all(
                    a.untyped_storage().data_ptr() not in self.model.weights and not isinstance(a, nn.Parameter)
                    for a in args
                )
            ):
                self.model.warn_unseen("a matmul with a 1-d operand")
        elif func in _BADDBMM or func in _ADDMM:  # beta * input + alpha * (m1 @ m2)
            names = (
                ("input", "batch1", "batch2", "beta", "alpha")
                if func in _BADDBMM
                else ("input", "mat1", "mat2", "beta", "alpha")
            )
            bound = self._bound(names, args, kwargs)
            if bound is not None and act(bound[names[1]]) and act(bound[names[2]]):
                product = self._product(bound[names[1]], bound[names[2]]) * bound.get("alpha", 1)
                return bound.get("beta", 1) * bound["input"] + product
        elif func in _LINEAR:  # F.linear(a, b, bias) with an activation b: a @ b^T + bias
            bound = self._bound(("input", "weight", "bias"), args, kwargs)
            if bound is not None and act(bound["input"]) and act(bound["weight"]):
                out = self._product(bound["input"], bound["weight"].transpose(-1, -2))
                return out if bound.get("bias") is None else out + bound["bias"]
        elif func in _UNSEEN:
            operands = [a for a in (args[1:] if func is torch.einsum else args[:2]) if isinstance(a, torch.Tensor)]
            if len(operands) >= 2 and all(act(t) for t in operands):
                self.model.warn_unseen(_UNSEEN[func])
        elif func in _SDPA:
            q, k, v = args[:3]
            if all(act(t) for t in (q, k, v)):
                names = ("attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
                return self._attention(q, k, v, **dict(zip(names, args[3:])), **kwargs)
        elif func in _MHA:
            self.model.warn_unseen("F.multi_head_attention_forward (nn.MultiheadAttention's attention)")
        return func(*args, **kwargs)


class _Tracked:
    """Which module is running (for site names), and whether inside a crossbar layer (its own products are
    the arrays', not dynamic matmuls)."""

    def __init__(self, container: DynamicMatmuls | None, digital=None) -> None:
        self.container = container
        self.digital = digital  # a cimkit.sim.digital.DigitalProduct: products stay on the digital unit
        self.path: list[str] = [""]
        self.counts: dict[str, int] = {}
        self.inside_layer = 0
        self.warned: set[str] = set()
        self.weights: set[int] = set()
        self.root: nn.Module | None = None  # the converted model

    def warn_unseen(self, what: str) -> None:
        """Say once per function that a product of two activations it computes stays digital."""
        if what not in self.warned:
            self.warned.add(what)
            where = self.path[-1] or "the model"
            warnings.warn(
                f"{where}: {what} multiplies two activations; cimkit runs dynamic matmuls on crossbars "
                f"only through torch.matmul, @, torch.mm, torch.bmm, torch.addmm, torch.baddbmm, F.linear "
                f"and F.scaled_dot_product_attention between two matrices (no out=), so this product "
                f"stays digital",
                stacklevel=3,
            )

    def mode(self) -> "_DynamicMatmulMode":
        """The function mode for one forward of the model (call counts start anew; the model's weights are
        looked up anew, as a move to another device changes where they live)."""
        self.path, self.counts, self.inside_layer = [""], {}, 0
        self.weights = _weight_storages(self.root) if self.root is not None else set()
        return _DynamicMatmulMode(self)


class _PathHook:
    """Forward hooks that keep ``tracked.path`` (a callable object, not a closure: a deep copy of the model
    copies it with the model's own ``_Tracked``)."""

    def __init__(self, tracked: _Tracked, path: str) -> None:
        self.tracked, self.path = tracked, path

    def enter(self, module, args) -> None:
        self.tracked.path.append(self.path)
        if isinstance(module, CIMLayer):
            self.tracked.inside_layer += 1

    def leave(self, module, args, output) -> None:
        if len(self.tracked.path) > 1:
            self.tracked.path.pop()
        if isinstance(module, CIMLayer):
            self.tracked.inside_layer -= 1


def attach(model: nn.Module, spec: HardwareSpec, seed: int, digital=None) -> _Tracked:
    """Prepare ``model`` to run its dynamic matmuls on crossbars (see the module docstring): adds the
    ``cim_dynamic`` submodule and the hooks that track which module runs; the caller enters
    ``tracked.mode()`` around each forward. With ``digital`` (a ``cimkit.sim.digital.DigitalProduct``) the
    products stay on the digital unit and are computed by it (its approximate arithmetic); no submodule."""
    container = DynamicMatmuls(spec, seed) if digital is None else None
    tracked = _Tracked(container, digital)
    seen: set[int] = set()
    for path, module in model.named_modules():
        if module is not model and id(module) not in seen:  # a shared module: by its first name
            seen.add(id(module))
            hook = _PathHook(tracked, path)
            module.register_forward_pre_hook(hook.enter)
            module.register_forward_hook(hook.leave, always_call=True)
    if container is not None:
        model.cim_dynamic = container
    tracked.root = model
    return tracked
