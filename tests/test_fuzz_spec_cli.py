"""Fuzzing the hardware-description loader and the command line (issue 9): whatever the input, the
answer is a valid spec or one CimkitError naming what is wrong; never a traceback or a hang."""

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cimkit as ck
from cimkit.cli import app
from cimkit.errors import CimkitError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BASE = ck.HardwareSpec.preset("rram-22nm").model_dump(mode="json")
FIELDS = [(section, key) for section, body in BASE.items() if isinstance(body, dict) for key in body] + [
    (key, None) for key, body in BASE.items() if not isinstance(body, dict)
]

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet="x", min_size=1000, max_size=5000),
    st.lists(st.floats(allow_nan=True), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["rram", "differential", "bit_serial", "calibrated", "sar", "1e3", ".inf", "-0"]),
)


@st.composite
def spec_dicts(draw):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for _ in range(draw(st.integers(1, 4))):
        section, key = draw(st.sampled_from(FIELDS))
        if key is None:
            data[section] = draw(odd_values)
        elif isinstance(data.get(section), dict):
            data[section][key] = draw(odd_values)
    if draw(st.booleans()):
        data[draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = draw(odd_values)
    return data


def _check_outcome(load):
    try:
        spec = load()
    except CimkitError as exc:
        text = str(exc)
        assert text and len(text) < 4000, text[:200]
        return None
    assert isinstance(spec, ck.HardwareSpec)
    return spec


@FUZZ
@given(spec_dicts())
def test_random_spec_dicts_give_a_spec_or_a_clear_error(data):
    spec = _check_outcome(lambda: ck.HardwareSpec.from_dict(data, source="fuzz"))
    if spec is not None:  # whatever validates round-trips through YAML
        assert ck.HardwareSpec.from_dict(yaml.safe_load(spec.to_yaml())) == spec


PRESET_TEXT = ck.HardwareSpec.preset("pcm").to_yaml().encode()


@st.composite
def mutated_yaml(draw):
    raw = bytearray(PRESET_TEXT)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        i = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[i] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = draw(
                st.sampled_from(
                    [
                        b"&a ",
                        b"*a",
                        b"\n  ",
                        b": ",
                        b"{",
                        b"[",
                        b"- ",
                        b"\t",
                        b"!!python/object ",
                        b".nan",
                        b"true",
                        b"\xff",
                        b"\x00",
                        b"\n" + b" " * 40 + b"x: 1",
                    ]
                )
            )
        elif op == "delete" and raw:
            del raw[i : i + draw(st.integers(1, 20))]
        else:
            del raw[i:]
    return bytes(raw)


@FUZZ
@given(mutated_yaml())
def test_mutated_spec_files_give_a_spec_or_a_clear_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "chip.yaml"
    path.write_bytes(raw)
    _check_outcome(lambda: ck.HardwareSpec.from_yaml(path))


runner = CliRunner()
networks = st.one_of(
    st.sampled_from(["lenet", "vgg8", "nope", "x.csv", "x.onnx", "", "../..", "-"]), st.text(max_size=12)
)
chips = st.one_of(
    st.sampled_from(["rram-22nm", "pcm", "ideal", "sram", "neurram", "nope", "x.yaml", "/", ""]), st.text(max_size=12)
)
paths = st.one_of(st.none(), st.sampled_from(["o.json", "o.foo", ".", "sub/dir/o.png", "", "o.pdf"]))


@settings(FUZZ, max_examples=25)
@given(networks, chips, paths, paths)
def test_cli_estimate_answers_any_arguments_with_a_result_or_one_error(tmp_path_factory, network, chip, js, plot):
    folder = tmp_path_factory.mktemp("cli")
    args = ["estimate", network, "--hw", chip]
    if js is not None:
        args += ["--json", str(folder / js) if js else ""]
    if plot is not None:
        args += ["--plot", str(folder / plot) if plot else ""]
    res = runner.invoke(app, args)
    # a usage error (exit 2) is typer's own one-screen message; everything else is a CimkitError,
    # which `cimkit` prints as one 'error:' message with exit code 2
    assert res.exception is None or isinstance(res.exception, (CimkitError, SystemExit)), repr(res.exception)
    if res.exit_code == 0:
        assert "TOPS/W" in res.output


@FUZZ
@given(mutated_yaml())
def test_cli_spec_answers_any_file_with_the_spec_or_one_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cli") / "chip.yaml"
    path.write_bytes(raw)
    res = runner.invoke(app, ["spec", str(path)])
    assert res.exception is None or isinstance(res.exception, (CimkitError, SystemExit)), repr(res.exception)
