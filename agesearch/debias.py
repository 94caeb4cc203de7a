"""Post-hoc tail de-biasing: undo regression towards the mean after training.

Tabular age models under-predict the old tail and over-predict the young one. The brain-age
literature corrects this after training (de Lange and Cole, 2020): fit ``pred = a * age + b`` on
held-out rows, then ``corrected = (pred - b) / a``. Full correction removes the slope but inflates
the overall error; :class:`TailDebiaser` applies a partial correction

    ``p + strength * (corrected(p) - p)``,   ``strength`` in [0, 1]

with ``strength="auto"`` chosen on the validation split under an overall-MAE guard. To avoid
scoring on the rows the correction was fitted on, ``auto`` cross-fits: the validation rows are cut
into ``n_folds`` seeded folds, each fold is corrected by a map fitted on the other folds, and the
strength is picked on those out-of-fold predictions. The final map is then fitted on all
validation rows. Test rows are never touched.

``method="isotonic"`` replaces the line by a monotone fit of ``E[pred | age]`` (inverted by
interpolation), for non-linear shrinkage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression

STRENGTH_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
"""Strengths scanned by ``strength="auto"``."""


@dataclass
class _Map:
    """A fitted correction map ``pred -> corrected``."""

    method: str
    a: float = 1.0
    b: float = 0.0
    knots_y: np.ndarray | None = None
    knots_p: np.ndarray | None = None

    @classmethod
    def fit(cls, pred: np.ndarray, y: np.ndarray, method: str) -> "_Map":
        if method == "linear":
            if np.std(y) == 0:
                return cls(method)
            a, b = np.polyfit(y, pred, 1)
            if not (math.isfinite(a) and a > 1e-3):
                # A flat or inverted slope cannot be inverted safely: leave predictions alone.
                return cls(method)
            return cls(method, a=float(a), b=float(b))
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(y, pred)
        ky = np.asarray(iso.X_thresholds_, dtype=float)
        kp = np.asarray(iso.y_thresholds_, dtype=float)
        # Keep strictly increasing knots so the map can be inverted by interpolation.
        keep = np.concatenate([[True], np.diff(kp) > 1e-9])
        ky, kp = ky[keep], kp[keep]
        if ky.size < 2:
            return cls("linear")
        return cls(method, knots_y=ky, knots_p=kp)

    def apply(self, pred: np.ndarray) -> np.ndarray:
        if self.method == "isotonic" and self.knots_y is not None:
            kp, ky = self.knots_p, self.knots_y
            # interpolate inside, extend linearly with the end slopes outside
            out = np.interp(pred, kp, ky)
            lo_slope = (ky[1] - ky[0]) / (kp[1] - kp[0])
            hi_slope = (ky[-1] - ky[-2]) / (kp[-1] - kp[-2])
            out = np.where(pred < kp[0], ky[0] + (pred - kp[0]) * lo_slope, out)
            out = np.where(pred > kp[-1], ky[-1] + (pred - kp[-1]) * hi_slope, out)
            return out
        return (pred - self.b) / self.a

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "knots_y": None if self.knots_y is None else self.knots_y.tolist(),
            "knots_p": None if self.knots_p is None else self.knots_p.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "_Map":
        arr = lambda v: None if v is None else np.asarray(v, dtype=float)  # noqa: E731
        return cls(d["method"], float(d["a"]), float(d["b"]), arr(d["knots_y"]), arr(d["knots_p"]))


def _mae(y: np.ndarray, p: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None:
        y, p = y[mask], p[mask]
    return float(np.mean(np.abs(p - y))) if len(y) else math.nan


class TailDebiaser:
    """Partial post-hoc correction of regression towards the mean (sklearn-style).

    Args:
        method: ``linear`` (de Lange and Cole 2020) or ``isotonic``.
        strength: correction strength in [0, 1] (0 = identity, 1 = full correction) or ``"auto"``.
        guard: for ``auto``: the overall MAE may grow by at most this fraction over the uncorrected
            predictions (e.g. 0.03 = +3%); ``None`` = no guard (pure region metric).
        region: the region whose MAE ``auto`` minimises (``few`` by default).
        n_folds: cross-fitting folds for ``auto``.
        seed: fold assignment seed.
    """

    def __init__(
        self,
        method: Literal["linear", "isotonic"] = "linear",
        strength: float | str = "auto",
        *,
        guard: float | None = 0.03,
        region: str = "few",
        n_folds: int = 5,
        seed: int = 0,
    ) -> None:
        if method not in ("linear", "isotonic"):
            raise ValueError(f"debias method must be 'linear' or 'isotonic', got {method!r}")
        if strength != "auto":
            if isinstance(strength, str) or not 0.0 <= float(strength) <= 1.0:
                raise ValueError(f"debias strength must be in [0, 1] or 'auto', got {strength!r}")
        if guard is not None and not guard >= 0:
            raise ValueError(f"debias guard must be >= 0 (e.g. 0.03 for +3%), got {guard}")
        if n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {n_folds}")
        self.method = method
        self.strength = strength
        self.guard = guard
        self.region = region
        self.n_folds = n_folds
        self.seed = seed
        self.strength_: float | None = None
        self.map_: _Map | None = None
        self.scan_: list[dict[str, float]] = []
        self.oof_: np.ndarray | None = None
        """Cross-fitted corrected validation predictions at the chosen strength (``auto`` only)."""

    def _crossfit(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Out-of-fold fully corrected predictions."""
        n = len(y)
        folds = np.random.default_rng(self.seed).permutation(n) % min(self.n_folds, n)
        out = np.empty(n)
        for k in np.unique(folds):
            test = folds == k
            m = _Map.fit(pred[~test], y[~test], self.method)
            out[test] = m.apply(pred[test])
        return out

    def fit(self, pred: np.ndarray, y: np.ndarray, regions: np.ndarray | None = None) -> "TailDebiaser":
        """Fit on held-out (validation) predictions ``pred`` ``(n,)`` and ages ``y`` ``(n,)``.

        ``regions`` (region name per row) is needed for ``strength="auto"``.
        """
        pred = np.asarray(pred, dtype=float)
        y = np.asarray(y, dtype=float)
        if pred.shape != y.shape or pred.ndim != 1:
            raise ValueError(f"pred and y must be 1-D of equal length, got {pred.shape} and {y.shape}")
        if len(y) < 4:
            raise ValueError(f"debiasing needs at least 4 held-out rows, got {len(y)}")
        self.map_ = _Map.fit(pred, y, self.method)
        if self.strength != "auto":
            self.strength_ = float(self.strength)
            full = self._crossfit(pred, y)
            self.oof_ = pred + self.strength_ * (full - pred)
            return self
        if regions is None:
            raise ValueError("strength='auto' needs the region of each validation row (regions=...)")
        mask = np.asarray(regions) == self.region
        full = self._crossfit(pred, y)
        base_overall = _mae(y, pred)
        self.scan_ = []
        best, best_key = 0.0, (math.inf, math.inf)
        for s in STRENGTH_GRID:
            p = pred + s * (full - pred)
            overall, region = _mae(y, p), _mae(y, p, mask)
            ok = self.guard is None or overall <= (1 + self.guard) * base_overall + 1e-12
            self.scan_.append({"strength": float(s), "mae": overall, f"mae_{self.region}": region, "ok": ok})
            key = (region if math.isfinite(region) else overall, overall)
            if ok and key < best_key:
                best, best_key = float(s), key
        self.strength_ = best
        self.oof_ = pred + best * (full - pred)
        return self

    def transform(self, pred: np.ndarray) -> np.ndarray:
        """Corrected predictions ``(n,)``."""
        if self.map_ is None or self.strength_ is None:
            raise RuntimeError("TailDebiaser.transform called before fit")
        pred = np.asarray(pred, dtype=float)
        return pred + self.strength_ * (self.map_.apply(pred) - pred)

    def to_dict(self) -> dict[str, Any]:
        if self.map_ is None:
            raise RuntimeError("TailDebiaser.to_dict called before fit")
        return {
            "method": self.method,
            "strength": self.strength,
            "strength_": self.strength_,
            "guard": self.guard,
            "region": self.region,
            "map": self.map_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TailDebiaser":
        obj = cls(d["method"], d["strength"], guard=d["guard"], region=d["region"])
        obj.map_ = _Map.from_dict(d["map"])
        obj.strength_ = float(d["strength_"])
        return obj
