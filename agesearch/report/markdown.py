"""``report.md``: the same document as Markdown (images referenced as PNG files next to it)."""

from __future__ import annotations

import re

from agesearch.report.document import Document, Image, Notice, Paragraph, Table, display_frame, format_cell

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|])")


def md_escape(text: object) -> str:
    """Escape Markdown specials with backslashes and HTML specials as entities; flatten newlines."""
    t = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", t).replace("\n", " ")


def _table(t: Table) -> str:
    shown, left = display_frame(t)
    lines = []
    if t.caption:
        lines.append(f"*{md_escape(t.caption)}*\n")
    lines.append("| " + " | ".join(md_escape(c) for c in shown.columns) + " |")
    lines.append("|" + "---|" * len(shown.columns))
    for rec in shown.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(md_escape(format_cell(v)) for v in rec) + " |")
    if left:
        lines.append(f"\n{left} more row(s) in the CSV/Parquet files.")
    return "\n".join(lines)


def render_markdown(doc: Document) -> str:
    out = [f"# {md_escape(doc.title)}", ""]
    out += [f"> **Note:** {md_escape(n)}\n" for n in doc.notices]
    for s in doc.sections:
        out += [f"## {md_escape(s.title)}", ""]
        for b in s.blocks:
            if isinstance(b, Paragraph):
                out += [md_escape(b.text), ""]
            elif isinstance(b, Notice):
                out += [f"> **Note:** {md_escape(b.text)}", ""]
            elif isinstance(b, Table):
                out += [_table(b), ""]
            elif isinstance(b, Image):
                out += [f"![{md_escape(b.alt)}](figures/{b.filename})", ""]
    return "\n".join(out)
