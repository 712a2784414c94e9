"""Sharpness-aware training for chips whose weights are perturbed: SAM and HERO as torch optimizers, and the
largest Hessian eigenvalue of a loss (the sharpness both of them push down).

A crossbar never holds the trained weights exactly: they are quantized to a few bits and programmed with
noise. A network at a flat minimum (small Hessian eigenvalues) loses little under such a weight perturbation,
since the loss grows as ``0.5 * d^T H d`` for a perturbation ``d``. Two optimizers aim there:

* **SAM** (Foret et al., ICLR 2021; the adaptive form of Kwon et al., ICML 2021): the gradient is taken at
  the worst-case neighbour ``w + delta`` of the weights instead of at ``w``, with
  ``delta = rho * w**2 * g / || |w| * g ||`` (adaptive; ``rho * g / ||g||`` otherwise), ``g`` the gradient at
  ``w`` and the norm over all perturbed weights together. ``rho`` is then the size of the perturbation
  relative to the weights (``|| delta / |w| || = rho``), dimensionless.
* **HERO** (Yang, Yang, Gong and Chen, "HERO: Hessian-Enhanced Robust Optimization for Unifying and Improving
  Generalization and Quantization Performance", DAC 2022, arXiv:2111.11986): SAM plus ``lam`` times the
  squared change of the gradient over the perturbation, ``|| g(w + delta) - g(w) ||**2 ~ || H delta ||**2``,
  which penalizes the Hessian along the direction that hurts most. Its gradient,
  ``2 * lam * H(w + delta) (g(w + delta) - g(w))``, comes from a double backward (``create_graph=True``).

What exactly is minimized (it follows the authors' code, github.com/Xiaoxuan-Yang/HERO, ``cifar_hero.py``):
the update direction is the gradient, taken at ``w + delta`` with ``delta`` and ``g(w)`` held constant, of

    L(w + delta) + sum over perturbed tensors t of lam * reduce_t((g_t(w + delta) - g_t(w))**2)

where ``reduce`` is the mean over the tensor's elements (``penalty="mean"``, the authors' ``nn.MSELoss``, for
which their ``lam`` values are tuned) or the sum (``penalty="sum"``, the squared norm the paper writes). The
base optimizer (SGD, Adam, ...) then steps from the original ``w`` with that direction.

Which weights are perturbed: tensors of two or more dimensions (the weight matrices and kernels that go on
crossbars); biases and normalization weights (1-d) are neither perturbed nor in the penalty (their
direction is the gradient of the objective above with respect to them: the loss's at ``w + delta`` plus the
penalty's, which depends on them through the perturbed tensors' gradients). (The authors' code keeps biases and batch-norm weights out of the penalty
but perturbs every tensor; the perturbation here leaves 1-d tensors alone, as cimkit maps only the
multi-dimensional ones onto arrays.) The authors switch the penalty off during the first epoch; set
``group["lam"] = 0`` for that (every group value can be changed between steps, like a learning rate).

The closure. ``SAM.step`` and ``HERO.step`` call ``closure()`` twice (at ``w`` and at ``w + delta``). It
must compute the minibatch loss with autograd on (under ``torch.enable_grad()``, which ``step`` provides)
and return it as a scalar tensor, *without* calling ``backward()``: the optimizer differentiates the loss
itself, HERO twice (a backward inside the closure would free the graph the double backward needs). The
optimizer clears every ``.grad`` before each call, so the closure has nothing to zero (a
``opt.zero_grad()`` in it is harmless). The same minibatch must be used in both calls (draw it outside)::

    def closure():
        return criterion(model(x), y)
    loss = opt.step(closure)   # the loss at w, detached

SAM also accepts a closure that calls ``loss.backward()`` itself, as ``torch.optim.LBFGS``'s closures do;
HERO rejects one with an InputError that says so. After ``step`` each ``.grad`` holds the direction the base
optimizer used.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable

import torch

from ..errors import InputError, short_repr
from .loop import check_count, check_positive

__all__ = ["HERO", "SAM", "hessian_top_eigenvalue"]

_EPS = 1e-12  # added to the perturbation's normalizing norm, so that a zero gradient gives a zero delta
_PENALTIES = ("mean", "sum")
Grads = list[torch.Tensor | None]


def perturbed(p: torch.Tensor) -> bool:
    """Whether SAM/HERO perturb the parameter ``p`` and HERO penalizes its gradient change: the weight matrices
    and kernels (two or more dimensions), not biases or normalization weights."""
    return p.dim() > 1


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization around a base optimizer: each step takes the gradient at
    ``w + delta``, ``delta = rho * w**2 * g / || |w| * g ||`` (``adaptive``; ``rho * g / ||g||`` without), on the
    weights of two or more dimensions, then lets ``base_optimizer`` step from ``w`` with it.

    ``params``: parameters or parameter groups, as for any torch optimizer (a group may set its own ``rho``,
    ``adaptive`` and base-optimizer options). ``base_optimizer``: a ``torch.optim.Optimizer`` class whose
    ``step()`` needs no closure (SGD, Adam, ...; not LBFGS), built on the same parameter groups with
    ``base_kwargs`` (``lr``, ``momentum``, ...). ``rho``: the perturbation
    radius, >= 0 (relative to the weights when ``adaptive``; in weight units otherwise). ``rho = 0`` gives the
    base optimizer's steps exactly (at twice the cost). ``step(closure)``: see the module docstring for what
    the closure must do; returns the loss at ``w`` (detached).

    ``state_dict()`` / ``load_state_dict()`` save and restore the base optimizer's state (momentum buffers,
    Adam moments) and the groups with ``rho`` and the other settings, so a run resumes exactly."""

    _name = "SAM"

    def __init__(
        self,
        params: Iterable,
        base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
        *,
        rho: float = 0.05,
        adaptive: bool = True,
        **base_kwargs,
    ) -> None:
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)) or issubclass(
            base_optimizer, SAM
        ):
            raise InputError(
                f"{self._name}: base_optimizer = {short_repr(base_optimizer)} is not allowed; a "
                "torch.optim.Optimizer class (e.g. torch.optim.SGD, the class, not an instance), "
                "other than SAM or HERO"
            )
        defaults = {"rho": rho, "adaptive": adaptive, **self._own_defaults()}
        self._check_group(defaults, "")  # the arguments, named as such, before any group
        super().__init__(params, defaults)
        try:
            self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{self._name}: base_optimizer {base_optimizer.__name__} rejects the options "
                f"{short_repr(base_kwargs)}: {exc}"
            ) from None
        # one set of groups and one state, shared with the base optimizer (so LR schedulers and
        # state_dict see a single optimizer)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    # ----------------------------------------------------------------------------------------- settings
    def _own_defaults(self) -> dict:
        return {}

    def _check_group(self, group: dict, where: str) -> None:
        """Every setting of ``group`` (the constructor's arguments when ``where`` is empty) is allowed, or
        an InputError names it, its value and what is allowed."""
        name = f"{self._name}: {where}" if where else self._name
        check_positive(name, "rho", group["rho"], zero=True, what="the perturbation radius")
        if not isinstance(group["adaptive"], bool):
            raise InputError(f"{name}: adaptive = {short_repr(group['adaptive'])} is not allowed; True or False")

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (its missing settings from the constructor's), to this optimizer and its base."""
        for key, value in self.defaults.items():
            param_group.setdefault(key, value)
        self._check_group(param_group, f"param_groups[{len(self.param_groups)}]")
        if hasattr(self, "base_optimizer"):
            self.base_optimizer.add_param_group(param_group)  # the shared list gets it too
        else:
            super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()`` of an optimizer of this class (same parameter groups)."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, list) or any(
            not isinstance(g, dict) or any(k not in g for k in self.defaults) for g in groups
        ):
            raise InputError(
                f"{self._name}.load_state_dict: the state_dict lacks the {self._name} settings "
                f"{sorted(self.defaults)} in its param_groups; pass one saved from {self._name}"
            )
        for i, group in enumerate(groups):
            self._check_group(group, f"load_state_dict: param_groups[{i}]")
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    # ------------------------------------------------------------------------------------------ the step
    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.requires_grad]

    def _loss_and_grads(
        self, closure: Callable, params: list[torch.Tensor], create_graph: bool = False, allow_backward: bool = True
    ) -> tuple[torch.Tensor, Grads]:
        """Call ``closure`` (every ``.grad`` cleared first) and return its loss and the gradients of the
        parameters: the closure's own ``.grad`` when it called backward (if ``allow_backward``), else by
        autograd (with ``create_graph`` for a double backward). ``None`` for a parameter the loss ignores."""
        for p in params:
            p.grad = None
        with torch.enable_grad():
            loss = closure()
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point()):
            raise InputError(
                f"{self._name}.step: the closure returned {short_repr(loss)}; it must return the "
                "minibatch loss as a scalar float tensor"
            )
        if any(p.grad is not None for p in params):
            if not allow_backward:
                raise InputError(
                    f"{self._name}.step: the closure called backward(); it must only compute and "
                    f"return the loss ({self._name} differentiates it twice, with a double backward)"
                )
            return loss.detach(), [p.grad for p in params]
        if not loss.requires_grad:
            raise InputError(
                f"{self._name}.step: the closure's loss does not depend on the parameters (computed "
                "under torch.no_grad()?); return the loss with autograd on"
            )
        with torch.enable_grad():
            grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
        return loss.detach(), list(grads)

    def _perturbation(self, params: list[torch.Tensor], grads: Grads) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(parameter, delta)`` for each perturbed parameter with a gradient: ``rho * s**2 * g / ||s * g||``,
        ``s = |w|`` (adaptive) or 1, the norm over all of them."""
        scaled, pairs = [], []
        index = {p: i for i, p in enumerate(params)}
        for group in self.param_groups:
            for p in group["params"]:
                g = grads[index[p]] if p in index else None
                if g is None or not perturbed(p) or group["rho"] == 0:
                    continue
                sg = p.abs() * g if group["adaptive"] else g
                scaled.append(sg)
                pairs.append((p, group["rho"] * (p.abs() * sg if group["adaptive"] else sg)))
        if not pairs:
            return []
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
        return [(p, d / (norm + _EPS)) for p, d in pairs]

    def _direction(self, closure: Callable, params: list[torch.Tensor], g0: Grads) -> Grads:
        """The update direction at the perturbed weights (SAM: the plain gradient there)."""
        return self._loss_and_grads(closure, params)[1]

    def _check_closure(self, closure) -> Callable:
        if closure is None or not callable(closure):
            raise InputError(
                f"{self._name}.step: closure = {short_repr(closure)} is not allowed; a function that "
                "computes and returns the minibatch loss (e.g. lambda: criterion(model(x), y)), "
                f"called twice per step"
            )
        return closure

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One step: the gradient at ``w``, the perturbation, the direction at ``w + delta``, back to ``w``,
        the base optimizer's step. Returns the loss at ``w`` (detached)."""
        closure = self._check_closure(closure)
        for i, group in enumerate(self.param_groups):
            self._check_group(group, f"step: param_groups[{i}]")
        params = self._params()
        loss, g0 = self._loss_and_grads(closure, params, allow_backward=self._allow_backward())
        deltas = self._perturbation(params, g0)
        saved = [(p, p.detach().clone()) for p, _ in deltas]
        try:
            for p, d in deltas:
                p.add_(d)
            direction = self._direction(closure, params, g0)
        finally:
            for p, w in saved:
                p.copy_(w)
        for p, g in zip(params, direction):
            p.grad = None if g is None else g.detach()
        self.base_optimizer.step()
        return loss

    def _allow_backward(self) -> bool:
        return True


class HERO(SAM):
    """HERO: SAM's adaptive perturbation plus ``lam`` times the squared change of the gradient over it
    (``penalty="mean"``: per weight tensor the mean of ``(g(w + delta) - g(w))**2``, summed over tensors, as
    in the authors' code; ``"sum"``: the squared norm), differentiated with a double backward; see the
    module docstring for the exact objective. ``lam``: >= 0, dimensionless weight of the penalty.
    ``rho = 0`` and ``lam = 0`` give the base optimizer's steps exactly; ``lam = 0`` gives SAM's.

    The closure must return the loss without calling backward (module docstring). ``last_penalty`` holds
    the last step's penalty value (lam included; 0.0 when no group has ``lam > 0``)."""

    _name = "HERO"

    def __init__(
        self,
        params: Iterable,
        base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
        *,
        rho: float = 0.05,
        lam: float = 1.0,
        adaptive: bool = True,
        penalty: str = "mean",
        **base_kwargs,
    ) -> None:
        self._init_extra = {"lam": lam, "penalty": penalty}
        self.last_penalty = 0.0
        super().__init__(params, base_optimizer, rho=rho, adaptive=adaptive, **base_kwargs)

    def _own_defaults(self) -> dict:
        return dict(self._init_extra)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        name = f"{self._name}: {where}" if where else self._name
        check_positive(name, "lam", group["lam"], zero=True, what="the weight of the gradient-change penalty")
        if group["penalty"] not in _PENALTIES:
            raise InputError(
                f"{name}: penalty = {short_repr(group['penalty'])} is not allowed; one of "
                f"{', '.join(map(repr, _PENALTIES))}"
            )

    def _allow_backward(self) -> bool:
        return False

    def _direction(self, closure: Callable, params: list[torch.Tensor], g0: Grads) -> Grads:
        """``g(w + delta)`` plus the gradient of the penalty, with ``g(w)`` and ``delta`` held constant."""
        penalized = [(group["lam"], group["penalty"]) for group in self.param_groups]
        if all(lam == 0 for lam, _ in penalized):
            self.last_penalty = 0.0
            return self._loss_and_grads(closure, params, allow_backward=False)[1]
        _, g1 = self._loss_and_grads(closure, params, create_graph=True, allow_backward=False)
        index = {p: i for i, p in enumerate(params)}
        terms = []
        with torch.enable_grad():
            for group, (lam, how) in zip(self.param_groups, penalized):
                for p in group["params"]:
                    i = index.get(p)
                    if lam == 0 or i is None or not perturbed(p):
                        continue
                    a, b = g1[i], g0[i]
                    if a is None or b is None:
                        continue
                    sq = (a - b.detach()).square()
                    terms.append(lam * (sq.mean() if how == "mean" else sq.sum()))
            total = torch.stack(terms).sum() if terms else None
        self.last_penalty = 0.0 if total is None else float(total.detach())
        plain = [None if g is None else g.detach() for g in g1]
        if total is None or not total.requires_grad:  # e.g. a loss linear in the weights: no curvature
            return plain
        extra = torch.autograd.grad(total, params, allow_unused=True)
        return [e if g is None else (g if e is None else g + e) for g, e in zip(plain, extra)]


def hessian_top_eigenvalue(
    loss_fn: Callable[[], torch.Tensor],
    params: Iterable[torch.Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-6,
    seed: int = 0,
) -> float:
    """The eigenvalue of largest magnitude of the Hessian of ``loss_fn()`` with respect to ``params`` (in
    loss units per squared parameter unit), by power iteration on Hessian-vector products.

    ``loss_fn()``: computes the scalar loss from ``params`` (e.g. ``lambda: criterion(model(x), y)`` on a
    fixed batch, the model in eval mode); it is called once, and its graph (built with ``create_graph``)
    serves every product. The start vector is drawn with a generator seeded by ``seed``, so the result is
    reproducible. Stops when the Rayleigh quotient changes by less than ``tol`` relatively, or after
    ``iters`` products. At a minimum of the loss the Hessian is positive semi-definite and this is its top
    eigenvalue, the sharpness SAM and HERO reduce. A loss with no curvature gives 0.0."""
    what = "hessian_top_eigenvalue"
    iters = check_count(what, "iters", iters, 1, "Hessian-vector products at most")
    tol = check_positive(what, "tol", tol, what="relative change of the eigenvalue estimate to stop at")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"{what}: seed = {short_repr(seed)} is not allowed; an integer")
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) and p.is_floating_point() for p in params):
        raise InputError(f"{what}: params = {short_repr(params)} is not allowed; a non-empty list of float tensors")
    params = [p for p in params if p.requires_grad]
    if not params:
        raise InputError(f"{what}: none of params requires grad; pass the tensors the loss is differentiated by")
    with torch.enable_grad():
        loss = loss_fn()
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad):
            raise InputError(f"{what}: loss_fn() returned {short_repr(loss)}; a scalar tensor computed from params")
        grads = torch.autograd.grad(loss.reshape(()), params, create_graph=True, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None and g.requires_grad]
    if not pairs:
        return 0.0
    ps, gs = [p for p, _ in pairs], [g for _, g in pairs]
    gen = torch.Generator().manual_seed(int(seed))
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in ps]

    def normalized(vs: list[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in vs])))
        return ([x / norm for x in vs] if norm > 0 else vs), norm

    v, _ = normalized(v)
    estimate = None
    for _ in range(iters):
        hv = torch.autograd.grad(gs, ps, grad_outputs=v, retain_graph=True, allow_unused=True)
        hv = [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(ps, hv)]
        rayleigh = float(sum((a * b).sum() for a, b in zip(v, hv)))
        v, norm = normalized(hv)
        if norm == 0 or not math.isfinite(rayleigh):
            return 0.0 if norm == 0 else rayleigh
        converged = estimate is not None and abs(rayleigh - estimate) <= tol * abs(rayleigh)
        estimate = rayleigh
        if converged:
            break
    return float(estimate)
