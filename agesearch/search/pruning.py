"""Pruning: Ray Tune schedulers that ask a real Optuna pruner, and the searcher they report to.

Ray's ``OptunaSearch`` never prunes, and a trial that a Tune scheduler stops reaches its Optuna
study as COMPLETE with a partial score, so TPE learns from under-trained results as if they were
final. Here:

- :class:`PruningOptunaSearch` (an ``OptunaSearch``) samples with multivariate grouped TPE, reports
  each epoch's pruning signal as the trial's intermediate value (step = epoch), enqueues the
  vanilla reference trial first, and tells Optuna the truth at the end: COMPLETE for trials that
  finished by themselves (early stopping or ``max_epochs``), PRUNED (with their intermediate values)
  for trials stopped early by any scheduler, FAIL for crashed or diverged trials.
- :class:`OptunaPrunerScheduler` (a Tune ``FIFOScheduler``) asks an ``optuna.pruners`` pruner,
  with the searcher's study and the trial's frozen record, whether to stop the trial after each
  report. It reaches the searcher through a module-level registry keyed by a per-experiment link
  string (both objects live in the driver; the string survives pickling and ``Tuner.restore``).
- :data:`SCHEDULERS`: one small class per choice (``median``, ``percentile``,
  ``successive_halving``, ``hyperband``, ``wilcoxon``, ``asha``, ``none``), parameters validated
  in ``__init__``.

What the pruner sees: the search metric at the trial's best epoch so far (``score``). Few-shot MAE
is measured on few rows and jumps between epochs; the best-so-far value only moves when the model
gets better, so one bad epoch cannot get a trial pruned, and it is exactly the value the trial
would be ranked by if it stopped now (the sampler and the pruner see the same number).
"""

from __future__ import annotations

import abc
import logging
import math
import warnings
from typing import Any, Callable, ClassVar

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

log = logging.getLogger(__name__)

SIGNAL_KEY = "score"
"""Result key the pruner and the sampler see: the search metric at the best epoch so far."""
STEP_KEY = "epoch"

_LINKS: dict[str, "PruningOptunaSearch"] = {}
"""Searchers by link string, in the driver process (rebuilt on unpickling)."""


def linked_searcher(link: str) -> "PruningOptunaSearch | None":
    return _LINKS.get(link)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class PruningOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that records pruned, completed and failed trials truthfully.

    Args:
        space: define-by-run callable returning the full flat configuration (module-level class
            instance, so it pickles with the experiment state).
        link: per-experiment string shared with the scheduler and the callbacks.
        metric, mode: the result key told to Optuna (``score``) and its direction.
        seed: sampler seed.
        reference: enqueue the vanilla reference trial first (its define-by-run call sees the user
            attribute ``agesearch_reference`` and samples nothing).
        n_startup_trials: random trials before TPE takes over.
    """

    def __init__(
        self,
        space: Callable[[Any], dict[str, Any]],
        *,
        link: str,
        metric: str = SIGNAL_KEY,
        mode: str = "min",
        seed: int = 0,
        reference: bool = True,
        n_startup_trials: int = 5,
    ) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=n_startup_trials,
                constant_liar=True,
            )  # fmt: skip
        self.link = link
        self.pruned: dict[str, str] = {}
        self.outcomes: dict[str, tuple[str, str | None]] = {}
        super().__init__(space=space, metric=metric, mode=mode, sampler=sampler)
        if reference:
            self._ot_study.enqueue_trial({}, user_attrs={"agesearch_reference": True})
        _LINKS[link] = self

    # -- pickling / Tune restore re-register the link in this process
    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _LINKS[self.link] = self

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        _LINKS[self.link] = self

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def _suggest_from_define_by_run_func(self, func, ot_trial):  # noqa: ANN001
        config = func(ot_trial)
        if not isinstance(config, dict):
            raise TypeError(f"the define-by-run space must return a dict, got {type(config)}")
        return config

    def trial_info(self, trial_id: str) -> tuple[int | None, bool]:
        """Optuna trial number and whether it is the reference trial."""
        ot = self._ot_trials.get(trial_id)
        if ot is None:
            return None, False
        return int(ot.number), bool(ot.user_attrs.get("agesearch_reference", False))

    def _frozen(self, trial_id: str) -> optuna.trial.FrozenTrial | None:
        ot = self._ot_trials.get(trial_id)
        if ot is None:
            return None
        return self._ot_study._storage.get_trial(ot._trial_id)

    def report(self, trial_id: str, step: int, value: float) -> None:
        """Record ``value`` as the intermediate value at ``step`` (once per step; NaN skipped)."""
        ot = self._ot_trials.get(trial_id)
        if ot is None or trial_id in self._completed_trials or not _finite(value):
            return
        frozen = self._frozen(trial_id)
        if frozen is None or frozen.state != TrialState.RUNNING or step in frozen.intermediate_values:
            return
        ot.report(float(value), int(step))

    def should_prune(self, trial_id: str, pruner: optuna.pruners.BasePruner) -> bool:
        """Ask ``pruner`` about this trial, with this study (the reference trial is never pruned)."""
        number, is_ref = self.trial_info(trial_id)
        frozen = self._frozen(trial_id)
        if number is None or is_ref or frozen is None or frozen.state != TrialState.RUNNING:
            return False
        return bool(pruner.prune(self._ot_study, frozen))

    def mark_pruned(self, trial_id: str, reason: str) -> None:
        self.pruned[trial_id] = reason

    # -- Tune hooks
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if STEP_KEY in result:
            self.report(trial_id, int(result[STEP_KEY]), result.get(self.metric))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot = self._ot_trials[trial_id]
        status, reason = classify(result, error=error, pruned_reason=self.pruned.get(trial_id))
        if result and STEP_KEY in result and status != "FAILED":
            self.report(trial_id, int(result[STEP_KEY]), result.get(self.metric))
        try:
            if status == "COMPLETE":
                self._ot_study.tell(ot, float(result[self.metric]))  # type: ignore[index]
            elif status == "PRUNED":
                self._ot_study.tell(ot, state=TrialState.PRUNED)
            else:
                self._ot_study.tell(ot, state=TrialState.FAIL)
        except Exception as exc:  # noqa: BLE001 - never take the experiment down for bookkeeping
            log.warning("could not tell Optuna about trial %s: %s", trial_id, exc)
        self.outcomes[trial_id] = (status, reason)
        self._completed_trials.add(trial_id)


def classify(
    result: dict[str, Any] | None, *, error: bool = False, pruned_reason: str | None = None,
    scheduler: str | None = None,
) -> tuple[str, str | None]:
    """Final status and reason of a trial from its last result.

    ``COMPLETE`` when the trial ended by itself (``should_stop``), ``FAILED`` on error or
    divergence, ``PRUNED`` when something stopped it early (the pruner, ASHA, the time budget).
    """
    if error:
        return "FAILED", "error (see the trial's error file)"
    if result and result.get("failed_reason"):
        return "FAILED", str(result["failed_reason"])
    if pruned_reason:
        return "PRUNED", pruned_reason
    if not result or STEP_KEY not in result:
        return "PRUNED", "stopped before its first epoch"
    if float(result.get("should_stop", 0.0)) >= 1.0 and _finite(result.get(SIGNAL_KEY)):
        return "COMPLETE", None
    if not _finite(result.get(SIGNAL_KEY)):
        return "FAILED", "no finite score reported"
    who = scheduler or "the scheduler or time budget"
    return "PRUNED", f"stopped early by {who} at epoch {int(result[STEP_KEY])}"


class OptunaPrunerScheduler(FIFOScheduler):
    """Tune scheduler asking an Optuna pruner whether to stop each trial after each report.

    Args:
        pruner: an ``optuna.pruners.BasePruner``.
        name: the pruner's name (for the recorded reason).
        link: the link string of the :class:`PruningOptunaSearch` owning the study.
    """

    def __init__(self, pruner: optuna.pruners.BasePruner, *, name: str, link: str) -> None:
        super().__init__()
        self.pruner = pruner
        self.name = name
        self.link = link

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:  # noqa: ANN001
        searcher = linked_searcher(self.link)
        if searcher is None or STEP_KEY not in result:
            return TrialScheduler.CONTINUE
        if float(result.get("should_stop", 0.0)) >= 1.0 or result.get("failed_reason"):
            return TrialScheduler.CONTINUE  # ends by itself
        step = int(result[STEP_KEY])
        searcher.report(trial.trial_id, step, result.get(SIGNAL_KEY))
        if searcher.should_prune(trial.trial_id, self.pruner):
            searcher.mark_pruned(trial.trial_id, f"pruned by {self.name} pruner at epoch {step}")
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"Using Optuna {self.name} pruner."


# ------------------------------------------------------------------------------ registry


class SchedulerChoice(abc.ABC):
    """A ``pruner:`` choice of the space file; constructor arguments are its YAML parameters."""

    name: ClassVar[str]

    @abc.abstractmethod
    def build(self, *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
        """The Tune scheduler for one experiment."""


SCHEDULERS: dict[str, type[SchedulerChoice]] = {}
"""Registry of pruning choices by name."""


def register_scheduler(cls: type[SchedulerChoice]) -> type[SchedulerChoice]:
    if cls.name in SCHEDULERS:
        raise ValueError(f"scheduler {cls.name!r} is already registered")
    SCHEDULERS[cls.name] = cls
    return cls


def build_scheduler(spec: dict[str, Any], *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
    """``spec = {"name": ..., **params}`` -> Tune scheduler."""
    spec = dict(spec)
    name = spec.pop("name")
    if name not in SCHEDULERS:
        raise ValueError(f"unknown pruner {name!r}; valid: {', '.join(sorted(SCHEDULERS))}")
    return SCHEDULERS[name](**spec).build(link=link, mode=mode, max_epochs=max_epochs)


class _OptunaChoice(SchedulerChoice):
    """Base for choices backed by an ``optuna.pruners`` class (params validated by building it)."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.optuna_pruner()  # validates (Optuna raises ValueError/TypeError with the reason)

    @abc.abstractmethod
    def optuna_pruner(self) -> optuna.pruners.BasePruner: ...

    def build(self, *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
        return OptunaPrunerScheduler(self.optuna_pruner(), name=self.name, link=link)


@register_scheduler
class MedianChoice(_OptunaChoice):
    """Stop a trial whose best-so-far score is worse than the median of earlier trials at that epoch."""

    name = "median"

    def __init__(self, n_startup_trials: int = 4, n_warmup_steps: int = 2, interval_steps: int = 1,
                 n_min_trials: int = 1) -> None:  # fmt: skip
        super().__init__(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps,
                         interval_steps=interval_steps, n_min_trials=n_min_trials)  # fmt: skip

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.MedianPruner(**self.params)


@register_scheduler
class PercentileChoice(_OptunaChoice):
    """Stop a trial outside the best ``percentile`` of earlier trials at that epoch."""

    name = "percentile"

    def __init__(self, percentile: float = 25.0, n_startup_trials: int = 4, n_warmup_steps: int = 2,
                 interval_steps: int = 1, n_min_trials: int = 1) -> None:  # fmt: skip
        super().__init__(percentile=percentile, n_startup_trials=n_startup_trials,
                         n_warmup_steps=n_warmup_steps, interval_steps=interval_steps,
                         n_min_trials=n_min_trials)  # fmt: skip

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.PercentilePruner(**self.params)


@register_scheduler
class SuccessiveHalvingChoice(_OptunaChoice):
    """Asynchronous successive halving (epochs are the resource)."""

    name = "successive_halving"

    def __init__(self, min_resource: int | str = 1, reduction_factor: int = 3,
                 min_early_stopping_rate: int = 0, bootstrap_count: int = 0) -> None:  # fmt: skip
        super().__init__(min_resource=min_resource, reduction_factor=reduction_factor,
                         min_early_stopping_rate=min_early_stopping_rate,
                         bootstrap_count=bootstrap_count)  # fmt: skip

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.SuccessiveHalvingPruner(**self.params)


@register_scheduler
class HyperbandChoice(_OptunaChoice):
    """Hyperband over successive-halving brackets (``max_resource`` defaults to ``max_epochs``)."""

    name = "hyperband"

    def __init__(self, min_resource: int = 1, max_resource: int | str = "auto",
                 reduction_factor: int = 3) -> None:  # fmt: skip
        super().__init__(min_resource=min_resource, max_resource=max_resource,
                         reduction_factor=reduction_factor)  # fmt: skip

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.HyperbandPruner(**self.params)

    def build(self, *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
        params = dict(self.params)
        if params["max_resource"] == "auto":
            params["max_resource"] = max_epochs
        return OptunaPrunerScheduler(optuna.pruners.HyperbandPruner(**params), name=self.name, link=link)


@register_scheduler
class WilcoxonChoice(_OptunaChoice):
    """Wilcoxon signed-rank test of the trial's per-epoch scores against the best trial's."""

    name = "wilcoxon"

    def __init__(self, p_threshold: float = 0.1, n_startup_steps: int = 2) -> None:
        super().__init__(p_threshold=p_threshold, n_startup_steps=n_startup_steps)

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(**self.params)


@register_scheduler
class AshaChoice(SchedulerChoice):
    """Ray Tune's ASHA (stopped trials are still recorded as PRUNED in the Optuna study)."""

    name = "asha"

    def __init__(self, grace_period: int = 1, reduction_factor: float = 3.0) -> None:
        if int(grace_period) != grace_period or grace_period < 1:
            raise ValueError(f"grace_period must be a positive integer, got {grace_period}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        self.grace_period = int(grace_period)
        self.reduction_factor = float(reduction_factor)

    def build(self, *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
        return ASHAScheduler(
            time_attr=STEP_KEY, max_t=max(max_epochs, self.grace_period),
            grace_period=self.grace_period, reduction_factor=self.reduction_factor,
        )  # fmt: skip


@register_scheduler
class NoneChoice(SchedulerChoice):
    """No pruning: every trial runs until its own early stopping."""

    name = "none"

    def build(self, *, link: str, mode: str, max_epochs: int) -> TrialScheduler:
        return FIFOScheduler()
