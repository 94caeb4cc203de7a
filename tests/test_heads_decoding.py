"""Decoders, intervals, the threshold scan, probabilistic metrics and age groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agesearch.heads import TargetInfo, build_head
from agesearch.heads.decoding import (
    BinGrid,
    central_interval,
    metric_value,
    proba_from_survival,
    quantile,
    scan_threshold,
)
from agesearch.heads.groups import AgeGroups, group_metrics
from agesearch.probabilistic import head_metrics, interval_scores, nll
from agesearch.regions import AgeBins

BINS = AgeBins(width=1.0, origin=20.0, n_bins=5)
TARGET = TargetInfo(mean=22.0, std=2.0, bins=BINS, train_counts=np.array([1, 4, 10, 4, 1]))


def dist(**kw):
    return build_head({"head": "distribution", "bin_pad": 0, **kw}, 4, TARGET)


def logits_of(p):
    return torch.log(torch.tensor(p, dtype=torch.float32))


def test_distribution_decoders():
    out = logits_of([[0.1, 0.15, 0.2, 0.5, 0.05]])
    assert dist(decoder="expectation").predict(out).item() == pytest.approx(
        20 * 0.1 + 21 * 0.15 + 22 * 0.2 + 23 * 0.5 + 24 * 0.05, abs=1e-5
    )
    assert dist(decoder="mode").predict(out).item() == 23.0
    # cdf 0.1, 0.25, 0.45, 0.95: median (survival <= 0.5 first) is 23; threshold 0.6 -> 22
    assert dist(decoder="median").predict(out).item() == 23.0
    assert dist(decoder="median", decision_threshold=0.6).predict(out).item() == 22.0
    assert dist(decoder="count", decision_threshold=0.6).predict(out).item() == 22.0
    assert dist(decoder="sum").predict(out).item() == pytest.approx(
        dist(decoder="expectation").predict(out).item(), abs=1e-5
    )


def test_grid_padding_and_float_ages_use_centres():
    grid = BinGrid(AgeBins(width=5.0, origin=20.0, n_bins=3), pad=2, on_grid=False)
    assert grid.n_bins == 7 and grid.values[0] == 12.5 and grid.values[-1] == 42.5
    t = TargetInfo.from_labels(np.array([20.0, 21.0, 23.0]), AgeBins(1.0, 20.0, 4))
    assert t.on_grid and t.train_counts.tolist() == [1, 1, 0, 1]
    t2 = TargetInfo.from_labels(np.array([20.3, 21.7]), AgeBins(1.0, 20.0, 2))
    assert not t2.on_grid and t2.bin_values.tolist() == [20.5, 21.5]


def test_proba_from_non_monotone_survival():
    p = proba_from_survival(torch.tensor([[0.8, 0.9, 0.3, 0.4]]))
    assert torch.allclose(p, torch.tensor([[0.2, 0.0, 0.5, 0.0, 0.3]]), atol=1e-6)


def test_quantile_interpolates_within_bins():
    p = torch.tensor([[0.25, 0.5, 0.25]])
    grid = BinGrid(AgeBins(1.0, 0.0, 3), pad=0, on_grid=True)
    # bin k covers [k - 0.5, k + 0.5]; cdf at 0.5 reached halfway through bin 1
    assert quantile(p, 0.5, grid).item() == pytest.approx(1.0)
    assert quantile(p, 0.125, grid).item() == pytest.approx(0.0)
    lo, hi = central_interval(p, 0.5, grid)
    assert (lo.item(), hi.item()) == pytest.approx((0.5, 1.5))


def test_calibrated_toy_model_has_nominal_coverage():
    """Predicted distributions = the true distributions the labels are drawn from."""
    rng = np.random.default_rng(0)
    n, k = 4000, 101
    grid_bins = AgeBins(1.0, 0.0, k)
    t = TargetInfo(mean=50.0, std=15.0, bins=grid_bins)
    h = build_head({"head": "distribution", "bin_pad": 0, "interval_levels": [0.5, 0.8, 0.9]}, 4, t)
    mu = rng.uniform(30, 70, n)
    sd = rng.uniform(2, 8, n)
    v = np.arange(k)
    p = np.exp(-((v[None, :] - mu[:, None]) ** 2) / (2 * sd[:, None] ** 2))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p]).astype(float)
    out = torch.log(torch.as_tensor(p, dtype=torch.float32))
    m = head_metrics(h, out, y)
    for level in (50, 80, 90):
        assert abs(m[f"coverage{level}"] - level / 100) < 0.03, m
    assert m["width90"] == pytest.approx(np.mean(2 * 1.645 * sd), rel=0.05)
    # an over-confident model (too sharp) under-covers and has a higher NLL
    sharp = torch.log_softmax(out * 4, dim=1)
    m2 = head_metrics(h, sharp, y)
    assert m2["coverage90"] < 0.7 and m2["nll"] > m["nll"]
    assert m["nll"] == pytest.approx(np.mean(-np.log(p[np.arange(n), y.astype(int)])), rel=1e-4)


def test_nll_and_interval_scores_by_region():
    probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    assert nll(probs, torch.tensor([0, 1])) == pytest.approx([math.log(2), -math.log(0.75)])
    cov, width = interval_scores(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([2.0, 4.0]))
    assert cov.tolist() == [1.0, 0.0] and width.tolist() == [2.0, 4.0]
    h = dist(interval_levels=[0.9])
    out = logits_of([[0.1, 0.1, 0.6, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]])
    m = head_metrics(h, out, np.array([22.0, 20.0]), np.array(["many", "few"]))
    assert m["nll_many"] == pytest.approx(-math.log(0.6), rel=1e-5)
    assert m["nll_few"] == pytest.approx(-math.log(0.2), rel=1e-5)
    assert math.isnan(m["nll_zero"]) and {"coverage90_few", "width90_many"} <= set(m)


def test_threshold_scan_minimises_the_metric():
    grid = BinGrid(AgeBins(1.0, 0.0, 5), pad=0)
    # every row has survival ~0.9, 0.7, 0.4, 0.1 -> thresholds pick ages 4..0
    s = torch.tensor([[0.905, 0.705, 0.405, 0.105]] * 4)
    y = np.array([3.0, 3.0, 3.0, 2.0])
    t = scan_threshold(s, y, None, "mae", grid)
    assert t == pytest.approx(0.40)  # predicts 3 (MAE 0.25); ties go to the one nearest 0.5
    regions = np.array(["many", "many", "many", "few"])
    t_few = scan_threshold(s, y, regions, "mae_few", grid)
    assert t_few == pytest.approx(0.5)  # predicts 2 for the few-shot row
    assert metric_value("pearson_few", y, y, regions) != metric_value("mae", y, y, regions)
    with pytest.raises(ValueError, match="search metric"):
        metric_value("nll", y, y, regions)


def test_auto_threshold_calibrates_and_is_a_buffer():
    h = dist(decoder="median", decision_threshold="auto")
    out = logits_of([[0.1, 0.2, 0.3, 0.3, 0.1]] * 3)
    before = h.predict(out)[0].item()
    set_ = h.calibrate(out, np.array([24.0, 24.0, 24.0]), None, "mae")
    assert set_["decision_threshold"] < 0.1 + 1e-9 and h.predict(out)[0].item() == 24.0 != before
    assert "threshold" in h.state_dict()
    fixed = dist(decoder="median", decision_threshold=0.5)
    assert fixed.calibrate(out, np.array([24.0] * 3), None, "mae") == {}


def test_group_metrics_hand_computed():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 2, 2])
    m = group_metrics(true, pred, ["a", "b", "c"])
    assert m["group_recall_a"] == 0.5 and m["group_recall_b"] == pytest.approx(2 / 3)
    assert m["group_recall_c"] == 1.0 and m["group_acc"] == pytest.approx(4 / 6)
    assert m["group_bacc"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    f1 = [2 * 1 / (2 + 1), 2 * 2 / (3 + 3), 2 * 1 / (1 + 2)]
    assert m["group_macro_f1"] == pytest.approx(np.mean(f1))


def test_logit_adjustment_favours_rare_groups():
    g = AgeGroups([22.0], np.arange(20.0, 25.0), np.arange(20.0, 25.0), np.array([40, 40, 10, 5, 3]), tau=1.0)
    assert g.labels == ["lt22", "ge22"]
    assert g.prior == pytest.approx([81 / 100, 19 / 100])
    gp = torch.tensor([[0.6, 0.4]])
    assert g.adjusted_predict(gp).item() == 1  # log .4 - log .19 > log .6 - log .81
    g.tau = 0.0
    assert g.adjusted_predict(gp).item() == 0
    h = dist(age_groups=[22], group_tau=1.0)
    out = logits_of([[0.3, 0.3, 0.2, 0.1, 0.1]])
    assert torch.allclose(h.group_proba(out), torch.tensor([[0.6, 0.4]]), atol=1e-6)
    # training counts [1, 4, 10, 4, 1]: prior (5+1)/22 vs (15+1)/22 -> group 0 is rarer
    assert h.predict_groups(out).item() == 0
    m = head_metrics(h, out, np.array([21.0]))
    assert m["group_recall_lt22"] == 1.0 and math.isnan(m["group_recall_ge22"])


def test_regression_intervals_are_split_conformal():
    h = build_head({"head": "regression", "interval_levels": [0.5]}, 4, TARGET)
    out = torch.zeros(9, 1)  # predicts 22 everywhere
    y = 22.0 + np.arange(1, 10)  # residuals 1..9
    lo, _ = h.predict_interval(out, 0.5)
    assert torch.isnan(lo).all()
    h.calibrate(out, y, None, "mae")
    lo, hi = h.predict_interval(out, 0.5)
    assert (lo[0].item(), hi[0].item()) == (17.0, 27.0)  # ceil(10 * 0.5) = 5th residual
    with pytest.raises(ValueError, match="interval_levels"):
        h.predict_interval(out, 0.9)


def test_threshold_scan_accepts_an_objective_score():
    from agesearch.objective import Objective

    grid = BinGrid(AgeBins(1.0, 0.0, 5), pad=0)
    s = torch.tensor([[0.905, 0.705, 0.405, 0.105]] * 4)
    y = np.array([3.0, 3.0, 3.0, 2.0])
    regions = np.array(["many", "many", "many", "few"])
    assert scan_threshold(s, y, regions, Objective("mae").score, grid) == pytest.approx(0.40)
    # few-shot MAE guarded by overall MAE <= 1.0 * 0.25: the few-shot optimum (predict 2,
    # overall MAE 0.75) is infeasible, so the guarded score keeps the overall optimum
    guarded = Objective("mae_few", guard_metric="mae", guard_eps=0.0, reference=0.25)
    assert scan_threshold(s, y, regions, guarded.score, grid) == pytest.approx(0.40)
    assert scan_threshold(s, y, regions, Objective("mae_few").score, grid) == pytest.approx(0.5)


def test_point_head_groups_are_groups_of_the_prediction():
    h = build_head({"head": "balanced_mse", "age_groups": [21.5, 23]}, 4, TARGET)
    out = torch.tensor([[-1.0], [0.0], [1.0]])  # 20, 22, 24 years
    assert h.predict_groups(out).tolist() == [0, 1, 2]
    m = head_metrics(h, out, np.array([20.0, 23.0, 24.0]))
    assert m["group_acc"] == pytest.approx(2 / 3) and math.isnan(m["group_recall_21.5_23"])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_survival_to_proba_and_quantiles_are_consistent(s, q1, q2):
    p = proba_from_survival(torch.tensor([s], dtype=torch.float64))
    assert (p >= 0).all() and torch.isclose(p.sum(), torch.tensor(1.0, dtype=torch.float64))
    grid = BinGrid(AgeBins(1.0, 0.0, len(s) + 1), pad=0)
    a, b = sorted((q1, q2))
    qa, qb = quantile(p, a, grid).item(), quantile(p, b, grid).item()
    assert -0.5 - 1e-9 <= qa <= qb + 1e-9 and qb <= len(s) + 0.5 + 1e-9
