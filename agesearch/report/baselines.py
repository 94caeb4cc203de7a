"""Non-neural baselines on the same split: mean, Ridge, HistGradientBoosting (+/- imbalance weights).

Each baseline is a small class in :data:`BASELINES` with ``fit(data, weights)`` and
``predict(x_num, x_cat)``; they use the same preprocessed arrays as the FT-Transformer
(:class:`~agesearch.data.PreparedData`), train on the training split only and never see test
labels. ``hgb_weighted`` uses the imbalance sample weights (:func:`imbalance_weights`).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from agesearch.data import PreparedData


def imbalance_weights(data: PreparedData) -> np.ndarray:
    """Per-row training weights (mean 1) that up-weight rare ages.

    Uses :func:`agesearch.imbalance.sample_weights` when the installed agesearch has it (with its
    defaults); otherwise LOCAL FALLBACK: inverse frequency of the training row's age bin,
    ``w = 1 / count(bin)`` rescaled to mean 1.
    """
    y = data.y["train"]
    try:
        from agesearch.imbalance import sample_weights  # type: ignore[attr-defined]
    except ImportError:
        sample_weights = None
    if sample_weights is not None:
        for call in (
            lambda: sample_weights(y, data.bins),
            lambda: sample_weights({"weighting": "inverse"}, y, data.bins),
        ):
            try:
                w = np.asarray(call(), dtype=float)
            except TypeError:
                continue
            if w.shape == y.shape and np.all(np.isfinite(w)):
                return w / w.mean()
    # Local fallback (see docstring).
    counts = data.bins.counts(y).astype(float)
    w = 1.0 / np.maximum(counts[data.bins.assign(y)], 1.0)
    return w / w.mean()


class Baseline(abc.ABC):
    """A model fitted on the training split's preprocessed arrays."""

    name: ClassVar[str]
    weighted: ClassVar[bool] = False
    label: ClassVar[str]

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @abc.abstractmethod
    def fit(self, data: PreparedData, weights: np.ndarray | None = None) -> "Baseline": ...

    @abc.abstractmethod
    def predict(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        """Predicted ages ``(n,)`` from ``x_num (n, n_num)`` and ``x_cat (n, n_cat)``."""


BASELINES: dict[str, type[Baseline]] = {}


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    BASELINES[cls.name] = cls
    return cls


@register_baseline
class MeanBaseline(Baseline):
    name = "mean"
    label = "mean predictor (training mean age)"

    def fit(self, data: PreparedData, weights: np.ndarray | None = None) -> "MeanBaseline":
        self.mean_ = float(np.mean(data.y["train"]))
        return self

    def predict(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return np.full(len(x_num), self.mean_)


def _one_hot(x_cat: np.ndarray, cards: list[int]) -> np.ndarray:
    if not cards:
        return np.zeros((len(x_cat), 0))
    offsets = np.concatenate([[0], np.cumsum(cards)[:-1]])
    out = np.zeros((len(x_cat), int(sum(cards))))
    rows = np.repeat(np.arange(len(x_cat)), len(cards))
    cols = (np.clip(x_cat, 0, np.asarray(cards) - 1) + offsets).ravel()
    out[rows, cols] = 1.0
    return out


@register_baseline
class RidgeBaseline(Baseline):
    name = "ridge"
    label = "linear regression (Ridge, alpha=1, one-hot categoricals)"

    def fit(self, data: PreparedData, weights: np.ndarray | None = None) -> "RidgeBaseline":
        from sklearn.linear_model import Ridge

        self.cards_ = list(data.cat_cardinalities)
        self.model_ = Ridge(alpha=1.0).fit(self._x(data.x_num["train"], data.x_cat["train"]), data.y["train"], sample_weight=weights)
        return self

    def _x(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return np.hstack([x_num.astype(float), _one_hot(x_cat, self.cards_)])

    def predict(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._x(x_num, x_cat))


@register_baseline
class HGBBaseline(Baseline):
    name = "hgb"
    label = "HistGradientBoosting (unweighted)"

    def fit(self, data: PreparedData, weights: np.ndarray | None = None) -> "HGBBaseline":
        from sklearn.ensemble import HistGradientBoostingRegressor

        n_num = data.x_num["train"].shape[1]
        n_cat = data.x_cat["train"].shape[1]
        cat_mask = [False] * n_num + [True] * n_cat
        self.model_ = HistGradientBoostingRegressor(
            loss="absolute_error", categorical_features=cat_mask if n_cat else None,
            random_state=self.seed, early_stopping=False, max_iter=200,
        )
        x = np.hstack([data.x_num["train"].astype(float), data.x_cat["train"].astype(float)])
        self.model_.fit(x, data.y["train"], sample_weight=weights if self.weighted else None)
        return self

    def predict(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return self.model_.predict(np.hstack([x_num.astype(float), x_cat.astype(float)]))


@register_baseline
class WeightedHGBBaseline(HGBBaseline):
    name = "hgb_weighted"
    weighted = True
    label = "HistGradientBoosting with imbalance sample weights"


def fit_baselines(
    data: PreparedData, names: tuple[str, ...] | None = None, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Fit each baseline on train and predict the test split: ``{name: {"pred", "label"}}``."""
    names = tuple(BASELINES) if names is None else names
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; valid: {', '.join(BASELINES)}")
    weights = imbalance_weights(data)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        cls = BASELINES[name]
        model = cls(seed=seed).fit(data, weights if cls.weighted else None)
        out[name] = {"pred": model.predict(data.x_num["test"], data.x_cat["test"]), "label": cls.label}
    return out
