"""Worked trade-off example on the real ``flchain`` table (README section "tradeoff").

A refit-only run (no search needed): three "trials" are trained for real on the search-style split
and written in the experiment contract: the vanilla reference (trial 0) and the same model with
LDS-smoothed loss weights, square-root inverse (``strategy: lds, weight_method: sqrt_inv``) and
inverse (``weight_method: inverse``). The report then refits all three, plus each one's de-biased
variant (linear, strength auto under the guard), on 5 repeated splits x 2 seeds and writes the
trade-off table. The guard (overall:0.05) is set in experiment.json, as a guarded search would.

    PYTHONPATH=. python examples/tradeoff_flchain.py [OUT_DIR]     # about 8 minutes on 2 cores
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from agesearch.data import load_table, prepare
from agesearch.objective import Objective
from agesearch.report import Experiment, build_report
from agesearch.trainer import Trial

MODEL = {"n_blocks": 1, "d_block": 32, "attention_n_heads": 4, "batch_size": 256, "lr": 2e-3,
         "max_epochs": 25, "patience": 5, "strategy": "none", "head": "regression", "loss": "l1"}
CONFIGS = [MODEL, {**MODEL, "strategy": "lds", "weight_method": "sqrt_inv"},
           {**MODEL, "strategy": "lds", "weight_method": "inverse"}]


def main(out: Path) -> None:
    t0 = time.perf_counter()
    root = out / "experiment"
    source = {"source": "builtin:flchain", "target": "age", "ignore": []}
    data = prepare(load_table(source["source"], source["target"]), seed=0)
    data.save(root / "data")
    meta = {"name": "flchain-tradeoff", "status": "finished", "metric": "mae_few", "mode": "min",
            "data": source, "guard": "overall:0.05", "seed": 0}
    (root / "experiment.json").write_text(json.dumps(meta, indent=2))
    rows = []
    objective = None
    for i, cfg in enumerate(CONFIGS):
        tr = Trial(cfg, data.without("test"), threads=2, objective=objective).fit()
        m = tr.evaluate("val", best=True)
        rows.append({"trial_id": f"t{i}", "number": i, "status": "COMPLETE", "is_reference": i == 0,
                     "epochs": tr.epoch, "best_epoch": tr.best_epoch, "score": m["mae_few"],
                     **{f"val/{k}": v for k, v in m.items()}, **{f"config/{k}": v for k, v in cfg.items()}})
        if i == 0:  # later trials early-stop on the guarded objective, as in a guarded search
            objective = Objective("mae_few", guard_metric="mae", guard_eps=0.05, reference=m["mae"])
    exp = Experiment(meta=meta, trials=pd.DataFrame(rows), path=root)
    res = build_report(exp, out / "report", refit_top=2, seeds=2, repeats=None, n_boot=1000, baselines=False)
    cols = ["guard", "model", "mae_many", "mae_medium", "mae_few", "mae", "mae_few_change_pct",
            "mae_change_pct", "guard_holds_ci"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(res.tradeoff[cols].round(2).to_string(index=False))
        print(res.tails.round(2).to_string(index=False))
    print(f"repeats: {res.repeats}; recommendation under {res.guard}: {res.recommendation}; "
          f"{time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/flchain-tradeoff"))
