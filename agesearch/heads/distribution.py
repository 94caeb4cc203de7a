"""Label-distribution head: softmax over age bins trained on (soft) target distributions.

Targets (``target_type``):

- ``hard``: one-hot on the label's bin.
- ``gaussian`` (DLDL, Gao et al. 2017): ``q_k ~ exp(-(v_k - y)^2 / (2 sigma^2))``, normalised over
  the grid, ``sigma = label_sigma`` years.
- ``sord`` (Diaz and Marathe, CVPR 2019): ``q_k = softmax_k(-phi(y, v_k))`` with
  ``phi = |v_k - y| / label_sigma`` (``sord_distance="abs"``) or ``((v_k - y) / label_sigma)^2``
  (``"squared"``).
- ``row_gaussian``: Gaussian with each row's own label uncertainty ``y_std`` (rows without a
  positive ``y_std`` use ``label_sigma``); needs a label-uncertainty column.

Loss (``dist_loss``): ``kl`` = KL(q || p) on ``log_softmax`` (``KLDivLoss(reduction="batchmean")``
per sample) or ``ce`` = soft-label cross entropy ``-sum q log p``; they differ exactly by the
target entropy ``H(q)``, a constant, so their gradients agree. Optional terms, in bin units
(``(v - y) / width``): ``dldl_l1 * |E[v] - y|`` (DLDL-v2, Gao et al. 2018) and the mean-variance
loss (Pan et al. 2018) ``mv_lambda1 * (m - y)^2 / 2 + mv_lambda2 * sum_k p_k (v_k - m)^2``
(the paper uses 0.2 and 0.05).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agesearch.heads.base import TargetInfo, register_head
from agesearch.heads.binned import BINNED_KEYS, BinnedHead
from agesearch.losses import weighted_mean

TARGET_TYPES: tuple[str, ...] = ("hard", "gaussian", "sord", "row_gaussian")
DIST_LOSSES: tuple[str, ...] = ("kl", "ce")
SORD_DISTANCES: tuple[str, ...] = ("abs", "squared")


def _nonneg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


@register_head
class DistributionHead(BinnedHead):
    """Linear layer to ``K`` logits over the padded age grid; softmax gives the distribution.

    Args (besides :class:`~agesearch.heads.binned.BinnedHead`'s):
        target_type: ``hard`` | ``gaussian`` | ``sord`` | ``row_gaussian``.
        label_sigma: width of soft targets in years (> 0 for gaussian/sord; fallback for
            row_gaussian; ignored by hard). Default 2.
        sord_distance: ``abs`` | ``squared`` (SORD only).
        dist_loss: ``kl`` | ``ce``.
        dldl_l1: weight of the expectation L1 term (DLDL-v2), >= 0.
        mv_lambda1, mv_lambda2: mean-variance loss weights, >= 0.

    Per-sample weights multiply each row's total loss before the batch mean.
    """

    name = "distribution"
    default_decoder = "expectation"
    config_keys = (
        "target_type",
        "label_sigma",
        "sord_distance",
        "dist_loss",
        "dldl_l1",
        "mv_lambda1",
        "mv_lambda2",
    ) + BINNED_KEYS

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        target_type: str = "gaussian",
        label_sigma: float = 2.0,
        sord_distance: str = "abs",
        dist_loss: str = "kl",
        dldl_l1: float = 0.0,
        mv_lambda1: float = 0.0,
        mv_lambda2: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(d_in, target, **common)
        if target_type not in TARGET_TYPES:
            raise ValueError(f"unknown target_type {target_type!r}; valid: {', '.join(TARGET_TYPES)}")
        if dist_loss not in DIST_LOSSES:
            raise ValueError(f"unknown dist_loss {dist_loss!r}; valid: {', '.join(DIST_LOSSES)}")
        if sord_distance not in SORD_DISTANCES:
            raise ValueError(f"unknown sord_distance {sord_distance!r}; valid: {', '.join(SORD_DISTANCES)}")
        self.label_sigma = _nonneg("label_sigma", label_sigma)
        if target_type in ("gaussian", "sord", "row_gaussian") and self.label_sigma <= 0:
            raise ValueError(
                f"label_sigma must be > 0 years for target_type={target_type!r}, got {label_sigma}; "
                "use target_type='hard' for one-hot targets"
            )
        if target_type == "row_gaussian" and not target.has_uncertainty:
            raise ValueError(
                "target_type='row_gaussian' needs a label-uncertainty column; load the table with "
                "uncertainty='<column>' or use target_type='gaussian'"
            )
        self.target_type = target_type
        self.sord_distance = sord_distance
        self.dist_loss = dist_loss
        self.dldl_l1 = _nonneg("dldl_l1", dldl_l1)
        self.mv_lambda1 = _nonneg("mv_lambda1", mv_lambda1)
        self.mv_lambda2 = _nonneg("mv_lambda2", mv_lambda2)
        self.linear = nn.Linear(d_in, self.n_bins)
        with torch.no_grad():  # start from the training label distribution
            self.linear.bias.copy_(torch.as_tensor(np.log(self.prior_proba()), dtype=torch.float32))

    def forward(self, z: Tensor) -> Tensor:
        """``(B, d_in) -> (B, K)`` logits."""
        return self.linear(z)

    def predict_proba(self, out: Tensor) -> Tensor:
        """``softmax(out)``, ``(B, K)``."""
        return torch.softmax(out, dim=1)

    def targets(self, y: Tensor, y_std: Tensor | None = None) -> Tensor:
        """Target distributions ``(B, K)`` for ages ``y`` ``(B,)`` (rows sum to 1)."""
        v = self.grid.values_t(y.float())
        if self.target_type == "hard":
            return F.one_hot(self.grid.assign(y), self.n_bins).to(v.dtype)
        d = v[None, :] - y.float()[:, None]
        if self.target_type == "sord":
            phi = d.abs() / self.label_sigma
            if self.sord_distance == "squared":
                phi = phi**2
            return torch.softmax(-phi, dim=1)
        sigma = torch.full_like(y.float(), self.label_sigma)
        if self.target_type == "row_gaussian":
            if y_std is None:
                raise ValueError(
                    "target_type='row_gaussian' got no y_std in the batch; the training data has "
                    "no label-uncertainty column"
                )
            ys = y_std.float()
            sigma = torch.where(torch.isfinite(ys) & (ys > 0), ys, sigma)
        return torch.softmax(-(d**2) / (2 * sigma[:, None] ** 2), dim=1)

    def per_sample_loss(self, out: Tensor, y: Tensor, y_std: Tensor | None = None) -> Tensor:
        """Per-row loss ``(B,)``."""
        logp = torch.log_softmax(out, dim=1)
        q = self.targets(y, y_std)
        if self.dist_loss == "kl":
            per = F.kl_div(logp, q, reduction="none").sum(dim=1)
        else:
            per = -(q * logp).sum(dim=1)
        if self.dldl_l1 or self.mv_lambda1 or self.mv_lambda2:
            p = logp.exp()
            v = self.grid.values_t(out) / self.grid.width
            yb = y.to(out.dtype) / self.grid.width
            m = p @ v
            if self.dldl_l1:
                per = per + self.dldl_l1 * (m - yb).abs()
            if self.mv_lambda1:
                per = per + self.mv_lambda1 * (m - yb) ** 2 / 2
            if self.mv_lambda2:
                per = per + self.mv_lambda2 * (p * (v[None, :] - m[:, None]) ** 2).sum(dim=1)
        return per

    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        return weighted_mean(self.per_sample_loss(out, y, batch.get("y_std")), weights)
