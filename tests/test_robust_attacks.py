"""Adversarial attacks through ART on float models and on their simulated chips (cimkit.robust.attacks)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.robust import ATTACKS, accuracy_vs_strength, art_classifier, run_attack, transfer_matrix

pytest.importorskip("art")


@pytest.fixture(scope="module")
def setup():
    """A small CNN trained on sklearn's 8x8 digits, its rram-22nm chip (calibrated), and 40 test images."""
    from cimkit.data.digits import digits

    d = digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(120):
        opt.zero_grad()
        nn.functional.cross_entropy(model(d.x_train), d.y_train).backward()
        opt.step()
    model.eval()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chip = ck.convert(model, "rram-22nm", seed=0)
    ck.calibrate(chip, [d.x_train[:256]])
    return model, chip.eval(), d.x_test[:40], d.y_test[:40]


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "square"])
def test_a_zero_budget_leaves_inputs_and_predictions_unchanged(setup, attack):
    model, chip, x, y = setup
    for m in (model, chip):
        run = run_attack(m, attack, x, y, eps=0.0)
        assert np.array_equal(run.x_adv, x.numpy())
        assert run.l2.max() == 0
    run = run_attack(model, attack, x, y, eps=0.0)
    assert np.array_equal(run.adv_pred, run.clean_pred)


def test_pgd_is_at_least_as_strong_as_fgsm_at_equal_budget(setup):
    model, chip, x, y = setup
    # on the chip each read is noisy: one read's accuracy of the same 40 adversarial images spreads by +-0.05-0.1
    # (and which borderline image flips follows the thread count), so there the claim is about the mean over reads,
    # within two standard errors of the difference
    for m in (model, chip):
        for eps in (0.05, 0.15):
            fgsm = run_attack(m, "fgsm", x, y, eps=eps)
            pgd = run_attack(m, "pgd", x, y, eps=eps)
            if m is model:
                assert pgd.accuracy <= fgsm.accuracy
            else:
                with torch.no_grad():
                    reads = torch.tensor(
                        [
                            [float((chip(torch.as_tensor(run.x_adv)).argmax(1) == y).float().mean()) for _ in range(10)]
                            for run in (fgsm, pgd)
                        ]
                    )
                gap = reads[1] - reads[0]
                assert gap.mean() <= 2 * gap.std() / 10**0.5 + 1e-9, reads
            assert pgd.linf.max() <= eps + 1e-6 and fgsm.linf.max() <= eps + 1e-6
    assert run_attack(model, "pgd", x, y, eps=0.15).accuracy < run_attack(model, "pgd", x, y, eps=0.0).accuracy


def test_the_same_seed_gives_the_same_adversarial_examples(setup):
    model, chip, x, y = setup
    a = run_attack(model, "square", x, y, eps=0.1, settings={"max_iter": 30}, seed=3)
    b = run_attack(model, "square", x, y, eps=0.1, settings={"max_iter": 30}, seed=3)
    c = run_attack(model, "square", x, y, eps=0.1, settings={"max_iter": 30}, seed=4)
    assert np.array_equal(a.x_adv, b.x_adv) and not np.array_equal(a.x_adv, c.x_adv)


def test_the_chip_is_queried_with_fresh_read_noise_and_eot_averages_it(setup):
    _, chip, x, _ = setup
    with torch.no_grad():
        first, second = chip(x), chip(x)
    assert not torch.equal(first, second)  # each query a new read
    clf = art_classifier(chip, input_shape=(1, 8, 8), num_classes=10, eot_samples=4)
    chip.zero_grad()
    before = clf.model.queries
    probs = np.exp(clf.predict(x.numpy()))
    assert np.allclose(probs.sum(1), 1, atol=1e-4)  # logits are the log of the mean probability
    assert clf.model.queries - before == len(x)  # an EOT query counts once
    grad = clf.loss_gradient(x.numpy(), np.eye(10)[np.zeros(len(x), int)])
    assert grad.shape == x.shape and np.abs(grad).sum() > 0  # straight-through gradients reach the input


def test_chip_backward_mode_is_set_for_the_attack_and_restored(setup):
    _, chip, x, y = setup
    from cimkit.sim.convert import cim_layers

    layers = cim_layers(chip)
    run = run_attack(chip, "fgsm", x, y, eps=0.1, backward="chip")
    assert run.accuracy < run.clean_accuracy
    assert all(layer.backward_mode == "straight_through" for layer in layers)


@pytest.mark.parametrize("attack", ["cw", "deepfool", "hopskipjump", "simba", "boundary"])
def test_minimal_perturbation_attacks_find_examples_and_their_curve_falls_with_radius(setup, attack):
    model, _, x, y = setup
    small = {
        "cw": {"max_iter": 5, "binary_search_steps": 2},
        "deepfool": {"max_iter": 10},
        "hopskipjump": {"max_iter": 3, "max_eval": 50, "init_eval": 10},
        "simba": {"max_iter": 100},
        "boundary": {"max_iter": 20},
    }[attack]
    n = 12 if attack in ("simba", "boundary") else 40
    run = run_attack(model, attack, x[:n], y[:n], settings=small)
    fooled = (run.clean_pred == run.labels) & (run.adv_pred != run.labels)
    assert fooled.any()
    radii = [0.0, 0.5, 1.0, 2.0, 1e9]
    acc = [run.accuracy_at(r) for r in radii]
    assert acc == sorted(acc, reverse=True)  # robust accuracy falls as the attacker may go further
    assert acc[0] == run.clean_accuracy  # no perturbation allowed
    assert acc[-1] == pytest.approx(float(((run.clean_pred == run.labels) & (run.adv_pred == run.labels)).mean()))


def test_accuracy_vs_strength_and_transfer_matrix(setup, tmp_path):
    model, chip, x, y = setup
    res = accuracy_vs_strength({"ideal": model, "chip": chip}, "fgsm", x, y, [0.0, 0.1, 0.3])
    for curve in res.curves:
        assert curve.accuracy[0] == pytest.approx(curve.clean_accuracy, abs=0.06)  # chip: one more noisy read
        assert curve.accuracy[-1] < curve.accuracy[0]
    tm = transfer_matrix({"ideal": model, "chip": chip}, x, y, attack="pgd", eps=0.2)
    assert tm.sources == tm.targets == ["ideal", "chip"]
    assert all(0 <= v <= 1 for row in tm.transfer for v in row)
    assert tm.transfer[0][0] < 0.5  # white box on the float model
    data = json.loads(tm.to_json())
    assert data["transfer"]["accuracy"] == tm.transfer
    names = sorted(p.name for p in res.figures(tmp_path) + tm.figures(tmp_path))
    assert names == ["attack_fgsm.png", "transfer.png"]


def test_every_attack_is_described():
    assert set(ATTACKS) == {"fgsm", "pgd", "cw", "deepfool", "square", "hopskipjump", "boundary", "simba"}
    assert {a.box for a in ATTACKS.values()} == {"white", "black"}
    assert all(a.note for a in ATTACKS.values())


def test_bad_attack_input_is_refused_clearly(setup):
    model, _, x, y = setup
    with pytest.raises(InputError, match="attacks: fgsm"):
        run_attack(model, "rowhammer", x, y, eps=0.1)
    with pytest.raises(InputError, match="takes a budget; pass eps"):
        run_attack(model, "pgd", x, y)
    with pytest.raises(InputError, match="run_attack: eps = -0.1 is not allowed; eps must be a finite number >= 0"):
        run_attack(model, "fgsm", x, y, eps=-0.1)
    with pytest.raises(InputError, match="one integer label per input"):
        run_attack(model, "fgsm", x, y[:3], eps=0.1)
    with pytest.raises(InputError, match="refuses the settings"):
        run_attack(model, "pgd", x, y, eps=0.1, settings={"warp_drive": 1})
    with pytest.raises(InputError, match="backward must be"):
        run_attack(model, "fgsm", x, y, eps=0.1, backward="sideways")
    with pytest.raises(InputError, match="non-finite"):
        run_attack(model, "fgsm", x * float("nan"), y, eps=0.1)
    with pytest.raises(InputError, match="dict of name"):
        transfer_matrix([model], x, y, eps=0.1)


def test_an_attack_on_a_chip_is_reproducible_whatever_ran_before(setup):
    _, chip, x, y = setup
    a = run_attack(chip, "deepfool", x, y, settings={"max_iter": 10}, seed=0)
    with torch.no_grad():
        chip(x)  # other queries in between
    b = run_attack(chip, "deepfool", x, y, settings={"max_iter": 10}, seed=0)
    c = run_attack(chip, "deepfool", x, y, settings={"max_iter": 10}, seed=1)
    assert np.array_equal(a.x_adv, b.x_adv) and np.array_equal(a.adv_pred, b.adv_pred)
    assert not np.array_equal(a.x_adv, c.x_adv)


def test_inputs_outside_the_clip_range_are_refused(setup):
    model, _, x, y = setup
    with pytest.raises(InputError, match="outside the valid input range"):
        run_attack(model, "fgsm", (x - 0.5) / 0.3, y, eps=0.1)
    run = run_attack(model, "fgsm", x * 2 - 1, y, eps=0.1, clip_values=(-1, 1))
    assert run.x_adv.min() >= -1 and run.x_adv.max() <= 1
