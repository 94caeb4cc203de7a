"""Bootstrap CIs and paired comparisons on test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agesearch.metrics import regression_metrics
from agesearch.report.stats import bootstrap_counts, evaluate_predictions, predictions_frame, weighted_metrics


def _setup(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(50, 12, n).round()
    region = np.where(np.abs(y - 50) > 22, "few", np.where(np.abs(y - 50) > 10, "medium", "many"))
    return rng, y, region


def test_unit_weights_reproduce_regression_metrics():
    rng, y, region = _setup()
    p = y + rng.normal(0, 4, len(y))
    w = weighted_metrics(y, p, np.ones((1, len(y))))
    ref = regression_metrics(y, p, region)
    for k in ("mae", "rmse", "pearson", "gm"):
        assert w[k][0] == pytest.approx(ref[k], rel=1e-9)


def test_bootstrap_counts_are_resamples():
    c = bootstrap_counts(50, 200, seed=1)
    assert c.shape == (200, 50) and np.all(c.sum(1) == 50)
    assert not np.array_equal(c, bootstrap_counts(50, 200, seed=2))


def test_cis_contain_point_and_paired_verdicts():
    rng, y, region = _setup()
    frames = []
    for s in range(3):
        frames.append(predictions_frame("vanilla", s, y, y + rng.normal(0, 6, len(y)), region))
        frames.append(predictions_frame("better", s, y, y + rng.normal(0, 2, len(y)), region))
        frames.append(predictions_frame("same", s, y, frames[-2]["pred"].to_numpy() + rng.normal(0, 0.01, len(y)), region))
    summary, paired = evaluate_predictions(pd.concat(frames), n_boot=300, seed=0)
    fin = summary.dropna(subset=["value"])
    assert (fin["lower"] <= fin["value"]).all() and (fin["value"] <= fin["upper"]).all()
    assert set(summary["region"]) == {"all", "many", "medium", "few"}
    assert (summary["n_seeds"] == 3).all()
    mae = paired[(paired["metric"] == "mae") & (paired["region"] == "all")].set_index("model")
    assert mae.loc["better", "verdict"] == "better" and mae.loc["better", "upper"] < 0
    assert mae.loc["same", "verdict"] == "within noise"
    r = paired[(paired["metric"] == "pearson") & (paired["region"] == "all")].set_index("model")
    assert r.loc["better", "verdict"] == "better" and r.loc["better", "diff"] > 0
    # wider CI for the small few-shot region than overall
    v = summary[(summary["model"] == "vanilla") & (summary["metric"] == "mae")].set_index("region")
    assert (v.loc["few", "upper"] - v.loc["few", "lower"]) > (v.loc["all", "upper"] - v.loc["all", "lower"])
