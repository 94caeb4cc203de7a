"""Age bins and shot regions (many / medium / few / zero), from training counts only.

Follows Yang et al. 2021 ("Delving into Deep Imbalanced Regression"): bins of width 1 year,
many-shot = more than 100 training rows, few-shot = fewer than 20, medium = the rest. Unlike the
reference, bins with no training row form their own ``zero`` region, any bin width and float ages
are accepted, and a ``tertile`` mode splits the populated bins by count into thirds for small data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

REGIONS: tuple[str, ...] = ("many", "medium", "few", "zero")
"""Region names, from the most to the least represented."""


@dataclass(frozen=True)
class AgeBins:
    """Equal-width bins over ages: bin ``i`` covers ``[origin + i*width, origin + (i+1)*width)``.

    Args:
        width: bin width in years (> 0).
        origin: left edge of bin 0; ages below it are clipped into bin 0.
        n_bins: number of bins; ages at or above the last edge are clipped into the last bin.
    """

    width: float
    origin: float
    n_bins: int

    def __post_init__(self) -> None:
        if not (self.width > 0 and math.isfinite(self.width)):
            raise ValueError(f"bin width must be a positive number, got {self.width!r}")
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {self.n_bins}")

    @classmethod
    def from_labels(cls, y: np.ndarray, width: float = 1.0, pad: int = 0) -> "AgeBins":
        """Bins covering ``y`` (any range, float ages allowed), padded by ``pad`` bins each side."""
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"bin width must be a positive number, got {width!r}; use e.g. 1.0")
        y = np.asarray(y, dtype=float)
        if y.size == 0:
            raise ValueError("cannot build age bins from an empty label array")
        lo = math.floor(float(y.min()) / width) * width - pad * width
        hi = float(y.max())
        n = int(math.floor((hi - lo) / width + 1e-9)) + 1 + pad
        return cls(width=float(width), origin=float(lo), n_bins=n)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, shape ``(n_bins + 1,)``."""
        return self.origin + self.width * np.arange(self.n_bins + 1)

    @property
    def centers(self) -> np.ndarray:
        """Bin centres, shape ``(n_bins,)``."""
        return self.origin + self.width * (np.arange(self.n_bins) + 0.5)

    @property
    def left_edges(self) -> np.ndarray:
        """Left edges, shape ``(n_bins,)``; for integer ages and width 1 these are the ages."""
        return self.origin + self.width * np.arange(self.n_bins)

    def assign(self, y: np.ndarray) -> np.ndarray:
        """Bin index of each label, shape ``(n,)`` int64, clipped to ``[0, n_bins - 1]``."""
        idx = np.floor((np.asarray(y, dtype=float) - self.origin) / self.width + 1e-9)
        return np.clip(idx, 0, self.n_bins - 1).astype(np.int64)

    def unclipped(self, y: np.ndarray) -> np.ndarray:
        """Bin index without clipping (may be negative or >= n_bins), shape ``(n,)``."""
        return np.floor((np.asarray(y, dtype=float) - self.origin) / self.width + 1e-9).astype(
            np.int64
        )

    def counts(self, y: np.ndarray) -> np.ndarray:
        """Rows per bin, shape ``(n_bins,)``."""
        return np.bincount(self.assign(y), minlength=self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AgeBins":
        return cls(width=float(d["width"]), origin=float(d["origin"]), n_bins=int(d["n_bins"]))


@dataclass(frozen=True)
class RegionSpec:
    """How bins are assigned to regions.

    Args:
        mode: ``absolute`` (DIR thresholds on training counts) or ``tertile`` (populated bins
            split into thirds by training count; for small data sets).
        many: a bin with MORE than ``many`` training rows is many-shot (absolute mode).
        few: a bin with FEWER than ``few`` training rows is few-shot (absolute mode).
    """

    mode: Literal["absolute", "tertile"] = "absolute"
    many: int = 100
    few: int = 20

    def __post_init__(self) -> None:
        if self.mode not in ("absolute", "tertile"):
            raise ValueError(f"region mode must be 'absolute' or 'tertile', got {self.mode!r}")
        if self.few < 1 or self.many < self.few:
            raise ValueError(
                f"region thresholds need 1 <= few <= many, got few={self.few}, many={self.many}"
            )


class Regions:
    """Region of every bin, computed from the training labels.

    Attributes:
        bins: the :class:`AgeBins`.
        train_counts: training rows per bin, shape ``(n_bins,)``.
        bin_region: region name of each bin, shape ``(n_bins,)``.
    """

    def __init__(self, bins: AgeBins, train_counts: np.ndarray, spec: RegionSpec) -> None:
        self.bins = bins
        self.spec = spec
        self.train_counts = np.asarray(train_counts, dtype=np.int64)
        if self.train_counts.shape != (bins.n_bins,):
            raise ValueError(
                f"train_counts must have shape ({bins.n_bins},), got {self.train_counts.shape}"
            )
        self.bin_region = self._assign(self.train_counts, spec)

    @staticmethod
    def _assign(counts: np.ndarray, spec: RegionSpec) -> np.ndarray:
        out = np.empty(counts.shape, dtype=object)
        out[:] = "medium"
        if spec.mode == "absolute":
            out[counts > spec.many] = "many"
            out[counts < spec.few] = "few"
        else:
            pop = np.flatnonzero(counts > 0)
            order = pop[np.argsort(counts[pop], kind="stable")]
            thirds = np.array_split(order, 3)
            out[thirds[0]] = "few"
            out[thirds[1]] = "medium"
            out[thirds[2]] = "many"
        out[counts == 0] = "zero"
        return out

    @classmethod
    def from_train(
        cls, y_train: np.ndarray, bins: AgeBins, spec: RegionSpec | None = None
    ) -> "Regions":
        return cls(bins, bins.counts(y_train), spec or RegionSpec())

    def of(self, y: np.ndarray) -> np.ndarray:
        """Region name of each label, shape ``(n,)``; labels outside the bin range are ``zero``."""
        raw = self.bins.unclipped(y)
        inside = (raw >= 0) & (raw < self.bins.n_bins)
        out = np.full(raw.shape, "zero", dtype=object)
        out[inside] = self.bin_region[raw[inside]]
        return out

    def summary(self) -> dict[str, int]:
        """Number of bins per region."""
        return {r: int((self.bin_region == r).sum()) for r in REGIONS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": self.bins.to_dict(),
            "spec": asdict(self.spec),
            "train_counts": self.train_counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Regions":
        return cls(AgeBins.from_dict(d["bins"]), np.asarray(d["train_counts"]), RegionSpec(**d["spec"]))
