"""The search objective: a region metric, optionally under a guard against the vanilla reference.

``Objective("mae_few")`` is the pure region metric. ``Objective("mae_few", guard_metric="mae",
guard_eps=0.05, reference=4.2)`` is the few-shot MAE *subject to* overall validation MAE <=
(1 + 0.05) * 4.2 (the vanilla reference trial's overall MAE). It is implemented as ONE penalised
scalar, so that Optuna's sampler, the pruner, early stopping and best-checkpoint selection inside
a trial, and the report's ranking all see the same number:

    score = metric                                   if the guard holds
    score = INFEASIBLE + (guard_value / bound - 1)   otherwise

``INFEASIBLE`` (1e4) is larger than any age error, so every configuration that satisfies the guard
ranks above every configuration that breaks it (lexicographic order), and among those that break it
a smaller violation ranks higher, which gives TPE and the pruner a gradient back to feasibility.
The raw metric is always reported alongside (``score`` vs ``mae_few``), so nothing is hidden.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from agesearch.metrics import metric_sign

INFEASIBLE = 1.0e4


def parse_guard(text: str | None) -> tuple[str | None, float | None]:
    """``"overall:0.05"`` -> ``("mae", 0.05)``; ``"many:0.1"`` -> ``("mae_many", 0.1)``; None/none -> no guard."""
    if text is None or str(text).strip().lower() in ("", "none", "off"):
        return None, None
    if ":" not in str(text):
        raise ValueError(f"guard {text!r} must look like REGION:EPS, e.g. overall:0.05 or many:0.1")
    region, eps_text = str(text).split(":", 1)
    region = region.strip().lower()
    metric = {"overall": "mae", "all": "mae"}.get(region, f"mae_{region}")
    if metric not in ("mae", "mae_many", "mae_medium", "mae_few"):
        raise ValueError(f"guard region {region!r} is not one of overall, many, medium, few (e.g. overall:0.05)")
    try:
        eps = float(eps_text)
    except ValueError:
        raise ValueError(f"guard epsilon {eps_text!r} is not a number (e.g. overall:0.05)") from None
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"guard epsilon must be >= 0, got {eps}")
    return metric, eps


@dataclass(frozen=True)
class Objective:
    """What a search minimises (``mode="max"`` metrics such as pearson are negated).

    Args:
        metric: a validation metric key, e.g. ``mae_few`` (default), ``mae``, ``gm_few``.
        guard_metric: metric bounded relative to the reference (``mae`` or ``mae_many``), or None.
        guard_eps: allowed relative increase over the reference, e.g. 0.05.
        reference: the reference trial's value of ``guard_metric`` (None until it is known: then
            the guard is inactive).
    """

    metric: str = "mae_few"
    guard_metric: str | None = None
    guard_eps: float | None = None
    reference: float | None = None

    def __post_init__(self) -> None:
        if self.guard_metric is not None and (self.guard_eps is None or self.guard_eps < 0):
            raise ValueError("a guard needs guard_eps >= 0 (e.g. --guard overall:0.05)")

    @property
    def sign(self) -> float:
        return metric_sign(self.metric)

    @property
    def guarded(self) -> bool:
        return self.guard_metric is not None and self.reference is not None

    def bound(self) -> float | None:
        if not self.guarded:
            return None
        return (1.0 + float(self.guard_eps)) * float(self.reference)  # type: ignore[arg-type]

    def feasible(self, metrics: dict[str, Any]) -> bool:
        if not self.guarded:
            return True
        v = metrics.get(self.guard_metric)  # type: ignore[arg-type]
        return v is not None and math.isfinite(v) and v <= self.bound() + 1e-12  # type: ignore[operator]

    def score(self, metrics: dict[str, Any]) -> float:
        """The penalised scalar to minimise (NaN when the metric is missing or not finite)."""
        raw = metrics.get(self.metric, math.nan)
        raw = math.nan if raw is None else float(raw)
        if not math.isfinite(raw):
            return math.nan
        if self.feasible(metrics):
            return self.sign * raw
        v = float(metrics.get(self.guard_metric, math.inf))  # type: ignore[arg-type]
        bound = self.bound()
        return INFEASIBLE + (min(v / bound - 1.0, 1e3) if bound and math.isfinite(v) else 1e3)

    def with_reference(self, metrics: dict[str, Any]) -> "Objective":
        """A copy whose reference is taken from the reference trial's metrics."""
        if self.guard_metric is None:
            return self
        return Objective(self.metric, self.guard_metric, self.guard_eps, float(metrics[self.guard_metric]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_experiment(cls, meta: dict[str, Any]) -> "Objective":
        """The objective an experiment optimises, from its ``experiment.json`` contents."""
        g = meta.get("guard")
        metric = meta.get("metric", "mae_few")
        if not g:
            return cls(metric)
        return cls(metric, g["metric"], float(g["eps"]), float(g["reference"]))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Objective":
        return cls(**(d or {}))
