"""``agesearch demo``: profile + quick search + report on the built-in synthetic data."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run the whole job (profile, quick search, report) on the built-in synthetic data"
DESCRIPTION = """Run the whole job on the built-in 'synthetic' data set in a few minutes on 2 CPUs:
profile the table (OUT/profile), run a quick search with search_spaces/quick.yaml
(OUT/experiments/demo), and build the report with refits on the held-out test split
(OUT/report/index.html). Prints where the report is. --small runs a one-minute version."""
EPILOG = """examples:
  agesearch demo
  agesearch demo --out /tmp/agesearch-demo --small
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="agesearch-demo", metavar="DIR",
                   help="output folder (default: agesearch-demo); must not hold an earlier demo")
    p.add_argument("--small", action="store_true",
                   help="tiny settings (1,200 rows, 3 trials of 2 epochs, one refit seed, no baselines): about a minute")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the demo's local Ray instance (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="split, sampler and training seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from agesearch.demo import demo

    res = demo(args.out, small=args.small, seed=args.seed, num_cpus=args.num_cpus)
    total = sum(res.timings.values())
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in res.timings.items())
    print(f"\ndemo finished in {total:.0f}s ({steps}). Report: {res.index}")
    print(f"  open it in a browser; the exported model is in {res.report / 'model'}:")
    print(f"  agesearch predict --model {res.report / 'model'} --data YOUR.csv --out predictions.csv")
    return 0
