"""``agesearch predict``: apply an exported model (a report's ``model/`` folder) to a new file."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "predict ages for a new CSV/Parquet file with an exported model (a report's model/ folder)"
DESCRIPTION = """Apply an exported model to a CSV or Parquet file. The output (format by extension,
.csv or .parquet) holds the input columns followed by predicted_age, the interval bounds
age_lower/age_upper (for heads that give intervals), with --proba one column proba_<age> per age
bin (probabilistic heads), and 'problem'. Rows the model cannot use (every model feature missing,
or text in a numeric column) are kept with an empty prediction and the reason in 'problem'; their
count and first row numbers are printed. The input file is never overwritten."""
EPILOG = """examples:
  agesearch predict --model reports/q1/model --data new_people.csv --out predictions.csv
  agesearch predict --model reports/q1/model --data new.parquet --out pred.parquet --proba
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR",
                   help="exported model folder (the model/ folder of an 'agesearch report')")
    p.add_argument("--data", required=True, metavar="FILE", help="CSV or Parquet file with the model's feature columns")
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .csv or .parquet (not the input file)")
    p.add_argument("--proba", action="store_true", help="also write the probability of each age bin (probabilistic heads)")


def run(args: argparse.Namespace) -> int:
    from agesearch.predict import predict_file

    res = predict_file(args.model, args.data, args.out, proba=args.proba)
    print(res.summary())
    return 0
