"""Every head trains through the trial runner and beats the mean predictor on validation MAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agesearch.trainer import Trial
from tests.conftest import TINY

HEAD_CONFIGS = {
    "regression_focal_l1": {"head": "regression", "loss": "focal_l1"},
    "distribution_kl": {"head": "distribution", "dist_loss": "kl", "label_sigma": 2.0},
    "distribution_mv_median": {"head": "distribution", "dist_loss": "ce", "decoder": "median",
                               "mv_lambda1": 0.2, "mv_lambda2": 0.05},
    "ordinal_soft_bce": {"head": "ordinal", "ordinal_loss": "soft_bce", "label_sigma": 2.0},
    "ordinal_coral": {"head": "ordinal", "ordinal_loss": "coral"},
    "ordinal_corn": {"head": "ordinal", "ordinal_loss": "corn"},
    "balanced_mse": {"head": "balanced_mse"},
}
EPOCHS = 10


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread (two threads on busy shared cores are ~10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(config: dict, data) -> Trial:
    trial = Trial({**TINY, **config, "max_epochs": EPOCHS, "patience": EPOCHS}, data, device="cpu")
    return trial.fit()


def _mean_mae(data) -> float:
    return float(np.mean(np.abs(data.y["val"] - data.y["train"].mean())))


@pytest.mark.parametrize("name", sorted(HEAD_CONFIGS))
def test_head_beats_mean_predictor_on_synthetic(name, synthetic_small):
    trial = _train(HEAD_CONFIGS[name], synthetic_small)
    m = trial.evaluate("val")
    assert m["mae"] < 0.8 * _mean_mae(synthetic_small), (name, m["mae"])
    assert 0.5 < m["coverage90"] <= 1.0 and m["width90"] > 0
    if "mv_lambda2" not in HEAD_CONFIGS[name]:  # the variance penalty sharpens (under-covers)
        assert abs(m["coverage90"] - 0.9) < 0.12, (name, m["coverage90"])
    if trial.model.head.probabilistic:
        assert math.isfinite(m["nll"]) and "nll_few" in trial.history[-1]
        assert "coverage80_many" in trial.history[-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["regression_focal_l1", "distribution_kl", "ordinal_soft_bce", "ordinal_coral",
             "ordinal_corn", "balanced_mse"],
)
def test_head_beats_mean_predictor_on_nhanes(name, nhanes_small):
    m = _train(HEAD_CONFIGS[name], nhanes_small).evaluate("val")
    assert m["mae"] < 0.85 * _mean_mae(nhanes_small), (name, m["mae"])


def test_auto_threshold_and_groups_through_trial(synthetic_small, tmp_path):
    cfg = {"head": "ordinal", "decision_threshold": "auto", "search_metric": "mae",
           "age_groups": [35, 50, 65], "group_tau": 1.0}
    trial = _train(cfg, synthetic_small)
    head = trial.model.head
    t = float(head.threshold)
    assert 0.05 <= t <= 0.95
    rec = trial.history[-1]
    assert {"group_bacc", "group_macro_f1", "group_recall_lt35", "group_recall_ge65"} <= set(rec)
    # the calibrated threshold is part of the best state and survives save/load
    path = trial.save(tmp_path / "t.pt")
    other = Trial({**TINY, **cfg, "max_epochs": EPOCHS}, synthetic_small, device="cpu")
    other.load(path)
    other.restore_best()
    assert float(other.model.head.threshold) == t
    np.testing.assert_allclose(other.predict("val"), trial.predict("val"))
    # the chosen threshold is at least as good on validation as 0.5 for the search metric
    out = trial.raw_outputs(*trial._split_tensors("val"))
    y = synthetic_small.y["val"]
    mae_auto = np.mean(np.abs(head.predict(out).numpy() - y))
    head.threshold.fill_(0.5)
    assert mae_auto <= np.mean(np.abs(head.predict(out).numpy() - y)) + 1e-9


def test_bmc_noise_scale_has_its_own_lr_and_learns(synthetic_small):
    trial = Trial({**TINY, "head": "balanced_mse", "bmc_sigma_lr": 0.05, "max_epochs": 2},
                  synthetic_small, device="cpu")
    head = trial.model.head
    groups = [g for g in trial.optimizer.param_groups if any(p is head.noise_sigma for p in g["params"])]
    assert len(groups) == 1 and groups[0]["lr"] == 0.05 and len(groups[0]["params"]) == 1
    before = float(head.noise_sigma.detach())
    trial.fit()
    after = head.noise_sigma.detach()
    assert float(after) != before and torch.isfinite(after)


def test_row_gaussian_targets_train_from_an_uncertainty_column(tmp_path):
    from agesearch.data import load_table, prepare
    from agesearch.datasets import synthetic

    df = synthetic(1500, seed=3).drop(columns=["id"])
    df["age_sd"] = np.random.default_rng(0).uniform(0.5, 3.0, len(df))
    df.to_csv(tmp_path / "u.csv", index=False)  # through a real file
    data = prepare(load_table(tmp_path / "u.csv", "age", uncertainty="age_sd"), seed=0)
    cfg = {"head": "distribution", "target_type": "row_gaussian", "label_sigma": 1.0}
    m = _train(cfg, data).evaluate("val")
    assert m["mae"] < 0.85 * _mean_mae(data)
    with pytest.raises(ValueError, match="uncertainty"):
        Trial({**TINY, **cfg}, prepare(load_table(df.drop(columns=["age_sd"]), "age"), seed=0))
