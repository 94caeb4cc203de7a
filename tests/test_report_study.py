"""Optuna study rebuilt from the trials table: states, params, importances, SQLite file."""

from __future__ import annotations

import math

import optuna

from agesearch.report.experiment import validate_trials
from agesearch.report.study import build_frozen_trials, infer_distributions, param_importances, write_sqlite_study
from tests.report_fixtures import fake_trials


def test_study_round_trip_keeps_states_params_and_partial_scores(tmp_path):
    t = validate_trials(fake_trials(60, seed=2))
    dists = infer_distributions(t)
    assert isinstance(dists["lr"], optuna.distributions.FloatDistribution) and dists["lr"].log
    assert isinstance(dists["n_blocks"], optuna.distributions.IntDistribution)
    assert isinstance(dists["strategy"], optuna.distributions.CategoricalDistribution)
    frozen = build_frozen_trials(t, dists)
    n = write_sqlite_study(frozen, tmp_path / "s.sqlite3", study_name="exp <1>")
    assert n == 60
    study = optuna.load_study(study_name="exp <1>", storage=f"sqlite:///{tmp_path / 's.sqlite3'}")
    got = [tr.state.name for tr in study.trials]
    want = t.sort_values("number")["status"].map({"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL"}).tolist()
    assert got == want
    by_id = t.set_index("trial_id")
    for tr in study.trials:
        row = by_id.loc[tr.user_attrs["trial_id"]]
        if tr.state.name == "COMPLETE":
            assert math.isclose(tr.value, row["score"])
        if tr.state.name == "PRUNED":
            assert tr.value is None and list(tr.intermediate_values.values()) == [row["score"]]
            assert "pruned" in tr.user_attrs["reason"]
        # conditional parameter only where it was used
        assert ("lds_sigma" in tr.params) == (row["config/strategy"] == "lds")
    imp = param_importances(frozen)
    assert set(imp["param"]) <= set(dists) and abs(imp["importance"].sum() - 1) < 1e-6


def test_sqlite_subset_and_no_complete(tmp_path):
    t = validate_trials(fake_trials(10, seed=0))
    frozen = build_frozen_trials(t, infer_distributions(t))
    assert write_sqlite_study(frozen, tmp_path / "a.db", study_name="x", keep=[0, 3]) == 2
    assert len(optuna.load_study(study_name="x", storage=f"sqlite:///{tmp_path / 'a.db'}").trials) == 2
    only_pruned = t.assign(status="PRUNED")
    assert param_importances(build_frozen_trials(only_pruned, infer_distributions(only_pruned))).empty
