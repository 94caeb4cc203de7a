"""Renderers escape every user string; report without refits scales to 10,000 trials."""

from __future__ import annotations

import time

import pandas as pd

from agesearch.report import Experiment, build_report
from agesearch.report.document import Document, Image, Notice, Paragraph, Section, Table
from agesearch.report.html import render_html
from agesearch.report.markdown import render_markdown
from tests.report_fixtures import fake_trials

EVIL = "<script>alert(1)</script>"


def test_html_and_markdown_escape_user_strings():
    doc = Document(
        title=EVIL, notices=[EVIL],
        sections=[Section(EVIL, "a\"b", [Paragraph(EVIL), Notice(EVIL),
                                        Table(pd.DataFrame({"<script>": [EVIL], "x|y": [1.5]}), caption=EVIL),
                                        Image(b"\x89PNG", EVIL, "f.png")])],
    )
    html = render_html(doc)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html and 'id="a&quot;b"' in html
    md = render_markdown(doc)
    assert "<script" not in md and "&lt;script&gt;" in md and "x\\|y" in md


def test_report_without_refits_scales_to_10000_trials(tmp_path):
    trials = fake_trials(10_000, seed=0)
    trials = trials.rename(columns={"config/loss": "config/<script>"})
    exp = Experiment(meta={"name": "big", "status": "interrupted", "metric": "mae_few", "mode": "min",
                           "num_samples": 12000}, trials=trials)
    t0 = time.perf_counter()
    res = build_report(exp, tmp_path, refit_top=0, baselines=False, study_trials=200, progress=None)
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"report on 10,000 trials took {elapsed:.1f}s"  # ~5 s on an idle 2-core box
    html = (tmp_path / "index.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "interrupted" in html and "10000 of the 12000" in html
    assert pd.read_parquet(tmp_path / "trials.parquet").shape[0] == 10_000
    ranking = pd.read_csv(tmp_path / "ranking.csv")
    assert ranking["rank"].tolist() == list(range(1, 10_001))
    ref_in_top = bool(res.ranked.head(200)["is_reference"].any())
    assert res.study_trials == 200 + (not ref_in_top)  # the 200 best plus the vanilla reference
    for f in ("report.md", "strategies.csv", "families.csv", "importance.csv", "study.sqlite3"):
        assert (tmp_path / f).is_file()
    print(res.timings)
