"""Trainer overhead vs the physical floor, and peak memory of one trial (issue: benchmarks 1 and 7).

Epoch time of agesearch's trial runner (``Trial.train_epoch``) against a minimal hand-written
PyTorch loop training the same FT-Transformer (same class, same initial weights, same tensors,
batch size, optimizer groups and thread count) on the real NHANES table. Runs are interleaved and
the median of repeated epochs is compared (target: ratio <= 1.10), for the regression head and,
when the FDS strategy is available, with FDS on.

Run: python benchmarks/bench_trainer.py [--repeats 7] [--threads 2] [--data PATH]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._results import machine, update_section  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "nhanes3_biomarkers.csv"
MODEL = {"n_blocks": 2, "d_block": 64, "batch_size": 256, "lr": 1e-3}


def load(path: Path):
    from agesearch.data import load_table, prepare

    if path.is_file():
        return prepare(load_table(path, "age", ignore=["sampleID"]), seed=0), path.name
    print(f"{path} not found: using builtin:synthetic", file=sys.stderr)
    return prepare(load_table("builtin:synthetic", "age"), seed=0), "builtin:synthetic"


def floor_epoch(model, opt, xn, xc, y_std, bs, gen) -> float:
    """The minimal loop: permutation, forward, L1 on the standardised label, backward, step."""
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(xn.shape[0], generator=gen)
    for s in range(0, xn.shape[0], bs):
        idx = perm[s : s + bs]
        out, _ = model(xn[idx], xc[idx])
        loss = (out[:, 0] - y_std[idx]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def compare(data, config: dict, repeats: int, threads: int) -> dict:
    from agesearch.trainer import Trial

    torch.set_num_threads(threads)
    trial = Trial(config, data, threads=threads)
    model = copy.deepcopy(trial.model)
    model.smoother = None  # the floor is the plain model
    opt = torch.optim.AdamW(model.parameter_groups(config.get("weight_decay", 1e-5)), lr=config["lr"])
    xn, xc = trial._x_num, trial._x_cat
    y_std = (trial._y - trial.target.mean) / trial.target.std
    gen = torch.Generator().manual_seed(0)
    # warm-up both
    trial.train_epoch()
    floor_epoch(model, opt, xn, xc, y_std, config["batch_size"], gen)
    ours, floor = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial.train_epoch()
        ours.append(time.perf_counter() - t0)
        floor.append(floor_epoch(model, opt, xn, xc, y_std, config["batch_size"], gen))
    o, f = statistics.median(ours), statistics.median(floor)
    return {"ours_s": o, "floor_s": f, "ratio": o / f, "rows": int(xn.shape[0])}


def peak_rss_one_trial(data_path: Path, threads: int) -> float:
    """Peak RSS (MB) of a fresh process that loads the table and trains one trial for 3 epochs."""
    code = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.bench_trainer import load, MODEL
from pathlib import Path
from agesearch.trainer import Trial
data, _ = load(Path({str(data_path)!r}))
t = Trial({{**MODEL, "max_epochs": 3, "patience": 3}}, data, threads={threads})
t.fit()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = ap.parse_args()
    data, name = load(args.data)
    rows = []
    variants = [("regression (L1)", {**MODEL})]
    try:
        from agesearch.imbalance import STRATEGIES  # noqa: F401

        if "fds" in STRATEGIES:
            variants.append(("regression + FDS", {**MODEL, "strategy": "fds"}))
    except ImportError:
        pass
    for label, cfg in variants:
        r = compare(data, cfg, args.repeats, args.threads)
        print(json.dumps({"variant": label, **r}))
        rows.append((label, r))
    rss = peak_rss_one_trial(args.data, args.threads)
    print(json.dumps({"peak_rss_one_trial_mb": rss}))
    table = "\n".join(
        f"| {label} | {r['rows']} | {r['ours_s']*1000:.0f} | {r['floor_s']*1000:.0f} | "
        f"**{r['ratio']:.3f}** | {'met' if r['ratio'] <= 1.10 else 'NOT met'} |"
        for label, r in rows
    )
    body = f"""Machine: {machine()}. Data: {name}; model {MODEL}; {args.threads} threads;
median of {args.repeats} interleaved epochs after one warm-up epoch each.

| variant | training rows | agesearch epoch (ms) | hand-written loop (ms) | ratio | target <= 1.10 |
|---|---|---|---|---|---|
{table}

Peak RSS of one trial (fresh process: import, load + preprocess the table, 3 epochs + validation):
**{rss:.0f} MB**.
"""
    if not args.no_write:
        update_section("Trainer overhead and memory", body)
    print(body)


if __name__ == "__main__":
    main()
