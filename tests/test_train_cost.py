"""The time and energy of an in-situ training step: BP's sequential backward against DFA's parallel one."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cimkit as ck
from cimkit.errors import InputError
from cimkit.sim.update import WriteCounts
from cimkit.spec.update import UPDATE_DEVICES
from cimkit.train.cost import backward_latency_s, step_cost
from cimkit.train.insitu import InSituTrainer, mlp


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 16), st.floats(1e-9, 1e-6), st.floats(1e-9, 1e-3), st.integers(1, 64))
def test_bp_over_dfa_for_equal_layers_approaches_n(n, read_s, update_s, batch):
    """N equal layers: BP/DFA = N - eps with eps = B r / (B r + u), in [N - 1, N]; writes dominating give ~N."""
    ratio = backward_latency_s("bp", [read_s] * (n - 1), [update_s] * n, batch) / backward_latency_s(
        "dfa", [read_s] * (n - 1), [update_s] * n, batch
    )
    eps = batch * read_s / (batch * read_s + update_s)
    assert n - eps - 1e-9 <= ratio <= n + 1e-9
    assert ratio == pytest.approx(n - eps, rel=1e-9)


def test_writes_far_slower_than_reads_give_a_speedup_of_n():
    for n in (2, 4, 8):
        ratio = backward_latency_s("bp", [1e-8] * (n - 1), [1e-4] * n) / backward_latency_s(
            "dfa", [1e-8] * (n - 1), [1e-4] * n
        )
        assert n - 1e-3 < ratio <= n


def test_one_layer_has_no_error_read_and_the_rules_agree():
    assert backward_latency_s("bp", [], [3e-6]) == backward_latency_s("dfa", [], [3e-6]) == 3e-6


def test_bad_counts_are_named():
    with pytest.raises(InputError, match="give one error read per hidden layer and one update per layer"):
        backward_latency_s("bp", [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(InputError, match="rule 'fa' is unknown"):
        backward_latency_s("fa", [], [1.0])


def test_a_step_is_priced_from_the_cost_model_and_the_writes():
    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.bits_per_cell": 8})
    model = mlp([64, 32, 10])
    wl = ck.Workload.from_torch(model, input_shape=(1, 64))
    dev = UPDATE_DEVICES["epiram"]
    writes = [
        WriteCounts(
            ltp_pulses=10,
            ltd_pulses=4,
            ltp_pulse_us=50,
            ltd_pulse_us=20,
            ltp_serial_pulses=3,
            ltd_serial_pulses=2,
            rows_written=5,
        )
    ] * 2
    bp = step_cost(wl, spec, "bp", batch=4, writes=writes, device=dev)
    dfa = step_cost(wl, spec, "dfa", batch=4, writes=writes, device=dev, feedback_sizes=[32], classes=10)
    forward = ck.estimate(wl, spec).total
    assert bp.forward_latency_s == pytest.approx(4 * forward.latency_s)
    assert bp.forward_energy_j == pytest.approx(4 * forward.energy_j)
    assert bp.update_latency_s == pytest.approx(2 * (3 * 5e-6 + 2 * 5e-6))  # layer after layer
    assert dfa.update_latency_s == pytest.approx(3 * 5e-6 + 2 * 5e-6)  # all layers at once
    assert bp.update_energy_j == pytest.approx(2 * (25 * 50e-6 * 5e-6 + 9 * 20e-6 * 5e-6))
    assert bp.error_latency_s > 0 and dfa.error_latency_s > 0
    assert bp.latency_s == pytest.approx(bp.forward_latency_s + bp.backward_latency_s)
    with pytest.raises(InputError, match="rule 'dfa' needs feedback_sizes"):
        step_cost(wl, spec, "dfa", batch=1, writes=writes, device=dev)


def test_a_trainer_prices_its_own_steps():
    from cimkit.data import digits

    s = digits()
    x = s.x_train.reshape(len(s.y_train), -1)[:40]
    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.bits_per_cell": 8})
    model = mlp([64, 16, 16, 10])
    costs = {}
    for rule in ("bp", "dfa"):
        tr = InSituTrainer(spec, rule=rule, device="epiram", lr=0.1, weight_max=1.0).fit(model, x, s.y_train[:40])
        costs[rule] = tr.step_cost(model)
        assert costs[rule].update_energy_j > 0 and costs[rule].update_latency_s > 0
    assert costs["bp"].forward_latency_s == costs["dfa"].forward_latency_s
    assert torch.isfinite(torch.tensor(costs["bp"].energy_j))


def test_writes_are_priced_against_their_own_layer_whatever_the_registration_order():
    from torch import nn

    from cimkit.data import digits

    class OutFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.out, self.hidden = nn.Linear(16, 10), nn.Linear(64, 16)

        def forward(self, x):
            return self.out(torch.tanh(self.hidden(x)))

    s = digits()
    x = s.x_train.reshape(len(s.y_train), -1)[:40]
    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.bits_per_cell": 8})
    model = OutFirst()
    tr = InSituTrainer(spec, device="epiram", lr=0.1, weight_max=1.0).fit(model, x, s.y_train[:40])
    cost = tr.step_cost(model)
    own = {layer.layer_name: w.energy_j(tr.device) / 40 for layer, w in zip(tr.layers_, tr.writes_)}
    assert [row["name"] for row in cost.layers] == ["hidden", "out"]
    for row in cost.layers:
        assert row["update_j"] == pytest.approx(own[row["name"]])
