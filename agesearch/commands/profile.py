"""``agesearch profile``: look at an age table before searching (regions, counts, features, warnings)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

NAME = "profile"
HELP = "profile a table: age histogram with shot regions, counts per bin, features, warnings"
DESCRIPTION = """Profile an age table as the search will see it: the same seeded split and the same
training-count regions (many / medium / few / zero-shot). Writes an age histogram (PNG) with the
regions shaded, counts per bin and region (CSV), a feature summary (CSV) and profile.json, and
prints a summary with warnings: empty regions, a tiny validation few-shot set, top-coded ages,
leaky or identifier-like columns."""
EPILOG = """examples:
  agesearch profile --data builtin:synthetic --target age
  agesearch profile --data nhanes.csv --target age --ignore sampleID --out profile-nhanes
  agesearch profile --data my.parquet --target age --bin-width 5 --few 30
"""


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give years, e.g. 1") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of years, e.g. 1")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, e.g. 20") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CSV/Parquet file or builtin:synthetic|builtin:flchain")
    p.add_argument("--target", default="age", help="age column (default: age)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: profile-<data name> in the current folder)")
    p.add_argument("--ignore", action="append", default=[], metavar="COL",
                   help="column that is not a feature, e.g. an identifier (repeatable)")
    p.add_argument("--bin-width", type=_positive_float, default=1.0, metavar="W",
                   help="age bin width in years (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="split seed, as for the search (default: 0)")
    p.add_argument("--region-mode", choices=("absolute", "tertile"), default="absolute",
                   help="regions from absolute training-count thresholds or count tertiles")
    p.add_argument("--many", type=_positive_int, default=100,
                   help="many-shot: bins with more than this many training rows (default: 100)")
    p.add_argument("--few", type=_positive_int, default=20,
                   help="few-shot: bins with fewer than this many training rows (default: 20)")


def default_out(data: str) -> Path:
    """``profile-<name>`` in the current folder, where name is the file stem or builtin name."""
    stem = data.split(":", 1)[1] if data.startswith("builtin:") else Path(data).stem
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).strip("._") or "data"
    return Path(f"profile-{safe}")


def run(args: argparse.Namespace) -> int:
    from agesearch.cli import UsageError
    from agesearch.profile import profile
    from agesearch.regions import RegionSpec

    if args.many < args.few:
        raise UsageError(f"--many ({args.many}) is below --few ({args.few}); use --many >= --few")
    spec = RegionSpec(mode=args.region_mode, many=args.many, few=args.few)
    out = Path(args.out) if args.out else default_out(args.data)
    result = profile(
        args.data, args.target, out,
        ignore=args.ignore, bin_width=args.bin_width, seed=args.seed, region_spec=spec,
    )  # fmt: skip
    print(result.summary())
    return 0
