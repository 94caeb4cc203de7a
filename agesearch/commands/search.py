"""``agesearch search``: run or resume a distributed hyperparameter search."""

from __future__ import annotations

import argparse

NAME = "search"
HELP = "search strategies and hyperparameters with Ray Tune + Optuna (pruning on few-shot MAE)"
EPILOG = """examples:
  agesearch search --data builtin:synthetic --space quick --name q1 --storage experiments --num-samples 20
  agesearch search --data builtin:flchain --space default --name g1 --guard overall:0.05
  agesearch search --name q1 --storage experiments --resume
  agesearch search --data s3://bucket/ages.parquet --space default --name big --storage s3://bucket/exp \\
      --address auto --gpus-per-trial 0.25 --num-samples 400
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="CSV/Parquet file or builtin:synthetic|builtin:flchain (not needed with --resume)")
    p.add_argument("--target", default="age", help="age column (default: age)")
    p.add_argument("--ignore", action="append", default=[], help="column to ignore (repeatable)")
    p.add_argument("--space", default="quick", help="search space YAML path or shipped name (see 'agesearch spaces')")
    p.add_argument("--name", required=True, help="experiment name: results go to STORAGE/NAME")
    p.add_argument("--storage", default="experiments", help="local folder or pyarrow URI (s3://, gs://, hdfs://)")
    p.add_argument("--num-samples", type=int, default=20, help="number of trials, reference included")
    p.add_argument("--address", default=None, help="Ray cluster: auto | HOST:PORT | ray://HOST:PORT (default: local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (torch threads)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions pack trials (0.25)")
    p.add_argument("--max-concurrent", type=int, default=None, help="at most this many trials at once")
    p.add_argument("--time-budget", type=float, default=None, metavar="S", help="stop the search after S seconds")
    p.add_argument("--max-failures", type=int, default=1, help="retries per trial, from its latest checkpoint")
    p.add_argument("--guard", default=None, metavar="REGION:EPS",
                   help="optimise the metric subject to REGION's validation MAE <= (1+EPS) x the vanilla "
                        "reference's, e.g. overall:0.05 or many:0.1; 'none' disables the space's guard")
    p.add_argument("--pruner", default=None, help="override the space's pruner (median, percentile, successive_halving, hyperband, wilcoxon, asha, none)")
    p.add_argument("--seed", type=int, default=0, help="split, sampler and training seed")
    p.add_argument("--resume", action="store_true", help="continue the interrupted experiment STORAGE/NAME")
    p.add_argument("--shared-storage", action="store_true", help="the local --storage path is mounted on every node")
    p.add_argument("--ray-logs", action="store_true", help="show Ray's own console output")


def run(args: argparse.Namespace) -> int:
    from agesearch.search.runner import format_top, search

    res = search(
        data=args.data, target=args.target, ignore=args.ignore, space=args.space, name=args.name,
        storage=args.storage, num_samples=args.num_samples, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent, time_budget=args.time_budget,
        max_failures=args.max_failures, pruner=args.pruner, guard=args.guard, seed=args.seed, resume=args.resume,
        shared_storage=args.shared_storage, quiet_ray=not args.ray_logs,
    )
    print(format_top(res))
    print(f"results: {res.experiment}")
    return 0
