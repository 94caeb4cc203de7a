"""Registry of imbalance strategies: small classes with their parameters as data.

A configuration names a strategy (``config["strategy"]``), or several joined by ``+``
(``"lds+fds"``, ``"inverse+ranksim"``, ``"smogn+fds"``); each component contributes one part of
the :class:`~agesearch.imbalance.plan.TrainingPlan`: resampled training rows, loss weights, a
feature smoother, or a regulariser. Components apply in that order (weights are computed on the
resampled labels), and at most one of each kind may be combined. Every strategy lists its flat
configuration keys with defaults and valid ranges in ``params`` (:class:`Param`), so the search
space can be checked against :data:`STRATEGIES` before any trial starts.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from agesearch.imbalance.fds import FDS
from agesearch.imbalance.kernels import KERNELS
from agesearch.imbalance.regularizers import CorrelationLoss, RankSim
from agesearch.imbalance.resample import (
    BIN_TARGETS,
    RELEVANCE_METHODS,
    Resampled,
    jitter_oversample,
    random_over_under,
    smote_resample,
)
from agesearch.imbalance.weights import PADDINGS, sample_weights

if TYPE_CHECKING:
    from agesearch.data import PreparedData
    from agesearch.imbalance.plan import TrainingPlan


@dataclass(frozen=True)
class Param:
    """One flat configuration key of a strategy.

    Attributes:
        kind: ``int``, ``float``, ``bool`` or ``choice``.
        default: value used when the configuration omits the key (``None`` = off).
        low, high: inclusive numeric range (``int``/``float``; also allowed numbers for a
            ``choice`` parameter that accepts numbers, e.g. ``resample_target``).
        choices: valid strings (``choice``).
        odd: integers must be odd (kernel sizes).
        allow_none: ``None`` is valid (e.g. ``max_weight``: no cap).
        doc: one line for docs and error messages.
    """

    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    odd: bool = False
    allow_none: bool = False
    doc: str = ""

    def describe(self) -> str:
        parts = []
        if self.choices:
            parts.append("|".join(map(str, self.choices)))
        if self.low is not None:
            parts.append(f"{'odd ' if self.odd else ''}{self.kind} in [{self.low}, {self.high}]")
        if self.kind == "bool":
            parts.append("true|false")
        if self.allow_none:
            parts.append("null")
        return " or ".join(parts)

    def check(self, name: str, value: Any) -> Any:
        """``value`` if valid, else ``ValueError`` naming the key and the valid range."""
        bad = ValueError(f"{name}={value!r} is invalid; valid: {self.describe()}")
        if value is None:
            if self.allow_none:
                return None
            raise bad
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)) or value in (0, 1):
                return bool(value)
            raise bad
        if isinstance(value, str):
            if value in self.choices:
                return value
            raise bad
        if self.low is None or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise bad
        v = float(value)
        if not (math.isfinite(v) and self.low <= v <= self.high):
            raise bad
        if self.kind == "int" or self.odd:
            if v != int(v) or (self.odd and int(v) % 2 == 0):
                raise bad
            return int(v)
        return v


MAX_WEIGHT = Param("float", None, 1.0, 1000.0, allow_none=True, doc="cap on the largest loss weight (mean stays 1)")
RELEVANCE = Param("choice", "counts", choices=RELEVANCE_METHODS, doc="relevance over y: bin counts or SMOGN box plot")
THRESHOLD = Param("float", 0.5, 0.01, 1.0, doc="rows with relevance >= threshold are rare")
BUMP_TARGET = Param("choice", "balance", 1.0, 20.0, choices=("balance",), doc="'balance' or growth factor of rare bumps")

GLOBAL_PARAMS: dict[str, Param] = {
    "corr_weight": Param("float", 0.0, 0.0, 10.0, doc="weight of the batch correlation loss 1 - r(pred, y)"),
}
"""Keys any strategy accepts."""


@dataclass
class PlanContext:
    """What a strategy component reads and writes while the plan is built."""

    config: dict[str, Any]
    data: "PreparedData"
    rng: np.random.Generator
    plan: "TrainingPlan"
    info: dict[str, Any] = field(default_factory=dict)

    def get(self, strategy: type["Strategy"], key: str) -> Any:
        p = strategy.params[key]
        return p.check(key, self.config.get(key, p.default))


class Strategy(abc.ABC):
    """One imbalance strategy component.

    Class attributes: ``name``; ``kind`` (``resample``, ``weights``, ``smoother``, ``regularizer``,
    ``head``: at most one component of each kind in a combination); ``params`` (flat key ->
    :class:`Param`); ``summary`` and ``source`` (for the README table); ``requires_head`` (the
    head the strategy needs, or None).
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    params: ClassVar[dict[str, Param]] = {}
    summary: ClassVar[str] = ""
    source: ClassVar[str] = ""
    requires_head: ClassVar[str | None] = None
    order: ClassVar[dict[str, int]] = {"resample": 0, "weights": 1, "smoother": 2, "regularizer": 3, "head": 4}

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        """Check the keys of ``params`` present in ``config`` (and the head), one-line errors."""
        for key, p in cls.params.items():
            p.check(key, config.get(key, p.default))
        if cls.requires_head is not None:
            head = config.get("head", "regression")
            if head != cls.requires_head:
                raise ValueError(
                    f"strategy {cls.name!r} needs head={cls.requires_head!r}, got head={head!r}; "
                    f"set head: {cls.requires_head} or choose another strategy"
                )

    @classmethod
    @abc.abstractmethod
    def apply(cls, ctx: PlanContext) -> None:
        """Add this component's part to ``ctx.plan``."""


STRATEGIES: dict[str, type[Strategy]] = {}
"""Registry: strategy name -> class (components and named combinations such as ``lds+fds``)."""


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


# ---------------------------------------------------------------------- none
@register_strategy
class NoStrategy(Strategy):
    name = "none"
    kind = "none"
    summary = "train on the split as it is (the vanilla reference)"
    source = "-"

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        return None


# ---------------------------------------------------------------------- weights
class _Weights(Strategy):
    kind = "weights"
    method: ClassVar[str]
    lds: ClassVar[bool] = False

    @classmethod
    def weight_kwargs(cls, ctx: PlanContext) -> dict[str, Any]:
        return {"method": cls.method, "max_weight": ctx.get(cls, "max_weight")}

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        y = np.asarray(ctx.plan.y, dtype=float)
        ctx.plan.weights = sample_weights(y, bin_width=ctx.data.bins.width, **cls.weight_kwargs(ctx))


@register_strategy
class Inverse(_Weights):
    name = "inverse"
    method = "inverse"
    params = {"max_weight": MAX_WEIGHT}
    summary = "loss weight 1 / bin count (counts clipped to [5, 1000])"
    source = "Yang et al. 2021 (DIR), datasets.py"


@register_strategy
class SqrtInv(_Weights):
    name = "sqrt_inv"
    method = "sqrt_inv"
    params = {"max_weight": MAX_WEIGHT}
    summary = "loss weight 1 / sqrt(bin count)"
    source = "Yang et al. 2021 (DIR), datasets.py"


@register_strategy
class LDS(_Weights):
    name = "lds"
    method = "lds"
    params = {
        "weight_method": Param("choice", "sqrt_inv", choices=("sqrt_inv", "inverse"), doc="count transform before smoothing"),
        "lds_kernel": Param("choice", "gaussian", choices=KERNELS),
        "lds_ks": Param("int", 5, 3, 15, odd=True, doc="window size"),
        "lds_sigma": Param("float", 2.0, 0.1, 10.0),
        "lds_padding": Param("choice", "constant", choices=PADDINGS, doc="constant = reference (inflates edge bins)"),
        "max_weight": MAX_WEIGHT,
    }
    summary = "label distribution smoothing: kernel-smoothed bin counts, weight 1 / smoothed"
    source = "Yang et al. 2021 (DIR), utils.py get_lds_kernel_window"

    @classmethod
    def weight_kwargs(cls, ctx: PlanContext) -> dict[str, Any]:
        g = lambda k: ctx.get(cls, k)  # noqa: E731
        return {
            "method": g("weight_method"), "lds": True, "kernel": g("lds_kernel"), "ks": g("lds_ks"),
            "sigma": g("lds_sigma"), "padding": g("lds_padding"), "max_weight": g("max_weight"),
        }


@register_strategy
class DenseWeightStrategy(_Weights):
    name = "denseweight"
    method = "denseweight"
    params = {"denseweight_alpha": Param("float", 1.0, 0.0, 5.0, doc="0 = uniform"), "max_weight": MAX_WEIGHT}
    summary = "weight max(1 - alpha * scaled KDE density, 1e-6)"
    source = "Steininger et al. 2021 (DenseWeight)"

    @classmethod
    def weight_kwargs(cls, ctx: PlanContext) -> dict[str, Any]:
        return {"method": "denseweight", "alpha": ctx.get(cls, "denseweight_alpha"),
                "max_weight": ctx.get(cls, "max_weight")}


# ---------------------------------------------------------------------- FDS
@register_strategy
class FDSStrategy(Strategy):
    name = "fds"
    kind = "smoother"
    params = {
        "fds_kernel": Param("choice", "gaussian", choices=KERNELS),
        "fds_ks": Param("int", 5, 3, 15, odd=True),
        "fds_sigma": Param("float", 2.0, 0.1, 10.0),
        "fds_momentum": Param("float", 0.9, 0.0, 0.99),
        "fds_start_update": Param("int", 0, 0, 100),
        "fds_start_smooth": Param("int", 1, 1, 100, doc="must be > fds_start_update"),
    }
    summary = "feature distribution smoothing: recolour z with kernel-smoothed per-bin statistics"
    source = "Yang et al. 2021 (DIR), fds.py (in-place writes and stale snapshots fixed)"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        super().validate(config)
        su = config.get("fds_start_update", 0)
        ss = config.get("fds_start_smooth", 1)
        if ss <= su:
            raise ValueError(f"fds_start_smooth ({ss}) must be > fds_start_update ({su}); e.g. 1 and 0")

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        from agesearch.model import MODEL_DEFAULTS

        g = lambda k: ctx.get(cls, k)  # noqa: E731
        ctx.plan.smoother = FDS(
            int(ctx.config.get("d_block", MODEL_DEFAULTS["d_block"])), ctx.data.bins.n_bins,
            kernel=g("fds_kernel"), ks=g("fds_ks"), sigma=g("fds_sigma"), momentum=g("fds_momentum"),
            start_update=g("fds_start_update"), start_smooth=g("fds_start_smooth"),
        )


# ---------------------------------------------------------------------- resampling
class _Resample(Strategy):
    kind = "resample"

    @classmethod
    def resample(cls, ctx: PlanContext, x_num, x_cat, y, y_std) -> Resampled:
        raise NotImplementedError

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        p = ctx.plan
        n_before = len(p.y)
        r = cls.resample(ctx, p.x_num, p.x_cat, np.asarray(p.y, dtype=float), p.y_std)
        p.x_num, p.x_cat, p.y, p.y_std = r.x_num, r.x_cat, r.y, r.y_std
        ctx.info.update(n_before=n_before, n_after=len(r.y), n_synthetic=int(r.synthetic.sum()))


BIN_TARGET = Param("choice", "mean", 1, 10**7, choices=BIN_TARGETS, doc="rows per populated bin: statistic of the counts or a count")


@register_strategy
class Oversample(_Resample):
    name = "oversample"
    params = {"resample_target": BIN_TARGET}
    summary = "random oversampling (with replacement) of bins below the target count"
    source = "classic; DIR baselines"

    @classmethod
    def resample(cls, ctx, x_num, x_cat, y, y_std):
        return random_over_under(x_num, x_cat, y, ctx.data.bins, mode="over",
                                 target=ctx.get(cls, "resample_target"), y_std=y_std, rng=ctx.rng)


@register_strategy
class Undersample(_Resample):
    name = "undersample"
    params = {"resample_target": BIN_TARGET}
    summary = "random undersampling of bins above the target count"
    source = "classic; DIR baselines"

    @classmethod
    def resample(cls, ctx, x_num, x_cat, y, y_std):
        return random_over_under(x_num, x_cat, y, ctx.data.bins, mode="under",
                                 target=ctx.get(cls, "resample_target"), y_std=y_std, rng=ctx.rng)


SMOTE_PARAMS: dict[str, Param] = {
    "resample_k": Param("int", 5, 1, 20, doc="nearest neighbours"),
    "resample_relevance": RELEVANCE,
    "resample_threshold": THRESHOLD,
    "resample_target": BUMP_TARGET,
    "resample_under": Param("bool", True, doc="undersample frequent bumps with target 'balance'"),
}


class _Smote(_Resample):
    method: ClassVar[str]

    @classmethod
    def resample(cls, ctx, x_num, x_cat, y, y_std):
        g = lambda k: ctx.get(cls, k)  # noqa: E731
        return smote_resample(
            x_num, x_cat, y, method=cls.method, k=g("resample_k"),
            pert=g("resample_pert") if "resample_pert" in cls.params else 0.0,
            relevance_method=g("resample_relevance"), threshold=g("resample_threshold"),
            target=g("resample_target"), under=g("resample_under"), bins=ctx.data.bins,
            y_std=y_std, rng=ctx.rng,
        )


@register_strategy
class SMOTER(_Smote):
    name = "smoter"
    method = "smoter"
    params = dict(SMOTE_PARAMS)
    summary = "synthetic rare rows: interpolate features and target between a seed and a kNN"
    source = "Torgo et al. 2013"


@register_strategy
class SMOGN(_Smote):
    name = "smogn"
    method = "smogn"
    params = {**SMOTE_PARAMS, "resample_pert": Param("float", 0.02, 0.0, 0.5, doc="noise scale (fraction of std)")}
    summary = "SMOTER, with Gaussian noise instead when the neighbour is far"
    source = "Branco et al. 2017; package smogn"


@register_strategy
class Borderline(_Smote):
    name = "borderline"
    method = "borderline"
    params = dict(SMOTE_PARAMS)
    summary = "SMOTER seeded only by rare rows with frequent rows among their neighbours"
    source = "Han et al. 2005 (Borderline-SMOTE) carried to regression"


@register_strategy
class Jitter(_Resample):
    name = "jitter"
    params = {
        "resample_jitter": Param("float", 0.05, 0.0, 0.5, doc="noise sd as a fraction of each feature's sd"),
        "resample_relevance": RELEVANCE,
        "resample_threshold": THRESHOLD,
        "resample_target": BUMP_TARGET,
    }
    summary = "duplicate rare rows with small Gaussian noise on numeric features, label unchanged"
    source = "tabular analogue of image augmentation"

    @classmethod
    def resample(cls, ctx, x_num, x_cat, y, y_std):
        g = lambda k: ctx.get(cls, k)  # noqa: E731
        return jitter_oversample(
            x_num, x_cat, y, sigma=g("resample_jitter"), relevance_method=g("resample_relevance"),
            threshold=g("resample_threshold"), target=g("resample_target"), bins=ctx.data.bins,
            y_std=y_std, rng=ctx.rng,
        )


# ---------------------------------------------------------------------- regularisers and heads
@register_strategy
class RankSimStrategy(Strategy):
    name = "ranksim"
    kind = "regularizer"
    params = {
        "ranksim_lambda": Param("float", 2.0, 0.1, 10.0, doc="ranking interpolation strength"),
        "ranksim_gamma": Param("float", 100.0, 0.0, 1000.0, doc="regulariser weight"),
    }
    summary = "batch ranking-similarity regulariser on the representation z"
    source = "Gong et al. 2022 (RankSim)"

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        ctx.plan.regularizers.append(RankSim(ctx.get(cls, "ranksim_lambda"), ctx.get(cls, "ranksim_gamma")))


@register_strategy
class BalancedMSE(Strategy):
    name = "balanced_mse"
    kind = "head"
    requires_head = "balanced_mse"
    summary = "Balanced MSE (BMC) loss; the loss lives in the head, this entry checks head=balanced_mse"
    source = "Ren et al. 2022"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        super().validate(config)
        from agesearch.heads import HEADS

        if "balanced_mse" not in HEADS:
            raise ValueError(
                "strategy 'balanced_mse' needs the balanced_mse head, which this build does not "
                f"register (heads: {', '.join(sorted(HEADS))}); choose another strategy"
            )

    @classmethod
    def apply(cls, ctx: PlanContext) -> None:
        return None


# ---------------------------------------------------------------------- combinations
def combination(*names: str) -> type[Strategy]:
    """A named combination of registered components (``combination("lds", "fds")``)."""
    comps = [STRATEGIES[n] for n in names]
    kinds = [c.kind for c in comps]
    dup = {k for k in kinds if kinds.count(k) > 1}
    if dup:
        raise ValueError(f"cannot combine {'+'.join(names)}: more than one {dup.pop()} strategy")
    params: dict[str, Param] = {}
    for c in comps:
        params.update(c.params)

    class Combined(Strategy):
        name = "+".join(names)
        kind = "combination"
        components = tuple(comps)
        summary = " + ".join(c.summary.split(":")[0] for c in comps)
        source = "; ".join(dict.fromkeys(c.source for c in comps))

        @classmethod
        def validate(cls, config: dict[str, Any]) -> None:
            for c in cls.components:
                c.validate(config)

        @classmethod
        def apply(cls, ctx: PlanContext) -> None:
            for c in sorted(cls.components, key=lambda c: Strategy.order.get(c.kind, 9)):
                c.apply(ctx)

    Combined.params = params
    Combined.__name__ = Combined.__qualname__ = "Combined_" + "_".join(names)
    return Combined


register_strategy(combination("lds", "fds"))


def resolve_strategy(name: Any) -> type[Strategy]:
    """The class for ``name``: a registered name, or registered components joined by ``+``."""
    if isinstance(name, str) and name in STRATEGIES:
        return STRATEGIES[name]
    parts = name.split("+") if isinstance(name, str) else [name]
    unknown = [p for p in parts if p not in STRATEGIES or STRATEGIES[p].kind in ("combination", "none")]
    if unknown or len(parts) < 2:
        raise ValueError(
            f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)} "
            "(or components joined by '+', e.g. 'inverse+fds+ranksim')"
        )
    return combination(*parts)


def strategy_params(name: str) -> dict[str, Param]:
    """Flat keys (with :data:`GLOBAL_PARAMS`) that strategy ``name`` reads, with their ranges."""
    return {**resolve_strategy(name).params, **GLOBAL_PARAMS}


def validate_strategy_config(config: dict[str, Any]) -> type[Strategy]:
    """Check ``config["strategy"]`` and its keys; returns the strategy class. One-line errors."""
    cls = resolve_strategy(config.get("strategy", "none"))
    cls.validate(config)
    for key, p in GLOBAL_PARAMS.items():
        p.check(key, config.get(key, p.default))
    return cls


def make_global_regularizers(config: dict[str, Any]) -> list:
    w = GLOBAL_PARAMS["corr_weight"].check("corr_weight", config.get("corr_weight", 0.0))
    return [CorrelationLoss(w)] if w > 0 else []
