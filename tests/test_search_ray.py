"""Searches with a real Ray (127.0.0.1) and a real Optuna study: pruning, fault recovery, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ray]

TINY_FIXED = {"n_blocks": 1, "d_block": 16, "attention_n_heads": 4, "batch_size": 128,
              "eval_batch_size": 4096}  # fmt: skip


def tiny_space(max_epochs=4, pruner=None, **params):
    from agesearch.search import SearchSpace

    return SearchSpace.from_dict(
        {
            "metric": "mae_few",
            "fixed": {**TINY_FIXED, "max_epochs": max_epochs, "patience": max_epochs},
            "data": {"regions": {"mode": "tertile"}},
            "pruner": pruner or {"name": "none"},
            "params": params or {"lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True}},
        },
        source="test-space",
    )


def tiny_frame(n=700, seed=3):
    from agesearch.datasets import synthetic

    return synthetic(n, seed=seed).drop(columns=["id"])


@pytest.fixture
def ray_local(ray_session):
    """The session's shared local Ray (see tests/conftest.py)."""
    from tests.conftest import ensure_ray

    return ensure_ray()


def test_pruning_search_records_pruned_trials_in_optuna(ray_local, tmp_path):
    import optuna
    import torch

    from agesearch.search import load_trials, search

    sp = tiny_space(
        max_epochs=4,
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        lr={"type": "float", "low": 1e-5, "high": 3e-2, "log": True},
        loss={"type": "categorical", "choices": ["l1", "mse"]},
    )
    res = search(data=tiny_frame(), space=sp, name="prune", storage=tmp_path, num_samples=8,
                 cpus_per_trial=1, max_concurrent=2, seed=0, progress=False)  # fmt: skip
    study = res.study
    states = [t.state for t in study.trials]
    assert len(study.trials) == 8
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned, f"expected some PRUNED trials, got {states}"
    for t in pruned:  # pruned with their intermediate values, value = last intermediate value
        assert t.intermediate_values
        assert t.value == t.intermediate_values[max(t.intermediate_values)]
        assert max(t.intermediate_values) < 4
    trials, history = load_trials(res.experiment)
    assert len(trials) == 8 and trials["trial_id"].is_unique
    assert list(trials["number"]) == list(range(8))
    assert set(trials["status"]) <= {"COMPLETE", "PRUNED"}
    assert (trials["status"] == "PRUNED").sum() == len(pruned)
    assert all("pruned by median pruner at epoch" in r for r in trials.loc[trials.status == "PRUNED", "reason"])
    # The reference trial is first, vanilla, never pruned.
    ref = trials.iloc[0]
    assert ref["is_reference"] and trials["is_reference"].sum() == 1
    assert (ref["config/strategy"], ref["config/head"], ref["config/loss"]) == ("none", "regression", "l1")
    assert ref["status"] == "COMPLETE" and ref["config/n_blocks"] == 1
    # Best trial's score is consistent with its reports and with the Optuna study.
    done = trials[trials.status == "COMPLETE"]
    best = done.loc[done["score"].idxmin()]
    h = history[history.trial_id == best.trial_id].sort_values("epoch")
    assert list(h["epoch"]) == list(range(1, int(best.epochs) + 1))
    at_best = h[h.epoch == best.best_epoch].iloc[0]
    assert math.isclose(best["score"], at_best["mae_few"], rel_tol=1e-9)
    assert math.isclose(best["val/mae_few"], at_best["mae_few"], rel_tol=1e-9)
    assert math.isclose(best["score"], h["mae_few"].min(), rel_tol=1e-9)  # early stop on mae_few
    assert math.isclose(study.best_value, best["score"], rel_tol=1e-9)
    assert len(complete) == len(done)
    # Trials never saw the test split.
    assert (history["test_rows"] == 0).all()
    # The best checkpoint loads with weights_only and is the best epoch's state.
    state = torch.load(best["checkpoint"], weights_only=True)
    assert state["epoch"] == best["best_epoch"] == state["best_epoch"]
    exp = json.loads((Path(res.experiment) / "experiment.json").read_text())
    assert exp["status"] == "finished" and exp["metric"] == "mae_few"
    assert (Path(res.experiment) / "space.yaml").is_file()
    from agesearch.data import PreparedData

    full = PreparedData.load(Path(res.experiment) / "data")
    assert len(full.y["test"]) > 0  # the folder keeps the test split for the report's refit


def test_crashed_trial_resumes_at_the_epoch_it_crashed(ray_local, tmp_path):
    from agesearch.search import load_trials, search

    markers = tmp_path / "markers"
    res = search(data=tiny_frame(500), space=tiny_space(max_epochs=4), name="crash", storage=tmp_path,
                 num_samples=2, max_failures=1, progress=False,
                 _fault={"crash_at_epoch": 3, "marker_dir": str(markers)})  # fmt: skip
    trials, history = load_trials(res.experiment)
    assert len(list(markers.iterdir())) == 2  # each trial crashed once
    assert list(trials["status"]) == ["COMPLETE", "COMPLETE"]
    for tid in trials.trial_id:
        h = history[history.trial_id == tid].sort_values("epoch")
        assert list(h["epoch"]) == [1, 2, 3, 4]
        assert list(h["start_epoch"]) == [1, 1, 3, 3]  # restarted process began at epoch 3


def test_existing_experiment_needs_resume_and_region_check(ray_local, tmp_path):
    from agesearch.search import search

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.json").write_text("{}")
    with pytest.raises(ValueError, match="already exists.*--resume"):
        search(data=tiny_frame(300), space=tiny_space(), name="x", storage=tmp_path, num_samples=1)
    with pytest.raises(FileNotFoundError, match="no experiment 'y'"):
        search(space=tiny_space(), name="y", storage=tmp_path, num_samples=1, resume=True)
    sp = tiny_space()
    sp.data = {"regions": {"mode": "absolute", "few": 1, "many": 5}}  # no bin is few-shot
    with pytest.raises(ValueError, match="no few-shot row"):
        search(data=tiny_frame(300), space=sp, name="z", storage=tmp_path, num_samples=1)


DRIVER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    from test_search_ray import tiny_space, tiny_frame
    from agesearch.search import search
    resume = sys.argv[1] == "resume"
    search(data=None if resume else tiny_frame(1500), space=tiny_space(max_epochs=4), name="kill",
           storage={storage!r}, num_samples=6, max_concurrent=1, resume=resume, progress=False)
    """
)


@pytest.mark.slow
def test_driver_killed_then_resume_completes_without_loss_or_repeat(tmp_path):
    from agesearch.search import load_trials

    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=str(ROOT), storage=str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), "new"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    records = tmp_path / "kill" / "trials"
    deadline = time.time() + 240
    done_before: dict[str, float] = {}
    try:
        while time.time() < deadline:
            done = [json.loads(f.read_text()) for f in records.glob("*.json")] if records.is_dir() else []
            done = [r for r in done if r["status"] == "COMPLETE"]
            if len(done) >= 2:
                break
            assert proc.poll() is None, "driver ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("search did not complete two trials in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started (its own group)
        proc.wait()
    before, _ = load_trials(tmp_path / "kill")
    done_before = {r.trial_id: r.score for r in before.itertuples() if r.status == "COMPLETE"}
    assert 2 <= len(done_before) < 6
    meta = json.loads((tmp_path / "kill" / "experiment.json").read_text())
    assert meta["status"] == "running"
    out = subprocess.run([sys.executable, str(script), "resume"], env=env, start_new_session=True,
                         capture_output=True, text=True, timeout=400)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    after, history = load_trials(tmp_path / "kill")
    assert len(after) == 6 and after.trial_id.is_unique
    assert sorted(after["number"]) == list(range(6))
    assert set(after.status) == {"COMPLETE"}
    for tid, score in done_before.items():  # nothing finished was lost or re-run differently
        assert after.set_index("trial_id").loc[tid, "score"] == score
    per_trial = history.groupby("trial_id")["epoch"].apply(list)
    assert all(v == [1, 2, 3, 4] for v in per_trial)
    assert json.loads((tmp_path / "kill" / "experiment.json").read_text())["status"] == "finished"
    assert not np.isnan(after["score"]).any()
