"""Age groups (brackets): group probabilities, training priors and logit adjustment.

Users who need brackets rather than exact ages declare edges, e.g. ``age_groups=[30, 40, 50]``,
which gives the groups ``<30``, ``[30, 40)``, ``[40, 50)``, ``>=50``. A probabilistic head sums
its bin probabilities per group; the predicted group is

    argmax_g  log P(g | x) - group_tau * log pi_g

with ``pi_g`` the training frequency of group ``g`` (add-one smoothed): post-hoc logit adjustment
(Menon et al., "Long-tail learning via logit adjustment", ICLR 2021). ``group_tau = 0`` is the
plain argmax; ``group_tau = 1`` is the balanced-error-optimal rule; the search can tune it. This is
the multi-class analogue of moving a 0.5 decision threshold for a rare class.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor


def _fmt(x: float) -> str:
    return f"{x:g}".replace("-", "m")


class AgeGroups:
    """Groups defined by ascending edges over ages.

    Args:
        edges: strictly increasing finite ages, at least one (``G = len(edges) + 1`` groups).
        bin_values: the age each grid bin stands for, shape ``(K,)`` (the head's grid).
        prior_values: the age of each data bin, shape ``(n_bins,)``; with ``prior_counts`` (training
            rows per data bin) it gives the training group frequencies. None: uniform prior.
        prior_counts: shape ``(n_bins,)`` or None.
        tau: logit-adjustment strength (>= 0).
    """

    def __init__(
        self,
        edges: Sequence[float],
        bin_values: np.ndarray,
        prior_values: np.ndarray | None = None,
        prior_counts: np.ndarray | None = None,
        tau: float = 0.0,
    ) -> None:
        self.edges = validate_edges(edges)
        if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
            raise ValueError(f"group_tau must be a finite number >= 0, got {tau!r}; 0 disables it")
        self.tau = float(tau)
        e = self.edges
        self.labels: list[str] = (
            [f"lt{_fmt(e[0])}"]
            + [f"{_fmt(a)}_{_fmt(b)}" for a, b in zip(e[:-1], e[1:])]
            + [f"ge{_fmt(e[-1])}"]
        )
        self.n_groups = len(self.labels)
        g_of_bin = self.group_of(np.asarray(bin_values, dtype=float))
        self.member = torch.zeros((len(bin_values), self.n_groups))
        """``(K, G)`` 0/1: bin k belongs to group g."""
        self.member[torch.arange(len(bin_values)), torch.as_tensor(g_of_bin)] = 1.0
        counts = np.zeros(self.n_groups)
        if prior_values is not None and prior_counts is not None:
            np.add.at(counts, self.group_of(np.asarray(prior_values, float)), np.asarray(prior_counts, float))
        self.prior = (counts + 1.0) / (counts.sum() + self.n_groups)
        """Training frequency of each group, add-one smoothed, shape ``(G,)``."""

    def group_of(self, ages: np.ndarray | Tensor) -> np.ndarray:
        """Group index of each age, shape ``(n,)`` int64."""
        a = ages.detach().cpu().numpy() if isinstance(ages, Tensor) else np.asarray(ages, float)
        return np.searchsorted(np.asarray(self.edges), a, side="right").astype(np.int64)

    def proba(self, probs: Tensor) -> Tensor:
        """Group probabilities ``(B, G)`` from bin probabilities ``(B, K)``."""
        return probs @ self.member.to(device=probs.device, dtype=probs.dtype)

    def adjusted_predict(self, group_probs: Tensor) -> Tensor:
        """argmax of ``log P(g|x) - tau * log pi_g``, shape ``(B,)`` int64."""
        logp = torch.log(group_probs.clamp_min(1e-12))
        prior = torch.as_tensor(self.prior, dtype=logp.dtype, device=logp.device)
        return (logp - self.tau * torch.log(prior)).argmax(dim=1)


def validate_edges(edges: Any) -> tuple[float, ...]:
    """Edges as a tuple of floats, or a one-line error naming the fix."""
    try:
        e = tuple(float(x) for x in edges)
    except (TypeError, ValueError):
        raise ValueError(
            f"age_groups must be a list of ages (group edges), e.g. [30, 40, 50]; got {edges!r}"
        ) from None
    if not e:
        raise ValueError("age_groups needs at least one edge, e.g. [40]")
    if not all(math.isfinite(x) for x in e) or any(b <= a for a, b in zip(e[:-1], e[1:])):
        raise ValueError(f"age_groups edges must be finite and strictly increasing, got {list(edges)}")
    return e


def group_metrics(
    true_g: np.ndarray, pred_g: np.ndarray, labels: Sequence[str]
) -> dict[str, float]:
    """Accuracy, per-group recall, balanced accuracy and macro-F1 of group predictions.

    Args:
        true_g, pred_g: group indices, shape ``(n,)``.
        labels: group names (``G``); keys are ``group_recall_<label>``.

    Returns:
        ``group_acc``, ``group_bacc`` (mean recall over groups present in ``true_g``),
        ``group_macro_f1`` (mean F1 over groups present in ``true_g`` or ``pred_g``), and
        ``group_recall_<label>`` (NaN for a group with no true row).
    """
    true_g = np.asarray(true_g, dtype=np.int64)
    pred_g = np.asarray(pred_g, dtype=np.int64)
    out: dict[str, float] = {}
    if len(true_g) == 0:
        out.update(group_acc=math.nan, group_bacc=math.nan, group_macro_f1=math.nan)
        out.update({f"group_recall_{lab}": math.nan for lab in labels})
        return out
    recalls, f1s = [], []
    for g, lab in enumerate(labels):
        t, p = true_g == g, pred_g == g
        tp = float(np.sum(t & p))
        rec = float(tp / t.sum()) if t.any() else math.nan
        out[f"group_recall_{lab}"] = rec
        if t.any():
            recalls.append(rec)
        if t.any() or p.any():
            f1s.append(float(2 * tp / (t.sum() + p.sum())))
    out["group_acc"] = float(np.mean(true_g == pred_g))
    out["group_bacc"] = float(np.mean(recalls))
    out["group_macro_f1"] = float(np.mean(f1s))
    return out
