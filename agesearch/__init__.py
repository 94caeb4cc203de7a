"""agesearch: which imbalance strategy is best for MY age data? A distributed search over
FT-Transformer trials with Ray Tune and Optuna, and an honest report.

Python API (the same verbs as the ``agesearch`` command; nothing heavy is imported until used):

- ``agesearch.profile(data, target, out)`` -> :class:`agesearch.profile.ProfileResult`
- ``agesearch.search(data=..., name=..., storage=..., space="quick")`` -> ``SearchResult``
- ``agesearch.report(experiment_dir, out)`` -> :class:`agesearch.report.ReportResult`
- ``agesearch.load_model(model_dir).predict(df)`` -> DataFrame of predicted ages
- ``agesearch.demo(out)``: profile + quick search + report on the built-in synthetic data
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_VERB_MODULES = ("profile", "search", "report")
"""Verbs that are also module names: each module is callable (see :mod:`agesearch._api`)."""

__all__ = ["demo", "load_model", "profile", "report", "search", "__version__"]


def __getattr__(name: str):  # lazy: importing agesearch must not import torch or ray
    if name == "load_model":
        from agesearch.export import load_model

        return load_model
    if name == "demo":
        from agesearch.demo import demo

        return demo
    if name in _VERB_MODULES:
        try:
            return importlib.import_module(f"agesearch.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"agesearch.{name}":
                raise AttributeError(f"agesearch.{name} is not available in this installation") from None
            raise
    raise AttributeError(f"module 'agesearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
