"""Each head loss pinned against a hand computation on a tiny batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agesearch.heads import HEADS, TargetInfo, build_head
from agesearch.heads.balanced_mse import bmc_loss
from agesearch.heads.ordinal import corn_loss, ordinal_targets
from agesearch.losses import POINT_LOSSES, focal_l1, focal_mse
from agesearch.regions import AgeBins

BINS = AgeBins(width=1.0, origin=20.0, n_bins=5)  # ages 20..24
TARGET = TargetInfo(mean=22.0, std=2.0, bins=BINS, train_counts=np.array([1, 4, 10, 4, 1]))


def head(name: str, **kw):
    return build_head({"head": name, "bin_pad": 0, **kw}, 4, TARGET)


def test_all_heads_registered():
    assert {"regression", "distribution", "ordinal", "balanced_mse"} <= set(HEADS)


# ------------------------------------------------------------------ Focal-R


def test_focal_losses_match_reference_formula():
    pred = torch.tensor([1.0, -2.0, 0.5])
    tgt = torch.tensor([0.0, 1.0, 0.5])
    e = [1.0, 3.0, 0.0]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    want_l1 = [abs(x) * (2 * sig(0.2 * abs(x)) - 1) ** 1.5 for x in e]
    want_mse = [x * x * math.tanh(0.3 * abs(x)) ** 2 for x in e]
    assert torch.allclose(focal_l1(pred, tgt, beta=0.2, gamma=1.5), torch.tensor(want_l1))
    assert torch.allclose(focal_mse(pred, tgt, beta=0.3, gamma=2, activate="tanh"), torch.tensor(want_mse))
    assert POINT_LOSSES["focal_l1"] is focal_l1 and POINT_LOSSES["focal_mse"] is focal_mse


def test_regression_focal_beta_is_per_year():
    h = head("regression", loss="focal_l1", focal_beta=0.2, focal_gamma=1.0)
    out = torch.tensor([[1.0], [0.0]])  # standardised: 1.0 -> 24 years; 0 -> 22
    y = torch.tensor([22.0, 22.0])
    w = torch.tensor([2.0, 0.5])
    err_years = torch.tensor([2.0, 0.0])
    per = (err_years / 2.0) * (2 * torch.sigmoid(0.2 * err_years) - 1)
    assert torch.isclose(h.loss(out, y, w), (per * w).mean())


# ------------------------------------------------------------------ distribution


def test_gaussian_targets_hand_computed():
    h = head("distribution", target_type="gaussian", label_sigma=1.0)
    q = h.targets(torch.tensor([22.0]))[0]
    raw = torch.tensor([math.exp(-(k - 2) ** 2 / 2) for k in range(5)])
    assert torch.allclose(q, raw / raw.sum(), atol=1e-6)


def test_sord_and_hard_and_row_targets():
    h = head("distribution", target_type="sord", label_sigma=2.0, sord_distance="abs")
    q = h.targets(torch.tensor([21.0]))[0]
    raw = torch.tensor([math.exp(-abs(k - 1) / 2) for k in range(5)])
    assert torch.allclose(q, raw / raw.sum(), atol=1e-6)
    hard = head("distribution", target_type="hard").targets(torch.tensor([23.0, 20.0]))
    assert hard.tolist() == [[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]]
    t = TargetInfo(mean=22.0, std=2.0, bins=BINS, has_uncertainty=True)
    row = build_head({"head": "distribution", "bin_pad": 0, "target_type": "row_gaussian",
                      "label_sigma": 1.0}, 4, t)
    q = row.targets(torch.tensor([22.0, 22.0]), torch.tensor([0.5, float("nan")]))
    narrow = torch.tensor([math.exp(-(k - 2) ** 2 / (2 * 0.25)) for k in range(5)])
    wide = torch.tensor([math.exp(-(k - 2) ** 2 / 2) for k in range(5)])
    assert torch.allclose(q[0], narrow / narrow.sum(), atol=1e-6)
    assert torch.allclose(q[1], wide / wide.sum(), atol=1e-6)  # NaN y_std -> label_sigma


def test_kl_matches_kldivloss_and_differs_from_ce_by_target_entropy():
    torch.manual_seed(0)
    out = torch.randn(3, 5)
    y = torch.tensor([20.0, 22.5, 24.0])
    kl = head("distribution", dist_loss="kl", label_sigma=1.5)
    ce = head("distribution", dist_loss="ce", label_sigma=1.5)
    q = kl.targets(y)
    ref = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(out, 1), q)
    assert torch.isclose(kl.loss(out, y), ref, atol=1e-6)
    entropy = -(q * q.log()).sum(1)
    assert torch.allclose(ce.per_sample_loss(out, y) - kl.per_sample_loss(out, y), entropy, atol=1e-5)
    assert torch.isclose(ce.loss(out, y) - kl.loss(out, y), entropy.mean(), atol=1e-5)


def test_dldl_v2_and_mean_variance_terms_and_weights():
    out = torch.tensor([[0.0, 1.0, 2.0, 1.0, 0.0]])
    y = torch.tensor([21.0])
    base = head("distribution", dist_loss="ce", target_type="hard")
    full = head("distribution", dist_loss="ce", target_type="hard", dldl_l1=0.5,
                mv_lambda1=0.2, mv_lambda2=0.05)
    p = torch.softmax(out[0], 0)
    ks = torch.arange(5.0)
    m = (p * ks).sum()
    ce = -torch.log(p[1])
    want = ce + 0.5 * (m - 1).abs() + 0.2 * (m - 1) ** 2 / 2 + 0.05 * (p * (ks - m) ** 2).sum()
    assert torch.isclose(base.loss(out, y), ce)
    assert torch.isclose(full.loss(out, y), want, atol=1e-6)
    out2 = torch.cat([out, out.flip(1)])
    y2 = torch.tensor([21.0, 24.0])
    w = torch.tensor([3.0, 1.0])
    per = full.per_sample_loss(out2, y2)
    assert torch.isclose(full.loss(out2, y2, w), (per * w).mean())


# ------------------------------------------------------------------ ordinal


def _hand_bce(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return -(t * torch.log(s) + (1 - t) * torch.log(1 - s))


def test_soft_bce_with_01_targets_equals_hard_bce():
    torch.manual_seed(1)
    out = torch.randn(3, 4)
    y = torch.tensor([20.0, 22.0, 24.0])
    soft = head("ordinal", ordinal_loss="soft_bce", label_sigma=0.0)
    t = ordinal_targets(y, soft)
    assert t.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    hard = _hand_bce(out, t).sum(1).mean()
    assert torch.isclose(soft.loss(out, y), hard, atol=1e-6)
    # a tiny sigma gives numerically 0/1 soft targets and the same loss
    tiny = head("ordinal", ordinal_loss="soft_bce", label_sigma=1e-4)
    assert torch.equal(ordinal_targets(y, tiny), t)
    assert torch.isclose(tiny.loss(out, y), hard, atol=1e-6)


def test_soft_targets_are_gaussian_survival():
    h = head("ordinal", label_sigma=2.0)
    t = ordinal_targets(torch.tensor([22.0]), h)[0]
    # boundary between bins k and k+1 is 20 + k + 0.5
    want = [0.5 * math.erfc(((20 + k + 0.5) - 22.0) / (2.0 * math.sqrt(2))) for k in range(4)]
    assert torch.allclose(t, torch.tensor(want), atol=1e-6)
    w = torch.tensor([2.0])
    out = torch.zeros(1, 4)
    assert torch.isclose(h.loss(out, torch.tensor([22.0]), w), 2 * _hand_bce(out, t[None]).sum())


def test_coral_shares_one_weight_vector_and_loss():
    h = head("ordinal", ordinal_loss="coral")
    assert h.linear.weight.shape == (1, 4) and h.task_bias.shape == (4,)
    b = h.task_bias.detach()
    assert torch.all(b[1:] <= b[:-1])  # rank-consistent initialisation
    z = torch.randn(2, 4)
    out = h(z)
    diffs = out - b[None, :]
    assert torch.allclose(diffs, diffs[:, :1].expand_as(diffs), atol=1e-6)  # same w.z for all tasks
    y = torch.tensor([21.0, 23.0])
    levels = torch.tensor([[1.0, 0, 0, 0], [1, 1, 1, 0]])
    ref = -torch.sum(F.logsigmoid(out) * levels + (F.logsigmoid(out) - out) * (1 - levels), dim=1).mean()
    assert torch.isclose(h.loss(out, y), ref, atol=1e-6)


def test_coral_decoding_with_thresholds():
    # task probabilities 0.9, 0.6, 0.4, 0.2 -> count > 0.5 is 2, > 0.3 is 3, > 0.7 is 1
    logits = torch.logit(torch.tensor([[0.9, 0.6, 0.4, 0.2]]))
    for thr, want in ((0.5, 22.0), (0.3, 23.0), (0.7, 21.0)):
        h = head("ordinal", ordinal_loss="coral", decision_threshold=thr)
        assert h.predict(logits).item() == want
    s = head("ordinal", ordinal_loss="coral", decoder="sum")
    assert s.predict(logits).item() == pytest.approx(20 + 0.9 + 0.6 + 0.4 + 0.2)


def test_corn_loss_matches_reference_loop_and_decoding():
    torch.manual_seed(2)
    logits = torch.randn(4, 4)
    y_bins = torch.tensor([0, 2, 4, 1])
    # transcription of the reference corn_loss (coral_pytorch)
    losses, n = 0.0, 0
    for i in range(4):
        mask = y_bins > i - 1
        lab = (y_bins[mask] > i).float()
        if len(lab) == 0:
            continue
        n += len(lab)
        pred = logits[mask, i]
        losses += -torch.sum(F.logsigmoid(pred) * lab + (F.logsigmoid(pred) - pred) * (1 - lab))
    assert torch.isclose(corn_loss(logits, y_bins), losses / n, atol=1e-6)
    h = head("ordinal", ordinal_loss="corn")
    assert torch.isclose(h.loss(logits, 20.0 + y_bins.float()), losses / n, atol=1e-6)
    # decoding: conditional 0.9, 0.8, 0.5, 0.5 -> cumulative 0.9, 0.72, 0.36, 0.18
    cond = torch.logit(torch.tensor([[0.9, 0.8, 0.5, 0.5]]))
    for thr, want in ((0.5, 22.0), (0.3, 23.0), (0.75, 21.0), (0.1, 24.0)):
        assert head("ordinal", ordinal_loss="corn", decision_threshold=thr).predict(cond).item() == want
    p = h.predict_proba(cond)[0]
    assert torch.allclose(p, torch.tensor([0.1, 0.18, 0.36, 0.18, 0.18]), atol=1e-6)


def test_corn_weights_scale_terms():
    logits = torch.zeros(2, 4)
    y = torch.tensor([20.0, 22.0])
    h = head("ordinal", ordinal_loss="corn")
    # row 0 is used by task 0 only; row 1 by tasks 0..2: 4 terms, each log 2
    w = torch.tensor([3.0, 1.0])
    assert torch.isclose(h.loss(logits, y, w), torch.tensor((3 + 3) * math.log(2) / 4))


# ------------------------------------------------------------------ balanced MSE


def test_bmc_loss_hand_computed():
    pred = torch.tensor([0.0, 1.0])
    tgt = torch.tensor([0.0, 2.0])
    nv = torch.tensor(0.5)
    # logits_ij = -(p_i - t_j)^2 / (2 nv) = -(p_i - t_j)^2
    l0 = -math.log(math.exp(0) / (math.exp(0) + math.exp(-4)))
    l1 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-1)))
    assert torch.isclose(bmc_loss(pred, tgt, nv), torch.tensor((l0 + l1) / 2 * 1.0))
    w = torch.tensor([2.0, 0.0])
    assert torch.isclose(bmc_loss(pred, tgt, nv, w), torch.tensor(2 * l0 / 2))


def test_bmc_head_noise_parameter_and_groups():
    h = head("balanced_mse", bmc_noise_var=4.0, bmc_sigma_lr=0.05)
    assert h.noise_sigma.requires_grad and h.noise_var_years == pytest.approx(4.0)
    (g,) = h.extra_param_groups()
    assert g["params"][0] is h.noise_sigma and g["lr"] == 0.05 and g["weight_decay"] == 0.0
    out = torch.tensor([[0.0], [1.0]], requires_grad=True)
    y = torch.tensor([22.0, 24.0])  # standardised 0, 1
    loss = h.loss(out, y)
    loss.backward()
    assert h.noise_sigma.grad is not None
    fixed = head("balanced_mse", bmc_learnable=False)
    assert fixed.extra_param_groups() == [] and "noise_sigma" in dict(fixed.named_buffers())


@pytest.mark.parametrize(
    "cfg, words",
    [
        ({"head": "ordinal", "ordinal_loss": "crn"}, "ordinal_loss"),
        ({"head": "ordinal", "ordinal_loss": "corn", "label_sigma": 1.0}, "label_sigma=0"),
        ({"head": "distribution", "target_type": "gauss"}, "target_type"),
        ({"head": "distribution", "label_sigma": 0.0}, "target_type='hard'"),
        ({"head": "distribution", "target_type": "row_gaussian"}, "uncertainty"),
        ({"head": "distribution", "dist_loss": "js"}, "dist_loss"),
        ({"head": "distribution", "decoder": "mean"}, "decoder"),
        ({"head": "distribution", "decision_threshold": 1.5}, "decision_threshold"),
        ({"head": "distribution", "interval_levels": [0.9, 1.2]}, "interval_levels"),
        ({"head": "distribution", "age_groups": [40, 30]}, "increasing"),
        ({"head": "distribution", "age_groups": [40], "group_tau": -1}, "group_tau"),
        ({"head": "distribution", "mv_lambda1": -0.1}, "mv_lambda1"),
        ({"head": "regression", "loss": "focal_l1", "focal_beta": 0}, "focal_beta"),
        ({"head": "regression", "focal_activate": "relu"}, "focal_activate"),
        ({"head": "balanced_mse", "bmc_noise_var": 0}, "bmc_noise_var"),
    ],
)
def test_bad_config_is_one_line_error(cfg, words):
    with pytest.raises(ValueError) as e:
        build_head(cfg, 4, TARGET)
    assert words in str(e.value) and "\n" not in str(e.value)
