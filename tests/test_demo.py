"""``agesearch demo --small`` end to end in a real process: profile, search, report."""

from __future__ import annotations

import pytest

from agesearch.cli import COMMAND_MODULES
from tests.test_cli import run_cli

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif("agesearch.commands.search" not in COMMAND_MODULES,
                       reason="the demo needs agesearch search, not on this branch yet"),
]


def test_demo_small_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--small", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = out / "report" / "index.html"
    assert index.is_file() and index.stat().st_size > 10_000
    assert f"Report: {index}" in proc.stdout
    for f in ("profile/age_histogram.png", "profile/profile.json", "experiments/demo/experiment.json",
              "report/ranking.csv", "report/model/model.safetensors"):
        assert (out / f).is_file(), f
    assert "[1/3]" in proc.stdout and "[3/3]" in proc.stdout
    again = run_cli("demo", "--small", "--out", str(out))
    assert again.returncode == 2 and "already holds a demo" in again.stderr
