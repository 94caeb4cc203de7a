"""Probabilistic metrics of a head's outputs, overall and per region.

- ``nll``: mean negative log-likelihood of the true bin, ``-log p[bin(y)]`` (probabilities
  clipped at 1e-12), for heads with :meth:`~agesearch.heads.Head.predict_proba`.
- ``coverage<L>`` / ``width<L>``: share of rows with ``lo <= y <= hi`` and mean ``hi - lo`` of the
  central ``L`` prediction interval, for each of the head's ``interval_levels`` (``coverage90``...).
- with ``age_groups``: ``group_acc``, ``group_bacc``, ``group_macro_f1``, ``group_recall_<group>``
  (overall only).

Region keys carry the suffix ``_many``/``_medium``/``_few``/``_zero`` (``nll_few``,
``coverage90_few``); an empty region gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from agesearch.heads.base import Head
from agesearch.heads.decoding import level_key
from agesearch.heads.groups import group_metrics
from agesearch.regions import REGIONS

NLL_EPS = 1e-12


def nll(probs: Tensor, bin_idx: Tensor) -> np.ndarray:
    """Per-row ``-log p[bin]``, ``(n,)``, from probabilities ``(n, K)`` and bins ``(n,)``."""
    p = probs.gather(1, bin_idx.long().to(probs.device)[:, None])[:, 0]
    return (-torch.log(p.double().clamp_min(NLL_EPS))).cpu().numpy()


def interval_scores(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row coverage indicator (float) and width, each ``(n,)``."""
    y = np.asarray(y, float)
    return ((lo <= y) & (y <= hi)).astype(float), np.asarray(hi - lo, float)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) and np.all(np.isfinite(x)) else math.nan


def _with_regions(name: str, per_row: np.ndarray, regions: np.ndarray | None, out: dict) -> None:
    out[name] = _mean(per_row)
    if regions is not None:
        for r in REGIONS:
            out[f"{name}_{r}"] = _mean(per_row[regions == r])


@torch.no_grad()
def head_metrics(
    head: Head, out: Tensor, y: np.ndarray, regions: np.ndarray | None = None
) -> dict[str, float]:
    """NLL, interval coverage and width (overall and per region) and group metrics.

    Args:
        head: the head that produced ``out``.
        out: raw outputs ``(n, d_out)``.
        y: true ages ``(n,)``.
        regions: region of each row ``(n,)`` or None.

    Returns:
        A flat dict; empty for a point head without intervals or groups.
    """
    y = np.asarray(y, dtype=float)
    regions = None if regions is None else np.asarray(regions)
    res: dict[str, float] = {}
    probs = head.predict_proba(out) if len(y) else None
    if probs is not None:
        grid = getattr(head, "grid")
        bins = grid.assign(torch.as_tensor(y, device=out.device))
        _with_regions("nll", nll(probs, bins), regions, res)
    levels = head.interval_levels if callable(getattr(head, "predict_interval", None)) else ()
    for level in levels:
        if len(y):
            lo, hi = head.predict_interval(out, level)
            cov, width = interval_scores(y, lo.double().cpu().numpy(), hi.double().cpu().numpy())
        else:
            cov = width = np.zeros(0)
        _with_regions(f"coverage{level_key(level)}", cov, regions, res)
        _with_regions(f"width{level_key(level)}", width, regions, res)
    if head.groups is not None:
        pred_g = head.predict_groups(out) if len(y) else torch.zeros(0, dtype=torch.long)
        res.update(
            group_metrics(head.groups.group_of(y), pred_g.cpu().numpy(), head.groups.labels)
        )
    return res
