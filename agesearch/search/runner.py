"""``search(...)``: the experiment folder, Ray, the Tuner (OptunaSearch + pruning scheduler), resume.

Flow: validate the arguments and the space (before anything expensive) -> load and prepare the
data once (the full split is saved to ``DIR/NAME/data``; trials get ``data.without("test")``
through the object store) -> start or attach to Ray -> ``Tuner`` with
:class:`~agesearch.search.pruning.PruningOptunaSearch`, the pruning scheduler, per-trial resources,
``reuse_actors=True`` -> progress lines -> top configurations. ``resume=True`` continues an
interrupted experiment with ``Tuner.restore(..., resume_errored=True)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from agesearch.objective import Objective
from agesearch.search.space import SearchSpace, SpaceError, load_space, resolve_space_path
from agesearch.search.storage import Location

log = logging.getLogger(__name__)

VERSION = 1
TUNE_NAME = "tune"


@dataclass
class SearchResult:
    """What :func:`search` returns: the experiment folder and its trials table."""

    experiment: str
    status: str
    trials: Any  # pandas DataFrame from load_trials
    history: Any
    study: Any = None  # the searcher's optuna.Study (in this process)

    def top(self, k: int = 5):
        """The ``k`` best COMPLETE trials by score."""
        t = self.trials
        done = t[t["status"] == "COMPLETE"]
        exp = json.loads(Location(self.experiment).read_text("experiment.json"))
        return done.sort_values("score", ascending=exp["mode"] == "min").head(k)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_args(num_samples: int, cpus_per_trial: float, gpus_per_trial: float,
                max_concurrent: int | None, time_budget: float | None, max_failures: int,
                name: str) -> None:  # fmt: skip
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"--num-samples must be a positive integer, got {num_samples}")
    if not cpus_per_trial > 0:
        raise ValueError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    if not (gpus_per_trial >= 0 and math.isfinite(gpus_per_trial)):
        raise ValueError(f"--gpus-per-trial must be >= 0 (fractions such as 0.25 pack trials), got {gpus_per_trial}")
    if gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
        raise ValueError(f"--gpus-per-trial above 1 must be a whole number, got {gpus_per_trial}")
    if max_concurrent is not None and max_concurrent < 1:
        raise ValueError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"--time-budget must be > 0 seconds, got {time_budget}")
    if max_failures < 0:
        raise ValueError(f"--max-failures must be >= 0, got {max_failures}")
    from agesearch.paths import safe_name

    safe_name(name, "--name")  # one folder inside --storage: no '/', '..' or leading dot


MIN_FREE_MB = 200
"""Free space (MB) a local storage folder must have at the start (``AGESEARCH_MIN_FREE_MB``)."""


class SearchInterrupted(KeyboardInterrupt):
    """The search was stopped by SIGINT (Ctrl-C); its state is saved and ``--resume`` continues it."""


def check_storage_writable(location: Location, min_free_mb: float | None = None) -> None:
    """Refuse a storage folder that cannot be created or written, or that is (nearly) full.

    Local folders only (a URI is checked by the filesystem when the experiment is created). Writes
    and removes a probe file, then checks ``shutil.disk_usage`` against ``min_free_mb``
    (default :data:`MIN_FREE_MB`, or the ``AGESEARCH_MIN_FREE_MB`` environment variable).

    Raises:
        ValueError: one line naming the folder, the problem and the fix.
    """
    if not location.local:
        return
    import errno
    import shutil

    if min_free_mb is None:
        min_free_mb = float(os.environ.get("AGESEARCH_MIN_FREE_MB", MIN_FREE_MB))
    folder = location.path
    probe = folder / f".agesearch-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ValueError(
                f"storage {location.text!r} is full ({exc.strerror}); free some space or choose another --storage"
            ) from None
        raise ValueError(
            f"storage {location.text!r} is not writable ({exc.strerror or type(exc).__name__}); "
            "choose a folder you can write with --storage, or fix its permissions"
        ) from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < min_free_mb:
        raise ValueError(
            f"storage {location.text!r} has only {free_mb:.0f} MB free (at least {min_free_mb:.0f} MB needed "
            "for data, checkpoints and Ray's experiment state); free some space or choose another --storage"
        )


def check_region(data, metric: str) -> None:  # noqa: ANN001
    """Fail when the validation split has no row in the region the metric is about."""
    parts = metric.split("_", 1)
    if len(parts) == 1:
        return
    region = parts[1]
    n = int((data.region_of("val") == region).sum())
    if n == 0:
        raise ValueError(
            f"the validation split has no {region}-shot row, so metric {metric!r} cannot be computed; "
            f"optimise another metric (e.g. metric: mae) or widen the regions (data.regions in the space, e.g. mode: tertile)"
        )


def check_storage_visible(location: Location, nodes: Sequence[dict[str, Any]], driver_ip: str,
                          shared_storage: bool) -> None:  # fmt: skip
    """Refuse a local storage folder when the cluster has nodes on other hosts.

    Args:
        nodes: ``ray.nodes()`` entries (``Alive``, ``NodeManagerAddress``).
        driver_ip: the driver's node address.
        shared_storage: the user says the folder is on a filesystem every node mounts.
    """
    if not location.local or shared_storage:
        return
    others = sorted({n.get("NodeManagerAddress") for n in nodes if n.get("Alive", True)} - {driver_ip})
    if others:
        raise ValueError(
            f"storage {location.text!r} is a local folder but the cluster has nodes on other hosts "
            f"({', '.join(map(str, others))}) that cannot see it; use a URI such as s3://bucket/agesearch "
            "or gs://..., or a path on a filesystem every node mounts together with --shared-storage"
        )


def _quiet_ray_env() -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore", module="ray")
    warnings.filterwarnings("ignore", category=UserWarning, module="optuna")


def _start_ray(address: str | None, *, quiet: bool) -> bool:
    """Attach to ``address`` (or a running instance); else start a local one on 127.0.0.1.

    Returns True when this call started Ray (so the caller shuts it down).
    """
    import ray

    if ray.is_initialized():
        return False
    from agesearch.search.trainable import env_for_workers

    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=not quiet, logging_level=logging.ERROR if quiet else logging.INFO,
        runtime_env={"env_vars": env_for_workers()},
    )  # fmt: skip
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", _node_ip_address="127.0.0.1", **kwargs)  # never another user's cluster
    return True


def _load_data(data_source: Any, target: str, ignore: Sequence[str], space: SearchSpace, seed: int):
    from agesearch.data import load_table, prepare

    table = load_table(data_source, target, ignore=list(ignore))
    fr = space.data.get("fractions")
    kwargs: dict[str, Any] = {}
    if fr:
        kwargs["fractions"] = tuple(float(x) for x in fr)
    return prepare(table, seed=seed, bin_width=space.bin_width, region_spec=space.region_spec(), **kwargs)


def search(
    *,
    data: Any = None,
    target: str = "age",
    space: str | os.PathLike[str] | SearchSpace = "quick",
    name: str,
    storage: str | os.PathLike[str] = "experiments",
    num_samples: int = 20,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    resume: bool = False,
    max_failures: int = 1,
    ignore: Sequence[str] = (),
    shared_storage: bool = False,
    pruner: str | None = None,
    guard: str | None = None,
    progress: bool = True,
    quiet_ray: bool = True,
    _fault: dict[str, Any] | None = None,
) -> SearchResult:
    """Run (or resume) a search; returns the experiment folder and its trials.

    Keyword arguments mirror ``agesearch search`` flags: ``data`` (path, ``builtin:NAME`` or a
    DataFrame), ``target``, ``space`` (YAML path, shipped name or :class:`SearchSpace`), ``name``
    and ``storage`` (experiment folder ``storage/name``; local folder or pyarrow URI),
    ``num_samples``, ``address`` (``auto``, ``HOST:PORT``, ``ray://...``; default: a local Ray on
    127.0.0.1), ``cpus_per_trial``, ``gpus_per_trial`` (fractions pack trials on one GPU),
    ``max_concurrent``, ``time_budget`` (seconds), ``seed``, ``resume``, ``max_failures`` (retries
    resume from the trial's latest checkpoint), ``shared_storage`` (a local path every node
    mounts), ``pruner`` (override the space's pruner name), ``guard`` (``REGION:EPS`` such as
    ``overall:0.05``, or ``none``; overrides the space's ``guard``).
    """
    _check_args(num_samples, cpus_per_trial, gpus_per_trial, max_concurrent, time_budget, max_failures, name)
    if quiet_ray:
        _quiet_ray_env()
    root = Location(storage)
    exp = root.child(name)
    check_storage_writable(root)  # before any expensive work
    if resume:
        if not exp.exists("experiment.json"):
            raise FileNotFoundError(
                f"no experiment {name!r} in {root.text!r} to resume; run without --resume to start it"
            )
        meta = json.loads(exp.read_text("experiment.json"))
        sp = SearchSpace.from_dict(yaml.safe_load(exp.read_text("space.yaml")), source=f"{exp.text}/space.yaml").validate()
        from agesearch.data import PreparedData

        local_exp = exp.local_copy() if not exp.local else exp.path
        prepared = PreparedData.load(local_exp / "data")
        num_samples = int(meta["num_samples"])
        seed = int(meta["seed"])
    else:
        if exp.exists("experiment.json"):
            raise ValueError(
                f"experiment {name!r} already exists in {root.text!r}; pass --resume to continue it or choose another --name"
            )
        if data is None:
            raise ValueError("--data is required for a new search; give a CSV/Parquet file or builtin:synthetic")
        if isinstance(space, SearchSpace):
            sp = space.validate()
            space_text = yaml.safe_dump(sp.to_dict(), sort_keys=False)
            space_file = sp.source
        else:
            path = resolve_space_path(space)
            sp = load_space(path)
            space_text = path.read_text()
            space_file = str(path)
        if pruner is not None:
            sp.pruner = {"name": pruner}
            sp.validate()
            space_text = yaml.safe_dump(sp.to_dict(), sort_keys=False)
        if guard is not None:
            sp.guard = None if str(guard).strip().lower() in ("none", "off", "") else str(guard)
            sp.validate()
            space_text = yaml.safe_dump(sp.to_dict(), sort_keys=False)
        prepared = _load_data(data, target, ignore, sp, seed)
        check_region(prepared, sp.metric)
        guard_meta = _reference_guard(sp, prepared, seed, cpus_per_trial, progress)
        exp.mkdir()
        exp.write_text("space.yaml", space_text)
        with tempfile.TemporaryDirectory() as tmp:
            prepared.save(Path(tmp) / "data")
            exp.upload_dir(Path(tmp) / "data", "data")
        meta = {
            "name": name, "created": _now(), "status": "running",
            "data": {"source": prepared.source, "target": target, "ignore": list(ignore)},
            "seed": seed, "metric": sp.metric, "mode": sp.mode, "guard": guard_meta,
            "space_file": space_file, "num_samples": int(num_samples),
            "scheduler": sp.pruner["name"], "version": VERSION,
            "link": f"{name}-{uuid.uuid4().hex[:12]}",
            "resources": {"cpus_per_trial": cpus_per_trial, "gpus_per_trial": gpus_per_trial},
        }  # fmt: skip
        exp.write_text("experiment.json", json.dumps(meta, indent=2))

    started = _start_ray(address, quiet=quiet_ray)
    try:
        import ray

        if address or not started:
            driver_ip = ray.util.get_node_ip_address()
            check_storage_visible(exp, ray.nodes(), driver_ip, shared_storage)
        result = _run_tuner(sp, prepared, exp, meta, num_samples=num_samples, resume=resume,
                            cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                            max_concurrent=max_concurrent, time_budget=time_budget,
                            max_failures=max_failures, seed=seed, progress=progress, fault=_fault)  # fmt: skip
    except KeyboardInterrupt:
        if exp.exists("experiment.json"):
            _set_status(exp, "interrupted")
        raise
    finally:
        if started:
            import ray

            ray.shutdown()
    return result


def _reference_guard(sp: SearchSpace, prepared, seed: int, cpus: float, progress: bool):  # noqa: ANN001
    """With a guard, train the vanilla reference once before the search to fix the bound.

    Returns the ``guard`` block of experiment.json (None without a guard): the guard text, the
    bounded metric, epsilon, the reference's value and its validation metrics. The same
    configuration runs again as trial 0 inside the search (same seed), so it is also in the table.
    """
    if not sp.guard:
        return None
    from agesearch.objective import parse_guard
    from agesearch.trainer import Trial

    metric, eps = parse_guard(sp.guard)
    if progress:
        print(f"training the vanilla reference to set the guard {sp.guard} ...", flush=True)
    ref = Trial({**sp.reference_config(), "seed": seed}, prepared.without("test"), threads=max(1, int(cpus)))
    ref.fit()
    best = ref.history[ref.best_epoch - 1]
    value = float(best[metric])
    if progress:
        print(f"reference validation {metric} = {value:.3f}: trials must stay <= {(1 + eps) * value:.3f}", flush=True)
    return {
        "text": sp.guard, "metric": metric, "eps": eps, "reference": value,
        "reference_metrics": {k: float(v) for k, v in best.items() if isinstance(v, (int, float))},
    }  # fmt: skip


def _set_status(exp: Location, status: str) -> None:
    try:
        meta = json.loads(exp.read_text("experiment.json"))
        meta["status"] = status
        meta["updated"] = _now()
        exp.write_text("experiment.json", json.dumps(meta, indent=2))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not update experiment status: %s", exc)


def _run_tuner(sp: SearchSpace, prepared, exp: Location, meta: dict[str, Any], *, num_samples: int,  # noqa: ANN001
               resume: bool, cpus_per_trial: float, gpus_per_trial: float,
               max_concurrent: int | None, time_budget: float | None, max_failures: int,
               seed: int, progress: bool, fault: dict[str, Any] | None) -> SearchResult:  # fmt: skip
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

    from agesearch.search.progress import ProgressPrinter, TrialRecorder
    from agesearch.search.pruning import SIGNAL_KEY, PruningOptunaSearch, build_scheduler
    from agesearch.search.results import load_trials
    from agesearch.search.trainable import run_trial, trial_settings

    link = meta["link"]
    trainable = tune.with_parameters(
        run_trial,
        data=prepared.without("test"),
        settings=trial_settings(
            sp.metric, cpus_per_trial, fault,
            objective=Objective.from_experiment(meta).to_dict() if meta.get("guard") else None,
        ),  # fmt: skip
    )
    resources = {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    trainable = tune.with_resources(trainable, resources)
    tune_path = exp.child(TUNE_NAME)
    if resume and tune_path.exists("tuner.pkl"):
        try:  # Ray's experiment state is pickled: see RELIABILITY.md (trusted storage only)
            tuner = Tuner.restore(tune_path.text, trainable=trainable, resume_errored=True)
        except Exception as exc:  # noqa: BLE001
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(
                f"cannot resume {exp.text!r}: Ray's experiment state in {tune_path.text!r} is unreadable "
                f"({type(exc).__name__}: {first}); start a new search with another --name"
            ) from None
    else:
        max_epochs = int(sp.base_config().get("max_epochs", 60))
        searcher = PruningOptunaSearch(
            sp.define_by_run(), link=link, metric=SIGNAL_KEY, mode=sp.mode, seed=seed,
            n_startup_trials=max(2, min(10, num_samples // 4)),
        )  # fmt: skip
        scheduler = build_scheduler(sp.pruner, link=link, mode=sp.mode, max_epochs=max_epochs)
        callbacks = [TrialRecorder(exp.text, link, sp.pruner["name"])]
        if progress:
            callbacks.append(ProgressPrinter(sp.metric, sp.mode, num_samples, link))
        tuner = Tuner(
            trainable,
            tune_config=TuneConfig(
                search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
                max_concurrent_trials=max_concurrent, time_budget_s=time_budget,
                reuse_actors=True, metric=SIGNAL_KEY, mode=sp.mode,
            ),
            run_config=RunConfig(
                name=TUNE_NAME, storage_path=exp.text, verbose=0, callbacks=callbacks,
                failure_config=FailureConfig(max_failures=max_failures),
                checkpoint_config=CheckpointConfig(
                    num_to_keep=1, checkpoint_score_attribute="ckpt_rank", checkpoint_score_order="min",
                ),
                log_to_file=False,
            ),
        )  # fmt: skip
    with _SigintWatch() as watch:
        grid = tuner.fit()
    _drop_orphans(exp, grid)
    if watch.fired or _was_interrupted(grid, num_samples, time_budget):
        # Tune caught the first SIGINT: it stopped launching trials, saved the experiment state and
        # the running trials' latest checkpoints, and returned. Record it and exit like Ctrl-C.
        _set_status(exp, "interrupted")
        raise SearchInterrupted(
            f"search interrupted; state saved in {exp.text}; continue with --resume --name {meta['name']}"
        )
    _set_status(exp, "finished")
    trials, history = load_trials(exp.text)
    from agesearch.search.pruning import linked_searcher

    searcher = linked_searcher(link)
    return SearchResult(experiment=exp.text, status="finished", trials=trials, history=history,
                        study=searcher.study if searcher else None)  # fmt: skip


def _second_interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt("interrupted twice: stopped without saving the final state")


class _SigintWatch:
    """Tell whether Ray Tune's graceful SIGINT handler fired during ``Tuner.fit``.

    Tune installs its handler at the start of ``fit`` over the current one and, on the first
    SIGINT (or SIGUSR1), stops launching trials, saves the experiment state, then puts the previous
    handler back; it never restores it otherwise. So: install a sentinel before ``fit``; finding it
    installed afterwards means the signal came. A second Ctrl-C hits the sentinel: KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.fired = False
        self._previous = None
        self._active = False

    def __enter__(self) -> "_SigintWatch":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, _second_interrupt)
            self._active = True
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        import signal

        if not self._active:
            return
        self.fired = signal.getsignal(signal.SIGINT) is _second_interrupt
        signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)


def _was_interrupted(grid, num_samples: int, time_budget: float | None) -> bool:  # noqa: ANN001
    """Whether ``Tuner.fit`` returned because of SIGINT (unfinished trials, or fewer than asked)."""
    try:
        trials = grid._experiment_analysis.trials
    except AttributeError:  # pragma: no cover - Ray internals moved
        return False
    if any(t.status not in ("TERMINATED", "ERROR") for t in trials):
        return True
    return time_budget is None and len(trials) < num_samples


def _drop_orphans(exp: Location, grid) -> None:  # noqa: ANN001
    """Move records of trials the (restored) experiment does not know to ``trials/orphaned/``.

    A driver killed between a trial's start and the next experiment snapshot leaves a record for a
    trial that ``Tuner.restore`` never sees; it is not part of the experiment.
    """
    if not exp.local:
        return
    try:
        known = {t.trial_id for t in grid._experiment_analysis.trials}
    except AttributeError:  # pragma: no cover - Ray internals moved
        return
    folder = exp.path / "trials"
    for f in folder.glob("*.json"):
        if f.stem not in known:
            (folder / "orphaned").mkdir(exist_ok=True)
            os.replace(f, folder / "orphaned" / f.name)


def format_top(result: SearchResult, k: int = 5) -> str:
    """The top configurations as text (for the command's final output)."""
    top = result.top(k)
    if not len(top):
        return "no trial completed"
    exp = json.loads(Location(result.experiment).read_text("experiment.json"))
    ref = result.trials[result.trials["is_reference"]]
    lines = [f"top {len(top)} configurations by validation {exp['metric']}:"]
    if len(ref):
        r = ref.iloc[0]
        lines.append(f"  reference (vanilla): {exp['metric']}={r['score']:.3f}  mae={r.get('val/mae', float('nan')):.3f}")
    for _, row in top.iterrows():
        cfg = {k[len('config/'):]: v for k, v in row.items() if str(k).startswith("config/")}
        shown = {k: cfg[k] for k in ("strategy", "head", "loss", "lr") if k in cfg and cfg[k] == cfg[k]}
        lines.append(
            f"  #{int(row['number'])}: {exp['metric']}={row['score']:.3f}  mae={row.get('val/mae', float('nan')):.3f}  "
            f"epochs={int(row['epochs'])}  " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        )
    return "\n".join(lines)


__all__ = ["search", "SearchResult", "SearchInterrupted", "check_storage_visible", "check_storage_writable",
           "check_region", "format_top", "SpaceError"]
