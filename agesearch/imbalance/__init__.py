"""Imbalance strategies: sample weights, LDS/FDS, resampling, representation regularisers.

The trainer asks :func:`build_plan` for a :class:`TrainingPlan` (the training arrays after any
resampling, per-row weights, an optional feature smoother and regularisers). Strategies are
registered by name in :data:`STRATEGIES` with their parameters and valid ranges as data.
"""

from agesearch.imbalance.fds import FDS
from agesearch.imbalance.kernels import KERNELS, kernel_window
from agesearch.imbalance.plan import TrainingPlan, build_plan
from agesearch.imbalance.regularizers import CorrelationLoss, RankSim, correlation_loss, ranksim_loss
from agesearch.imbalance.resample import (
    Resampled,
    jitter_oversample,
    random_over_under,
    relevance,
    smote_resample,
)
from agesearch.imbalance.strategies import (
    GLOBAL_PARAMS,
    STRATEGIES,
    Param,
    Strategy,
    register_strategy,
    resolve_strategy,
    strategy_params,
    validate_strategy_config,
)
from agesearch.imbalance.weights import WEIGHT_METHODS, sample_weights

__all__ = [
    "FDS", "KERNELS", "kernel_window", "TrainingPlan", "build_plan", "CorrelationLoss", "RankSim",
    "correlation_loss", "ranksim_loss", "Resampled", "jitter_oversample", "random_over_under",
    "relevance", "smote_resample", "GLOBAL_PARAMS", "STRATEGIES", "Param", "Strategy",
    "register_strategy", "resolve_strategy", "strategy_params", "validate_strategy_config",
    "WEIGHT_METHODS", "sample_weights",
]
