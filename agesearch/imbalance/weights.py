"""Per-sample loss weights: inverse / square-root-inverse frequency, LDS, DenseWeight.

Reference: ``_prepare_weights`` in agedb-dir ``datasets.py`` (Yang et al. 2021) and DenseWeight
(Steininger et al. 2021). Used by the trainer and by the tree baselines alike.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import convolve1d

from agesearch.imbalance.kernels import kernel_window

WEIGHT_METHODS: tuple[str, ...] = ("none", "inverse", "sqrt_inv", "denseweight")
PADDINGS: tuple[str, ...] = ("constant", "reflect")
INVERSE_CLIP: tuple[float, float] = (5.0, 1000.0)
"""``inverse`` clips per-bin counts to this range before inverting (reference)."""
DENSEWEIGHT_EPS = 1e-6


def _check_labels(name: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass at least one label")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or inf; drop those rows first")
    return y


def cap_weights(w: np.ndarray, max_weight: float) -> np.ndarray:
    """Rescale ``w`` (positive) to mean 1 with no weight above ``max_weight`` (>= 1).

    Exact water-filling: the largest weights are set to ``max_weight`` and the others share one
    scale factor chosen so that the mean is exactly 1.
    """
    w = np.asarray(w, dtype=float)
    n = w.size
    order = np.argsort(-w, kind="stable")
    ws = w[order]
    tail = np.cumsum(ws[::-1])[::-1]  # tail[k] = sum of ws[k:]
    out = np.empty(n)
    for k in range(n):  # k = number of capped weights; n is small in the loop's worst case
        rest = tail[k]
        scale = (n - k * max_weight) / rest
        if ws[k] * scale <= max_weight * (1 + 1e-12):
            out[order[:k]] = max_weight
            out[order[k:]] = ws[k:] * scale
            return out
    return np.full(n, 1.0)


def sample_weights(
    labels: np.ndarray,
    *,
    method: str,
    bin_width: float = 1.0,
    lds: bool = False,
    kernel: str = "gaussian",
    ks: int = 5,
    sigma: float = 2.0,
    padding: str = "constant",
    max_weight: float | None = None,
    alpha: float = 1.0,
    train_labels: np.ndarray | None = None,
) -> np.ndarray:
    """Loss weight of every label, shape ``(n,)`` float64, normalised to mean 1 over ``labels``.

    Args:
        labels: ages to weight, shape ``(n,)``.
        method: ``none`` (all ones), ``inverse`` (1 / bin count, counts clipped to [5, 1000] as in
            the reference), ``sqrt_inv`` (1 / sqrt(bin count)) or ``denseweight`` (DenseWeight:
            ``max(1 - alpha * p'(y), 1e-6)`` with ``p'`` the Gaussian KDE of the training labels,
            Silverman bandwidth ``1.06 * std * n^(-1/5)``, min-max scaled to [0, 1]).
        bin_width: bin width in label units (bins start at ``floor(min / width) * width``).
        lds: smooth the transformed bin counts with the kernel window (label distribution
            smoothing) before inverting.
        kernel, ks, sigma: the LDS window (:func:`~agesearch.imbalance.kernels.kernel_window`,
            max-normalised).
        padding: ``constant`` = the reference: the histogram is extended by half a window of empty
            bins (transformed like any empty bin: 0 for ``sqrt_inv``, 5 for ``inverse``, as on
            the reference's 0..120 grid) and zero beyond, which inflates the weights of the extreme
            bins; with ``inverse`` the smoothed counts are truncated to integers (scipy on the
            reference's integer array); identical to DIR's ``_prepare_weights`` for integer labels
            within [half, 120 - half].
            ``reflect`` = mirror the histogram at its ends (no inflation at the edges).
        max_weight: cap on the largest weight after normalisation (>= 1), the mean stays 1.
        alpha: DenseWeight strength (>= 0; 0 gives uniform weights).
        train_labels: labels whose distribution defines the weights (default: ``labels``);
            labels outside their range take the nearest edge bin.
    """
    if method not in WEIGHT_METHODS:
        raise ValueError(f"unknown weight method {method!r}; valid: {', '.join(WEIGHT_METHODS)}")
    if padding not in PADDINGS:
        raise ValueError(f"unknown LDS padding {padding!r}; valid: {', '.join(PADDINGS)}")
    if not (bin_width > 0 and math.isfinite(bin_width)):
        raise ValueError(f"bin_width must be a positive number, got {bin_width}; use e.g. 1.0")
    if max_weight is not None and not max_weight >= 1:
        raise ValueError(f"max_weight must be >= 1 (weights have mean 1), got {max_weight}")
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"denseweight alpha must be >= 0, got {alpha}; use e.g. 1.0")
    y = _check_labels("labels", labels)
    ref = y if train_labels is None else _check_labels("train_labels", train_labels)
    if lds:
        window = kernel_window(kernel, ks, sigma, normalize="max")
    if method == "none":
        w = np.ones_like(y)
    elif method == "denseweight":
        w = _denseweight(y, ref, alpha)
    else:
        half = (len(window) - 1) // 2 if lds else 0
        ext = half if padding == "constant" else 0
        origin = math.floor(float(ref.min()) / bin_width + 1e-9) * bin_width - ext * bin_width
        n_bins = int(math.floor((float(ref.max()) - origin) / bin_width + 1e-9)) + 1 + ext

        def assign(v: np.ndarray) -> np.ndarray:
            idx = np.floor((v - origin) / bin_width + 1e-9).astype(np.int64)
            return np.clip(idx, ext, n_bins - 1 - ext)

        counts = np.bincount(assign(ref), minlength=n_bins).astype(float)
        if method == "sqrt_inv":
            value = np.sqrt(counts)
        else:
            value = np.clip(counts, *INVERSE_CLIP)
        if lds:
            if method == "inverse" and padding == "constant":
                # reference quirk: the clipped counts are integers, so scipy returns the smoothed
                # counts truncated to integers; reproduced in the reference (constant) mode
                value = convolve1d(value.astype(np.int64), weights=window, mode="constant")
            else:
                value = convolve1d(value, weights=window, mode=padding)
        per_row = value[assign(y)].astype(np.float32)
        w = 1.0 / per_row.astype(float)
    w = w * (len(w) / w.sum())
    if max_weight is not None:
        w = cap_weights(w, float(max_weight))
    return w


def silverman_bandwidth(y: np.ndarray) -> float:
    """``1.06 * std(y) * n^(-1/5)`` (DenseWeight's default); 1.0 for constant labels."""
    s = float(np.std(y))
    return 1.06 * s * len(y) ** (-0.2) if s > 0 else 1.0


def kde_density(points: np.ndarray, data: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian KDE of ``data`` evaluated at ``points``, shape ``points.shape``.

    Exact on the unique values (ages have few); chunked so memory stays bounded.
    """
    d_vals, d_counts = np.unique(data, return_counts=True)
    p_vals, inv = np.unique(points, return_inverse=True)
    out = np.empty(len(p_vals))
    step = max(1, 2_000_000 // max(len(d_vals), 1))
    for s in range(0, len(p_vals), step):
        u = (p_vals[s : s + step, None] - d_vals[None, :]) / bandwidth
        out[s : s + step] = (np.exp(-0.5 * u * u) * d_counts).sum(1)
    out /= len(data) * bandwidth * math.sqrt(2 * math.pi)
    return out[inv.reshape(-1)]


def _denseweight(y: np.ndarray, ref: np.ndarray, alpha: float) -> np.ndarray:
    bw = silverman_bandwidth(ref)
    p_ref = kde_density(ref, ref, bw)
    lo, hi = float(p_ref.min()), float(p_ref.max())
    p = kde_density(y, ref, bw)
    scaled = np.clip((p - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(p)
    return np.maximum(1.0 - alpha * scaled, DENSEWEIGHT_EPS)
