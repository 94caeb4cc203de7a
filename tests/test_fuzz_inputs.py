"""Property-based bad-input tests for search-space YAML and the command line.

Every malformed space ends in a one-line :class:`SpaceError`, and every space that validates samples
a complete configuration. Every command line ends with exit code 0 (help) or 2 and one line on
stderr: never a traceback, never a hang (each example is bounded by pytest-timeout and by inputs
that fail before Ray or training would start).
"""

from __future__ import annotations

import copy
import io
import contextlib

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agesearch.search.space import SearchSpace, SpaceError, load_space

BASE = {
    "metric": "mae_few",
    "fixed": {"n_blocks": 1, "d_block": 16, "attention_n_heads": 4, "max_epochs": 2, "patience": 2},
    "data": {"bin_width": 1, "regions": {"mode": "absolute", "many": 100, "few": 20}},
    "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 1},
    "params": {
        "strategy": {"type": "categorical", "choices": ["none", "sqrt_inv", "lds"]},
        "loss": {"type": "categorical", "choices": ["l1", "huber"]},
        "lr": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
        "batch_size": {"type": "int", "low": 64, "high": 256, "step": 64},
    },
    "conditional": [
        {"when": {"strategy": "lds"}, "params": {"lds_sigma": {"type": "float", "low": 0.5, "high": 4.0}}},
        {"when": {"loss": "huber"}, "params": {"huber_delta": {"type": "float", "low": 0.5, "high": 5.0}}},
    ],
}

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "<script>", "l1", "float", "int", "categorical", "median", "1e-3", "none"]),
    st.lists(st.sampled_from([None, 1, "a", 0.5, "l1", "none"]), max_size=3),
    st.dictionaries(st.sampled_from(["type", "low", "high", "choices", "log", "step", "name", "zzz"]),
                    st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3), st.booleans()),
                    max_size=4),
)  # fmt: skip

PATHS = [
    ("metric",), ("mode",), ("fixed",), ("fixed", "n_blocks"), ("fixed", "max_epochs"), ("fixed", "colour"),
    ("data",), ("data", "bin_width"), ("data", "regions"), ("data", "regions", "few"), ("data", "fractions"),
    ("pruner",), ("pruner", "name"), ("pruner", "n_warmup_steps"), ("pruner", "bogus"),
    ("params",), ("params", "lr"), ("params", "lr", "low"), ("params", "lr", "high"), ("params", "lr", "log"),
    ("params", "lr", "type"), ("params", "loss", "choices"), ("params", "strategy", "choices"),
    ("params", "batch_size", "step"), ("params", "batch_size", "low"), ("params", "unknown_key"),
    ("conditional",), ("conditional", 0), ("conditional", 0, "when"), ("conditional", 0, "params"),
    ("conditional", 1, "when", "loss"), ("unknown_top",),
]  # fmt: skip


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


@st.composite
def mutated_spaces(draw):
    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        try:
            _set(raw, path, draw(JUNK))
        except (KeyError, IndexError, TypeError):  # an earlier mutation replaced a parent
            pass
    special = draw(st.sampled_from(["none", "empty_choices", "inverted", "swap_types", "drop"]))
    if special == "empty_choices" and isinstance(raw.get("params"), dict) and isinstance(raw["params"].get("loss"), dict):
        raw["params"]["loss"]["choices"] = []
    elif special == "inverted" and isinstance(raw.get("params"), dict) and isinstance(raw["params"].get("lr"), dict):
        raw["params"]["lr"].update(low=1e-2, high=1e-4)
    elif special == "swap_types":
        raw["params"] = [raw.get("params")]
    elif special == "drop":
        raw.pop(draw(st.sampled_from(list(raw))), None)
    return raw


def _check_one_line(exc: BaseException) -> None:
    msg = str(exc)
    assert msg.strip(), "empty error message"
    assert "\n" not in msg and len(msg) < 2000, msg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=mutated_spaces())
def test_fuzzed_space_yaml_is_refused_in_one_line_or_samples(tmp_path, raw):
    path = tmp_path / "space.yaml"
    try:
        path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    except yaml.YAMLError:  # pragma: no cover - not representable as YAML
        return
    try:
        sp = load_space(path)
    except SpaceError as exc:
        _check_one_line(exc)
        return
    # Accepted: it must sample a full, well-typed configuration for several trials.
    from agesearch.trainer import resolve_config

    f = sp.define_by_run()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        cfg = f(study.ask())
        assert isinstance(cfg, dict) and "lr" in cfg
        for k, v in cfg.items():
            assert isinstance(k, str) and v is not None, (k, v)
        resolve_config(cfg)  # the trainer accepts every sampled configuration


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "- a\n- b", "a: [", "params: 3", "!!python/object/apply:os.system ['echo hi']",
                     "metric: {", "\t", "null", "params:\n  lr: {type: float, low: b, high: 1}"]),
))  # fmt: skip
def test_fuzzed_space_text_never_crashes(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    try:
        load_space(path)
    except SpaceError as exc:
        _check_one_line(exc)


def test_python_tags_in_yaml_are_not_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    path.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpaceError):
        load_space(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------ command line

COMMANDS = ["train", "search", "spaces", "profile", "report", "predict"]  # demo: only a real run
FLAGS = [
    "--data", "--target", "--ignore", "--seed", "--set", "--space", "--name", "--storage", "--num-samples",
    "--address", "--cpus-per-trial", "--gpus-per-trial", "--max-concurrent", "--time-budget", "--max-failures",
    "--pruner", "--resume", "--shared-storage", "--out", "--refit-top", "--seeds", "--bootstrap",
    "--no-baselines", "--study-trials", "--num-cpus", "--bin-width", "--many", "--few", "--region-mode",
    "--guard", "--model", "--proba", "--debug", "--bogus",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["", "-1", "0", "nan", "inf", "1e999", "abc", "../../etc", "/", "/nonexistent/x.csv",
                     "builtin:nope", "a=b", "lr", "lr=1e9", "<script>", "x" * 300, "é☃", "..", "-", "--"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10),
)  # fmt: skip


@st.composite
def argvs(draw, tmp):
    cmd = draw(st.sampled_from(COMMANDS + ["", "nope"]))
    argv = [cmd] if cmd else []
    if cmd == "report" and draw(st.booleans()):
        argv.append(draw(st.sampled_from([str(tmp / "missing"), str(tmp), "/", "<x>"])))
    if cmd == "spaces" and draw(st.booleans()):
        argv.append(draw(VALUES))
    for _ in range(draw(st.integers(0, 5))):
        argv.append(draw(st.sampled_from(FLAGS)))
        if draw(st.integers(0, 4)):
            argv.append(draw(VALUES))
    # Never let a fuzzed command start real work: every data source is unreadable and every
    # report input is missing, so a command either refuses its input or stops on a user error.
    if cmd in ("train", "search", "profile"):
        argv += ["--data", draw(st.sampled_from(["/nonexistent/x.csv", "builtin:nope", str(tmp), "/"]))]
    if cmd == "search":
        argv += ["--storage", str(tmp / "st")]
    if cmd == "predict":
        argv += ["--model", str(tmp / "no-model"), "--out", str(tmp / "p.csv")]
    return argv


def _run_cli(argv):
    from agesearch.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.timeout(300)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_command_lines_exit_0_or_2_with_one_line(tmp_path, data):
    argv = data.draw(argvs(tmp_path))
    if "--debug" in argv:  # --debug deliberately shows tracebacks
        argv = [a for a in argv if a != "--debug"]
    code, out, err = _run_cli(argv)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    if any(a in ("-h", "--help") for a in argv) and code == 0:
        return
    assert code in (0, 2), (argv, code, err)
    if code == 2 and argv and argv[0] in COMMANDS:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines and lines[-1].startswith("agesearch"), (argv, err)
        usage = [ln for ln in lines if not ln.startswith("usage:") and not ln.startswith(" ")]
        assert len(usage) == 1, (argv, err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "--data", "builtin:synthetic", "--name", "../escape"], "not a plain name"),
        (["search", "--data", "builtin:synthetic", "--name", ".hidden"], "not a plain name"),
        (["search", "--data", "builtin:synthetic", "--name", "x", "--num-samples", "0"], "--num-samples"),
        (["search", "--data", "builtin:synthetic", "--name", "x", "--gpus-per-trial", "nan"], "--gpus-per-trial"),
        (["train", "--data", "/", "--target", "age"], "agesearch: error"),
        (["report", "/nonexistent/exp", "--out", "r"], "does not exist"),
        (["spaces", "/nonexistent.yaml"], "agesearch: error"),
    ],
)
def test_specific_bad_command_lines(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run_cli(argv)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
