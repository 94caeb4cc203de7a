"""Driver-side Tune callbacks: per-trial records in the experiment folder, and a progress line.

:class:`TrialRecorder` writes ``trials/<trial_id>.json`` (number, reference flag, status, reason,
configuration, trial folder) when a trial starts and when it ends, so readers
(:func:`agesearch.search.results.load_trials`) know which trials were PRUNED and why even though
Ray Tune itself only knows "terminated".

:class:`ProgressPrinter` prints one line when counts change (at most every ``interval`` seconds)::

    [  42s] trials 12/40: 2 running, 6 completed, 3 pruned, 1 failed | best mae_few 7.412 (trial 5)
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from agesearch.search.pruning import SIGNAL_KEY, classify, linked_searcher
from agesearch.search.storage import Location


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return str(v)


class TrialRecorder(Callback):
    """Write one JSON record per trial under ``<experiment>/trials/``.

    Args:
        experiment: the experiment folder (path or URI).
        link: the searcher link (for Optuna trial numbers and pruning reasons).
        scheduler: the pruner name (for reasons of trials stopped by a Tune scheduler).
    """

    def __init__(self, experiment: str, link: str, scheduler: str) -> None:
        self.experiment = experiment
        self.link = link
        self.scheduler = scheduler

    def _record(self, trial, status: str, reason: str | None, result: dict | None = None) -> None:  # noqa: ANN001
        searcher = linked_searcher(self.link)
        number, is_ref = searcher.trial_info(trial.trial_id) if searcher else (None, False)
        rec = {
            "trial_id": trial.trial_id,
            "number": number,
            "is_reference": is_ref,
            "status": status,
            "reason": reason,
            "config": {k: _plain(v) for k, v in (trial.config or {}).items()},
            "trial_dir": trial.storage.trial_dir_name if trial.storage else None,
            "time": time.time(),
        }
        if result:
            rec["last"] = {k: _plain(result.get(k)) for k in ("epoch", "best_epoch", SIGNAL_KEY)}
        Location(self.experiment).write_text(f"trials/{trial.trial_id}.json", json.dumps(rec))

    def on_trial_start(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        self._record(trial, "RUNNING", None)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        searcher = linked_searcher(self.link)
        result = trial.last_result or {}
        outcome = searcher.outcomes.get(trial.trial_id) if searcher else None
        if outcome is None:
            pruned = searcher.pruned.get(trial.trial_id) if searcher else None
            outcome = classify(result, pruned_reason=pruned, scheduler=self.scheduler)
        self._record(trial, outcome[0], outcome[1], result)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        reason = "error"
        try:
            err = trial.get_error()
            if err is not None:
                lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
                reason = f"error: {lines[-1].strip()}" if lines else reason
        except Exception:  # noqa: BLE001
            pass
        self._record(trial, "FAILED", reason, trial.last_result)


class ProgressPrinter(Callback):
    """Print running/completed/pruned/failed counts and the best score so far."""

    def __init__(self, metric: str, mode: str, num_samples: int, link: str,
                 interval: float = 2.0, stream: TextIO | None = None) -> None:  # fmt: skip
        self.metric = metric
        self.mode = mode
        self.num_samples = num_samples
        self.link = link
        self.interval = interval
        self.stream = stream
        self._last_line = ""
        self._last_time = 0.0
        self._t0 = time.time()

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["stream"] = None
        return d

    def line(self, trials) -> str:  # noqa: ANN001
        searcher = linked_searcher(self.link)
        outcomes = searcher.outcomes if searcher else {}
        counts = {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
        best, best_n = None, None
        for t in trials:
            status = t.status
            if status == "RUNNING":
                counts["running"] += 1
            elif status == "ERROR":
                counts["failed"] += 1
            elif status == "TERMINATED":
                o = outcomes.get(t.trial_id, ("COMPLETE", None))[0]
                counts[{"COMPLETE": "completed", "PRUNED": "pruned"}.get(o, "failed")] += 1
                if o == "COMPLETE":
                    v = (t.last_result or {}).get(SIGNAL_KEY)
                    if v is not None and math.isfinite(v) and (
                        best is None or (v < best if self.mode == "min" else v > best)
                    ):
                        best = v
                        best_n = searcher.trial_info(t.trial_id)[0] if searcher else None
        done = counts["completed"] + counts["pruned"] + counts["failed"]
        best_txt = "-" if best is None else f"{best:.3f}" + (f" (trial {best_n})" if best_n is not None else "")
        return (
            f"trials {done}/{self.num_samples}: {counts['running']} running, {counts['completed']} completed, "
            f"{counts['pruned']} pruned, {counts['failed']} failed | best {self.metric} {best_txt}"
        )

    def _emit(self, trials, force: bool = False) -> None:  # noqa: ANN001
        now = time.time()
        if not force and now - self._last_time < self.interval:
            return
        text = self.line(trials)
        if text != self._last_line or force:
            print(f"[{now - self._t0:5.0f}s] {text}", file=self.stream or sys.stdout, flush=True)
            self._last_line = text
        self._last_time = now

    def on_step_end(self, iteration, trials, **info) -> None:  # noqa: ANN001
        self._emit(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        self._last_time = 0.0
        self._emit(trials)

    def on_experiment_end(self, trials, **info) -> None:  # noqa: ANN001
        self._emit(trials, force=True)
