"""The report: rank trials fairly, refit the best on the test split, compare with vanilla and baselines.

Entry point: :func:`build_report` (also ``agesearch report``).
"""

from agesearch.report.build import ReportResult, build_report
from agesearch.report.experiment import Experiment, ReportError, load_experiment

__all__ = ["Experiment", "ReportError", "ReportResult", "build_report", "load_experiment"]

# ``agesearch.report(...)`` calls :func:`build_report` (the package is callable; see agesearch._api).
from agesearch._api import make_callable  # noqa: E402

make_callable(__name__, "build_report")
