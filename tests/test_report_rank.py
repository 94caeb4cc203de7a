"""Fair ranking, Pareto front and strategy summary on contract-shaped trials tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agesearch.report.experiment import ReportError, validate_trials
from agesearch.report.rank import pareto_front, rank_trials, strategy_summary, top_configurations
from tests.report_fixtures import fake_trials


def _t(rows):
    return validate_trials(pd.DataFrame(rows))


def test_pruned_partial_scores_rank_below_complete_and_ties_use_overall_mae():
    t = _t({
        "trial_id": list("abcdef"), "number": range(6),
        "status": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "FAILED", "RUNNING"],
        "score": [5.0, 1.0, 4.0, 4.0, np.nan, 0.5],
        "val/mae": [3.0, 1.0, 3.5, 3.1, np.nan, 1.0],
    })
    r = rank_trials(t, "min")
    # b (pruned, partial 1.0) and f (running, 0.5) have better numbers but are not final.
    assert r["trial_id"].tolist() == ["d", "c", "a", "b", "f", "e"]
    assert r["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert r["comparable"].tolist() == [True, True, True, False, False, False]
    assert r["group"].tolist()[3:] == ["partial (pruned)", "partial (running)", "failed"]
    rmax = rank_trials(t, "max")
    assert rmax["trial_id"].tolist()[:3] == ["a", "d", "c"]


def test_top_configurations_skip_reference_and_partial():
    t = _t({"trial_id": list("abcd"), "number": range(4), "status": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"],
            "score": [1.0, 0.1, 3.0, 2.0], "is_reference": [True, False, False, False]})
    top = top_configurations(rank_trials(t), 5)
    assert top["trial_id"].tolist() == ["d", "c"]


def test_pareto_front_matches_brute_force():
    t = validate_trials(fake_trials(300, seed=3))
    mask = pareto_front(t, "val/mae", "val/mae_few")
    c = t[t["status"] == "COMPLETE"]
    x, y = c["val/mae"].to_numpy(), c["val/mae_few"].to_numpy()
    dominated = ((x[None, :] <= x[:, None]) & (y[None, :] <= y[:, None]) & ((x[None, :] < x[:, None]) | (y[None, :] < y[:, None]))).any(1)
    assert mask[c.index].to_numpy().tolist() == (~dominated).tolist()
    assert not mask[t["status"] != "COMPLETE"].any()
    assert mask.sum() >= 1


def test_strategy_summary_counts_and_complete_only_stats():
    t = validate_trials(fake_trials(500, seed=1))
    s = strategy_summary(t, ["config/strategy"], "val/mae_few")
    assert set(s["strategy"]) == set(t["config/strategy"])
    assert s["n_trials"].sum() == len(t)
    lds = s.set_index("strategy").loc["lds"]
    sub = t[(t["config/strategy"] == "lds")]
    assert lds["n_pruned"] == (sub["status"] == "PRUNED").sum()
    comp = sub.loc[sub["status"] == "COMPLETE", "val/mae_few"]
    assert lds["best"] == pytest.approx(comp.min()) and lds["median"] == pytest.approx(comp.median())
    fam = strategy_summary(t, ["config/head", "config/loss"])
    assert {"head", "loss"} <= set(fam.columns) and len(fam) == 6
    assert strategy_summary(t, ["config/missing"]).empty


def test_validate_trials_rejects_bad_tables():
    with pytest.raises(ReportError, match="lacks column"):
        validate_trials(pd.DataFrame({"trial_id": ["a"]}))
    with pytest.raises(ReportError, match="unknown trial status"):
        _t({"trial_id": ["a"], "number": [0], "status": ["DONE"], "score": [1.0]})
