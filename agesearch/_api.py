"""Callable modules: ``agesearch.profile(...)``, ``agesearch.search(...)``, ``agesearch.report(...)``.

The API verbs share their names with the modules that implement them (``agesearch.report`` is
also the report package). :func:`make_callable` turns such a module into a :class:`CallableModule`
whose call runs its main function, so both ``agesearch.report(exp, out)`` and
``from agesearch.report import build_report`` work. This module imports nothing heavy.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call runs the function named by its ``__api_function__`` attribute."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__dict__["__api_function__"])(*args, **kwargs)


def make_callable(module_name: str, function: str) -> None:
    """Make the (already imported) module ``module_name`` callable as ``function``.

    Args:
        module_name: the module's ``__name__`` (call this at the end of the module).
        function: name of the module attribute the call runs (looked up at call time, so lazy
            wrappers work).
    """
    mod = sys.modules[module_name]
    mod.__api_function__ = function  # type: ignore[attr-defined]
    mod.__class__ = CallableModule
