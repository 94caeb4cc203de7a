"""The Ray Tune function trainable wrapping :class:`agesearch.trainer.Trial`.

One call trains one configuration epoch by epoch and, after every epoch, reports the validation
metrics (overall and per region) with ``ray.tune.report`` together with a checkpoint holding
``Trial.state_dict()`` (model, optimizer, scheduler, epoch, RNG, best state, history, strategy state).
Tune keeps the best-epoch checkpoint and the latest one. A retried trial (``max_failures``) or a
resumed experiment continues from the latest checkpoint, not from epoch 0.

Reported keys besides the metrics: ``epoch``, ``score`` (the search metric at the best epoch so
far: what the sampler and the pruner see), ``ckpt_rank`` (the early-stopping metric this epoch,
signed so lower is better: Tune keeps the checkpoint with the lowest), ``should_stop``,
``start_epoch`` (first epoch trained by this process: shows a resume), ``checkpoint_discarded``
(1 when the checkpoint to resume from was unreadable and the trial restarted from scratch), ``test_rows`` (rows of the
test split the trial could see: always 0), ``node_id`` and ``gpu_ids`` (placement).

The prepared data arrive once per trial through the object store (``tune.with_parameters``),
without the test split. Module-level, so it pickles; torch is imported once per worker process
(``reuse_actors=True`` keeps the process across trials).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = "trial_state.pt"
META_FILE = "meta.json"

log = logging.getLogger(__name__)


def _signed(metric: str, value: float) -> float:
    from agesearch.trainer import _metric_sign

    v = float(value)
    return _metric_sign(metric) * v if math.isfinite(v) else math.inf


def _maybe_fault(fault: dict[str, Any] | None, number_hint: str, epoch: int) -> None:
    """Crash once at ``epoch`` (tests only: the ``fault`` dict is set through a private argument).

    Keys: ``crash_at_epoch`` + ``marker_dir`` (crash once per trial), ``corrupt_checkpoint``
    (``truncate`` | ``garbage``: damage the checkpoints persisted under ``checkpoint_root`` first), ``sleep_per_epoch``
    (seconds; slows trials so a test can kill a node mid-trial).
    """
    if not fault:
        return
    if fault.get("sleep_per_epoch"):
        import time

        time.sleep(float(fault["sleep_per_epoch"]))
    if fault.get("crash_at_epoch") is None or epoch != int(fault["crash_at_epoch"]):
        return
    marker = Path(fault["marker_dir"]) / f"crashed_{number_hint}"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(epoch))
    corrupt = fault.get("corrupt_checkpoint")
    if corrupt:  # damage every checkpoint persisted under ``checkpoint_root`` so far, then crash
        for f in Path(fault["checkpoint_root"]).glob(f"**/checkpoint_*/{STATE_FILE}"):
            data = f.read_bytes()
            f.write_bytes(data[: len(data) // 3] if corrupt == "truncate" else b"\x00garbage" * 16)
    raise RuntimeError(f"injected fault at epoch {epoch}")


def run_trial(config: dict[str, Any], data: Any, settings: dict[str, Any]) -> None:
    """Tune function trainable: ``config`` is the flat trial configuration.

    Args:
        config: flat configuration (sampled + fixed keys).
        data: :class:`~agesearch.data.PreparedData` without its test split.
        settings: ``metric`` (search metric), ``cpus`` (threads), ``objective`` (guarded
            objective dict or None), ``fault`` (tests only).
    """
    import ray
    from ray import tune

    from agesearch.trainer import Trial, TrialDiverged

    test_rows = int(len(data.y["test"]))
    if test_rows:
        raise RuntimeError("a search trial received test rows; trials must get data.without('test')")
    from agesearch.objective import Objective

    objective = Objective.from_dict(settings["objective"]) if settings.get("objective") else None
    # With a guard, the trial early-stops, keeps its best checkpoint and reports the guarded
    # scalar ``score``; the raw metric (e.g. mae_few) is reported beside it.
    metric = "score" if objective is not None else str(settings["metric"])
    ctx = ray.get_runtime_context()
    placement = {"node_id": ctx.get_node_id(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}
    threads = int(settings.get("cpus") or 1)
    trial = Trial(config, data, threads=threads, objective=objective)
    trial_key = tune.get_context().get_trial_id()
    discarded = 0.0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        try:
            with ckpt.as_directory() as d:
                trial.load(Path(d) / STATE_FILE)
        except Exception as exc:  # noqa: BLE001 - corrupted, truncated or missing checkpoint
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            msg = (f"trial {trial_key}: checkpoint {ckpt.path} is unreadable ({type(exc).__name__}: {first}); "
                   "restarting this trial from scratch")  # fmt: skip
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=1)
            trial = Trial(config, data, threads=threads, objective=objective)  # a half-loaded state is not trusted
            discarded = 1.0
    start_epoch = trial.epoch + 1
    placement["checkpoint_discarded"] = discarded
    es_metric = trial.metric

    def score_now() -> float:
        if trial.best_epoch < 1:
            return math.nan
        return float(trial.history[trial.best_epoch - 1].get(metric, math.nan))

    if trial.stopped:  # finished before an interruption: report the final state again
        last = dict(trial.history[-1]) if trial.history else {}
        tune.report({**last, "score": score_now(), "ckpt_rank": math.inf, "should_stop": 1.0,
                     "start_epoch": float(start_epoch), "test_rows": 0.0, **placement})  # fmt: skip
        return
    while not trial.stopped:
        _maybe_fault(settings.get("fault"), trial_key, trial.epoch + 1)
        try:
            rec = trial.step()
        except TrialDiverged as exc:
            tune.report({"epoch": float(trial.epoch + 1), "score": math.nan, "ckpt_rank": math.inf,
                         "should_stop": 1.0, "failed_reason": f"diverged: {exc}",
                         "start_epoch": float(start_epoch), "test_rows": 0.0, **placement})  # fmt: skip
            return
        metrics = {k: float(v) for k, v in rec.items() if isinstance(v, (int, float))}
        metrics.update(
            score=score_now(), ckpt_rank=_signed(es_metric, rec.get(es_metric, math.nan)),
            start_epoch=float(start_epoch), test_rows=0.0, **placement,
        )
        tmp = tempfile.mkdtemp(prefix="agesearch-ckpt-")
        try:
            trial.save(Path(tmp) / STATE_FILE)
            (Path(tmp) / META_FILE).write_text(
                json.dumps({"epoch": trial.epoch, "best_epoch": trial.best_epoch})
            )
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def trial_settings(metric: str, cpus: float, fault: dict[str, Any] | None = None,
                   objective: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Per-search settings every trial gets (``objective``: a guarded Objective as a dict)."""
    return {"metric": metric, "cpus": max(1, int(math.floor(cpus))), "fault": fault, "objective": objective}


def env_for_workers() -> dict[str, str]:
    """Environment for trial workers: one BLAS thread unless told otherwise."""
    return {k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
