"""Studies never give a silent wrong answer: a stored study of other settings is refused, an infeasible
study fails loudly, every study file is checked before any storage exists, outputs are atomic and
Ctrl-C keeps what was stored."""

import errno
import math
import sys

import pytest

pytest.importorskip("optuna")
import optuna  # noqa: E402

import cimkit as ck  # noqa: E402
from cimkit.errors import InputError  # noqa: E402
from cimkit.explore import StudyConfig, run_study  # noqa: E402

NET = "8,8,3,3,3,16,0,1\n8,8,16,3,3,32,1,1\n4,4,32,3,3,32,0,1\n"  # a tiny NeuroSim network: no tracing
BASE = {
    "workloads": ["lenet"],
    "space": {"adc_bits": {"choices": [4, 5, 6]}, "crossbar": {"choices": [64, 128]}},
    "sampler": {"name": "random", "seed": 0},
    "trials": 6,
    "batch": 3,
}


def cfg(**changes) -> StudyConfig:
    return StudyConfig.model_validate({**BASE, **changes})


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run ``cimkit`` as a user does (through main(), which turns input errors into one line)."""
    from cimkit.cli import console, main

    monkeypatch.setattr(sys, "argv", ["cimkit", *args])
    monkeypatch.setattr(console, "_width", 10_000)  # one message, one line (not wrapped at 120 columns)
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code, out.out + out.err


# ---- 1. a stored study is only resumed by the study that made it ------------------------------------


def test_a_study_of_other_settings_in_the_same_storage_is_refused(tmp_path):
    run_study(cfg(), tmp_path)
    with pytest.raises(InputError, match=r"other settings.*workloads.*another --out.*name:.*study\.db"):
        run_study(cfg(workloads=["vgg8"]), tmp_path)
    with pytest.raises(InputError, match=r"differing: objective"):
        run_study(cfg(objective={"metrics": ["energy"]}), tmp_path)
    with pytest.raises(InputError, match=r"differing: .*area_max_mm2"):
        run_study(cfg(area_max_mm2=100.0), tmp_path)
    with pytest.raises(InputError, match=r"differing: space"):  # was an Optuna traceback
        run_study(cfg(space={"adc_bits": {"choices": [4, 5]}}), tmp_path)
    with pytest.raises(InputError, match=r"differing: .*sampler"):
        run_study(cfg(sampler={"name": "random", "seed": 1}), tmp_path)
    # what does not change the trials does not matter: more trials, another batch size
    assert run_study(cfg(trials=9, batch=2), tmp_path).completed == 9


def test_two_study_files_without_a_name_share_no_trials(tmp_path, monkeypatch, capsys):
    write(
        tmp_path / "a.yaml",
        "workloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\nsampler: {name: random}\ntrials: 4\nbatch: 2\n",
    )
    write(
        tmp_path / "b.yaml",
        "workloads: [vgg8]\nspace: {adc_bits: {choices: [4, 5]}}\nsampler: {name: random}\ntrials: 4\nbatch: 2\n",
    )
    out = str(tmp_path / "out")
    assert cli(monkeypatch, capsys, "explore", str(tmp_path / "a.yaml"), "--out", out)[0] == 0
    code, text = cli(monkeypatch, capsys, "explore", str(tmp_path / "b.yaml"), "--out", out)
    assert code == 2 and "0 evaluated now" not in text and "other settings" in text and "Traceback" not in text


def test_changed_workload_file_or_chip_file_is_noticed(tmp_path):
    net, chip = write(tmp_path / "net.csv", NET), write(tmp_path / "chip.yaml", "periphery: {adc_bits: 6}\n")
    study = cfg(workloads=[str(net)], hardware=str(chip), space={"crossbar": {"choices": [64, 128]}}, trials=3)
    run_study(study, tmp_path / "o")
    net.write_text(NET.replace("32,1,1", "64,1,1"))
    with pytest.raises(InputError, match="differing: workloads"):
        run_study(study, tmp_path / "o")
    net.write_text(NET)
    chip.write_text("periphery: {adc_bits: 5}\n")
    with pytest.raises(InputError, match=r"differing: hardware \(periphery\.adc_bits: 6 -> 5\)"):
        run_study(study, tmp_path / "o")


def test_a_study_stored_without_a_fingerprint_needs_adopt(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    legacy = optuna.create_study(study_name="study", storage=url)
    legacy.add_trial(
        optuna.trial.create_trial(
            params={"adc_bits": 5, "crossbar": 64},
            value=1.0,
            distributions={
                "adc_bits": optuna.distributions.CategoricalDistribution([4, 5, 6]),
                "crossbar": optuna.distributions.CategoricalDistribution([64, 128]),
            },
        )
    )
    with pytest.raises(InputError, match=r"older cimkit.*--adopt.*another --out"):
        run_study(cfg(), tmp_path)
    with pytest.raises(InputError, match="cannot adopt"):  # other parameters: never adopted
        run_study(cfg(space={"adc_bits": {"choices": [4, 5, 6]}}), tmp_path, adopt=True)
    assert run_study(cfg(), tmp_path, adopt=True).completed == 6
    assert run_study(cfg(), tmp_path).completed == 6  # recorded: resumes without --adopt


# ---- 2. infeasible studies and unpriceable designs ----------------------------------------------------


def test_nothing_feasible_is_an_error_with_trials_written(tmp_path, monkeypatch, capsys):
    study = write(
        tmp_path / "s.yaml",
        "workloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\narea_max_mm2: 0.001\n"
        "sampler: {name: random}\ntrials: 4\nbatch: 2\n",
    )
    out = tmp_path / "o"
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(out))
    assert code != 0 and "no feasible design" in text and "area over the cap: 4" in text
    assert "nan" not in text.lower().replace("none feasible", "")
    assert (out / "trials.csv").exists() and not list(out.glob("best_*.yaml"))


def test_nan_weights_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"weights.*finite"):
        StudyConfig.from_yaml(
            write(
                tmp_path / "s.yaml",
                "workloads: [lenet]\nspace: {adc_bits: {choices: [4]}}\n"
                "objective: {mode: weighted, metrics: [energy, area], weights: [.nan, 1]}\n",
            )
        )


def test_unpriceable_designs_never_count_as_best(tmp_path):
    from cimkit.explore.study import Objective

    good = cfg()  # bypass validation, as a script could: every score is NaN, so the 1e30 sentinel
    bad = StudyConfig.model_construct(
        **{
            **dict(good),
            "objective": Objective.model_construct(
                mode="weighted", metrics=["energy", "area"], weights=[math.nan, 1.0], joint="max"
            ),
        }
    )
    result = run_study(bad, tmp_path / "o")
    assert result.best_trials == [] and not list((tmp_path / "o").glob("best_*.yaml"))
    assert all(t.user_attrs["constraints"][0] > 0 for t in result.study.trials)  # flagged for the sampler too


def test_pareto_front_is_the_front_of_the_feasible_trials():
    from cimkit.explore.runner import StudyResult

    study = optuna.create_study(directions=["minimize", "minimize"])
    dist = {"adc_bits": optuna.distributions.IntDistribution(1, 9)}
    for bits, values, cons in (
        (1, [1, 1], [1, 0, 0]),
        (2, [2, 3], [0, 0, 0]),
        (3, [3, 2], [0, 0, 0]),
        (4, [4, 4], [0, 0, 0]),
    ):
        study.add_trial(
            optuna.trial.create_trial(
                params={"adc_bits": bits}, distributions=dist, values=values, user_attrs={"constraints": cons}
            )
        )
    best = StudyResult(study, 4, 0, 0.0, None).best_trials
    assert sorted(t.params["adc_bits"] for t in best) == [2, 3]  # the infeasible (1, 1) hides neither


def test_float_parameter_ranges_are_searched_as_floats(tmp_path):
    result = run_study(cfg(space={"read_latency_ns": {"low": 1, "high": 10}}, trials=8, batch=8), tmp_path)
    values = [t.params["read_latency_ns"] for t in result.study.trials]
    assert any(not float(v).is_integer() for v in values)  # {low: 1, high: 10} searched only 1, 2, ..., 10


# ---- 3. the study file, checked before any storage exists -----------------------------------------


@pytest.mark.parametrize(
    "space, message",
    [
        ("{supply_v: {low: 0.6, high: 0.9, step: 0}}", "step"),
        ("{supply_v: {low: 0.6, high: 0.9, step: -0.1}}", "step"),
        ("{supply_v: {low: 0.6, high: 0.9, step: 0.1, log: true}}", "log and step"),
        ("{supply_v: {low: 0, high: 0.9, log: true}}", "log range needs low > 0"),
        ("{supply_v: {low: .nan, high: 0.9}}", "finite"),
        ("{supply_v: {low: 0.6, high: .inf}}", "finite"),
        ("{supply_v: {low: 0.6, high: 0.9, step: 0.07}}", "not a multiple of step"),
        ("{adc_bits: {choices: [4, true]}}", "not a number"),
        ("{adc_bits: {choices: [4, five]}}", "not a number"),
        ("{adc_bits: {choices: [4, 4]}}", "repeat"),
        ("{adc_bits: {choices: [4, 5.5]}}", "space.adc_bits: .*whole"),
        ("{adc_bits: {low: 3.5, high: 6}}", "space.adc_bits: .*whole"),
        ("{adc_bits: {choices: [4], low: 1, high: 2}}", "either choices or low/high"),
        ("{supply_v: {low: 0.6, high: 0.9, log: 1}}", "boolean"),
        ("{crossbar: {choices: [64]}, rows: {choices: [64]}}", "crossbar sets both"),
    ],
)
def test_bad_spaces_are_refused(tmp_path, space, message):
    with pytest.raises(InputError, match=message):
        StudyConfig.from_yaml(write(tmp_path / "s.yaml", f"workloads: [lenet]\nspace: {space}\n"))


@pytest.mark.parametrize(
    "line, message",
    [
        ("objective: {metrics: []}", "metrics"),
        ("objective: {mode: pareto, metrics: [energy, energy]}", "repeat a metric"),
        ("objective: {mode: weighted, metrics: [energy, area], weights: [1]}", "one weight per metric"),
        ("objective: {mode: weighted, metrics: [energy, area], weights: [-1, 1]}", ">= 0"),
        ("objective: {metrics: [energy], weights: [2]}", "weighted' only"),
        ("sampler: {name: annealing}", "sampler.name"),
        ("sampler: {seed: -1}", "sampler.seed"),
        ("sampler: {name: grid}\n", "grid' needs choices or a step for supply_v"),
        ("name: ../../etc/x", "not a safe study name"),
        ("name: a/b", "not a safe study name"),
        ("name: ''", "not a safe study name"),
        (f"name: {'x' * 101}", "not a safe study name"),
        ("storage: notaurl", "not a database URL"),
        ("storage: 'sqlite://relative.db'", "sqlite:///"),
        ("executor: dask\nscheduler: notaurl", "not a Dask scheduler address"),
        ("executor: dask\nscheduler: 'tcp://host:99999'", "not a Dask scheduler address"),
        ("scheduler: 'tcp://127.0.0.1:8786'", "executor is 'serial'"),
        ("trials: 0", "trials"),
        ("batch: -5", "batch"),
        ("workers: 0", "workers"),
        ("area_max_mm2: .inf", "area_max_mm2"),
        ("workloads: [lenet, lenet]", "given twice"),
        ("workloads: [{torch: 'not a factory', input_shape: [1, 3]}]", "package.module:function"),
        ("workloads: [{torch: 'm:f', input_shape: [1, 0]}]", "input_shape"),
    ],
)
def test_bad_study_settings_are_refused(tmp_path, line, message):
    text = f"space: {{adc_bits: {{choices: [4]}}, supply_v: {{low: 0.6, high: 0.9}}}}\n{line}\n"
    text = text if line.startswith("workloads") else f"workloads: [lenet]\n{text}"
    with pytest.raises(InputError, match=message):
        StudyConfig.from_yaml(write(tmp_path / "s.yaml", text))


@pytest.mark.parametrize(
    "hardware, space, message",
    [
        (
            "rram-22nm",
            {"adc_bits": {"low": 1, "high": 30}},
            r"space\.adc_bits: 30 is outside what periphery\.adc_bits allows \(.*24",
        ),
        (
            "pcm",
            {"adc_bits": {"choices": [1, 4]}},  # the chip, not the field alone, refuses 1 bit
            r"space\.adc_bits: 1 is outside what periphery\.adc_bits allows .*differential",
        ),
        (
            "rram-22nm",
            {"supply_v": {"low": 0.5, "high": 7}},
            r"space\.supply_v: 7 is outside what technology\.supply_v allows",
        ),
        (
            "rram-22nm",
            {"crossbar": {"choices": [64, 100000]}},
            r"space\.crossbar: 100000 is outside what array\.rows and array\.cols",
        ),
    ],
)
def test_values_the_chip_cannot_take_are_refused_before_storage(tmp_path, hardware, space, message):
    with pytest.raises(InputError, match=message):
        run_study(cfg(hardware=hardware, space=space), tmp_path / "o")
    assert not (tmp_path / "o").exists()  # neither a storage nor the output folder


@pytest.mark.parametrize(
    "factory, message",
    [
        ("cimkit.explore.study:PARAMETERS", "is not callable"),
        ("cimkit.workload.zoo:model", "calling it without arguments failed: TypeError"),
        ("builtins:dict", "returned dict .* not a torch.nn.Module"),
        ("cimkit.nowhere:fn", "cannot import"),
    ],
)
def test_bad_torch_factories_are_refused_before_storage(tmp_path, factory, message):
    with pytest.raises(InputError, match=message):
        run_study(cfg(workloads=[{"torch": factory, "input_shape": [1, 1, 28, 28]}]), tmp_path / "o")
    assert not list((tmp_path / "o").glob("*.db"))


def test_paths_are_relative_to_the_study_file(tmp_path, monkeypatch):
    write(tmp_path / "studies" / "chip.yaml", "periphery: {adc_bits: 6}\n")
    write(tmp_path / "studies" / "nets" / "net.csv", NET)
    study = write(
        tmp_path / "studies" / "s.yaml",
        "workloads: [nets/net.csv]\nhardware: chip.yaml\n"
        "space: {crossbar: {choices: [64, 128]}}\nsampler: {name: random}\ntrials: 2\nbatch: 2\n",
    )
    monkeypatch.chdir(tmp_path)  # not the study file's folder
    result = run_study(StudyConfig.from_yaml("studies/s.yaml"), "out")
    assert result.completed == 2 and (tmp_path / "out" / "trials.csv").exists()
    write(study, "workloads: [lenet]\nhardware: nowhere.yaml\nspace: {crossbar: {choices: [64]}}\n")
    with pytest.raises(
        InputError, match=r"hardware: no such .*studies.nowhere\.yaml \(paths in a study file are relative"
    ):
        run_study(StudyConfig.from_yaml(study), "out2")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "0"], "trials = 0"),
        (["--trials", "-5"], "trials = -5"),
        (["--workers", "0"], "workers = 0"),
        (["--scheduler", "notaurl"], "not a Dask scheduler address"),
    ],
)
def test_bad_command_line_overrides_are_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    study = write(
        tmp_path / "s.yaml", "workloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\ntrials: 2\nbatch: 2\n"
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(tmp_path / "o"), *args)
    assert code == 2 and message in text and len(text.strip().splitlines()) == 1 and "Traceback" not in text
    assert not (tmp_path / "o").exists()


def test_with_overrides_validates():
    assert cfg().with_overrides(trials=3).trials == 3
    with pytest.raises(InputError, match="trials = 0"):
        cfg().with_overrides(trials=0)
    with pytest.raises(InputError, match="give a whole number of trials"):
        run_study(cfg(), "unused", trials=0)


# ---- 4. outputs and interruptions ---------------------------------------------------------------------


def test_outputs_hold_every_figure_and_say_what_each_best_design_is(tmp_path):
    write(tmp_path / "o" / "best_7.yaml", "name: stale\n")  # from an earlier run with a larger front
    result = run_study(cfg(name="hw", workloads=["lenet", "vgg8"], area_max_mm2=500.0), tmp_path / "o")
    import pandas as pd

    df = pd.read_csv(tmp_path / "o" / "trials.csv")
    for col in (
        "feasible",
        "energy_j",
        "latency_s",
        "area_mm2",
        "edp",
        "edap",
        "energy_j:lenet",
        "latency_s:vgg8",
        "area_mm2:vgg8",
        "weights_do_not_fit",
        "area_over_cap_mm2",
        "accuracy_below_floor",
    ):
        assert col in df.columns, col
    assert len(df) == 6 and df["feasible"].all()
    best = result.best_trials[0]
    row = df[df["number"] == best.number].iloc[0]
    assert row["edap"] == pytest.approx(best.value)  # the objective is the chip's edap (joint: max)
    assert row["edap"] == pytest.approx(row["energy_j"] * row["latency_s"] * row["area_mm2"])
    spec = ck.HardwareSpec.from_yaml(tmp_path / "o" / "best_0.yaml")
    assert f"study 'hw' (trial #{best.number})" in spec.description
    assert f"adc_bits={best.params['adc_bits']}" in spec.description and "edap =" in spec.description
    assert not (tmp_path / "o" / "best_7.yaml").exists()  # never a stale design shown as a best one
    assert not list((tmp_path / "o").glob(".*tmp*"))


def test_ctrl_c_writes_the_outputs_of_the_stored_trials(tmp_path):
    calls = []

    def progress(done, total, best):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(cfg(trials=30), tmp_path, progress=progress)
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "trials.csv")) == 6 and (tmp_path / "best_0.yaml").exists()
    assert run_study(cfg(trials=9), tmp_path).evaluated_now == 3  # and it resumes


def test_ctrl_c_on_the_command_line_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    from cimkit.explore import runner

    real, calls = runner._Search.batch, []

    def batch(self, size):
        calls.append(size)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, size)

    monkeypatch.setattr(runner._Search, "batch", batch)
    study = write(
        tmp_path / "s.yaml",
        "workloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\ntrials: 8\nbatch: 2\nsampler: {name: random}\n",
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(tmp_path / "o"))
    assert code == 130 and "interrupted: 2 trials stored" in text and "Traceback" not in text
    assert (tmp_path / "o" / "trials.csv").exists() and (tmp_path / "o" / "best_0.yaml").exists()


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    blocker = write(tmp_path / "file", "x")
    study = write(
        tmp_path / "s.yaml", "workloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\ntrials: 2\nbatch: 2\n"
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(blocker))
    assert code == 2 and "existing file" in text and len(text.strip().splitlines()) == 1
    with pytest.raises(InputError, match="cannot create the output folder .*file is a file, not a folder"):
        run_study(cfg(), blocker / "sub")
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(blocker / "sub"))
    assert code == 2 and "is a file, not a folder" in text and len(text.strip().splitlines()) == 1


def test_a_full_disk_is_an_input_error_and_leaves_old_outputs_whole(tmp_path, monkeypatch):
    import pandas as pd

    run_study(cfg(), tmp_path)
    before = (tmp_path / "trials.csv").read_text()

    def full(self, path, *args, **kwargs):
        with open(path, "w") as f:
            f.write("number,sta")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(InputError, match="No space left on device"):
        run_study(cfg(trials=7), tmp_path)
    assert (tmp_path / "trials.csv").read_text() == before
    monkeypatch.undo()
    from matplotlib.figure import Figure

    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "disk full"))
    )
    with pytest.raises(InputError, match="disk full"):
        run_study(cfg(trials=8), tmp_path)


# ---- 7. torch-factory workloads in an infeasible space (issue 11's known bug) ----------------------------------
# Before commit 21c7b76 the roomiest-design check joined cfg.workloads as strings: a torch factory entry there
# raised "TypeError: sequence item 0: expected str instance, TorchWorkload found" instead of the clear error.

TINY = {"tiles": {"choices": [1, 2]}, "crossbar": {"choices": [16, 32]}}  # every design too small for LeNet


def _torch_lenet():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, 10),
    )


@pytest.mark.parametrize(
    "workload",
    [{"torch": f"{__name__}:_torch_lenet", "input_shape": [1, 1, 28, 28]}, "lenet"],
    ids=["torch-factory", "zoo"],
)
def test_an_infeasible_space_is_the_same_clear_error_for_torch_factories(tmp_path, workload):
    with pytest.raises(
        InputError,
        match=r"infeasible space: even the roomiest design \{'tiles': 2, 'crossbar': 32\} "
        r"cannot hold the weights of (_torch_lenet|lenet)",
    ):
        run_study(cfg(workloads=[workload], space=TINY), tmp_path / "o")
    assert not (tmp_path / "o").exists()  # checked before any storage or output folder


def test_an_infeasible_space_with_a_torch_factory_through_the_cli(tmp_path, monkeypatch, capsys):
    study = write(
        tmp_path / "s.yaml",
        f"workloads: [{{torch: '{__name__}:_torch_lenet', input_shape: [1, 1, 28, 28]}}, "
        "lenet]\nspace: {tiles: {choices: [1]}, crossbar: {choices: [16]}}\n",
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(tmp_path / "o"))
    assert code == 2 and "infeasible space" in text and "_torch_lenet, lenet" in text
    assert "TypeError" not in text and "internal error" not in text
    chip = write(tmp_path / "chip.yaml", "chip: {tiles: 1}\narray: {rows: 16, cols: 16}\n")  # fixed by the base chip
    study = write(
        tmp_path / "s2.yaml",
        f"workloads: [{{torch: '{__name__}:_torch_lenet', input_shape: [1, 1, 28, 28]}}]\n"
        f"hardware: {chip}\nspace: {{adc_bits: {{choices: [4, 5]}}}}\nexperiment: joint_vs_largest\n",
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(tmp_path / "o2"))
    assert code == 2 and "infeasible space" in text and "_torch_lenet" in text


def test_torch_factory_studies_where_nothing_fits_the_cap_end_in_no_feasible_design(tmp_path, monkeypatch, capsys):
    study = write(
        tmp_path / "s.yaml",
        f"workloads: [{{torch: '{__name__}:_torch_lenet', input_shape: [1, 1, 28, 28]}}]\n"
        "space: {adc_bits: {choices: [4, 5]}}\narea_max_mm2: 0.001\nsampler: {name: random}\ntrials: 2\n"
        "batch: 2\n",
    )
    code, text = cli(monkeypatch, capsys, "explore", str(study), "--out", str(tmp_path / "o"))
    assert code == 1 and "no feasible design" in text and "area over the cap: 2" in text


# ---- 8. the accuracy floor's evaluator: any function given as an import string ---------------------------------
def adc_evaluator(spec):
    """A stand-in accuracy: better with more ADC bits (0.7 at 4 bits, 0.9 at 6)."""
    return 0.5 + 0.1 * (spec.periphery.adc_bits - 2)


def over_one(spec):
    return 1.5


def not_a_number(spec):
    return "high"


def nan_accuracy(spec):
    return float("nan")


def failing(spec):
    raise RuntimeError("no test data here")


NOT_CALLABLE = 0.9


def test_a_custom_evaluator_sets_the_accuracy_constraint(tmp_path):
    from cimkit.explore.study import _ACCURACY_CACHE

    acc = {"evaluator": f"{__name__}:adc_evaluator", "floor": 0.8}
    result = run_study(
        cfg(space={"adc_bits": {"choices": [4, 6]}}, accuracy=acc, sampler={"name": "grid"}, trials=2, batch=2),
        tmp_path / "o",
    )
    gap = {t.params["adc_bits"]: t.user_attrs["constraints"][2] for t in result.study.trials}
    assert gap[4] == pytest.approx(0.1) and gap[6] == pytest.approx(-0.1)
    assert [t.params["adc_bits"] for t in result.best_trials] == [6]
    assert {t.params["adc_bits"]: t.user_attrs["figures"]["accuracy"] for t in result.study.trials} == pytest.approx(
        {4: 0.7, 6: 0.9}
    )
    assert any(f"{__name__}:adc_evaluator" in k for k in _ACCURACY_CACHE)


@pytest.mark.parametrize(
    "accuracy, message",
    [
        (
            {"evaluator": "not an import string", "floor": 0.5},
            r"accuracy\.evaluator = 'not an import string'.*neither "
            r"'demo' nor an import string 'package\.module:function'",
        ),
        ({"evaluator": "pkg.mod:", "floor": 0.5}, r"accuracy\.evaluator = 'pkg\.mod:'"),
        ({"evaluator": 3, "floor": 0.5}, r"accuracy\.evaluator"),
        ({"model": "cnn", "floor": 0.5}, r"accuracy\.evaluator = 'cnn'.*neither 'demo'"),
        ({"evaluator": "demo", "model": "a.b:c", "floor": 0.5}, "not both"),
        ({"evaluator": "a.b:c", "samples": 100, "floor": 0.5}, "samples configures the demo evaluator only"),
    ],
)
def test_malformed_evaluators_are_refused_by_the_study_file_check(tmp_path, accuracy, message):
    with pytest.raises(InputError, match=message):
        StudyConfig._validate({**BASE, "accuracy": accuracy}, "s.yaml")


@pytest.mark.parametrize(
    "evaluator, message",
    [
        (
            "cimkit.nowhere:accuracy",
            r"accuracy\.evaluator = 'cimkit\.nowhere:accuracy': cannot import the module "
            r"'cimkit\.nowhere'",
        ),
        ("cimkit.demo_nope.x:f", "cannot import the module"),
        (
            f"{__name__}:missing",
            rf"accuracy\.evaluator = '{__name__}:missing': '{__name__}' has no attribute 'missing'",
        ),
        (f"{__name__}:NOT_CALLABLE", r"0\.9 is not callable"),
    ],
)
def test_evaluators_that_cannot_be_loaded_are_refused_before_storage(tmp_path, evaluator, message):
    with pytest.raises(InputError, match=message):
        run_study(cfg(accuracy={"evaluator": evaluator, "floor": 0.5}), tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "evaluator, message",
    [
        ("over_one", r"returned 1\.5 .*a number in \[0, 1\]"),
        ("not_a_number", r"returned 'high' .*a number in \[0, 1\]"),
        ("nan_accuracy", r"returned nan .*a number in \[0, 1\]"),
        ("failing", "failed on the chip 'rram-22nm': RuntimeError: 'no test data here'"),
    ],
)
def test_evaluators_that_return_no_accuracy_are_named(tmp_path, evaluator, message):
    with pytest.raises(InputError, match=rf"accuracy\.evaluator = '{__name__}:{evaluator}' {message}"):
        run_study(cfg(accuracy={"evaluator": f"{__name__}:{evaluator}", "floor": 0.5}), tmp_path / "o")


def test_the_demo_evaluator_keeps_its_older_name_and_fingerprint(tmp_path):
    import json

    from cimkit.explore import fingerprint, prepare_study

    old = write(
        tmp_path / "old.yaml",
        "workloads: [lenet]\nspace: {adc_bits: {choices: [4]}}\naccuracy: {model: demo, floor: 0.95, samples: 300}\n",
    )
    new = write(
        tmp_path / "new.yaml",
        "workloads: [lenet]\nspace: {adc_bits: {choices: [4]}}\n"
        "accuracy: {evaluator: 'cimkit.demo:accuracy_floor_evaluator', floor: 0.95}\n",
    )
    a, b = StudyConfig.from_yaml(old), StudyConfig.from_yaml(new)
    assert a.accuracy == b.accuracy and a.accuracy.evaluator == "demo" and a.accuracy.model == "demo"
    fp = fingerprint(a, *prepare_study(a))
    # the form studies stored before evaluators existed: resuming them is not refused
    assert json.loads(fp["accuracy"]) == {"model": "demo", "floor": 0.95, "samples": 300, "seed": 0}
    custom = cfg(accuracy={"evaluator": f"{__name__}:adc_evaluator", "floor": 0.5})
    assert (
        json.loads(fingerprint(custom, *prepare_study(custom))["accuracy"])["evaluator"] == f"{__name__}:adc_evaluator"
    )
