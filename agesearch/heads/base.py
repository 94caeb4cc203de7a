"""The head interface: what sits on top of the FT-Transformer's CLS representation.

A head turns the representation ``z`` (shape ``(B, d_in)``) into raw outputs, knows its loss, and
decodes raw outputs into ages. Heads are registered by name so configurations are data:
``HEADS["regression"]``. New heads subclass :class:`Head` and use :func:`register_head`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from agesearch.regions import AgeBins


@dataclass(frozen=True)
class TargetInfo:
    """What a head needs to know about the label: its scale and the age-bin grid.

    Attributes:
        mean: mean of the training labels.
        std: standard deviation of the training labels (> 0).
        bins: age bins over the training label range (heads that need a grid pad it themselves).
        train_counts: training rows per bin of ``bins``, shape ``(n_bins,)``, or None (used for
            age-group priors).
        on_grid: True when every training label sits on a bin's left edge (integer ages with
            width 1): bin ``k`` then stands for the age ``left_edges[k]``, else for its centre.
        has_uncertainty: the data has a per-row label-uncertainty column (``y_std``).
    """

    mean: float
    std: float
    bins: AgeBins
    train_counts: np.ndarray | None = field(default=None, compare=False, repr=False)
    on_grid: bool = True
    has_uncertainty: bool = False

    @classmethod
    def from_labels(
        cls, y: np.ndarray, bins: AgeBins, y_std: np.ndarray | None = None
    ) -> "TargetInfo":
        y = np.asarray(y, dtype=float)
        std = float(np.std(y))
        pos = (y - bins.origin) / bins.width
        on_grid = bool(np.allclose(pos, np.round(pos), atol=1e-6)) if y.size else True
        return cls(
            mean=float(np.mean(y)),
            std=std if std > 0 else 1.0,
            bins=bins,
            train_counts=bins.counts(y),
            on_grid=on_grid,
            has_uncertainty=y_std is not None,
        )

    @property
    def bin_values(self) -> np.ndarray:
        """The age each bin of ``bins`` stands for, shape ``(n_bins,)`` (see ``on_grid``)."""
        return self.bins.left_edges if self.on_grid else self.bins.centers


class Head(nn.Module, abc.ABC):
    """Abstract head.

    Subclasses set ``name`` and implement :meth:`forward`, :meth:`loss` and :meth:`predict`.
    Probabilistic heads also set ``probabilistic = True`` and implement :meth:`predict_proba`.
    Heads with prediction intervals define ``predict_interval(out, level) -> (lo, hi)`` (years,
    each ``(B,)``) and list the levels they report in ``interval_levels``; every registered head
    does (binned heads from their distribution, point heads by split conformal calibration).
    Constructor arguments other than ``d_in`` and ``target`` are plain values taken from the
    trial configuration (see :meth:`from_config`).
    """

    name: ClassVar[str]
    probabilistic: ClassVar[bool] = False
    config_keys: ClassVar[tuple[str, ...]] = ()
    """Configuration keys passed to ``__init__`` as keyword arguments when present."""

    def __init__(self, d_in: int, target: TargetInfo) -> None:
        super().__init__()
        if d_in < 1:
            raise ValueError(f"d_in must be >= 1, got {d_in}")
        self.d_in = d_in
        self.target = target

    @classmethod
    def from_config(cls, config: dict[str, Any], d_in: int, target: TargetInfo) -> "Head":
        kwargs = {k: config[k] for k in cls.config_keys if k in config}
        return cls(d_in, target, **kwargs)

    @abc.abstractmethod
    def forward(self, z: Tensor) -> Tensor:
        """Raw outputs, shape ``(B, d_out)``, from the representation ``z`` of shape ``(B, d_in)``."""

    @abc.abstractmethod
    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        """Scalar training loss.

        Args:
            out: raw outputs, shape ``(B, d_out)``.
            y: ages in years, shape ``(B,)``.
            weights: per-sample weights, shape ``(B,)``, or None.
            batch: optional per-row extras, e.g. ``y_std`` (label uncertainty), shape ``(B,)``.
        """

    @abc.abstractmethod
    def predict(self, out: Tensor) -> Tensor:
        """Point prediction in years, shape ``(B,)``."""

    def predict_proba(self, out: Tensor) -> Tensor | None:
        """Probability per age bin, shape ``(B, K)``; None for point heads."""
        return None

    interval_levels: tuple[float, ...] = ()
    """Central interval levels reported by the probabilistic metrics (e.g. ``(0.8, 0.9)``)."""

    groups: Any = None
    """:class:`agesearch.heads.groups.AgeGroups` when the configuration declares ``age_groups``."""

    def predict_groups(self, out: Tensor) -> Tensor | None:
        """Predicted age-group index, shape ``(B,)`` int64; None without ``age_groups``."""
        return None


HEADS: dict[str, type[Head]] = {}
"""Registry of heads by name."""


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator adding a head to :data:`HEADS` under ``cls.name``."""
    if cls.name in HEADS:
        raise ValueError(f"head {cls.name!r} is already registered")
    HEADS[cls.name] = cls
    return cls


def build_head(config: dict[str, Any], d_in: int, target: TargetInfo) -> Head:
    """Instantiate the head named by ``config["head"]`` (default ``regression``)."""
    name = config.get("head", "regression")
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; valid heads: {', '.join(sorted(HEADS))}")
    return HEADS[name].from_config(config, d_in, target)


