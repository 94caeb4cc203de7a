"""The head interface: what sits on top of the FT-Transformer's CLS representation.

A head turns the representation ``z`` (shape ``(B, d_in)``) into raw outputs, knows its loss, and
decodes raw outputs into ages. Heads are registered by name so configurations are data:
``HEADS["regression"]``. New heads subclass :class:`Head` and use :func:`register_head`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
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
    """

    mean: float
    std: float
    bins: AgeBins

    @classmethod
    def from_labels(cls, y: np.ndarray, bins: AgeBins) -> "TargetInfo":
        std = float(np.std(y))
        return cls(mean=float(np.mean(y)), std=std if std > 0 else 1.0, bins=bins)


class Head(nn.Module, abc.ABC):
    """Abstract head.

    Subclasses set ``name`` and implement :meth:`forward`, :meth:`loss` and :meth:`predict`.
    Probabilistic heads also set ``probabilistic = True`` and implement :meth:`predict_proba`.
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


