"""Build the report folder from an experiment: tables, refits on the test split, plots, HTML/Markdown.

Outputs in ``out``:
``index.html`` (self-contained), ``report.md`` (+ ``figures/*.png``), ``trials.parquet`` (one row
per trial), ``history.parquet``, ``ranking.csv``, ``strategies.csv``, ``importance.csv``,
``study.sqlite3`` (Optuna study; ``optuna-dashboard sqlite:///study.sqlite3``) and, with refits,
``predictions.parquet`` (per test row, model, seed and repeat), ``test_metrics.csv``,
``paired.csv`` and ``model/`` (the best configuration's refit, for :func:`agesearch.load_model`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from agesearch.data import PreparedData
from agesearch.paths import safe_join, safe_name
from agesearch.regions import REGIONS
from agesearch.report import plots
from agesearch.report.document import Document, Image, Notice, Paragraph, Section, Table
from agesearch.report.experiment import Experiment, ReportError, config_columns, load_experiment, row_config, validate_trials
from agesearch.report.html import render_html
from agesearch.report.markdown import render_markdown
from agesearch.report.rank import pareto_front, rank_trials, strategy_summary, top_configurations
from agesearch.objective import parse_guard
from agesearch.report.refit import (
    REFERENCE_NAME, RefitResult, RefitSpec, default_progress, objective_for, run_refits, vanilla_config,
)
from agesearch.report.pooled import add_tails, evaluate_pooled
from agesearch.report.repeats import default_repeats, describe, prepare_repeats, reload_table, repeat_splits, split_membership
from agesearch.report.stats import interval_coverage, per_age_mae, predictions_frame
from agesearch.report.tradeoff import GUARDS, guard_label, point_table, select_under_guard, tail_table, tradeoff_table
from agesearch.report.study import build_frozen_trials, infer_distributions, param_importances, write_sqlite_study

log = logging.getLogger(__name__)

STRATEGY_KEYS = ("config/strategy",)
FAMILY_KEYS = ("config/head", "config/loss")


@dataclass
class ReportResult:
    """What :func:`build_report` wrote and computed."""

    out: Path
    ranked: pd.DataFrame
    strategies: pd.DataFrame
    families: pd.DataFrame
    importance: pd.DataFrame
    test_metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    refits: list[RefitResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    model_dir: Path | None = None
    study_trials: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    tradeoff: pd.DataFrame = field(default_factory=pd.DataFrame)
    tails: pd.DataFrame = field(default_factory=pd.DataFrame)
    refit_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    splits: pd.DataFrame = field(default_factory=pd.DataFrame)
    repeats: int = 1
    outer_folds: int = 0
    guard: str = "none"
    recommendation: str | None = None
    debiased: set[str] = field(default_factory=set)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet via pyarrow; object columns of mixed types (conditional config values) become text."""
    d = df.copy()
    for c in d.columns:
        if d[c].dtype == object:
            kinds = set(d[c].dropna().map(type).unique())
            if len(kinds) > 1:
                d[c] = d[c].astype("string")
    tmp = path.with_name(path.name + ".tmp")
    d.to_parquet(tmp, engine="pyarrow", index=False)
    os.replace(tmp, path)


def _ci(v: float, lo: float, hi: float) -> str:
    if v != v:
        return "-"
    if lo != lo:
        return f"{v:.2f}"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def _summary_wide(summary: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """One row per model: MAE per region and overall RMSE / Pearson / GM, each 'value [lo, hi]'."""
    if summary.empty:
        return pd.DataFrame()
    s = summary.assign(cell=[_ci(v, lo, hi) for v, lo, hi in zip(summary["value"], summary["lower"], summary["upper"])])
    s["col"] = np.where(s["region"] == "all", s["metric"], s["metric"] + "_" + s["region"])
    wide = s.pivot_table(index="model", columns="col", values="cell", aggfunc="first", sort=False)
    order = ["mae"] + [f"mae_{r}" for r in REGIONS] + ["rmse", "pearson", "gm"]
    wide = wide[[c for c in order if c in wide.columns]]
    models = list(pd.unique(summary["model"]))
    wide = wide.reindex(models)
    wide.insert(0, "seeds", summary.groupby("model")["n_seeds"].first().reindex(models).to_numpy())
    wide.insert(0, "description", [labels.get(m, "") for m in models])
    return wide.reset_index()


def _load_data(exp: Experiment, data: PreparedData | None) -> PreparedData | None:
    if data is not None:
        return data
    if exp.path is not None and (exp.path / "data" / "prep.json").is_file():
        return PreparedData.load(exp.path / "data")
    return None


def _describe(cfg: dict[str, Any]) -> str:
    keys = ("strategy", "weight_method", "head", "loss")
    main = ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg)
    if cfg.get("debias", "none") != "none":
        main += f", debias={cfg['debias']} (strength {cfg.get('debias_strength', 'auto')})"
    return main or "configuration"


def build_report(
    experiment: str | os.PathLike[str] | Experiment,
    out: str | os.PathLike[str],
    *,
    refit_top: int = 5,
    seeds: int = 3,
    n_boot: int = 1000,
    baselines: bool = True,
    address: str | None = None,
    num_cpus: int | None = 2,
    data: PreparedData | None = None,
    study_trials: int = 1000,
    seed: int = 0,
    repeats: int | None = None,
    outer_folds: int = 0,
    guard: str | None = None,
    debias_variants: bool = True,
    progress: Callable[[int, int, RefitResult], None] | None = default_progress,
) -> ReportResult:
    """Build the report of ``experiment`` (a folder or an :class:`Experiment`) in ``out``.

    Args:
        refit_top: refit the best K completed configurations (0: no refits, no test numbers).
        seeds: seeds per refit.
        n_boot: bootstrap resamples for the confidence intervals.
        baselines: also fit mean / Ridge / HistGradientBoosting (+/- weights) on the same split.
        address: Ray cluster address for the refits (default: running instance or local).
        data: the prepared data (default: ``EXPERIMENT/data``); needed for refits and baselines.
        study_trials: trials stored in the SQLite study (best-ranked first; 0 = all).
        repeats: repeated evaluation on R splits (repeat 0 = the search's split; see
            :mod:`agesearch.report.repeats`). None: 5 when the search's test split has fewer than 20
            few-shot rows, else 1.
        outer_folds: outer k-fold evaluation instead of repeats (0 = off).
        guard: the guard of the headline recommendation, e.g. ``overall:0.05`` or ``none``
            (default: the search's guard from experiment.json, else ``overall:0.05``).
        debias_variants: also evaluate every refit's post-hoc linear de-biased variant (strength
            auto under the guard, fitted on validation only) as its own trade-off candidate.
    """
    for name, v, lo in (("refit_top", refit_top, 0), ("seeds", seeds, 1), ("n_boot", n_boot, 1),
                        ("study_trials", study_trials, 0), ("outer_folds", outer_folds, 0)):
        if int(v) != v or v < lo:
            raise ReportError(f"{name} must be an integer >= {lo}, got {v}")
    if repeats is not None and (int(repeats) != repeats or repeats < 1):
        raise ReportError(f"repeats must be an integer >= 1, got {repeats} (e.g. --repeats 5)")
    if outer_folds == 1:
        raise ReportError("outer_folds must be 0 (off) or >= 2, got 1 (e.g. --outer-folds 5)")
    if outer_folds and repeats not in (None, 1, outer_folds):
        raise ReportError("use either --repeats or --outer-folds, not both")
    if guard is not None:
        try:
            parse_guard(guard)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    exp.trials = validate_trials(exp.trials)
    data = _load_data(exp, data)
    if (refit_top > 0 or baselines) and data is None:
        raise ReportError(
            "refits and baselines need the prepared data (EXPERIMENT/data); pass data=... or use "
            "--refit-top 0 --no-baselines"
        )
    out = Path(out)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report to {str(out)!r} ({exc.strerror or type(exc).__name__}); choose another --out"
        ) from None
    notices = exp.completeness_notes()
    direction = "minimize" if exp.mode == "min" else "maximize"
    guard_text = guard if guard is not None else (guard_from_meta(exp.meta) or "overall:0.05")
    try:
        g_metric, g_eps = parse_guard(guard_text)
    except ValueError as exc:
        raise ReportError(str(exc)) from None

    # ---- tables (vectorised)
    trials = exp.trials
    _write_parquet(trials, out / "trials.parquet")
    if not exp.history.empty:
        _write_parquet(exp.history, out / "history.parquet")
    ranked = rank_trials(trials, exp.mode)
    ranked.insert(3, "pareto", pareto_front(ranked).to_numpy())
    front_cols = ["rank", "group", "comparable", "pareto", "trial_id", "number", "status", "reason", "is_reference", "score"]
    val_cols = [c for c in ranked.columns if isinstance(c, str) and c.startswith("val/")]
    ranking = ranked[front_cols + ["epochs", "best_epoch"] + val_cols + config_columns(ranked)]
    ranking.to_csv(out / "ranking.csv", index=False)
    few_col = "val/mae_few" if "val/mae_few" in ranked.columns else "score"
    strategies = strategy_summary(ranked, list(STRATEGY_KEYS), few_col)
    families = strategy_summary(ranked, list(FAMILY_KEYS), few_col)
    strategies.to_csv(out / "strategies.csv", index=False)
    families.to_csv(out / "families.csv", index=False)
    timings["tables"] = time.perf_counter() - t0

    # ---- Optuna study
    t1 = time.perf_counter()
    dists = infer_distributions(trials)
    frozen = build_frozen_trials(trials, dists)
    importance = param_importances(frozen, direction, seed=seed)
    importance.to_csv(out / "importance.csv", index=False)
    by_number = trials.sort_values("number", kind="mergesort").reset_index(drop=True)
    pos_of = pd.Series(np.arange(len(by_number)), index=by_number["trial_id"].to_numpy())
    keep_ids = ranked["trial_id"] if study_trials == 0 else pd.concat(
        [ranked.loc[ranked["is_reference"], "trial_id"], ranked["trial_id"].head(study_trials)]
    ).drop_duplicates()
    keep = np.sort(pos_of.loc[keep_ids.to_numpy()].to_numpy()).tolist()
    n_study = write_sqlite_study(frozen, out / "study.sqlite3", study_name=exp.name, direction=direction, keep=keep)
    timings["study"] = time.perf_counter() - t1

    # ---- refits and baselines on the test split
    result = ReportResult(out=out, ranked=ranked, strategies=strategies, families=families,
                          importance=importance, notices=notices, study_trials=n_study, timings=timings,
                          guard=guard_label(g_metric or "mae", g_eps))
    labels: dict[str, str] = {}
    if data is not None and (refit_top > 0 or baselines):
        t2 = time.perf_counter()
        datas, splits = _repeat_data(exp, data, result, repeats=repeats, outer_folds=outer_folds, seed=seed)
        variant = None
        if debias_variants:
            variant = {"debias": "linear", "debias_strength": "auto",
                       "debias_guard": None if g_eps is None else float(g_eps)}
        _refits_and_baselines(exp, ranked, datas, result, labels, refit_top=refit_top, seeds=seeds,
                              n_boot=n_boot, baselines=baselines, address=address, num_cpus=num_cpus,
                              seed=seed, progress=progress, debias_variant=variant,
                              guard=(g_metric or "mae", g_eps))
        result.splits = split_membership(splits)
        _write_parquet(result.splits, out / "splits.parquet")
        timings["refits"] = time.perf_counter() - t2

    # ---- document
    t3 = time.perf_counter()
    doc = _document(exp, result, data, labels)
    for sec in doc.sections:
        for b in sec.blocks:
            if isinstance(b, Image):
                safe_join(out, "figures", safe_name(b.filename, "figure file")).write_bytes(b.png)
    (out / "index.html").write_text(render_html(doc), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(doc), encoding="utf-8")
    timings["document"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    (out / "report.json").write_text(json.dumps({"experiment": exp.name, "status": exp.status, "notices": notices,
                                                 "n_trials": int(len(trials)), "study_trials": n_study,
                                                 "repeats": result.repeats, "outer_folds": result.outer_folds,
                                                 "guard": result.guard, "recommendation": result.recommendation,
                                                 "timings_s": timings}, indent=2))
    return result


def guard_from_meta(meta: dict[str, Any]) -> str | None:
    """The search's guard from ``experiment.json`` as ``REGION:EPS`` text, or None."""
    g = meta.get("guard")
    if g is None:
        return None
    if isinstance(g, str):
        return g
    if isinstance(g, dict):
        metric = g.get("guard_metric", g.get("metric"))
        eps = g.get("guard_eps", g.get("eps"))
        region = g.get("region") or ({"mae": "overall"}.get(str(metric), str(metric).replace("mae_", "")) if metric else None)
        if region and eps is not None:
            return f"{region}:{eps}"
    return None


def _repeat_data(exp, data, result, *, repeats, outer_folds, seed):
    """The prepared data of every repeat (repeat 0 = the search's split) and the splits."""
    from agesearch.data import Split

    own = [Split(train=data.rows["train"], val=data.rows["val"], test=data.rows["test"], seed=data.seed)]
    if outer_folds:
        want = int(outer_folds)
    elif repeats is None:
        want = default_repeats(data)
        if want > 1:
            try:
                reload_table(exp.meta, data)
            except ReportError as exc:
                result.notices.append(
                    f"The test split has fewer than 20 few-shot rows, so the report would repeat the "
                    f"evaluation on {want} splits, but {exc}. Evaluated on the search's split only."
                )
                want = 1
    else:
        want = int(repeats)
    result.repeats, result.outer_folds = (want, int(outer_folds))
    if want == 1 and not outer_folds:
        return [data], own
    table = reload_table(exp.meta, data)
    splits = repeat_splits(table.y, data, repeats=want, outer_folds=int(outer_folds), seed=seed)
    return prepare_repeats(table, data, splits), splits


def _refits_and_baselines(exp, ranked, datas, result, labels, *, refit_top, seeds, n_boot, baselines,
                          address, num_cpus, seed, progress, debias_variant=None, guard=("mae", 0.05)) -> None:
    frames = []
    data = datas[0]
    tests = [(d.y["test"], d.region_of("test"), d.rows["test"]) for d in datas]
    specs: list[RefitSpec] = []
    if refit_top > 0:
        top = top_configurations(ranked, refit_top)
        for i, (idx, row) in enumerate(top.iterrows(), start=1):
            cfg = row_config(ranked, idx)
            specs.append(RefitSpec(name=f"rank{i}", config=cfg, trial_id=row["trial_id"], label=_describe(cfg)))
        ref_rows = ranked.index[ranked["is_reference"]]
        base_cfg = row_config(ranked, ref_rows[0]) if len(ref_rows) else (specs[0].config if specs else {})
        specs.append(RefitSpec(name=REFERENCE_NAME, config=vanilla_config(base_cfg),
                               trial_id=str(ranked.loc[ref_rows[0], "trial_id"]) if len(ref_rows) else None,
                               label="vanilla reference: no imbalance handling, L1 regression"))
        for s in specs:
            labels[s.name] = f"{s.label} (trial {s.trial_id})" if s.trial_id and s.name != REFERENCE_NAME else s.label
        best_name = specs[0].name if len(specs) > 1 else None
        ref_val = None
        if len(ref_rows):
            r0 = ranked.loc[ref_rows[0]]
            ref_val = {c.split("/", 1)[1]: float(r0[c]) for c in ranked.columns
                       if isinstance(c, str) and c.startswith("val/") and pd.notna(r0[c])}
        objective = objective_for(exp.meta, ref_val)
        refits = run_refits(specs, datas, seeds=seeds, address=address, num_cpus=num_cpus,
                            keep_state={best_name} if best_name else set(), objective=objective,
                            progress=progress, debias_variant=debias_variant)
        result.refits = refits
        failed = [r for r in refits if r.error]
        if failed:
            result.notices.append(
                f"{len(failed)} of {len(refits)} refits failed (e.g. {failed[0].name} repeat {failed[0].repeat} "
                f"seed {failed[0].seed}: {failed[0].error}); their models are shown with the remaining seeds and repeats."
            )
        g_text = guard_label(*guard)
        for r in refits:
            if r.pred is None or r.error:
                continue
            y, region, rows = tests[r.repeat]
            frames.append(predictions_frame(r.name, r.seed, y, r.pred, region, repeat=r.repeat, row=rows,
                                            lower=r.lower, upper=r.upper))
            if r.pred_debiased is not None and np.all(np.isfinite(r.pred_debiased)):
                name = f"{r.name}+debias"
                frames.append(predictions_frame(name, r.seed, y, r.pred_debiased, region, repeat=r.repeat, row=rows))
                result.debiased.add(name)
                labels[name] = f"{labels.get(r.name, r.name)} + post-hoc linear de-biasing (strength auto, guard {g_text})"
            elif r.config.get("debias", "none") != "none":
                result.debiased.add(r.name)
        result.refit_table = pd.DataFrame([
            {"model": r.name, "repeat": r.repeat, "seed": r.seed, "epochs": r.epochs, "best_epoch": r.best_epoch,
             "seconds": round(r.seconds, 2), "error": r.error,
             "debias_strength": (r.debias_variant or r.debias or {}).get("strength_"),
             **{f"val/{k}": v for k, v in r.val.items() if k in ("mae", "mae_few", "mae_many")}}
            for r in refits
        ])
        result.refit_table.to_csv(result.out / "refits.csv", index=False)
        ok_best = [r for r in refits if r.name == best_name and r.repeat == 0 and r.state is not None and not r.error]
        if ok_best:
            metric = exp.metric
            sign = 1.0 if exp.mode == "min" else -1.0
            chosen = min(ok_best, key=lambda r: sign * r.val.get(metric, math.inf) if r.val.get(metric) == r.val.get(metric) else math.inf)
            from agesearch.export import export_model

            result.model_dir = export_model(
                result.out / "model", config=chosen.config, data=data, state_dict=chosen.state,
                debias=chosen.debias,
                info={"experiment": exp.name, "source_trial": specs[0].trial_id, "refit_seed": chosen.seed,
                      "selected_by": f"validation {metric} among the refit seeds of the rank-1 configuration"},
            )
    if baselines:
        from agesearch.report.baselines import fit_baselines

        for rep, d in enumerate(datas):
            y, region, rows = tests[rep]
            for name, b in fit_baselines(d, seed=seed).items():
                frames.append(predictions_frame(f"baseline:{name}", 0, y, b["pred"], region, repeat=rep, row=rows))
                labels[f"baseline:{name}"] = b["label"]
    if not frames:
        return
    preds = pd.concat(frames, ignore_index=True)
    preds = add_tails(preds, {rep: float(np.median(d.y["train"])) for rep, d in enumerate(datas)})
    summary, paired = evaluate_pooled(preds, n_boot=n_boot, seed=seed, reference=REFERENCE_NAME)
    _write_parquet(preds, result.out / "predictions.parquet")
    summary.to_csv(result.out / "test_metrics.csv", index=False)
    paired.to_csv(result.out / "paired.csv", index=False)
    result.predictions, result.test_metrics, result.paired = preds, summary, paired
    if specs and REFERENCE_NAME in set(summary["model"]):
        names = [s.name for s in specs]
        cands = [m for n in names for m in (n, f"{n}+debias") if m in set(summary["model"])]
        result.tradeoff = tradeoff_table(summary, paired, cands, REFERENCE_NAME, labels=labels, debiased=result.debiased)
        result.tradeoff.to_csv(result.out / "tradeoff.csv", index=False)
        result.recommendation = select_under_guard(point_table(summary, cands), REFERENCE_NAME, guard[1], guard[0])
        result.tails = tail_table(summary, cands + [m for m in pd.unique(summary["model"]) if m.startswith("baseline:")], labels)
        if not result.tails.empty:
            result.tails.to_csv(result.out / "tails.csv", index=False)


# ----------------------------------------------------------------------------------------- document


def _document(exp: Experiment, res: ReportResult, data: PreparedData | None, labels: dict[str, str]) -> Document:
    ranked = res.ranked
    counts = ranked["status"].value_counts()
    sections: list[Section] = []

    # Summary / headline
    sec = Section("Summary", "summary")
    sec.blocks.append(Paragraph(
        f"Experiment {exp.name}: status {exp.status}; {len(ranked)} trials "
        + ", ".join(f"{int(counts.get(s, 0))} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAILED", "RUNNING", "PENDING"))
        + f". Search metric: validation {exp.metric} ({exp.mode})."
    ))
    sec.blocks.extend(_headline(res, exp, labels))
    sections.append(sec)

    # Data
    if data is not None:
        sec = Section("Data and regions", "data")
        roles = data.roles
        sec.blocks.append(Paragraph(
            f"Source {data.source}; target {roles.target}; numeric features: {', '.join(roles.numeric) or '-'}; "
            f"categorical features: {', '.join(roles.categorical) or '-'}; ignored: {', '.join(roles.ignore) or '-'}."
        ))
        rows = []
        for s in ("train", "val", "test"):
            reg = data.region_of(s) if len(data.y[s]) else np.array([])
            rows.append({"split": s, "rows": len(data.y[s]), **{r: int((reg == r).sum()) for r in REGIONS}})
        sec.blocks.append(Table(pd.DataFrame(rows), "rows per split and region (regions from training counts)"))
        for w in data.warnings:
            sec.blocks.append(Notice(w))
        sec.blocks.append(Image(plots.age_histogram(data.regions), "training age histogram with regions", "age_histogram.png"))
        sections.append(sec)

    # Test results
    if not res.test_metrics.empty:
        sec = Section("Test results (refits)", "test")
        sec.blocks.append(Paragraph(
            f"Each configuration was retrained with several seeds (early stopping on validation) and "
            f"evaluated on held-out test rows: {describe(res.repeats, res.outer_folds)}; every repeat "
            "refits the preprocessing on its own training rows and keeps the search's age regions. "
            "Cells: error pooled over repeats, seeds and test rows [95% hierarchical bootstrap "
            "interval: repeats, then seeds and test rows within each repeat]. Names ending in "
            "'+debias' are the post-hoc de-biased variants of a refit (linear, strength chosen on "
            "validation under the guard; test rows untouched)."
        ))
        sec.blocks.append(Table(_summary_wide(res.test_metrics, labels), "test metrics", max_rows=100))
        if not res.paired.empty:
            p = res.paired[res.paired["metric"] == "mae"].copy()
            p["difference"] = [_ci(v, lo, hi) for v, lo, hi in zip(p["diff"], p["lower"], p["upper"])]
            sec.blocks.append(Table(p[["model", "region", "difference", "p_value", "verdict"]],
                                    "paired MAE difference against vanilla on the same test rows (negative = better)",
                                    max_rows=200))
        pam = per_age_mae(res.predictions[res.predictions["model"].isin(["rank1", REFERENCE_NAME, "baseline:hgb"])], data.bins.width if data else 1.0)
        if not pam.empty and data is not None:
            sec.blocks.append(Image(plots.per_age_mae(pam, data.regions, labels), "per-age test MAE", "per_age_mae.png"))
        cov = interval_coverage(res.predictions)
        if not cov.empty:
            from agesearch.export import INTERVAL_LEVEL

            sec.blocks.append(Table(cov, f"{INTERVAL_LEVEL:.0%} prediction-interval coverage by region"))
            sec.blocks.append(Image(plots.coverage_by_region(cov, INTERVAL_LEVEL), "interval coverage by region", "coverage.png"))
        failed = [r for r in res.refits if r.error]
        if failed:
            sec.blocks.append(Table(pd.DataFrame([{"model": r.name, "seed": r.seed, "error": r.error} for r in failed]), "failed refits"))
        sections.append(sec)

    # Trade-off
    if not res.tradeoff.empty:
        sections.append(_tradeoff_section(res, labels))

    # Ranking
    sec = Section("Ranking (validation)", "ranking")
    sec.blocks.append(Paragraph(
        "Completed trials are ranked by the search metric at their best epoch, ties by validation overall "
        "MAE. Pruned and running trials only have partial scores: they are listed below all completed "
        "trials (group column) and never compared with them. Validation scores were optimised by the "
        "search and are optimistic; the test results above are the unbiased numbers."
    ))
    show = [c for c in ["rank", "group", "pareto", "trial_id", "status", "score", "val/mae", "val/mae_few", "epochs", "reason"] if c in ranked.columns]
    show += [c for c in config_columns(ranked) if ranked[c].nunique(dropna=True) > 1][:8]
    sec.blocks.append(Table(ranked[show], "best trials (full table: ranking.csv)", max_rows=30))
    front = ranked[ranked["pareto"]]
    if not front.empty:
        sec.blocks.append(Table(front[[c for c in show if c != "pareto"]],
                                "Pareto front: no other completed trial has both lower overall and lower few-shot validation MAE"))
    sec.blocks.append(Image(plots.optimisation_history(ranked, exp.mode, exp.metric), "optimisation history", "history.png"))
    failed_t = ranked[ranked["status"] == "FAILED"]
    if not failed_t.empty:
        sec.blocks.append(Table(failed_t[["trial_id", "number", "reason"]], "failed trials", max_rows=20))
    sections.append(sec)

    # Strategies
    sec = Section("What helps the rare ages", "strategies")
    sec.blocks.append(Paragraph(
        "For each imbalance strategy and each head/loss family: how many trials tried it and the best and "
        "median validation few-shot MAE of its completed trials."
    ))
    if not res.strategies.empty:
        sec.blocks.append(Table(res.strategies, "by strategy"))
    if not res.families.empty:
        sec.blocks.append(Table(res.families, "by head and loss"))
    col = next((c for c in STRATEGY_KEYS + FAMILY_KEYS if c in ranked.columns), None)
    few = "val/mae_few" if "val/mae_few" in ranked.columns else "score"
    if col is not None:
        sec.blocks.append(Image(plots.metric_by_group(ranked, col, few), "few-shot MAE by strategy", "by_strategy.png"))
    sections.append(sec)

    # Importance
    sec = Section("Hyperparameter importance", "importance")
    if res.importance.empty:
        sec.blocks.append(Paragraph("Not available: fewer than two completed trials or no shared hyperparameter."))
    else:
        sec.blocks.append(Paragraph(
            f"Importance of each hyperparameter for the search metric ({res.importance['evaluator'].iloc[0]}, "
            "completed trials; sums to 1). Importance says which knob moved the score, not which value is best."
        ))
        sec.blocks.append(Table(res.importance, "importance"))
    sec.blocks.append(Paragraph(
        f"Optuna study: study.sqlite3 ({res.study_trials} of {len(ranked)} trials; pruned trials stored as PRUNED). "
        "Open it with: optuna-dashboard sqlite:///study.sqlite3"
    ))
    sections.append(sec)

    notices = list(res.notices)
    return Document(title=f"agesearch report: {exp.name}", notices=notices, sections=sections)


def _fmt_row_change(row: pd.Series, col: str) -> str:
    d = row.get(f"{col}_diff", math.nan)
    if d != d:
        return "-"
    return (f"{d:+.2f} [{row.get(f'{col}_diff_lower', math.nan):+.2f}, {row.get(f'{col}_diff_upper', math.nan):+.2f}] "
            f"({row.get(f'{col}_change_pct', math.nan):+.1f}%)")


def _tradeoff_section(res: ReportResult, labels: dict[str, str]) -> Section:
    sec = Section("Trade-off: few-shot gain per allowed overall cost", "tradeoff")
    sec.blocks.append(Paragraph(
        "For each guard on the overall MAE, the candidate (refits, vanilla and their de-biased variants) "
        "with the best pooled test few-shot MAE among those whose pooled test overall MAE is at most "
        "(1 + guard) times vanilla's. The guard is checked on the same point estimates the table shows, "
        "so a looser guard never gives a worse few-shot MAE; 'guard holds in CI' says whether it also holds "
        "at the upper end of the paired interval of the overall-MAE difference. Changes are against "
        "vanilla on the same repeats and test rows: years [95% interval] (percent)."
    ))
    t = res.tradeoff
    rows = []
    for _, r in t.iterrows():
        rec = {"guard": r["guard"], "model": r["model"], "de-biased": "yes" if r["debiased"] else "no"}
        for _, col in (("many", "mae_many"), ("medium", "mae_medium"), ("few", "mae_few"), ("all", "mae")):
            if col in t.columns and r.get(col) == r.get(col):
                rec[col] = _ci(r[col], r[f"{col}_lower"], r[f"{col}_upper"])
        rec["few-shot change"] = _fmt_row_change(r, "mae_few")
        rec["overall change"] = _fmt_row_change(r, "mae")
        rec["guard holds in CI"] = "yes" if r["guard_holds_ci"] else "no"
        rows.append(rec)
    sec.blocks.append(Table(pd.DataFrame(rows), "trade-off table (tradeoff.csv)"))
    sec.blocks.append(Table(pd.DataFrame({"model": list(dict.fromkeys(t["model"])),
                                          "description": [labels.get(m, "") for m in dict.fromkeys(t["model"])]}),
                            "chosen models"))
    if not res.tails.empty:
        sec.blocks.append(Paragraph(
            "Few-shot errors by tail: 'low' are few-shot test rows below the median training age of their "
            "repeat, 'high' at or above it. Bias is the signed mean error (prediction minus age): "
            "negative = under-predicted (typical for the old tail), positive = over-predicted."
        ))
        tt = res.tails
        show = pd.DataFrame({
            "model": tt["model"], "tail": tt["tail"], "rows": tt["n"],
            "MAE": [_ci(v, lo, hi) for v, lo, hi in zip(tt["mae"], tt["mae_lower"], tt["mae_upper"])],
            "bias": [_ci(v, lo, hi) for v, lo, hi in zip(tt["bias"], tt["bias_lower"], tt["bias_upper"])],
        })
        sec.blocks.append(Table(show, "per-tail few-shot errors (tails.csv; rows counted over repeats)", max_rows=100))
    if not res.refit_table.empty and res.refit_table["debias_strength"].notna().any():
        st = res.refit_table.dropna(subset=["debias_strength"]).groupby("model")["debias_strength"].agg(["mean", "min", "max"])
        sec.blocks.append(Table(st.reset_index().round(3), "de-biasing strength chosen on validation (over repeats and seeds)"))
    return sec


def _headline(res: ReportResult, exp: Experiment, labels: dict[str, str]) -> list:
    blocks: list = []
    tm, pr = res.test_metrics, res.paired
    if res.recommendation is not None and not tm.empty:
        m = res.recommendation
        get = tm[tm["metric"] == "mae"].set_index(["model", "region"])
        reg = "few" if (m, "few") in get.index else "all"
        txt = (f"Recommendation under the guard {res.guard} (test overall MAE against vanilla, "
               f"{describe(res.repeats, res.outer_folds)}): {m} ({labels.get(m, '')})")
        if (m, reg) in get.index:
            g = get.loc[(m, reg)]
            txt += f": test {reg}-shot MAE {_ci(g['value'], g['lower'], g['upper'])}"
        if (m, "all") in get.index:
            a = get.loc[(m, "all")]
            txt += f", overall MAE {_ci(a['value'], a['lower'], a['upper'])}"
        if m != REFERENCE_NAME and not pr.empty:
            for region, what in ((reg, f"{reg}-shot"), ("all", "overall")):
                row = pr[(pr["model"] == m) & (pr["metric"] == "mae") & (pr["region"] == region)]
                if not row.empty:
                    d = row.iloc[0]
                    txt += (f"; {what} change against vanilla {d['diff']:+.2f} years "
                            f"[{d['lower']:+.2f}, {d['upper']:+.2f}] ({d['verdict']})")
        elif m == REFERENCE_NAME:
            txt += "; no candidate beat vanilla's few-shot MAE within the guard"
        blocks.append(Paragraph(txt + "."))
    if tm.empty or "rank1" not in set(tm["model"]):
        best = res.ranked[res.ranked["comparable"]].head(1)
        if best.empty:
            blocks.append(Notice("No trial completed: there is no final score to recommend from."))
        else:
            blocks.append(Paragraph(
                f"Best completed trial {best['trial_id'].iloc[0]}: validation {exp.metric} "
                f"{best['score'].iloc[0]:.3f} (no refits were run, so no test numbers)."
            ))
        return blocks
    get = tm.set_index(["model", "metric", "region"])
    region = "few" if ("rank1", "mae", "few") in get.index else "all"
    r1 = get.loc[("rank1", "mae", region)]
    txt = (f"Rank-1 configuration ({labels.get('rank1', '')}): test {region}-shot MAE "
           f"{_ci(r1['value'], r1['lower'], r1['upper'])}")
    if ("rank1", "mae", "all") in get.index:
        a = get.loc[("rank1", "mae", "all")]
        txt += f", overall MAE {_ci(a['value'], a['lower'], a['upper'])}"
    if not pr.empty:
        row = pr[(pr["model"] == "rank1") & (pr["metric"] == "mae") & (pr["region"] == region)]
        if not row.empty:
            d = row.iloc[0]
            txt += (f". Against vanilla on the same test rows: {d['diff']:+.2f} years "
                    f"[{d['lower']:+.2f}, {d['upper']:+.2f}], {d['verdict']}")
    blocks.append(Paragraph(txt + "."))
    return blocks
