"""Refit configurations with several seeds as Ray tasks and predict the held-out test split.

Each task trains ``Trial({**config, "seed": s}, data.without("test"))`` (training split, early
stopping and best-epoch selection on validation, exactly as in the search), then predicts the
test rows. Only the report ever touches the test split. The prepared data is put in the object store
once; tasks return predictions (and, when asked, the weights for export).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from agesearch.data import PreparedData

log = logging.getLogger(__name__)

REFERENCE_NAME = "vanilla"
VANILLA_OVERRIDES: dict[str, Any] = {"strategy": "none", "head": "regression", "loss": "l1"}
"""What makes a configuration the vanilla reference: no imbalance handling, plain L1 regression."""


@dataclass
class RefitSpec:
    """One configuration to refit: ``name`` (e.g. ``rank1``), its config and its source trial."""

    name: str
    config: dict[str, Any]
    trial_id: str | None = None
    label: str = ""


@dataclass
class RefitResult:
    """One (configuration, seed) refit."""

    name: str
    seed: int
    repeat: int = 0
    pred: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    val: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    state: dict[str, np.ndarray] | None = None
    debias: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    pred_debiased: np.ndarray | None = None
    """Test predictions of the post-hoc de-biased variant (report's ``debias_variant``)."""
    val_debiased: dict[str, float] | None = None
    debias_variant: dict[str, Any] | None = None


def objective_for(meta: dict[str, Any], reference_val: dict[str, float] | None = None) -> Any:
    """The search's :class:`~agesearch.objective.Objective` from ``experiment.json`` (metric and
    guard). The guard's reference value is the one the search fixed before it started; when absent
    (older experiment files), the reference trial's validation metric ``reference_val``."""
    from agesearch.objective import Objective

    guard = meta.get("guard")
    if isinstance(guard, dict) and guard.get("reference") is None and reference_val is not None:
        ref = reference_val.get(str(guard["metric"]))
        if ref is not None and math.isfinite(float(ref)):
            meta = {**meta, "guard": {**guard, "reference": float(ref)}}
        else:
            return Objective(str(meta.get("metric", "mae_few")))
    return Objective.from_experiment(meta)


def vanilla_config(config: dict[str, Any]) -> dict[str, Any]:
    """The vanilla reference with the same architecture and optimisation as ``config``.

    Keeps the backbone (:data:`~agesearch.model.MODEL_DEFAULTS` keys) and the training keys
    (:data:`~agesearch.trainer.TRAIN_DEFAULTS`), drops every strategy/head/loss parameter and sets
    :data:`VANILLA_OVERRIDES`.
    """
    from agesearch.model import MODEL_DEFAULTS
    from agesearch.trainer import TRAIN_DEFAULTS

    keep = (set(MODEL_DEFAULTS) | set(TRAIN_DEFAULTS)) - set(VANILLA_OVERRIDES) - {"early_stop_metric"}
    out = {k: v for k, v in config.items() if k in keep}
    out.update(VANILLA_OVERRIDES)
    return out


def refit_one(
    config: dict[str, Any], data: PreparedData, seed: int, *, keep_state: bool = False,
    threads: int | None = 1, device: str | None = None, name: str = "", objective: Any = None,
    repeat: int = 0, debias_variant: dict[str, Any] | None = None,
) -> RefitResult:
    """Train one seed of ``config`` without the test split and predict the test split.

    ``objective`` (an :class:`agesearch.objective.Objective`) makes early stopping and best-epoch
    selection use the search metric with its guard, as in the search. Predictions include the
    post-hoc de-biasing when the configuration asks for it (fitted on validation only).

    ``debias_variant`` (e.g. ``{"debias": "linear", "debias_strength": "auto", "debias_guard": 0.05}``)
    additionally fits that post-hoc correction on the validation split of a configuration that does
    not de-bias itself (:meth:`Trial.fit_debias`; cross-fitted, test rows untouched) and stores its
    test predictions in ``pred_debiased``. The refit's own predictions and exported state are
    unaffected.
    """
    from agesearch.export import head_intervals
    from agesearch.trainer import Trial

    start = time.perf_counter()
    cfg = {**config, "seed": int(seed)}
    res = RefitResult(name=name, seed=int(seed), repeat=int(repeat), config=cfg)
    try:
        trial = Trial(cfg, data.without("test"), device=device, threads=threads, objective=objective)
        trial.fit()
        out = trial.raw_outputs(data.x_num["test"], data.x_cat["test"])
        res.pred = trial.predict(x_num=data.x_num["test"], x_cat=data.x_cat["test"])
        debiaser = getattr(trial, "debiaser", None)
        res.debias = None if debiaser is None else debiaser.to_dict()
        iv = head_intervals(trial.model.head, out, data.bins) if out.shape[0] else None
        if iv is not None:
            res.lower, res.upper = iv
        res.val = {k: float(v) for k, v in trial.evaluate("val").items()}
        res.epochs, res.best_epoch = int(trial.epoch), int(trial.best_epoch)
        res.config = dict(trial.config)
        if keep_state:
            res.state = {k: v.detach().cpu().numpy() for k, v in trial.model.state_dict().items()}
        if not np.all(np.isfinite(res.pred)):
            res.error = "non-finite test predictions"
        elif debias_variant and trial.config.get("debias", "none") == "none":
            own = trial.config
            trial.config = {**own, **debias_variant}
            try:
                m = trial.fit_debias()
                if m is not None and trial.debiaser is not None:
                    res.val_debiased = {k: float(v) for k, v in m.items()}
                    res.debias_variant = trial.debiaser.to_dict()
                    res.pred_debiased = trial.predict(x_num=data.x_num["test"], x_cat=data.x_cat["test"])
            finally:
                trial.config, trial.debiaser = own, None
    except Exception as exc:  # noqa: BLE001 - a failed refit is reported, not fatal
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        res.error = f"{type(exc).__name__}: {first}"
        res.pred = None
    res.seconds = time.perf_counter() - start
    return res


def _remote_refit(config, data, seed, keep_state, threads, name, objective, repeat=0, debias_variant=None):  # Ray workers
    return refit_one(config, data, seed, keep_state=keep_state, threads=threads, name=name, objective=objective,
                     repeat=repeat, debias_variant=debias_variant)


def default_progress(done: int, total: int, last: RefitResult) -> None:
    status = "failed: " + last.error if last.error else f"{last.seconds:.1f}s, {last.best_epoch}/{last.epochs} epochs"
    print(f"\rrefit {done}/{total}  ({last.name} repeat {last.repeat} seed {last.seed}: {status})", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


def run_refits(
    specs: list[RefitSpec], data: PreparedData | Sequence[PreparedData], *, seeds: int = 3, seed_base: int = 0,
    address: str | None = None, num_cpus: int | None = 2, cpus_per_task: float = 1.0,
    keep_state: set[str] | None = None, objective: Any = None, progress: Callable[[int, int, RefitResult], None] | None = default_progress,
    debias_variant: dict[str, Any] | None = None,
) -> list[RefitResult]:
    """Refit every spec with seeds ``seed_base .. seed_base + seeds - 1`` as Ray tasks.

    ``data`` is one prepared data set or one per repeat (repeated evaluation): every spec and seed
    is refitted on every repeat. ``keep_state`` keeps the weights of those specs on repeat 0 only.
    Connects to ``address`` when given; otherwise uses the running Ray instance or starts a local
    one (``num_cpus``, no dashboard) and shuts it down afterwards.

    Returns results in (spec, repeat, seed) order; failed refits carry ``error``.
    """
    datas = [data] if isinstance(data, PreparedData) else list(data)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not specs:
        return []
    import ray

    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:  # "local": always a new private instance, even if RAY_ADDRESS points elsewhere
            kwargs["address"] = "local"
            kwargs["num_cpus"] = num_cpus
            kwargs["_node_ip_address"] = "127.0.0.1"
        ray.init(**kwargs)
        started = True
    keep_state = keep_state or set()
    threads = max(1, int(math.floor(cpus_per_task)))
    try:
        task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_remote_refit)
        data_refs = [ray.put(d) for d in datas]
        pending = {}
        for spec in specs:
            for rep, data_ref in enumerate(data_refs):
                for s in range(seed_base, seed_base + seeds):
                    ref = task.remote(spec.config, data_ref, s, spec.name in keep_state and rep == 0, threads,
                                      spec.name, objective, rep, debias_variant)
                    pending[ref] = (spec.name, rep, s)
        results: dict[tuple[str, int, int], RefitResult] = {}
        total = len(pending)
        waiting = list(pending)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                name, rep, s = pending[ref]
                try:
                    res = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - worker died etc.
                    res = RefitResult(name=name, seed=s, repeat=rep,
                                      error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                results[(name, rep, s)] = res
                if progress is not None:
                    progress(len(results), total, res)
        return [results[(spec.name, rep, s)] for spec in specs for rep in range(len(datas))
                for s in range(seed_base, seed_base + seeds)]
    finally:
        if started:
            ray.shutdown()
