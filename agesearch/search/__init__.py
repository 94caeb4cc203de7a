"""Distributed search: Ray Tune trials, Optuna sampling and pruning on few-shot MAE.

- :func:`search` runs or resumes a search (the Python API behind ``agesearch search``).
- :mod:`agesearch.search.space`: YAML search spaces -> validated space -> define-by-run function.
- :mod:`agesearch.search.pruning`: Tune schedulers asking Optuna pruners; truthful Optuna study.
- :func:`load_trials` reads an experiment folder.
"""

from agesearch.search.results import load_trials
from agesearch.search.space import SearchSpace, SpaceError, load_space


def search(**kwargs):
    """Run or resume a search; see :func:`agesearch.search.runner.search` for the arguments."""
    from agesearch.search.runner import search as _search

    return _search(**kwargs)


__all__ = ["search", "load_trials", "SearchSpace", "SpaceError", "load_space"]

# ``agesearch.search(...)`` calls :func:`search` (the package is callable; see agesearch._api).
from agesearch._api import make_callable  # noqa: E402

make_callable(__name__, "search")
