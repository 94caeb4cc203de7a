"""Shared helper for benchmark scripts: machine description and RESULTS.md section updates."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """# Benchmark results

Every figure here is printed by a script in this folder and written by it into its own section;
rerun a script to refresh its section. Each compares agesearch against a peer measured in the same
run (ratios and medians of repeated runs: these machines are shared and noisy).

| script | command |
|---|---|
| trainer overhead + memory | `python benchmarks/bench_trainer.py` |
| resampling (SMOGN vs `smogn`) | `python benchmarks/bench_resample.py` |
| orchestration efficiency | `python benchmarks/bench_orchestration.py` |
| pruning efficiency | `python benchmarks/bench_pruning.py` |
| whole-job peers | `python benchmarks/bench_peers.py` |
| report scale | `python benchmarks/bench_report.py` |

Install the benchmark extras first: `pip install -e '.[bench,datasets]'`.
"""


def machine() -> str:
    """One line describing the machine the figures come from."""
    try:
        import torch

        tv = torch.__version__
        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        tv, threads = "n/a", 0
    return (
        f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {tv} "
        f"({threads} threads), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def update_section(name: str, body: str) -> None:
    """Replace (or append) the section ``## name`` of RESULTS.md with ``body``."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    block = f"<!-- bench:{name} -->\n## {name}\n\n{body.strip()}\n<!-- /bench:{name} -->\n"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)
