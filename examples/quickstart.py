"""Train one FT-Transformer trial on the built-in synthetic data and print per-region metrics."""

from agesearch.data import load_table, prepare
from agesearch.trainer import Trial

table = load_table("builtin:synthetic", target="age")
data = prepare(table, seed=0)
trial = Trial({"max_epochs": 20, "patience": 5}, data)
for record in trial.run():
    print(f"epoch {int(record['epoch']):2d}  val MAE {record['mae']:.2f}  few-shot {record['mae_few']:.2f}")
trial.restore_best()
test = trial.evaluate("test")
print({k: round(v, 2) for k, v in test.items() if k.startswith("mae")})
