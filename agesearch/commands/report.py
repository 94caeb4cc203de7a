"""``agesearch report``: rank an experiment's trials, refit the best on the test split, write HTML."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "build the ranked strategy report of an experiment (refits on the held-out test split)"
EPILOG = """examples:
  agesearch report runs/myexp --out reports/myexp
  agesearch report runs/myexp --out reports/quick --refit-top 0 --no-baselines
  agesearch report runs/myexp --out reports/myexp --refit-top 3 --seeds 5 --address 127.0.0.1:6379
  agesearch report runs/myexp --out reports/myexp --repeats 5 --guard overall:0.03
  agesearch report runs/myexp --out reports/myexp --outer-folds 5 --guard none
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment folder written by 'agesearch search' (STORAGE/NAME)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--refit-top", type=int, default=5, metavar="K",
                   help="refit the K best completed configurations on the test split (0: none; default 5)")
    p.add_argument("--seeds", type=int, default=3, metavar="S", help="seeds per refit (default 3)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap resamples (default 1000)")
    p.add_argument("--no-baselines", action="store_true", help="skip mean/Ridge/HistGradientBoosting baselines")
    p.add_argument("--study-trials", type=int, default=1000, metavar="N",
                   help="trials stored in study.sqlite3, best first (0: all; default 1000)")
    p.add_argument("--address", default=None, help="Ray cluster address for refits (default: local)")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (default 2)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap, baseline and re-split seed")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help="evaluate on R stratified re-splits of train+validation vs test (repeat 0 = the "
                        "search's split); default 5 when the test split has < 20 few-shot rows, else 1")
    p.add_argument("--outer-folds", type=int, default=0, metavar="K",
                   help="outer K-fold evaluation instead of --repeats (0: off)")
    p.add_argument("--guard", default=None, metavar="REGION:EPS",
                   help="guard of the headline recommendation, e.g. overall:0.05 or none "
                        "(default: the search's guard, else overall:0.05)")
    p.add_argument("--no-debias-variants", action="store_true",
                   help="do not evaluate the post-hoc de-biased variant of each refit")


def run(args: argparse.Namespace) -> int:
    from agesearch.report import build_report

    res = build_report(
        args.experiment, args.out, refit_top=args.refit_top, seeds=args.seeds, n_boot=args.bootstrap,
        baselines=not args.no_baselines, address=args.address, num_cpus=args.num_cpus,
        study_trials=args.study_trials, seed=args.seed, repeats=args.repeats, outer_folds=args.outer_folds,
        guard=args.guard, debias_variants=not args.no_debias_variants,
    )
    if res.recommendation is not None:
        print(f"recommendation under the guard {res.guard}: {res.recommendation}")
    for n in res.notices:
        print(f"note: {n}")
    print(f"report written to {res.out / 'index.html'} ({res.timings.get('total', 0):.1f}s)")
    return 0
