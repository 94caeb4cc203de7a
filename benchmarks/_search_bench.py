"""Shared pieces of the search benchmarks (orchestration, pruning, peers).

- :func:`bench_space`: the search space every system in a comparison samples (agesearch's YAML
  format as a dict), and :class:`SpaceSampler`, the define-by-run function the peers use for it
  (agesearch's own ``DefineByRun`` when :mod:`agesearch.search` is importable, so the peers sample
  exactly what agesearch samples).
- :func:`load_data`: the real ``flchain`` table prepared exactly as the search prepares it.
- :class:`Trace`: timed per-epoch validation values of a whole search -> best-so-far curve,
  epochs and seconds to a target, best value at a given time.
- :func:`run_agesearch`: one ``agesearch.search.search(...)`` call -> :class:`Trace`.
- :func:`start_ray`: one local Ray for a benchmark process (trial workers on one BLAS thread).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRIC = "mae_few"
REGIONS = {"mode": "tertile"}  # flchain: 86 few-shot validation rows (absolute 20/100 gives 11)
CANDIDATE_STRATEGIES = ("none", "sqrt_inv", "inverse", "lds")


def search_available() -> bool:
    """True when ``agesearch.search.search`` can be imported (the search is on this branch)."""
    try:
        from agesearch.search import search  # noqa: F401
        from agesearch.search.space import SearchSpace  # noqa: F401
    except ImportError:
        return False
    return True


def strategies() -> list[str]:
    """Strategies of :data:`CANDIDATE_STRATEGIES` that are registered here (always ``none``)."""
    try:
        from agesearch.imbalance import STRATEGIES
    except ImportError:
        return ["none"]
    return [s for s in CANDIDATE_STRATEGIES if s == "none" or s in STRATEGIES]


def bench_space(*, max_epochs: int, patience: int, pruner: dict[str, Any] | str = "median",
                d_block: int = 32, n_blocks: int = 1) -> dict[str, Any]:  # fmt: skip
    """The benchmark search space (agesearch YAML format) on a tiny FT-Transformer."""
    strat = strategies()
    space: dict[str, Any] = {
        "name": "bench",
        "metric": METRIC,
        "fixed": {"n_blocks": n_blocks, "d_block": d_block, "attention_n_heads": 4,
                  "batch_size": 256, "max_epochs": max_epochs, "patience": patience},  # fmt: skip
        "data": {"bin_width": 1, "regions": dict(REGIONS)},
        "pruner": {"name": pruner} if isinstance(pruner, str) else dict(pruner),
        "params": {
            "lr": {"type": "float", "low": 3.0e-4, "high": 1.0e-2, "log": True},
            "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True},
            "loss": {"type": "categorical", "choices": ["l1", "mse", "huber"]},
            "strategy": {"type": "categorical", "choices": strat},
        },
        "conditional": [{"when": {"loss": "huber"},
                         "params": {"huber_delta": {"type": "float", "low": 0.5, "high": 5.0}}}],  # fmt: skip
    }
    return space


class SpaceSampler:
    """Define-by-run function for a :func:`bench_space` dict (module level: it pickles).

    Uses agesearch's ``DefineByRun`` when available; otherwise samples the same parameters with
    the same Optuna names (``key`` and ``key[when=value]`` for conditional ones).
    """

    def __init__(self, space: dict[str, Any]) -> None:
        self.space = space
        self._dbr = None
        if search_available():
            from agesearch.search.space import SearchSpace

            self._dbr = SearchSpace.from_dict(space, source="bench").validate().define_by_run()

    @staticmethod
    def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
        if spec["type"] == "categorical":
            return trial.suggest_categorical(name, list(spec["choices"]))
        if spec["type"] == "int":
            return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=spec.get("log", False))
        return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=spec.get("log", False))

    def __call__(self, trial: Any) -> dict[str, Any]:
        if self._dbr is not None:
            return self._dbr(trial)
        cfg = {"early_stop_metric": self.space["metric"], **self.space["fixed"]}
        for k, spec in self.space["params"].items():
            cfg[k] = self._suggest(trial, k, spec)
        for block in self.space.get("conditional", []):
            if all(cfg.get(k) == v for k, v in block["when"].items()):
                label = ",".join(f"{k}={v}" for k, v in block["when"].items())
                for k, spec in block["params"].items():
                    cfg[k] = self._suggest(trial, f"{k}[{label}]", spec)
        return cfg


def load_data(seed: int = 0, source: str = "builtin:flchain"):
    """The prepared table as ``agesearch.search`` prepares it for ``seed`` (same split, regions)."""
    import warnings

    from agesearch.data import load_table, prepare
    from agesearch.regions import RegionSpec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(load_table(source, "age"), seed=seed, bin_width=1.0, region_spec=RegionSpec(**REGIONS))


def worker_env() -> dict[str, str]:
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_ray(num_cpus: int) -> float:
    """Start a local Ray (127.0.0.1, no dashboard, quiet); returns the seconds it took."""
    import logging
    import warnings

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    warnings.filterwarnings("ignore")
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.ERROR,
             runtime_env={"env_vars": worker_env()})  # fmt: skip
    for name in ("ray", "ray.tune", "ray.train", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return time.perf_counter() - t0


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


# ------------------------------------------------------------------------------ traces


@dataclass
class Trace:
    """Per-epoch validation values of one search, timed from the job's start.

    ``events``: ``(seconds since start, trial key, epoch, value, overall val MAE)``; ``wall``: the
    job's wall time.
    """

    name: str
    events: list[tuple[float, str, int, float, float]] = field(default_factory=list)
    wall: float = math.nan
    trials: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def sorted(self) -> list[tuple[float, str, int, float, float]]:
        return sorted(self.events, key=lambda e: e[0])

    @property
    def epochs(self) -> int:
        return len(self.events)

    @property
    def best(self) -> float:
        vals = [e[3] for e in self.events if math.isfinite(e[3])]
        return min(vals) if vals else math.nan

    def winner_mae(self) -> float:
        """Overall validation MAE at the epoch holding the best value (the degenerate-winner check)."""
        ok = [e for e in self.events if math.isfinite(e[3])]
        return min(ok, key=lambda e: e[3])[4] if ok else math.nan

    def best_at(self, t: float) -> float:
        vals = [e[3] for e in self.events if e[0] <= t and math.isfinite(e[3])]
        return min(vals) if vals else math.nan

    def best_excluding(self, exclude: set[str]) -> float:
        vals = [e[3] for e in self.events if math.isfinite(e[3]) and e[1] not in exclude]
        return min(vals) if vals else math.nan

    def to_target(self, target: float, exclude: set[str] = frozenset()) -> tuple[float, int]:
        """(seconds, epochs consumed by all trials) until a trial not in ``exclude`` first reported a
        value <= ``target``; (inf, -1) if never."""
        for i, (t, tid, _, v, _) in enumerate(self.sorted()):
            if math.isfinite(v) and v <= target and tid not in exclude:
                return t, i + 1
        return math.inf, -1


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def tune_trace(name: str, tune_dir: Path, t0: float, metric: str = METRIC,
               end_times: dict[str, float] | None = None) -> Trace:  # fmt: skip
    """:class:`Trace` from Ray Tune's per-trial ``result.json`` files under ``tune_dir``.

    Epoch times: the result's own ``wall`` key when the trainable reports one, else the trial's end
    time (``end_times`` by trial id, sub-second) minus the remaining ``time_total_s``, else Tune's
    whole-second ``timestamp``.
    """
    tr = Trace(name)
    for f in sorted(tune_dir.glob("*/result.json")):
        rows = [r for r in _read_jsonl(f) if metric in r]
        if not rows:
            continue
        tid = str(rows[0].get("trial_id", f.parent.name))
        tr.trials += 1
        end = (end_times or {}).get(tid)
        last_total = float(rows[-1].get("time_total_s", 0.0))
        for r in rows:
            if "wall" in r:
                t = float(r["wall"])
            elif end is not None:
                t = end - (last_total - float(r.get("time_total_s", 0.0)))
            else:
                t = float(r.get("timestamp", math.nan))
            v = r.get(metric)
            v = float(v) if isinstance(v, (int, float)) else math.nan
            mae = float(r.get("mae", math.nan))
            tr.events.append((t - t0, tid, int(r.get("epoch", r.get("training_iteration", 0))), v, mae))
    return tr


def run_agesearch(space: dict[str, Any], *, seed: int, num_samples: int, storage: Path, name: str,
                  cpus_per_trial: float = 1.0, data: str = "builtin:flchain",
                  time_budget: float | None = None) -> Trace:  # fmt: skip
    """One agesearch search (in this process; attaches to a running Ray) -> :class:`Trace`."""
    from agesearch.search import search
    from agesearch.search.space import SearchSpace

    sp = SearchSpace.from_dict(space, source=f"bench:{name}").validate()
    t0 = time.time()
    res = search(data=data, space=sp, name=name, storage=str(storage), num_samples=num_samples,
                 seed=seed, cpus_per_trial=cpus_per_trial, progress=False,
                 time_budget=time_budget)  # fmt: skip
    wall = time.time() - t0
    exp = Path(res.experiment)
    ends = {}
    for f in (exp / "trials").glob("*.json"):
        rec = json.loads(f.read_text())
        if rec.get("time"):
            ends[rec["trial_id"]] = float(rec["time"])
    tr = tune_trace(f"agesearch ({space['pruner']['name']})", exp / "tune", t0, end_times=ends)
    tr.wall = wall
    t = res.trials
    ref = set(t.loc[t["is_reference"].astype(bool), "trial_id"].astype(str)) if len(t) else set()
    tr.extra = {"status": t["status"].value_counts().to_dict() if len(t) else {}, "trials_df": t,
                "reference_ids": ref}
    return tr


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def fmt(x: float, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "never" if math.isinf(x) else f"{x:.{nd}f}"
