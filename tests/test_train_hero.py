"""SAM and HERO (cimkit.train.hero): the base optimizer at rho = lam = 0, the adaptive perturbation by hand,
HERO's direction against autograd on its explicit objective, the Hessian's top eigenvalue, bad input,
checkpoints, and the benchmark's smoke run."""

from __future__ import annotations

import importlib.util
import io
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

from cimkit.errors import InputError
from cimkit.train.hero import HERO, SAM, hessian_top_eigenvalue

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench_hero.py"


def tiny_net(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A net with every kind of parameter: weight matrices, biases and a norm layer's weight and bias."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def batch(step: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(8, 4, generator=gen, dtype=dtype), torch.randint(0, 3, (8,), generator=gen)


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, start: int = 0) -> None:
    for k in range(start, start + steps):
        x, y = batch(k, next(model.parameters()).dtype)
        if isinstance(opt, SAM):
            opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        else:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()


BASES = [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}), (torch.optim.Adam, {"lr": 0.01})]


@pytest.mark.parametrize("base,kwargs", BASES, ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize(
    "make",
    [
        lambda p, b, kw: HERO(p, b, rho=0.0, lam=0.0, **kw),
        lambda p, b, kw: HERO(p, b, rho=0.0, lam=3.0, **kw),
        lambda p, b, kw: SAM(p, b, rho=0.0, **kw),
    ],
    ids=["hero", "hero-lam3", "sam"],
)
def test_with_rho_zero_it_is_the_base_optimizer(base, kwargs, make):
    """rho = 0 makes delta = 0, so g(w + delta) = g(w) and the penalty's gradient 2 lam H (g - g) = 0."""
    ref, net = tiny_net(), tiny_net()
    train(ref, base(ref.parameters(), **kwargs), 6)
    train(net, make(net.parameters(), base, kwargs), 6)
    for a, b in zip(ref.parameters(), net.parameters()):
        torch.testing.assert_close(b, a, atol=1e-7, rtol=0)
    assert any((a - b).abs().max() > 0 for a, b in zip(tiny_net().parameters(), net.parameters()))  # it moved


def recorded_points(opt: SAM, params: list[torch.Tensor], loss) -> list[list[torch.Tensor]]:
    """The parameter values at each closure call of one step."""
    seen = []

    def closure():
        seen.append([p.detach().clone() for p in params])
        return loss()

    opt.step(closure)
    return seen


@pytest.mark.parametrize("adaptive", [True, False])
def test_sam_perturbation_by_hand(adaptive):
    """A loss linear in the weights has the constant gradient A (matrix) and c (bias, norm weight), so
    delta = rho w^2 A / ||w A|| (adaptive) or rho A / ||A||, on the matrix only."""
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    b = torch.tensor([0.3, -0.7], requires_grad=True)
    norm_w = torch.tensor([1.0, 1.0], requires_grad=True)  # a norm layer's weight: 1-d
    A, c = torch.tensor([[0.2, 1.0], [-4.0, 0.5]]), torch.tensor([2.0, -1.0])
    opt = SAM([w, b, norm_w], torch.optim.SGD, rho=0.5, adaptive=adaptive, lr=0.0)
    at_w, at_perturbed = recorded_points(
        opt, [w, b, norm_w], lambda: (w * A).sum() + (b * c).sum() + (norm_w * c).sum()
    )
    if adaptive:  # |w| A = [[0.2, 2.0], [2.0, 1.5]], norm sqrt(0.04 + 4 + 4 + 2.25) = sqrt(10.29)
        expected = 0.5 * torch.tensor([[1.0 * 0.2, 4.0 * 1.0], [0.25 * -4.0, 9.0 * 0.5]]) / math.sqrt(10.29)
    else:  # ||A|| = sqrt(0.04 + 1 + 16 + 0.25)
        expected = 0.5 * A / math.sqrt(17.29)
    torch.testing.assert_close(at_perturbed[0] - at_w[0], expected, atol=1e-6, rtol=0)
    assert torch.equal(at_perturbed[1], at_w[1]) and torch.equal(at_perturbed[2], at_w[2])  # not perturbed
    assert torch.equal(w.detach(), at_w[0])  # lr = 0: the step leaves the weights where they were


def test_sam_in_a_model_perturbs_weights_only_and_steps_with_the_perturbed_gradient():
    net = tiny_net()
    params = list(net.parameters())
    x, y = batch(0)
    opt = SAM(params, torch.optim.SGD, rho=0.2, lr=1.0)
    before = [p.detach().clone() for p in params]
    points = recorded_points(opt, params, lambda: nn.functional.cross_entropy(net(x), y))
    moved = [not torch.equal(a, b) for a, b in zip(points[0], points[1])]
    assert moved == [p.dim() > 1 for p in params] == [True, False, False, False, True, False]
    probe = tiny_net()  # the gradient at the perturbed point, by autograd
    with torch.no_grad():
        for q, v in zip(probe.parameters(), points[1]):
            q.copy_(v)
    grads = torch.autograd.grad(nn.functional.cross_entropy(probe(x), y), list(probe.parameters()))
    for p, w0, g in zip(params, before, grads):
        torch.testing.assert_close(w0 - p.detach(), g, atol=1e-6, rtol=1e-5)  # SGD, lr 1: w -= g


@pytest.mark.parametrize("penalty", ["mean", "sum"])
def test_hero_direction_is_the_gradient_of_its_explicit_objective(penalty):
    """HERO's direction (SGD with lr 1 steps by exactly it) against autograd on
    J(w) = L(w + delta) + lam * sum_t reduce((dL/dw_t (w + delta) - g_t(w))^2), delta and g(w) constant."""
    torch.manual_seed(0)
    net = tiny_net(dtype=torch.float64)
    x, y = batch(0, torch.float64)
    names = [n for n, _ in net.named_parameters()]
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    rho, lam = 0.3, 2.5

    def loss_at(values: dict) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(net, values, (x,)), y)

    # by hand: g(w), the adaptive delta on the matrices, then autograd of J
    leaves = {n: v.clone().requires_grad_(True) for n, v in w0.items()}
    g0 = dict(zip(names, torch.autograd.grad(loss_at(leaves), list(leaves.values()))))
    mats = [n for n in names if w0[n].dim() > 1]
    norm = torch.sqrt(sum(((w0[n].abs() * g0[n]) ** 2).sum() for n in mats))
    delta = {n: rho * w0[n] ** 2 * g0[n] / norm if n in mats else torch.zeros_like(w0[n]) for n in names}
    loss = loss_at({n: leaves[n] + delta[n] for n in names})
    g1 = dict(zip(names, torch.autograd.grad(loss, list(leaves.values()), create_graph=True)))
    reduce = (lambda t: t.mean()) if penalty == "mean" else (lambda t: t.sum())
    penalty_value = sum(lam * reduce((g1[n] - g0[n]) ** 2) for n in mats)
    expected = torch.autograd.grad(loss + penalty_value, list(leaves.values()))
    sam_only = [g.detach() for g in g1.values()]

    opt = HERO(net.parameters(), torch.optim.SGD, rho=rho, lam=lam, penalty=penalty, lr=1.0)
    opt.step(lambda: loss_at(dict(net.named_parameters())))
    direction = [w0[n] - p.detach() for n, p in net.named_parameters()]
    for got, want in zip(direction, expected):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-9)
    assert opt.last_penalty == pytest.approx(float(penalty_value.detach()), rel=1e-9)
    # the penalty matters (the test would not see a missing double backward otherwise)
    assert max(float((a - b).abs().max()) for a, b in zip(expected, sam_only)) > 1e-4


def test_hero_with_lam_zero_is_sam():
    a, b = tiny_net(), tiny_net()
    train(a, SAM(a.parameters(), torch.optim.SGD, rho=0.4, lr=0.1, momentum=0.9), 4)
    train(b, HERO(b.parameters(), torch.optim.SGD, rho=0.4, lam=0.0, lr=0.1, momentum=0.9), 4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def spd(eigenvalues: list[float], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


def test_top_eigenvalue_of_a_quadratic():
    a = spd([7.5, 4.0, 2.0, 1.0, 0.5, 0.1])
    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    top = hessian_top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=500, tol=1e-10, seed=3)
    assert abs(top - 7.5) < 1e-4
    assert hessian_top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=20, seed=3) == hessian_top_eigenvalue(
        lambda: 0.5 * x @ a @ x, [x], iters=20, seed=3
    )  # seeded: reproducible
    # over several tensors: a block-diagonal Hessian, the top block in the second tensor
    y = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    b = spd([12.0, 3.0, 1.0, 0.2], seed=1)
    both = hessian_top_eigenvalue(
        lambda: 0.5 * x @ a @ x + 0.5 * y.reshape(-1) @ b @ y.reshape(-1), [x, y], iters=500, tol=1e-10
    )
    assert abs(both - 12.0) < 1e-4


def test_top_eigenvalue_of_a_small_network_loss_matches_the_dense_hessian():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = (
        torch.randn(16, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1)),
    )
    names, values = zip(*[(n, p.detach()) for n, p in net.named_parameters()])
    shapes, sizes = [v.shape for v in values], [v.numel() for v in values]

    def flat_loss(flat: torch.Tensor) -> torch.Tensor:
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(flat.split(sizes), shapes))))
        return nn.functional.cross_entropy(functional_call(net, parts, (x,)), y)

    dense = torch.autograd.functional.hessian(flat_loss, torch.cat([v.reshape(-1) for v in values]))
    eig = torch.linalg.eigvalsh(dense)
    want = float(eig[eig.abs().argmax()])
    got = hessian_top_eigenvalue(
        lambda: nn.functional.cross_entropy(net(x), y), net.parameters(), iters=2000, tol=1e-12
    )
    assert got == pytest.approx(want, rel=1e-4)


def test_a_loss_without_curvature_has_eigenvalue_zero():
    x = torch.ones(3, requires_grad=True)
    assert hessian_top_eigenvalue(lambda: (2 * x).sum(), [x]) == 0.0


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda p: SAM(p, rho=-0.1), ["rho", "-0.1", ">= 0"]),
        (lambda p: SAM(p, rho=float("nan")), ["rho", "nan", "finite"]),
        (lambda p: HERO(p, lam=-1.0), ["lam", "-1.0", ">= 0"]),
        (lambda p: HERO(p, lam=float("inf")), ["lam", "inf", "finite"]),
        (lambda p: HERO(p, rho=float("nan")), ["rho", "nan"]),
        (lambda p: HERO(p, penalty="max"), ["penalty", "'max'", "'mean'"]),
        (lambda p: SAM(p, adaptive="yes"), ["adaptive", "'yes'", "True or False"]),
        (lambda p: SAM(p, torch.optim.SGD(p, lr=0.1)), ["base_optimizer", "SGD", "class"]),
        (lambda p: SAM(p, "sgd"), ["base_optimizer", "'sgd'", "torch.optim.Optimizer"]),
        (lambda p: HERO(p, SAM), ["base_optimizer", "SAM"]),
        (lambda p: SAM(p, torch.optim.SGD, lr=-1.0), ["SGD", "lr"]),
        (lambda p: SAM([{"params": p, "rho": -2.0}], lr=0.1), ["param_groups[0]", "rho", "-2.0"]),
    ],
)
def test_bad_arguments_are_named(call, words):
    with pytest.raises(InputError) as info:
        call(list(tiny_net().parameters()))
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_bad_steps_are_named():
    net = tiny_net()
    x, y = batch(0)
    opt = HERO(net.parameters(), lr=0.1)
    with pytest.raises(InputError, match="closure = None"):
        opt.step()

    def backward_closure():
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        return loss

    with pytest.raises(InputError, match="called backward"):
        opt.step(backward_closure)
    with pytest.raises(InputError, match="scalar"):
        opt.step(lambda: net(x))
    with pytest.raises(InputError, match="no_grad"):
        opt.step(lambda: nn.functional.cross_entropy(net(x), y).detach())
    opt.param_groups[0]["lam"] = -0.5  # changed between steps, then checked
    with pytest.raises(InputError, match=r"param_groups\[0\]: lam = -0.5"):
        opt.step(lambda: nn.functional.cross_entropy(net(x), y))
    sam = SAM(net.parameters(), lr=0.1)
    sam.step(backward_closure)  # SAM takes an LBFGS-style closure too
    for bad in [dict(iters=0), dict(tol=0.0), dict(seed=1.5)]:
        with pytest.raises(InputError, match=next(iter(bad))):
            hessian_top_eigenvalue(lambda: nn.functional.cross_entropy(net(x), y), net.parameters(), **bad)


@pytest.mark.parametrize("base,kwargs", BASES, ids=["sgd-momentum", "adam"])
def test_state_dict_round_trip_resumes_exactly(base, kwargs):
    straight = tiny_net()
    opt = HERO(straight.parameters(), base, rho=0.3, lam=2.0, **kwargs)
    train(straight, opt, 6)

    first = tiny_net()
    opt1 = HERO(first.parameters(), base, rho=0.3, lam=2.0, **kwargs)
    train(first, opt1, 3)
    opt1.param_groups[0]["lam"] = 2.0  # a group value survives the trip
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, buf)
    saved = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)

    resumed = tiny_net(seed=7)
    opt2 = HERO(resumed.parameters(), base, rho=0.05, lam=0.0, **kwargs)
    resumed.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["rho"] == 0.3 and opt2.param_groups[0]["lam"] == 2.0
    assert opt2.base_optimizer.param_groups is opt2.param_groups and opt2.base_optimizer.state is opt2.state
    train(resumed, opt2, 3, start=3)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="lacks the HERO settings"):
        opt2.load_state_dict(base(tiny_net().parameters(), **kwargs).state_dict())


def test_lr_scheduler_drives_the_shared_groups():
    net = tiny_net()
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.1, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train(net, opt, 1)
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.5


def test_a_group_added_later_gets_both_optimizers_settings_and_is_checked():
    a, b = nn.Linear(3, 2), nn.Linear(2, 2)
    opt = HERO(a.parameters(), torch.optim.SGD, rho=0.1, lam=1.0, lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b.parameters(), "rho": 0.0})
    group = opt.base_optimizer.param_groups[1]
    assert (group["rho"], group["lam"], group["lr"], group["momentum"]) == (0.0, 1.0, 0.1, 0.9)
    w = b.weight.detach().clone()
    points = recorded_points(opt, [b.weight], lambda: b(a(torch.ones(4, 3))).square().mean())
    assert torch.equal(points[0][0], w) and torch.equal(points[1][0], w)  # its rho = 0: not perturbed
    with pytest.raises(InputError, match=r"param_groups\[2\]: lam = -1"):
        opt.add_param_group({"params": nn.Linear(1, 1).parameters(), "lam": -1})


def test_benchmark_smoke_run(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_hero", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_hero", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    bench.main(["--smoke", "--checkpoint-dir", str(tmp_path)])
    first = capsys.readouterr().out
    for word in ("SGD", "SAM", "HERO", "clean", "PTQ 4b", "CIM", "lambda_max", "paper"):
        assert word in first, word
    assert list(tmp_path.glob("*.pt"))  # the runs' checkpoints
    bench.main(["--smoke", "--checkpoint-dir", str(tmp_path)])  # resumed from the finished checkpoints
    again = capsys.readouterr().out
    table = lambda text: [line for line in text.splitlines() if line.startswith(("SGD", "SAM", "HERO"))]  # noqa: E731
    assert table(again) == table(first)
