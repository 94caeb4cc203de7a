"""Ordinal head: ``K-1`` binary tasks "age is above bin k".

Losses (``ordinal_loss``):

- ``soft_bce``: independent logits (one linear layer), ``BCEWithLogits`` summed over tasks on
  targets ``t_k = P(Y > b_k)`` with ``Y ~ N(y, label_sigma^2)`` and ``b_k`` the boundary between
  bins ``k`` and ``k+1``; ``label_sigma = 0`` gives hard targets ``[bin(y) > k]`` (Niu et al. 2016).
- ``coral`` (Cao, Mirjalili, Raschka 2020): one weight vector shared by all tasks plus a bias per
  task (rank-consistent); same BCE sum over tasks, mean over the batch; targets as ``soft_bce``
  (hard with the default ``label_sigma = 0``, as in the paper).
- ``corn`` (Shi, Cao, Raschka 2021): independent logits for conditional tasks
  ``P(bin > k | bin > k-1)``; task ``k`` is trained on the rows with ``bin(y) >= k`` only; the loss
  is the sum of BCE over all (row, task) pairs used divided by their number (the reference
  reduction). Hard targets only.

Decoding (default ``count``): ``#{k : s_k > decision_threshold}`` with ``s_k = sigmoid(logit_k)``
(soft_bce, coral) or the cumulative product of conditional probabilities (corn). The bin
distribution ``predict_proba`` comes from the running minimum of ``s`` (monotone), so
``median``/``expectation``/``mode`` and intervals are also available.

Per-sample weights multiply each row's BCE sum (soft_bce, coral) or each (row, task) BCE term
(corn; the divisor stays the number of terms).
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
from agesearch.heads.decoding import proba_from_survival
from agesearch.losses import weighted_mean

ORDINAL_LOSSES: tuple[str, ...] = ("soft_bce", "coral", "corn")


def ordinal_targets(y: Tensor, head: "OrdinalHead") -> Tensor:
    """Targets ``(B, K-1)`` in [0, 1] for "age above bin k" (hard when ``label_sigma == 0``)."""
    k = torch.arange(head.n_bins - 1, device=y.device)
    if head.label_sigma == 0:
        return (head.grid.assign(y)[:, None] > k[None, :]).to(torch.float32)
    b = head.grid.boundaries(y.double())
    z = (b[None, :] - y.double()[:, None]) / head.label_sigma
    return (0.5 * torch.erfc(z / math.sqrt(2.0))).to(torch.float32)


def bce_sum(logits: Tensor, targets: Tensor) -> Tensor:
    """``sum_k BCEWithLogits(logit_k, t_k)`` per row, ``(B,)``."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(dim=1)


def corn_loss(logits: Tensor, bin_idx: Tensor, weights: Tensor | None = None) -> Tensor:
    """CORN loss (reference reduction), scalar.

    Args:
        logits: ``(B, K-1)`` conditional logits.
        bin_idx: label bins ``(B,)``.
        weights: per-row weights ``(B,)`` or None.
    """
    k = torch.arange(logits.shape[1], device=logits.device)
    used = (bin_idx[:, None] >= k[None, :]).to(logits.dtype)  # task k sees rows with y > k-1
    label = (bin_idx[:, None] > k[None, :]).to(logits.dtype)
    term = F.binary_cross_entropy_with_logits(logits, label, reduction="none") * used
    if weights is not None:
        term = term * weights[:, None]
    return term.sum() / used.sum().clamp_min(1.0)


@register_head
class OrdinalHead(BinnedHead):
    """``K-1`` ordinal tasks over the padded age grid.

    Args (besides :class:`~agesearch.heads.binned.BinnedHead`'s):
        ordinal_loss: ``soft_bce`` | ``coral`` | ``corn``.
        label_sigma: width in years of the Gaussian behind the soft cumulative targets
            (0 = hard targets; must be 0 for corn). Default 0.
    """

    name = "ordinal"
    default_decoder = "count"
    config_keys = ("ordinal_loss", "label_sigma") + BINNED_KEYS

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        ordinal_loss: str = "soft_bce",
        label_sigma: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(d_in, target, **common)
        if ordinal_loss not in ORDINAL_LOSSES:
            raise ValueError(
                f"unknown ordinal_loss {ordinal_loss!r}; valid: {', '.join(ORDINAL_LOSSES)}"
            )
        if isinstance(label_sigma, bool) or not isinstance(label_sigma, (int, float)) or not (
            math.isfinite(label_sigma) and label_sigma >= 0
        ):
            raise ValueError(f"label_sigma must be a finite number >= 0 years, got {label_sigma!r}")
        if ordinal_loss == "corn" and label_sigma != 0:
            raise ValueError(
                f"ordinal_loss='corn' trains on hard conditional targets; set label_sigma=0 "
                f"(got {label_sigma}) or use ordinal_loss='soft_bce'"
            )
        self.ordinal_loss = ordinal_loss
        self.label_sigma = float(label_sigma)
        n_tasks = self.n_bins - 1
        # Biases start at the logits of the training survival function (decreasing, so CORAL is
        # rank-consistent from the start like the reference's arange init, but at the right
        # scale); CORN's conditional tasks start at P(bin > k | bin > k-1).
        s = self.prior_survival()
        if ordinal_loss == "corn":
            s = np.clip(s / np.concatenate([[1.0], s[:-1]]), 1e-4, 1 - 1e-4)
        bias = torch.as_tensor(np.log(s) - np.log1p(-s), dtype=torch.float32)
        if ordinal_loss == "coral":
            self.linear = nn.Linear(d_in, 1, bias=False)
            self.task_bias = nn.Parameter(bias)
        else:
            self.linear = nn.Linear(d_in, n_tasks)
            with torch.no_grad():
                self.linear.bias.copy_(bias)
            self.task_bias = None

    def forward(self, z: Tensor) -> Tensor:
        """``(B, d_in) -> (B, K-1)`` task logits."""
        out = self.linear(z)
        if self.task_bias is not None:
            out = out + self.task_bias[None, :]
        return out

    def task_probs(self, out: Tensor) -> Tensor:
        """``s_k`` of the reference decoders, ``(B, K-1)``."""
        p = torch.sigmoid(out)
        return torch.cumprod(p, dim=1) if self.ordinal_loss == "corn" else p

    def predict_proba(self, out: Tensor) -> Tensor:
        """Bin probabilities ``(B, K)`` from the (monotonised) task probabilities."""
        return proba_from_survival(self.task_probs(out))

    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        if self.ordinal_loss == "corn":
            return corn_loss(out, self.grid.assign(y), weights)
        return weighted_mean(bce_sum(out, ordinal_targets(y, self)), weights)
