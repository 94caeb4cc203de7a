"""Smoothing windows over the label-bin axis, built exactly as the DIR reference builds them.

Reference: ``get_lds_kernel_window`` in agedb-dir ``utils.py`` (LDS: window divided by its MAX)
and ``FDS._get_kernel_window`` in ``fds.py`` (same window, divided by its SUM).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal.windows import triang

KERNELS: tuple[str, ...] = ("gaussian", "triang", "laplace")
"""Valid kernel names."""


def kernel_window(
    kernel: str = "gaussian",
    ks: int = 5,
    sigma: float = 2.0,
    *,
    normalize: Literal["max", "sum"] = "max",
) -> np.ndarray:
    """A symmetric window of ``ks`` weights, shape ``(ks,)`` float64.

    Args:
        kernel: ``gaussian`` (scipy ``gaussian_filter1d`` of a unit impulse of length ``ks``,
            reflect mode, truncate 4 sigma: flatter than ``exp(-x^2/2s^2)`` because the tails
            fold back), ``triang`` (scipy ``triang(ks)``) or ``laplace`` (``exp(-|x|/sigma)``).
        ks: window size, odd and >= 1.
        sigma: kernel scale (> 0); unused by ``triang``.
        normalize: ``max`` (LDS reference: peak 1) or ``sum`` (FDS reference: weights sum to 1).

    Example: ``kernel_window("gaussian", 5, 2)`` is ``[0.8583, 0.9458, 1, 0.9458, 0.8583]``.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")
    if int(ks) != ks or ks < 1 or ks % 2 == 0:
        raise ValueError(f"kernel size ks must be an odd positive integer, got {ks}; use e.g. 5")
    if not (sigma > 0 and np.isfinite(sigma)):
        raise ValueError(f"kernel sigma must be a positive number, got {sigma}; use e.g. 2")
    if normalize not in ("max", "sum"):
        raise ValueError(f"normalize must be 'max' or 'sum', got {normalize!r}")
    ks = int(ks)
    half = (ks - 1) // 2
    if kernel == "gaussian":
        impulse = np.zeros(ks)
        impulse[half] = 1.0
        w = gaussian_filter1d(impulse, sigma=float(sigma))
    elif kernel == "triang":
        w = np.asarray(triang(ks), dtype=float)
    else:
        x = np.arange(-half, half + 1, dtype=float)
        w = np.exp(-np.abs(x) / float(sigma)) / (2.0 * float(sigma))
    return w / (w.max() if normalize == "max" else w.sum())
