"""Self-contained ``index.html``: inline CSS, PNGs embedded as base64, every string escaped."""

from __future__ import annotations

import base64
from html import escape

from agesearch.report.document import Document, Image, Notice, Paragraph, Table, display_frame, format_cell

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.notice{background:#fff3cd;border:1px solid #e0c36b;padding:.6em 1em;margin:.6em 0}
caption{caption-side:top;text-align:left;font-style:italic;padding:2px}
nav a{margin-right:1em}img{max-width:100%}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _table(t: Table) -> str:
    shown, left = display_frame(t)
    head = "".join(f"<th>{_e(c)}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(format_cell(v))}</td>" for v in rec) + "</tr>"
        for rec in shown.itertuples(index=False, name=None)
    )
    cap = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    more = f"<p>{left} more row(s) in the CSV/Parquet files.</p>" if left else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def render_html(doc: Document) -> str:
    """The whole report as one HTML string."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(doc.title)}</h1>",
    ]
    parts += [f"<div class=\"notice\">{_e(n)}</div>" for n in doc.notices]
    parts.append("<nav>" + "".join(f"<a href=\"#{_e(s.anchor)}\">{_e(s.title)}</a>" for s in doc.sections) + "</nav>")
    for s in doc.sections:
        parts.append(f"<section id=\"{_e(s.anchor)}\"><h2>{_e(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Paragraph):
                parts.append(f"<p>{_e(b.text)}</p>")
            elif isinstance(b, Notice):
                parts.append(f"<div class=\"notice\">{_e(b.text)}</div>")
            elif isinstance(b, Table):
                parts.append(_table(b))
            elif isinstance(b, Image):
                data = base64.b64encode(b.png).decode("ascii")
                parts.append(f"<img alt=\"{_e(b.alt)}\" src=\"data:image/png;base64,{data}\">")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
