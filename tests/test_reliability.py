"""Faults a search must survive, against a real Ray on 127.0.0.1 (see RELIABILITY.md).

Covered elsewhere (not repeated here): a trial crashing and resuming from its latest checkpoint
(tests/test_search_ray.py::test_crashed_trial_resumes_at_the_epoch_it_crashed), the driver
SIGKILLed then ``--resume`` (tests/test_search_ray.py::test_driver_killed_then_resume_...),
malformed tables (tests/test_fuzz_data.py), spaces and command lines (tests/test_fuzz_inputs.py).
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_search_ray import tiny_frame, tiny_space

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ divergence + corrupted checkpoint


@pytest.fixture(scope="module")
def faulty_search(ray_session, tmp_path_factory):
    """One search with both faults: the reference trial (default learning rate) crashes at epoch 3
    after its checkpoints were truncated; the two sampled trials get a huge learning rate and diverge."""
    from agesearch.search import search
    from tests.conftest import ensure_ray

    ensure_ray()
    tmp = tmp_path_factory.mktemp("faulty")
    markers = tmp / "markers"
    sp = tiny_space(max_epochs=4, lr={"type": "categorical", "choices": [1.0e8, 1.0e30]})
    res = search(data=tiny_frame(400), space=sp, name="faulty", storage=tmp, num_samples=3, max_concurrent=1,
                 max_failures=1, progress=False,
                 _fault={"crash_at_epoch": 3, "marker_dir": str(markers), "corrupt_checkpoint": "truncate",
                         "checkpoint_root": str(tmp / "faulty")})  # fmt: skip
    return res, markers


@pytest.mark.ray
def test_diverging_trials_fail_with_reason_and_never_rank(faulty_search):
    import optuna

    from agesearch.report.experiment import validate_trials
    from agesearch.report.rank import rank_trials
    from agesearch.search import load_trials

    res, _ = faulty_search
    trials, _ = load_trials(res.experiment)
    assert len(trials) == 3  # the search went on after the first divergence
    ref = trials[trials.is_reference].iloc[0]
    assert ref.status == "COMPLETE" and math.isfinite(ref.score)
    failed = trials[~trials.is_reference]
    assert set(failed.status) == {"FAILED"}
    assert all(r.startswith("diverged: loss became nan at epoch 1") for r in failed.reason), list(failed.reason)
    assert failed.score.isna().all()
    states = {t.number: t.state for t in res.study.trials}
    assert [states[n] for n in failed.number] == [optuna.trial.TrialState.FAIL] * 2
    # Ranking: only the finite score is ranked as a number; top() never lists a diverged trial.
    ranked = rank_trials(validate_trials(trials), "min")
    assert ranked.iloc[0]["trial_id"] == ref.trial_id
    assert list(res.top(5).trial_id) == [ref.trial_id]


@pytest.mark.ray
def test_corrupted_checkpoint_restarts_trial_from_scratch(faulty_search):
    from agesearch.search import load_trials

    res, markers = faulty_search
    assert len(list(markers.iterdir())) == 1  # the reference crashed once, after damaging its checkpoints
    trials, history = load_trials(res.experiment)
    ref = trials[trials.is_reference].iloc[0]
    assert ref.status == "COMPLETE"
    h = history[history.trial_id == ref.trial_id].sort_values("epoch")
    assert list(h.epoch) == [1, 2, 3, 4]
    # Restarted at epoch 1 (not 3, as a readable checkpoint would give) and flagged it.
    assert list(h.start_epoch) == [1, 1, 1, 1]
    assert list(h.checkpoint_discarded) == [1.0] * 4
    assert "val/checkpoint_discarded" not in trials.columns
    assert ref.checkpoint and Path(ref.checkpoint).is_file()  # the new best checkpoint is readable


def test_unreadable_checkpoint_is_refused_by_torch_load_weights_only(tmp_path):
    """Checkpoints are never unpickled: a pickle with code in it is rejected, not executed."""
    import pickle

    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    f = tmp_path / "trial_state.pt"
    f.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(Exception):
        torch.load(f, weights_only=True)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------------ storage


def test_storage_not_writable_or_full_is_refused_up_front(tmp_path, monkeypatch):
    from agesearch.search import runner
    from agesearch.search.runner import search

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"is not writable \(.*\); choose a folder you can write") as err:
        search(data=tiny_frame(300), space=tiny_space(), name="x", storage=blocker / "sub", num_samples=1)
    assert "\n" not in str(err.value)
    # Full disk: a fault we cannot cause here, so the OS calls report it.
    real_fsync = os.fsync

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.os, "fsync", enospc)
    with pytest.raises(ValueError, match=r"is full \(No space left on device\); free some space"):
        search(data=tiny_frame(300), space=tiny_space(), name="x", storage=tmp_path / "full", num_samples=1)
    monkeypatch.setattr(runner.os, "fsync", real_fsync)

    class Usage:
        free = 5 * 2**20

    monkeypatch.setattr("shutil.disk_usage", lambda p: Usage)
    with pytest.raises(ValueError, match=r"has only 5 MB free \(at least 200 MB needed"):
        search(data=tiny_frame(300), space=tiny_space(), name="x", storage=tmp_path / "small", num_samples=1)
    assert time.perf_counter() - t0 < 10  # refused before data preparation or Ray
    assert not (tmp_path / "small" / "x").exists() and not list((tmp_path / "small").iterdir())


def test_cli_refuses_unwritable_storage_and_escaping_names(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    cases = [
        (["--storage", str(blocker / "s"), "--name", "ok"], "is not writable"),
        (["--storage", str(tmp_path), "--name", "../../etc"], "not a plain name"),
    ]
    for extra, message in cases:
        out = subprocess.run([sys.executable, "-m", "agesearch.cli", "search", "--data", "builtin:synthetic", *extra],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


# ------------------------------------------------------------------------------ SIGINT + live report


def _records(exp: Path) -> list[dict]:
    out = []
    for f in (exp / "trials").glob("*.json"):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            pass
    return out


EPOCHS = 4
CLI_SLOW = """
import functools, sys
sys.path.insert(0, {root!r})
import agesearch.search.runner as runner
runner.search = functools.partial(runner.search, _fault={{"sleep_per_epoch": 0.4}})
from agesearch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _last_epoch(exp: Path, rec: dict) -> int | None:
    f = exp / "tune" / rec["trial_dir"] / "result.json" if rec.get("trial_dir") else None
    if not f or not f.is_file():
        return None
    rows = [ln for ln in f.read_text().splitlines() if ln.strip()]
    try:
        return int(json.loads(rows[-1])["epoch"]) if rows else None
    except (ValueError, KeyError):
        return None


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigint_saves_state_exits_130_and_resumes_and_live_report_is_consistent(tmp_path):
    from agesearch.report import build_report
    from agesearch.search import load_trials

    data = tmp_path / "ages.csv"
    tiny_frame(800).to_csv(data, index=False)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(tiny_space(max_epochs=EPOCHS).to_dict(), sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    script = tmp_path / "cli.py"  # the real CLI; trials slowed (private fault hook) so one is mid-run
    script.write_text(CLI_SLOW.format(root=str(ROOT)))
    cmd = [sys.executable, str(script), "search", "--data", str(data), "--space", str(space),
           "--name", "int", "--storage", str(tmp_path / "st"), "--num-samples", "4", "--max-concurrent", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    exp = tmp_path / "st" / "int"
    reports = 0
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            recs = _records(exp)
            if reports < 1 and sum(r["status"] == "COMPLETE" for r in recs) >= 1:
                # A report built while the search writes: a consistent snapshot every time.
                trials, history = load_trials(exp)
                assert trials.trial_id.is_unique and set(trials.status) <= {"COMPLETE", "RUNNING", "PENDING"}
                assert np.isfinite(trials.loc[trials.status == "COMPLETE", "score"]).all()
                assert set(history.trial_id) <= set(trials.trial_id)
                res = build_report(exp, tmp_path / f"rep{reports}", refit_top=0, baselines=False,
                                   study_trials=50, progress=None)  # fmt: skip
                shown = json.loads((res.out / "report.json").read_text())
                assert shown["n_trials"] == len(trials)
                if shown["status"] == "running":
                    assert "The search is running" in (res.out / "index.html").read_text()
                reports += 1
                continue
            if reports >= 1:
                mid = [r for r in recs if r["status"] == "RUNNING" and 1 <= (_last_epoch(exp, r) or 0) < EPOCHS]
                if mid:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("search never reached a running trial after a completed one")
        done_before = {r["trial_id"] for r in _records(exp) if r["status"] == "COMPLETE"}
        os.kill(proc.pid, signal.SIGINT)  # once, to the driver only
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("agesearch: search interrupted") and "--resume" in err
    assert json.loads((exp / "experiment.json").read_text())["status"] == "interrupted"
    before, _ = load_trials(exp)
    scores = {r.trial_id: r.score for r in before.itertuples() if r.status == "COMPLETE"}
    assert set(scores) >= done_before and len(scores) < 4
    out = subprocess.run(cmd[:3] + ["--name", "int", "--storage", str(tmp_path / "st"), "--resume"], env=env,
                         capture_output=True, text=True, timeout=400, start_new_session=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    after, history = load_trials(exp)
    assert len(after) == 4 and after.trial_id.is_unique and set(after.status) == {"COMPLETE"}
    assert sorted(after.number) == list(range(4))
    for tid, score in scores.items():
        assert after.set_index("trial_id").loc[tid, "score"] == score
    assert all(v == list(range(1, EPOCHS + 1)) for v in history.groupby("trial_id")["epoch"].apply(list))
    # A trial interrupted mid-run continued from its checkpoint (a later start epoch), not from 1.
    resumed = history.groupby("trial_id")["start_epoch"].max()
    assert (resumed > 1).any(), history[["trial_id", "epoch", "start_epoch"]]
    assert json.loads((exp / "experiment.json").read_text())["status"] == "finished"


# ------------------------------------------------------------------------------ report escaping

EVIL = "<script>alert('x\")</script>"


def test_report_escapes_experiment_names_columns_and_levels(tmp_path):
    from agesearch.report import Experiment, build_report
    from tests.report_fixtures import fake_trials

    trials = fake_trials(40, seed=1)
    trials["config/strategy"] = trials["config/strategy"].where(trials.index % 2 == 0, EVIL)  # a level
    trials = trials.rename(columns={"config/loss": f"config/{EVIL}", "val/mae": f"val/{EVIL}"})  # columns
    exp = Experiment(meta={"name": EVIL, "status": "running", "metric": "mae_few", "mode": "min"}, trials=trials)
    build_report(exp, tmp_path, refit_top=0, baselines=False, progress=None)
    html = (tmp_path / "index.html").read_text()
    assert "<script" not in html.lower() and "alert('x\"" not in html
    assert "&lt;script&gt;alert(&#x27;x&quot;)&lt;/script&gt;" in html  # shown, escaped
    md = (tmp_path / "report.md").read_text()
    assert "<script" not in md.lower()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir())  # figures stayed in figures/
    assert all(p.resolve().parent == (tmp_path / "figures").resolve() for p in (tmp_path / "figures").iterdir())


def test_records_cannot_point_outside_the_experiment(tmp_path):
    from agesearch.search import load_trials

    exp = tmp_path / "exp"
    (exp / "trials").mkdir(parents=True)
    (exp / "experiment.json").write_text(json.dumps({"name": "e", "metric": "mae_few"}))
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "result.json").write_text(json.dumps({"epoch": 1, "score": 1.0, "mae_few": 1.0, "best_epoch": 1}))
    rec = {"trial_id": "t1", "number": 0, "status": "COMPLETE", "trial_dir": "../../secret", "config": {}}
    (exp / "trials" / "t1.json").write_text(json.dumps(rec))
    (exp / "trials" / "torn.json").write_text('{"trial_id": "t2", "sta')  # half-written: skipped
    trials, history = load_trials(exp)
    assert list(trials.trial_id) == ["t1"] and trials.epochs.tolist() == [0] and len(history) == 0
