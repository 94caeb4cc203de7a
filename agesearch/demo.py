"""``agesearch demo``: the whole job on the built-in ``synthetic`` data in a few minutes on 2 CPUs.

Three steps, each through the public Python API, into one output folder:

1. :func:`agesearch.profile.profile` -> ``OUT/profile/`` (histogram with shot regions, warnings);
2. a quick search (``search_spaces/quick.yaml``) -> ``OUT/experiments/demo/``;
3. :func:`agesearch.report.build_report` with refits on the test split -> ``OUT/report/index.html``.

``small=True`` shrinks everything (1,200 rows, 3 trials of 2 epochs, one refit seed, no
baselines) so the demo finishes in about a minute; it is what the tests run.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from agesearch.data import DataError

DEMO_NAME = "demo"
"""Experiment name inside ``OUT/experiments``."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. :data:`FULL` is the default; :data:`SMALL` is ``--small``."""

    rows: int | None  # None: the whole built-in synthetic table
    num_samples: int
    time_budget: float
    refit_top: int
    seeds: int
    n_boot: int
    baselines: bool = True
    fixed: dict = field(default_factory=dict)  # overrides of the quick space's fixed settings

    def __post_init__(self) -> None:
        if self.rows is not None and self.rows < 200:
            raise ValueError(f"rows must be >= 200 (or None for the whole table), got {self.rows}")
        if self.num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 (the vanilla reference plus one), got {self.num_samples}")


FULL = DemoSettings(rows=None, num_samples=12, time_budget=300.0, refit_top=2, seeds=2, n_boot=1000)
SMALL = DemoSettings(rows=1200, num_samples=3, time_budget=120.0, refit_top=1, seeds=1, n_boot=200,
                     baselines=False, fixed={"d_block": 16, "max_epochs": 2, "patience": 2})


@dataclass
class DemoResult:
    """Where the demo wrote things."""

    out: Path
    profile_dir: Path
    experiment: Path
    report: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        """The report's HTML page."""
        return self.report / "index.html"


@contextmanager
def private_ray(num_cpus: int) -> Iterator[bool]:
    """A new local Ray instance on 127.0.0.1 for the demo's search and refits (shut down after).

    ``address="local"`` never attaches to another Ray found on the machine (``ray start`` by
    someone else, a stale ``/tmp/ray/ray_current_cluster``). Uses the running instance if this
    process already initialised Ray. Yields whether it started Ray.
    """
    import ray

    if ray.is_initialized():
        yield False
        return
    env = {k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=num_cpus, include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR, runtime_env={"env_vars": env})  # fmt: skip
    try:
        yield True
    finally:
        ray.shutdown()


def _say(msg: str) -> None:
    print(msg, flush=True)


def demo(
    out: str | os.PathLike[str] = "agesearch-demo",
    *,
    small: bool = False,
    seed: int = 0,
    num_cpus: int = 2,
    progress: bool = True,
    say: Callable[[str], None] = _say,
) -> DemoResult:
    """Profile, search and report on the built-in synthetic data; returns the paths written.

    Args:
        out: output folder (created); it must not hold an earlier demo.
        small: tiny settings (:data:`SMALL`) for a one-minute run.
        seed: split, sampler and training seed.
        num_cpus: CPUs of the demo's private local Ray instance (one trial per CPU).
        progress: print the search's progress lines and the refit progress.
        say: where step messages go (default: print).

    Raises:
        DataError: ``out`` is a file or already holds a demo experiment.
    """
    settings = SMALL if small else FULL
    if int(num_cpus) != num_cpus or num_cpus < 1:
        raise DataError(f"num_cpus must be a whole number >= 1, got {num_cpus!r}; e.g. --num-cpus 2")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {str(out)!r} is a file; give a folder")
    exp_dir = out / "experiments" / DEMO_NAME
    if exp_dir.exists():
        raise DataError(f"{str(out)!r} already holds a demo; remove it or choose another --out")

    from agesearch.datasets import synthetic
    from agesearch.profile import profile
    from agesearch.report import build_report
    from agesearch.search import search
    from agesearch.search.space import load_space, resolve_space_path

    out.mkdir(parents=True, exist_ok=True)
    data = "builtin:synthetic" if settings.rows is None else synthetic(settings.rows, seed=seed).drop(columns=["id"])
    space = load_space(resolve_space_path("quick"))
    if settings.fixed:
        space.fixed.update(settings.fixed)
        space.validate()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    say(f"[1/3] profiling the built-in synthetic data -> {out / 'profile'}")
    prof = profile(data, "age", out / "profile", seed=seed, region_spec=space.region_spec(), bin_width=space.bin_width)
    say(prof.summary())
    timings["profile"] = time.perf_counter() - t

    with private_ray(int(num_cpus)):  # one private Ray for the search and the refits
        t = time.perf_counter()
        say(f"[2/3] quick search: {settings.num_samples} trials of space 'quick' (vanilla reference first) "
            f"-> {exp_dir}")
        res = search(data=data, target="age", space=space, name=DEMO_NAME, storage=str(out / "experiments"),
                     num_samples=settings.num_samples, time_budget=settings.time_budget, seed=seed,
                     progress=progress)  # fmt: skip
        timings["search"] = time.perf_counter() - t

        t = time.perf_counter()
        say(f"[3/3] report: refitting the best {settings.refit_top} configuration(s) and vanilla "
            f"({settings.seeds} seed(s) each) on the held-out test split -> {out / 'report'}")
        build_report(res.experiment, out / "report", refit_top=settings.refit_top, seeds=settings.seeds,
                     n_boot=settings.n_boot, baselines=settings.baselines, seed=seed, **({} if progress else {"progress": None}))  # fmt: skip
        timings["report"] = time.perf_counter() - t
    return DemoResult(out=out, profile_dir=out / "profile", experiment=Path(res.experiment),
                      report=out / "report", timings=timings)  # fmt: skip
