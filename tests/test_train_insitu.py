"""In-situ training on the crossbars: BP and DFA as learning rules on the programmed arrays."""

import pytest
import torch
from torch import nn

from cimkit.errors import InputError
from cimkit.train.insitu import InSituTrainer, mlp, small_cnn


@pytest.fixture(scope="module")
def digits():
    from cimkit.data import digits as load

    s = load()
    x = s.x_train.reshape(len(s.y_train), -1)
    xt = s.x_test.reshape(len(s.y_test), -1)
    return x, s.y_train, xt, s.y_test


def test_dfa_with_the_transposed_forward_weights_is_bp(digits):
    """One hidden layer: B = W2^T sends the output error to the hidden layer as BP's transposed read does."""
    x, y = digits[0][:64], digits[1][:64]
    bp = InSituTrainer("ideal", rule="bp", lr=0.1, batch_size=8, weight_max=1.0).prepare(mlp([64, 32, 10]), x, y)
    dfa = InSituTrainer("ideal", rule="dfa", lr=0.1, batch_size=8, weight_max=1.0).prepare(mlp([64, 32, 10]), x, y)
    for i in range(4):
        xb, yb = x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]
        dfa.set_feedback(0, dfa.layers_[1].weight.detach().t().clone())
        assert bp.step(xb, yb)["loss"] == pytest.approx(dfa.step(xb, yb)["loss"], rel=1e-5)
    for a, b in zip(bp.layers_, dfa.layers_):
        assert torch.allclose(a.weight, b.weight, atol=1e-5)
        assert torch.allclose(a.bias, b.bias, atol=1e-5)


def test_random_feedback_differs_from_bp(digits):
    x, y = digits[0][:64], digits[1][:64]
    bp = InSituTrainer("ideal", rule="bp", lr=0.1, batch_size=8, weight_max=1.0).prepare(mlp([64, 32, 10]), x, y)
    dfa = InSituTrainer("ideal", rule="dfa", lr=0.1, batch_size=8, weight_max=1.0).prepare(mlp([64, 32, 10]), x, y)
    bp.step(x[:8], y[:8])
    dfa.step(x[:8], y[:8])
    assert torch.allclose(bp.layers_[1].weight, dfa.layers_[1].weight, atol=1e-6)  # the output layer: the same rule
    assert not torch.allclose(bp.layers_[0].weight, dfa.layers_[0].weight, atol=1e-4)


@pytest.mark.parametrize("rule", ["bp", "dfa"])
def test_both_rules_learn_digits_on_the_chip(digits, rule):
    x, y, xt, yt = digits
    tr = InSituTrainer("ideal", rule=rule, device="epiram", lr=0.1, batch_size=1, weight_max=1.0, seed=0)
    tr.fit(mlp([64, 32, 10], "tanh"), x[:600], y[:600], x_test=xt, y_test=yt)
    acc = tr.history_[-1]["test_accuracy"]
    assert acc > 0.75, acc
    assert sum(w.ltp_pulses + w.ltd_pulses for w in tr.writes_) > 0


def test_a_small_cnn_trains_with_dfa_through_pooling(digits):
    x, y = digits[0][:200].reshape(-1, 1, 8, 8), digits[1][:200]
    tr = InSituTrainer("ideal", rule="dfa", lr=0.05, batch_size=8, weight_max=1.0, seed=0)
    tr.fit(small_cnn(8), x, y)
    losses = [h["loss"] for h in tr.history_ if "loss" in h]
    assert sum(losses[-5:]) < sum(losses[:5])
    assert [tuple(f.weight.shape) for f in tr.feedback_] == [(8 * 4 * 4, 10), (16 * 2 * 2, 10)]


def test_a_resumed_run_equals_an_uninterrupted_one(digits, tmp_path):
    x, y = digits[0][:96], digits[1][:96]

    def run(epochs, path):
        tr = InSituTrainer("ideal", rule="bp", device="ag-a-si", lr=0.1, epochs=epochs, batch_size=8, weight_max=1.0)
        return tr.fit(mlp([64, 16, 10]), x, y, checkpoint=path, checkpoint_every=5)

    whole = run(2, None)
    run(1, tmp_path / "c.pt")
    resumed = run(2, tmp_path / "c.pt")
    for a, b in zip(whole.layers_, resumed.layers_):
        assert torch.equal(a.tile.g_programmed, b.tile.g_programmed)
    assert [h["loss"] for h in whole.history_] == [h["loss"] for h in resumed.history_]


def test_bad_rules_devices_and_networks_are_named(digits):
    x, y = digits[0][:32], digits[1][:32]
    with pytest.raises(InputError, match="rule 'fa' is unknown; choose from bp, dfa"):
        InSituTrainer("ideal", rule="fa")
    with pytest.raises(InputError, match="update device 'memristor' is unknown"):
        InSituTrainer("ideal", device="memristor")
    with pytest.raises(InputError, match="lr = -1 is not allowed"):
        InSituTrainer("ideal", lr=-1)

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 10), nn.Linear(64, 10)

        def forward(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(InputError, match="rule 'dfa' needs an nn.Sequential"):
        InSituTrainer("ideal", rule="dfa").prepare(Branchy(), x, y)
    with pytest.raises(
        InputError, match=r"needs a defined output error.*vector of 10 class scores, got shape \(2, 5\)"
    ):
        InSituTrainer("ideal", rule="dfa", weight_max=1.0).prepare(
            nn.Sequential(nn.Linear(64, 10), nn.Tanh(), nn.Linear(10, 10), nn.Unflatten(1, (2, 5))), x, y
        )
    with pytest.raises(InputError, match="one cell per weight.*weight_bits 8, bits_per_cell 2"):
        InSituTrainer("rram-22nm").prepare(mlp([64, 10]), x, y)
    with pytest.raises(InputError, match="beyond weight_max = 0.001"):
        InSituTrainer("ideal", weight_max=1e-3).prepare(mlp([64, 10]), x, y)
    with pytest.raises(InputError, match="x has 32 samples and y 31"):
        InSituTrainer("ideal").fit(mlp([64, 10]), x, y[:31])


def test_signed_errors_need_a_dac_of_two_bits_or_more():
    import cimkit as ck

    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.bits_per_cell": 8, "periphery.input_bits": 1})
    with pytest.raises(InputError, match="input_bits = 1; the errors a training step reads .* need input_bits >= 2"):
        InSituTrainer(spec, rule="bp")


def test_dropout_is_seeded_per_step_and_other_parameters_train(digits):
    x, y = digits[0][:64], digits[1][:64]
    net = nn.Sequential(nn.Linear(64, 32), nn.LayerNorm(32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 10))

    def run():
        torch.manual_seed(123)  # the global RNG before the fit must not matter
        tr = InSituTrainer("ideal", lr=0.1, batch_size=8, weight_max=1.0).fit(net, x, y)
        return tr

    a, b = run(), run()
    torch.manual_seed(7)
    for la, lb in zip(a.layers_, b.layers_):
        assert torch.equal(la.weight, lb.weight)
    norm = a.chip_[1]
    assert not torch.equal(norm.weight.detach(), torch.ones(32))  # the LayerNorm's affine weights took SGD steps


def test_a_checkpoint_of_other_data_is_refused(digits, tmp_path):
    x, y = digits[0][:32], digits[1][:32]
    InSituTrainer("ideal", weight_max=1.0).fit(mlp([64, 10]), x, y, checkpoint=tmp_path / "c.pt")
    with pytest.raises(InputError, match="was made with other settings"):
        InSituTrainer("ideal", weight_max=1.0).fit(mlp([64, 10]), x.flip(0), y.flip(0), checkpoint=tmp_path / "c.pt")
