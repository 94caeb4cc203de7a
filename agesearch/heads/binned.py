"""Shared base of the heads that predict a distribution over the padded age-bin grid."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import Tensor

from agesearch.heads.base import Head, TargetInfo
from agesearch.heads.decoding import (
    DECODERS,
    Metric,
    THRESHOLD_DECODERS,
    BinGrid,
    central_interval,
    decode,
    scan_threshold,
    validate_levels,
    validate_threshold,
)
from agesearch.heads.groups import AgeGroups

BINNED_KEYS: tuple[str, ...] = (
    "decoder",
    "decision_threshold",
    "interval_levels",
    "age_groups",
    "group_tau",
    "bin_pad",
)
"""Configuration keys every binned head accepts."""


class BinnedHead(Head):
    """A head whose output is a distribution over ``K`` age bins.

    Subclasses implement :meth:`forward`, :meth:`loss`, :meth:`predict_proba` and may override
    :meth:`task_probs` (default: the survival ``P(bin > k)`` of :meth:`predict_proba`).

    Args:
        d_in: representation size.
        target: label scale and the data's bins (the grid pads them by ``bin_pad`` each side).
        decoder: one of :data:`~agesearch.heads.decoding.DECODERS` (default per head).
        decision_threshold: threshold of the ``median``/``count`` decoders, in (0, 1), or
            ``"auto"``: chosen on the validation split after each epoch by :meth:`calibrate`.
        interval_levels: central prediction-interval levels reported by the metrics.
        age_groups: optional group edges (ages), see :mod:`agesearch.heads.groups`.
        group_tau: logit-adjustment strength for group predictions (>= 0).
        bin_pad: bins added at each end of the data's label range (>= 0).
    """

    probabilistic = True
    default_decoder: ClassVar[str] = "expectation"

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        decoder: str | None = None,
        decision_threshold: float | str = 0.5,
        interval_levels: Sequence[float] = (0.8, 0.9),
        age_groups: Sequence[float] | None = None,
        group_tau: float = 0.0,
        bin_pad: int = 2,
    ) -> None:
        super().__init__(d_in, target)
        decoder = self.default_decoder if decoder is None else decoder
        if decoder not in DECODERS:
            raise ValueError(
                f"unknown decoder {decoder!r} for head {self.name!r}; valid: {', '.join(DECODERS)}"
            )
        self.decoder = decoder
        fixed = validate_threshold(decision_threshold)
        self.auto_threshold = fixed is None
        self.register_buffer("threshold", torch.tensor(0.5 if fixed is None else fixed))
        self.interval_levels = validate_levels(interval_levels)
        self.grid = BinGrid(target.bins, bin_pad, on_grid=target.on_grid)
        self.n_bins = self.grid.n_bins
        self.groups = (
            None
            if age_groups is None
            else AgeGroups(
                age_groups, self.grid.values, target.bin_values, target.train_counts, group_tau
            )
        )
        if age_groups is None and group_tau != 0.0:
            AgeGroups([0.0], self.grid.values, tau=group_tau)  # validates group_tau only

    def prior_proba(self) -> np.ndarray:
        """Training label frequency per grid bin, ``(K,)``, with 0.5 added to every bin (uniform
        without training counts). Heads initialise their output biases to this prior so training
        starts from the marginal age distribution rather than a flat one."""
        counts = np.zeros(self.n_bins)
        if self.target.train_counts is not None:
            pad = (self.n_bins - self.target.bins.n_bins) // 2
            counts[pad : pad + self.target.bins.n_bins] = self.target.train_counts
        counts = counts + 0.5
        return counts / counts.sum()

    def prior_survival(self) -> np.ndarray:
        """``P(bin > k)`` of :meth:`prior_proba`, ``(K-1,)``, clipped to [1e-4, 1 - 1e-4]."""
        return np.clip(1.0 - np.cumsum(self.prior_proba())[:-1], 1e-4, 1 - 1e-4)

    @abc.abstractmethod
    def predict_proba(self, out: Tensor) -> Tensor:
        """Probability per grid bin, ``(B, K)``."""

    def task_probs(self, out: Tensor) -> Tensor:
        """Probability that the age lies above bin ``k``, ``(B, K-1)`` (used by ``count``/``sum``)."""
        probs = self.predict_proba(out)
        return (1.0 - torch.cumsum(probs, dim=1)[:, :-1]).clamp(0.0, 1.0)

    def predict(self, out: Tensor) -> Tensor:
        """Ages ``(B,)`` by the configured decoder."""
        return decode(
            self.decoder, self.predict_proba(out), self.task_probs(out), self.threshold, self.grid
        )

    def predict_interval(self, out: Tensor, level: float) -> tuple[Tensor, Tensor]:
        """Central ``level`` interval ``(lo, hi)`` in years from the predicted distribution."""
        return central_interval(self.predict_proba(out), float(level), self.grid)

    def group_proba(self, out: Tensor) -> Tensor | None:
        """Group probabilities ``(B, G)``, or None without ``age_groups``."""
        return None if self.groups is None else self.groups.proba(self.predict_proba(out))

    def predict_groups(self, out: Tensor) -> Tensor | None:
        """Logit-adjusted group predictions ``(B,)``, or None without ``age_groups``."""
        gp = self.group_proba(out)
        return None if gp is None else self.groups.adjusted_predict(gp)

    @torch.no_grad()
    def calibrate(
        self, out: Tensor, y: np.ndarray, regions: np.ndarray | None, metric: Metric
    ) -> dict[str, Any]:
        """Fit post-training decision rules on validation outputs.

        With ``decision_threshold="auto"`` and a ``median``/``count`` decoder, scans thresholds
        (0.05..0.95) and keeps the one minimising ``metric`` (e.g. ``mae_few``, or the search
        objective's ``score`` callable). The threshold is
        a buffer, so it is saved with the weights. Returns what was set.
        """
        if not (self.auto_threshold and self.decoder in THRESHOLD_DECODERS):
            return {}
        if self.decoder == "count":
            s = self.task_probs(out)
        else:
            s = (1.0 - torch.cumsum(self.predict_proba(out), dim=1)[:, :-1]).clamp(0.0, 1.0)
        t = scan_threshold(s, np.asarray(y, float), regions, metric, self.grid)
        self.threshold.fill_(t)
        return {"decision_threshold": t}
