"""Balanced MSE head, batch-based Monte-Carlo variant (BMC; Ren et al., CVPR 2022).

For a batch, ``logits_ij = -(pred_i - y_j)^2 / (2 noise_var)`` and
``loss = cross_entropy(logits, arange(B)) * (2 noise_var).detach()``: each prediction must pick
its own label among the batch's labels, which act as a sample of the training label
distribution, so the loss undoes the label prior of plain MSE. ``noise_var`` is learnable (its own
learning rate, via :meth:`BalancedMSEHead.extra_param_groups`) or fixed.

Per-sample weights multiply row ``i``'s cross-entropy term (its prediction against all batch
labels) before the batch mean; they do not reweight the batch labels acting as candidates.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agesearch.heads.base import TargetInfo, register_head
from agesearch.heads.regression import POINT_KEYS, PointHead
from agesearch.losses import weighted_mean


def bmc_loss(pred: Tensor, target: Tensor, noise_var: Tensor, weights: Tensor | None = None) -> Tensor:
    """BMC loss, scalar.

    Args:
        pred: predictions ``(B,)``.
        target: labels ``(B,)``, same units as ``pred``.
        noise_var: scalar tensor (> 0), same units squared.
        weights: per-row weights ``(B,)`` or None.
    """
    logits = -((pred[:, None] - target[None, :]) ** 2) / (2 * noise_var)
    ce = F.cross_entropy(logits, torch.arange(pred.shape[0], device=pred.device), reduction="none")
    return weighted_mean(ce, weights) * (2 * noise_var).detach()


@register_head
class BalancedMSEHead(PointHead):
    """Regression output trained with Balanced MSE (BMC).

    Args:
        d_in: representation size.
        target: label scale and bins.
        bmc_noise_var: initial (or fixed) noise variance in years^2 (reference: sigma 1, var 1).
        bmc_learnable: learn the noise scale (reference: yes).
        bmc_sigma_lr: learning rate of the noise scale (reference 1e-2).
        interval_levels, age_groups: see :class:`~agesearch.heads.regression.PointHead`.
    """

    name = "balanced_mse"
    config_keys = ("bmc_noise_var", "bmc_learnable", "bmc_sigma_lr") + POINT_KEYS

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        bmc_noise_var: float = 1.0,
        bmc_learnable: bool = True,
        bmc_sigma_lr: float = 1e-2,
        **common: Any,
    ) -> None:
        super().__init__(d_in, target, **common)
        if isinstance(bmc_noise_var, bool) or not (
            isinstance(bmc_noise_var, (int, float)) and math.isfinite(bmc_noise_var) and bmc_noise_var > 0
        ):
            raise ValueError(f"bmc_noise_var must be > 0 years^2, got {bmc_noise_var!r}")
        if not isinstance(bmc_learnable, bool):
            raise ValueError(f"bmc_learnable must be true or false, got {bmc_learnable!r}")
        if not (isinstance(bmc_sigma_lr, (int, float)) and math.isfinite(bmc_sigma_lr) and bmc_sigma_lr > 0):
            raise ValueError(f"bmc_sigma_lr must be a positive learning rate, got {bmc_sigma_lr!r}")
        # The head works in standardised units: sigma_std = sigma_years / std.
        sigma = torch.tensor(math.sqrt(bmc_noise_var) / target.std)
        self.bmc_learnable = bmc_learnable
        self.bmc_sigma_lr = float(bmc_sigma_lr)
        if bmc_learnable:
            self.noise_sigma = nn.Parameter(sigma)
        else:
            self.register_buffer("noise_sigma", sigma)

    @property
    def noise_var_years(self) -> float:
        """Current noise variance in years^2."""
        return float(self.noise_sigma.detach() ** 2) * self.target.std**2

    def extra_param_groups(self) -> list[dict[str, Any]]:
        """The noise scale with its own learning rate and no weight decay (empty when fixed)."""
        if not self.bmc_learnable:
            return []
        return [{"params": [self.noise_sigma], "lr": self.bmc_sigma_lr, "weight_decay": 0.0}]

    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        return bmc_loss(out[:, 0], self._standardise(y).to(out.dtype), self.noise_sigma**2, weights)
