"""Fuzzing the study file: whatever a study file holds, reading and checking it (everything done before
a storage is created) ends in a cimkit error with a short message, or in a valid study; never another
exception, a huge message or a hang. No Optuna study is run here."""

import signal
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimkit.errors import CimkitError
from cimkit.explore import PARAMETERS, StudyConfig, prepare_study

FIELDS = list(StudyConfig.model_fields)
LIMIT = 2000  # characters of an error message
SETTINGS = dict(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

numbers = st.one_of(
    st.integers(-5, 300),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 4, 8, 64, 0.5, 0.6, 0.9, 1e300, -0.0, 2**32, 2**63]),
)
words = st.sampled_from(
    [
        "lenet",
        "vgg8",
        "resnet20",
        "nope",
        "net.csv",
        "../../net.csv",
        "m.onnx",
        "rram-22nm",
        "pcm",
        "chip.yaml",
        "/nonexistent/chip.yml",
        "x" * 300,
        "a/b",
        "..",
        "",
        " ",
        "tcp://127.0.0.1:8786",
        "notaurl",
        "sqlite:///s.db",
        "postgresql://u@h:1/d",
        "sqlite://x",
        "nsga2",
        "grid",
        "tpe",
        "edap",
        "energy",
        "weighted",
        "pareto",
        "max",
        "dask",
        "serial",
        "joint_vs_largest",
        "demo",
        "a\x00b",
        "\u00e9t\u00e9",
        "x" * 5000,
    ]
)
scalars = st.one_of(st.none(), st.booleans(), numbers, words, st.text(string.printable, max_size=20))
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
factories = st.sampled_from(
    [
        "cimkit.workload.zoo:lenet",
        "builtins:dict",
        "os.path:join",
        "math:pi",
        "cimkit.nowhere:fn",
        "cimkit.workload.zoo:model",
        "not a factory",
        "",
    ]
)
torch_entry = st.fixed_dictionaries(
    {"torch": factories},
    optional={
        "input_shape": st.one_of(st.lists(st.integers(-2, 40), max_size=5), st.just([1, 1, 28, 28]), anything),
        "name": st.one_of(words, anything),
    },
)
param = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.one_of(st.lists(st.one_of(numbers, scalars), max_size=5), anything),
        "low": st.one_of(numbers, scalars),
        "high": st.one_of(numbers, scalars),
        "step": st.one_of(numbers, scalars),
        "log": scalars,
        "integer": scalars,
        "extra": scalars,
    },
)
space = st.dictionaries(st.sampled_from([*PARAMETERS, "bogus"]), st.one_of(param, anything), max_size=3)
objective = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.one_of(st.sampled_from(["single", "weighted", "pareto"]), scalars),
        "metrics": st.one_of(
            st.lists(st.sampled_from(["energy", "latency", "area", "edp", "edap", "power"]), max_size=4), anything
        ),
        "weights": st.one_of(st.lists(numbers, max_size=4), anything),
        "joint": st.one_of(words, scalars),
    },
)
PER_KEY = {
    "name": st.one_of(words, scalars),
    "workloads": st.one_of(st.lists(st.one_of(words, torch_entry), max_size=3), anything),
    "hardware": st.one_of(words, scalars),
    "space": st.one_of(space, anything),
    "objective": st.one_of(objective, anything),
    "area_max_mm2": st.one_of(numbers, scalars),
    "accuracy": st.one_of(
        st.fixed_dictionaries({"floor": st.one_of(numbers, scalars)}, optional={"samples": numbers, "model": words}),
        anything,
    ),
    "sampler": st.one_of(
        st.fixed_dictionaries({}, optional={"name": words, "population": numbers, "seed": numbers}), anything
    ),
    "trials": st.one_of(numbers, scalars),
    "batch": st.one_of(numbers, scalars),
    "storage": st.one_of(words, scalars),
    "experiment": st.one_of(words, scalars),
    "executor": st.one_of(words, scalars),
    "scheduler": st.one_of(words, scalars),
    "workers": st.one_of(numbers, scalars),
    "scheduler_timeout_s": st.one_of(numbers, scalars),
    "junk": anything,
}
# a few keys changed at a time, so that most studies get past the first error to the later checks
changes = st.lists(st.one_of(*[st.tuples(st.just(k), v) for k, v in PER_KEY.items()]), max_size=3).map(dict)
VALID = {"workloads": ["lenet"], "space": {"adc_bits": {"choices": [4, 5]}, "supply_v": {"low": 0.6, "high": 0.9}}}


def _study(changes: dict, dropped: set) -> dict:
    """A valid study with some keys changed to random values and some dropped."""
    return {k: v for k, v in {**VALID, **changes}.items() if k not in dropped}


study = st.builds(_study, changes, st.sets(st.sampled_from(["workloads", "space"]), max_size=1))


class _Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Hang("took longer than 20 s")


@pytest.fixture(scope="module", autouse=True)
def _warm_and_guard():
    from cimkit.explore.checks import _zoo_workload

    _zoo_workload("lenet")  # the first trace in a process warms torch.fx up (seconds); not the property's time
    old = signal.signal(signal.SIGALRM, _alarm)
    yield
    signal.signal(signal.SIGALRM, old)


def check(path) -> None:
    """Read and check ``path`` as a study file; only a short CimkitError may come out."""
    signal.alarm(20)
    try:
        cfg = StudyConfig.from_yaml(path)
        prepare_study(cfg)
    except CimkitError as exc:
        text = str(exc)
        assert text.strip(), "an empty error message"
        assert len(text) < LIMIT, f"a {len(text):,}-character message: {text[:300]}..."
    finally:
        signal.alarm(0)


@settings(**SETTINGS)
@given(data=study)
def test_fuzzed_study_dicts_give_only_short_cimkit_errors(tmp_path, data):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    check(path)


@settings(**{**SETTINGS, "max_examples": 80})
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
        st.integers(1, 200).map(lambda n: "[" * n + "]" * n),
        st.integers(1, 60).map(lambda n: "a: " * n + "1"),
        st.sampled_from(
            [
                "a: &x [1]\nb: *x\n",
                "workloads: [lenet]\nworkloads: [vgg8]\n",
                "\ufeff",
                "",
                "# only a comment\n",
                "- 1\n- 2\n",
                "workloads: [lenet]\nspace: {adc_bits: {choices: [4]}}\n",
            ]
        ),
    )
)
def test_fuzzed_yaml_text_gives_only_short_cimkit_errors(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    check(path)


sensible = st.one_of(
    st.integers(-2, 70000), st.floats(-1, 100, allow_nan=False), st.sampled_from([0.5, 0.6, 0.8, 1e9, 32])
)
space_study = st.fixed_dictionaries(
    {
        "workloads": st.lists(
            st.sampled_from(["lenet", "vgg8", "resnet20", "nope", "n.csv"]), min_size=1, max_size=2, unique=True
        ),
        "hardware": st.sampled_from(["rram-22nm", "pcm", "sram", "ideal", "neurram", "nope", "chip.yaml"]),
        "space": st.dictionaries(
            st.sampled_from(list(PARAMETERS)),
            st.one_of(
                st.fixed_dictionaries({"choices": st.lists(sensible, min_size=1, max_size=4, unique=True)}),
                st.fixed_dictionaries(
                    {"low": sensible, "high": sensible}, optional={"step": sensible, "log": st.booleans()}
                ),
            ),
            min_size=1,
            max_size=4,
        ),
        "sampler": st.fixed_dictionaries({"name": st.sampled_from(["random", "grid", "nsga2"])}),
    },
    optional={"area_max_mm2": sensible, "objective": objective},
)


@settings(**{**SETTINGS, "max_examples": 60})
@given(data=space_study)
def test_fuzzed_spaces_against_the_chip_give_only_short_cimkit_errors(tmp_path, data):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "chip.yaml").write_text("chip: {tiles: 2}\nperiphery: {adc_bits: 6}\n")
    (tmp_path / "n.csv").write_text("8,8,3,3,3,16,0,1\n")
    check(path)
