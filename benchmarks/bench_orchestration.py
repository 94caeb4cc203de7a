"""Orchestration efficiency (benchmark 2) and driver memory (benchmark 7, driver part).

**Efficiency.** The same ``--trials`` trials (one fixed configuration of the default-size
FT-Transformer on the real ``flchain`` table, ``--epochs`` epochs each, no early stop, no pruning)
run (a) back to back in one process with one torch thread (the floor: no orchestration at all),
and (b) through ``agesearch.search.search(...)`` on a local Ray with ``--slots`` one-CPU slots.
Useful seconds = the back-to-back time of the same trials (model construction + epochs +
validation). Efficiency = useful seconds / (search wall seconds x slots); per-trial overhead =
(search wall x slots - useful) / trials. Target: efficiency >= 0.85 on 2 CPUs.

The search's time is split into: Ray start-up (measured here, once), set-up before the first trial
(data preparation and saving, Tuner start), the trial window, and within it the time inside trials
(Tune's ``time_total_s``: training, validation, per-epoch checkpoint and report) vs the gaps
between trials (actor start, data shipping, scheduling); plus the per-epoch ``Trial.save`` cost
measured in the floor run and the compute slow-down of two trials sharing the machine.

**Driver memory.** A fresh process runs a ``--driver-trials`` search of tiny trials (one epoch of a
d=8 model) and samples its own RSS every 0.5 s against the number of finished trials: peak RSS and
growth per 100 trials (the driver holds the Optuna study, Tune's trial objects and the callbacks).

Run: python benchmarks/bench_orchestration.py [--trials 12] [--epochs 12] [--driver-trials 200] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, update_section  # noqa: E402
from benchmarks._search_bench import (  # noqa: E402
    METRIC,
    REGIONS,
    _read_jsonl,
    fmt,
    load_data,
    scratch_dir,
    search_available,
    start_ray,
)

MODEL = {"n_blocks": 2, "d_block": 64, "attention_n_heads": 8, "batch_size": 256}
TINY = {"n_blocks": 1, "d_block": 8, "attention_n_heads": 2, "batch_size": 512}


def fixed_space(model: dict[str, Any], epochs: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A space whose trials are all the same fixed configuration (optionally with ``params``)."""
    return {
        "name": "orchestration", "metric": METRIC,
        "fixed": {**model, "max_epochs": epochs, "patience": epochs, "strategy": "none",
                  "head": "regression", "loss": "l1"},
        "data": {"bin_width": 1, "regions": dict(REGIONS)},
        "pruner": {"name": "none"},
        "params": dict(params or {}),
    }  # fmt: skip


def config_of(space: dict[str, Any]) -> dict[str, Any]:
    return {"early_stop_metric": space["metric"], **space["fixed"]}


# ------------------------------------------------------------------------------ floor


def floor(config: dict[str, Any], data, n: int) -> dict[str, Any]:  # noqa: ANN001
    """Train ``n`` trials back to back in this process (1 thread); time every part."""
    import tempfile

    import torch

    from agesearch.trainer import Trial

    torch.set_num_threads(1)
    Trial(config, data, threads=1)  # warm-up: first model construction pays torch's lazy init
    per_trial, epoch_s, save_s = [], [], []
    tmp = Path(tempfile.mkdtemp(prefix="agesearch-bench-floor-"))
    t_all = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        trial = Trial(config, data, threads=1)
        work = time.perf_counter() - t0
        while not trial.stopped:
            t1 = time.perf_counter()
            trial.step()
            dt = time.perf_counter() - t1
            work += dt
            epoch_s.append(dt)
            t2 = time.perf_counter()
            trial.save(tmp / "state.pt")  # what the search does per epoch; not counted as useful
            save_s.append(time.perf_counter() - t2)
        per_trial.append(work)
    wall = time.perf_counter() - t_all
    size = (tmp / "state.pt").stat().st_size
    shutil.rmtree(tmp, ignore_errors=True)
    return {"useful_s": sum(per_trial), "wall_s": wall, "trial_s": statistics.median(per_trial),
            "epoch_s": statistics.median(epoch_s), "save_s": statistics.median(save_s),
            "ckpt_bytes": size}  # fmt: skip


# ------------------------------------------------------------------------------ through the search


def through_search(space: dict[str, Any], n: int, slots: int, storage: Path, name: str) -> dict[str, Any]:
    from agesearch.search import search
    from agesearch.search.space import SearchSpace

    sp = SearchSpace.from_dict(space, source="bench:orchestration").validate()
    t0 = time.time()
    res = search(data="builtin:flchain", space=sp, name=name, storage=str(storage), num_samples=n,
                 seed=0, cpus_per_trial=1.0, max_concurrent=slots, progress=False)  # fmt: skip
    wall = time.time() - t0
    exp = Path(res.experiment)
    ends = {}
    for f in (exp / "trials").glob("*.json"):
        rec = json.loads(f.read_text())
        ends[rec["trial_id"]] = float(rec.get("time") or math.nan)
    starts, totals, iters, epochs = [], [], [], 0
    for f in (exp / "tune").glob("*/result.json"):
        rows = [r for r in _read_jsonl(f) if "epoch" in r]
        if not rows:
            continue
        tid = str(rows[0]["trial_id"])
        total = float(rows[-1]["time_total_s"])
        totals.append(total)
        epochs += len(rows)
        iters += [float(r["time_this_iter_s"]) for r in rows[1:]]  # first includes construction
        if math.isfinite(ends.get(tid, math.nan)):
            starts.append(ends[tid] - total)
    window = (max(ends.values()) - min(starts)) if starts else math.nan
    status = res.trials["status"].value_counts().to_dict() if len(res.trials) else {}
    return {"wall_s": wall, "window_s": window, "setup_s": (min(starts) - t0) if starts else math.nan,
            "in_trial_s": sum(totals), "trials": len(totals), "epochs": epochs,
            "iter_s": statistics.median(iters) if iters else math.nan,
            "status": {str(k): int(v) for k, v in status.items()}}  # fmt: skip


# ------------------------------------------------------------------------------ driver memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def driver_child(n: int, storage: Path) -> None:
    """(Fresh process) run an ``n``-trial tiny search; print peak RSS and RSS vs finished trials."""
    from agesearch.search import search
    from agesearch.search.space import SearchSpace

    start_ray(2)
    space = fixed_space(TINY, 1, {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}})
    sp = SearchSpace.from_dict(space, source="bench:driver").validate()
    samples: list[tuple[float, float, int]] = []
    stop = threading.Event()
    folder = storage / "driver" / "trials"

    def sample() -> None:
        t0 = time.time()
        while not stop.is_set():
            done = 0
            if folder.is_dir():
                for f in folder.glob("*.json"):
                    try:
                        done += json.loads(f.read_text()).get("status") != "RUNNING"
                    except (OSError, json.JSONDecodeError):
                        pass
            samples.append((time.time() - t0, _rss_mb(), done))
            stop.wait(0.5)

    before = _rss_mb()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.time()
    search(data="builtin:flchain", space=sp, name="driver", storage=str(storage), num_samples=n, seed=0,
           cpus_per_trial=1.0, progress=False)  # fmt: skip
    wall = time.time() - t0
    stop.set()
    th.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # growth: RSS at ~10% of the trials vs at the end, per 100 trials
    early = next((s for s in samples if s[2] >= max(1, n // 10)), samples[0])
    late = samples[-1]
    growth = (late[1] - early[1]) / max(1, late[2] - early[2]) * 100 if late[2] > early[2] else math.nan
    print(json.dumps({"trials": n, "wall_s": wall, "rss_before_search_mb": before, "peak_rss_mb": peak,
                      "rss_early_mb": early[1], "early_trials": early[2], "rss_end_mb": late[1],
                      "end_trials": late[2], "growth_mb_per_100_trials": growth}))  # fmt: skip


def driver_memory(n: int) -> dict[str, Any]:
    storage = scratch_dir("agesearch-bench-driver-")
    try:
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--_driver-child", str(n), "--_storage", str(storage)],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"driver-memory child failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(storage, ignore_errors=True)


# ------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--driver-trials", type=int, default=200)
    ap.add_argument("--smoke", action="store_true", help="tiny settings (2 short trials, 4-trial driver run)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    ap.add_argument("--_driver-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--_storage", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._driver_child:
        driver_child(args._driver_child, args._storage)
        return
    model = MODEL
    if args.smoke:
        args.trials, args.epochs, args.driver_trials, model = 2, 2, 4, TINY
    if not search_available():
        print("agesearch.search is not available on this branch: nothing to measure (needs the search)")
        return
    import ray

    space = fixed_space(model, args.epochs)
    data = load_data(0).without("test")
    load_start = load_text()
    fl = floor(config_of(space), data, args.trials)
    print(json.dumps({"floor": fl}))
    ray_start = start_ray(args.slots)
    storage = scratch_dir("agesearch-bench-orch-")
    try:
        se = through_search(space, args.trials, args.slots, storage, "orchestration")
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    print(json.dumps({"search": se, "ray_start_s": ray_start}))
    dm = driver_memory(args.driver_trials)
    print(json.dumps({"driver": dm}))
    body = render(fl, se, ray_start, dm, args, model, f"{load_start} / {load_text()}")
    print(body)
    if not args.no_write:
        update_section("Orchestration efficiency and driver memory", body)


def load_text() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover
        return "n/a"


def render(fl: dict[str, Any], se: dict[str, Any], ray_start: float, dm: dict[str, Any], args,  # noqa: ANN001
           model: dict[str, Any], loads: str = "n/a") -> str:  # fmt: skip
    n, s = args.trials, args.slots
    useful = fl["useful_s"]
    eff = useful / (se["wall_s"] * s)
    eff_ray = useful / ((se["wall_s"] + ray_start) * s)
    eff_window = useful / (se["window_s"] * s)
    over = (se["wall_s"] * s - useful) / n
    gaps = (se["window_s"] * s - se["in_trial_s"]) / n
    in_trial_extra = (se["in_trial_s"] - useful) / n
    epochs_per_trial = se["epochs"] / max(1, se["trials"])
    occupancy = se["in_trial_s"] / (se["window_s"] * s)
    slow = se["iter_s"] / fl["epoch_s"]
    limits = ""
    if eff < 0.85:
        limits = (
            f"\nWhat limits it: the slots are {occupancy:.0%} busy with trial work, so scheduling gaps "
            f"({gaps:.2f} s per trial) and set-up ({se['setup_s']:.1f} s once) are small; most of the loss is "
            f"that an epoch takes {slow:.2f}x longer when {s} trials share the machine than when one trial "
            f"runs alone (CPU and memory-bandwidth contention, worse while other jobs load the machine; the "
            f"load average is printed below). Per-epoch checkpointing costs about {fl['save_s'] * 1000:.0f} ms "
            f"of `Trial.save` ({fl['ckpt_bytes'] / 1e6:.1f} MB: model, optimizer, best-state copy) plus Tune's "
            f"copy into the experiment folder, i.e. {fl['save_s'] / fl['epoch_s']:.1%}+ of an epoch.\n"
        )
    return f"""Machine: {machine()}.
{n} identical trials (flchain, tertile regions; model {model}; {args.epochs} epochs each, no early
stop, no pruning), {s} slots x 1 CPU / 1 torch thread. Useful seconds = the same {n} trials back
to back in one process (construction + epochs + validation): **{useful:.1f} s** (median trial
{fl['trial_s']:.2f} s, median epoch {fl['epoch_s']:.3f} s).

| measure | value |
|---|---|
| search wall (Ray already up) | {se['wall_s']:.1f} s |
| **efficiency** = useful / (wall x slots) | **{eff:.2f}** (target >= 0.85: {'met' if eff >= 0.85 else 'NOT met'}) |
| efficiency counting Ray start-up ({ray_start:.1f} s) | {eff_ray:.2f} |
| efficiency within the trial window (first trial start to last trial end) | {eff_window:.2f} |
| slot occupancy = time inside trials / (window x slots) | {occupancy:.2f} |
| **per-trial overhead** = (wall x slots - useful) / trials | **{over:.2f} s** ({over / max(fl['trial_s'], 1e-9) * 100:.0f}% of a trial) |
| set-up before the first trial starts (data prep + save, Tuner start) | {se['setup_s']:.1f} s |
| gaps between trials per trial (actor start, data shipping, scheduling) | {gaps:.2f} s |
| extra time inside each trial vs the floor (checkpoint + report + contention) | {in_trial_extra:.2f} s ({in_trial_extra / epochs_per_trial:.3f} s per epoch) |
| median epoch inside Ray (time_this_iter_s, 2 trials sharing the machine) vs alone | {se['iter_s']:.3f} s vs {fl['epoch_s']:.3f} s ({se['iter_s'] / fl['epoch_s']:.2f}x) |
| per-epoch `Trial.save` in the floor run (not counted as useful) | {fl['save_s'] * 1000:.1f} ms, {fl['ckpt_bytes'] / 1e6:.2f} MB |
| trial states | {', '.join(f'{k} {v}' for k, v in sorted(se['status'].items()))} |

{limits}Load average (1/5/15 min) at the start / end of the run: {loads} on {os.cpu_count()} CPUs.

Driver memory ({dm['trials']} tiny trials, 1 epoch each, {dm['wall_s']:.0f} s, {dm['trials'] / dm['wall_s']:.1f} trials/s):
peak RSS of the driver process **{dm['peak_rss_mb']:.0f} MB** ({dm['rss_before_search_mb']:.0f} MB before the search
started); RSS {dm['rss_early_mb']:.0f} MB after {dm['early_trials']} trials, {dm['rss_end_mb']:.0f} MB after
{dm['end_trials']}: growth {fmt(dm['growth_mb_per_100_trials'], 1)} MB per 100 trials.
"""


if __name__ == "__main__":
    main()
