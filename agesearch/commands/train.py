"""``agesearch train``: train one configuration on a data file and print per-region metrics."""

from __future__ import annotations

import argparse
import json

NAME = "train"
HELP = "train one configuration (no search) and print validation/test metrics"
EPILOG = """examples:
  agesearch train --data builtin:synthetic --target age
  agesearch train --data my.csv --target age --set max_epochs=30 --set loss=huber
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CSV/Parquet file or builtin:synthetic|builtin:flchain")
    p.add_argument("--target", default="age", help="age column (default: age)")
    p.add_argument("--ignore", action="append", default=[], help="column to ignore (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="split and training seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="configuration value, JSON-parsed when possible (repeatable)")


def parse_sets(items: list[str]) -> dict:
    from agesearch.cli import UsageError

    cfg = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item!r} is not KEY=VALUE; write e.g. --set lr=0.001")
        k, v = item.split("=", 1)
        try:
            cfg[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            cfg[k.strip()] = v
    return cfg


def run(args: argparse.Namespace) -> int:
    from agesearch.data import load_table, prepare
    from agesearch.trainer import Trial

    config = {"seed": args.seed, **parse_sets(args.set)}
    table = load_table(args.data, args.target, ignore=args.ignore)
    data = prepare(table, seed=args.seed)
    trial = Trial(config, data)
    for r in trial.run():
        print(f"epoch {int(r['epoch']):3d}  loss {r['train_loss']:.4f}  val MAE {r['mae']:.3f}  "
              f"few-shot {r['mae_few']:.3f}")
    trial.restore_best()
    for split in ("val", "test"):
        m = trial.evaluate(split)
        print(split, " ".join(f"{k}={m[k]:.3f}" for k in ("mae", "mae_many", "mae_medium", "mae_few", "mae_zero")))
    return 0
