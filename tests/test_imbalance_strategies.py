"""Strategy registry, regularisers, composition, and training on the real NHANES table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agesearch.imbalance import STRATEGIES, build_plan, strategy_params, validate_strategy_config
from agesearch.imbalance.regularizers import CorrelationLoss, RankSim, correlation_loss, ranksim_loss
from agesearch.imbalance.strategies import Param

from tests.conftest import TINY

REQUIRED = ["none", "inverse", "sqrt_inv", "lds", "fds", "lds+fds", "denseweight", "oversample",
            "undersample", "smoter", "smogn", "borderline", "jitter", "ranksim", "balanced_mse"]


def test_registry_names_and_params_as_data():
    assert set(REQUIRED) <= set(STRATEGIES)
    p = strategy_params("lds+fds")
    assert {"lds_ks", "lds_sigma", "lds_padding", "fds_momentum", "fds_start_smooth", "corr_weight"} <= set(p)
    assert p["lds_ks"].low == 3 and p["lds_ks"].high == 15 and p["lds_ks"].odd
    for name in REQUIRED:
        for key, prm in STRATEGIES[name].params.items():
            assert isinstance(prm, Param)
            prm.check(key, prm.default)  # defaults are valid


def test_unknown_and_out_of_range_fail_with_valid_choices():
    with pytest.raises(ValueError, match=r"unknown strategy 'ldsfds'; valid: none, inverse"):
        validate_strategy_config({"strategy": "ldsfds"})
    with pytest.raises(ValueError, match=r"lds_ks=4 is invalid; valid: odd int in \[3, 15\]"):
        validate_strategy_config({"strategy": "lds", "lds_ks": 4})
    with pytest.raises(ValueError, match="lds_kernel='box'"):
        validate_strategy_config({"strategy": "lds+fds", "lds_kernel": "box"})
    with pytest.raises(ValueError, match="fds_start_smooth"):
        validate_strategy_config({"strategy": "fds", "fds_start_update": 3, "fds_start_smooth": 2})
    with pytest.raises(ValueError, match="more than one weights"):
        validate_strategy_config({"strategy": "lds+inverse"})
    with pytest.raises(ValueError, match="head='balanced_mse'"):
        validate_strategy_config({"strategy": "balanced_mse", "head": "regression"})
    with pytest.raises(ValueError, match="corr_weight"):
        validate_strategy_config({"strategy": "none", "corr_weight": -1})
    # keys of other strategies are ignored (flat search spaces carry them)
    validate_strategy_config({"strategy": "inverse", "lds_ks": 4})


def test_ranksim_loss_and_gradient():
    torch.manual_seed(0)
    y = torch.arange(16, dtype=torch.float32)
    # features whose similarity ranking follows the labels: angle grows with the label
    ang = y / 16 * math.pi / 2
    z_good = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    z_bad = torch.randn(16, 2)
    assert ranksim_loss(z_good, y) < ranksim_loss(z_bad, y)
    z = z_bad.clone().requires_grad_(True)
    loss = RankSim(2.0, 100.0)(z=z, pred=y, y=y)
    loss.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # duplicate labels: reduced to one row per label
    yd = torch.tensor([1.0, 1.0, 2.0, 3.0, 3.0])
    assert torch.isfinite(ranksim_loss(torch.randn(5, 3), yd))


def test_correlation_loss():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert correlation_loss(2 * y + 1, y).item() == pytest.approx(0.0, abs=1e-6)
    assert correlation_loss(-y, y).item() == pytest.approx(2.0, abs=1e-6)
    w = torch.tensor([1.0, 1.0, 1.0, 0.0])
    pred = torch.tensor([1.0, 2.0, 3.0, -10.0])
    assert correlation_loss(pred, y, w).item() == pytest.approx(0.0, abs=1e-6)
    p = pred.clone().requires_grad_(True)
    CorrelationLoss(0.5)(z=None, pred=p, y=y).backward()
    assert p.grad.abs().sum() > 0


def test_plans_compose(synthetic_small):
    data = synthetic_small
    plan = build_plan({"strategy": "smogn+lds+fds+ranksim", "corr_weight": 0.1, "d_block": 16}, data, seed=0)
    assert len(plan.y) > 0 and plan.weights is not None and len(plan.weights) == len(plan.y)
    assert plan.weights.mean() == pytest.approx(1.0)
    assert plan.smoother is not None
    assert [type(r).__name__ for r in plan.regularizers] == ["RankSim", "CorrelationLoss"]
    assert plan.info["n_synthetic"] > 0
    a = build_plan({"strategy": "smoter"}, data, seed=3)
    b = build_plan({"strategy": "smoter"}, data, seed=3)
    np.testing.assert_array_equal(a.x_num, b.x_num)
    # training split only: validation untouched
    assert data.y["val"].shape[0] > 0 and build_plan({"strategy": "none"}, data).y is data.y["train"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [s for s in REQUIRED if s != "balanced_mse"] + ["inverse+fds+ranksim"])
def test_trains_on_nhanes_with_each_strategy(nhanes_small, strategy):
    from agesearch.trainer import Trial

    cfg = {**TINY, "strategy": strategy, "max_epochs": 2, "seed": 0, "corr_weight": 0.1}
    trial = Trial(cfg, nhanes_small, device="cpu", threads=1)
    hist = [trial.step() for _ in range(2)]
    assert all(math.isfinite(h["mae"]) and math.isfinite(h["train_loss"]) for h in hist)
    if "fds" in strategy:
        sd = trial.state_dict()["model"]
        assert int(sd["smoother.snap_epoch"]) == 1  # statistics of the last epoch are checkpointed


def test_balanced_mse_strategy(nhanes_small):
    from agesearch.heads import HEADS
    from agesearch.trainer import Trial

    if "balanced_mse" not in HEADS:
        with pytest.raises(ValueError, match="balanced_mse"):
            Trial({**TINY, "strategy": "balanced_mse", "head": "balanced_mse", "max_epochs": 1}, nhanes_small, device="cpu")
        return
    trial = Trial({**TINY, "strategy": "balanced_mse", "head": "balanced_mse", "max_epochs": 1}, nhanes_small, device="cpu")
    assert math.isfinite(trial.step()["mae"])


def test_fds_sees_raw_representation(synthetic_small):
    """The model returns z BEFORE smoothing, so FDS statistics are of raw features."""
    from agesearch.trainer import Trial

    trial = Trial({**TINY, "strategy": "fds", "max_epochs": 3}, synthetic_small, device="cpu", threads=1)
    trial.step()
    model = trial.model
    model.train()
    x_num = torch.as_tensor(synthetic_small.x_num["train"][:64])
    x_cat = torch.as_tensor(synthetic_small.x_cat["train"][:64])
    b = torch.as_tensor(synthetic_small.bins.assign(synthetic_small.y["train"][:64]))
    torch.manual_seed(0)
    _, z = model(x_num, x_cat, bin_idx=b, epoch=1)
    torch.manual_seed(0)
    z_raw = model.representation(x_num, x_cat)
    torch.testing.assert_close(z, z_raw)
