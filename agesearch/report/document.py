"""A tiny document model shared by the HTML and Markdown renderers.

The builder assembles :class:`Section` objects made of blocks (paragraph, table, image, notice);
renderers escape every string they are given, so user-supplied text (column names, configuration
values, reasons) can never inject markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import pandas as pd


@dataclass
class Paragraph:
    text: str


@dataclass
class Notice:
    """A highlighted warning (partial search, failed refits...)."""

    text: str


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""
    max_rows: int = 50


@dataclass
class Image:
    png: bytes
    alt: str
    filename: str


Block = Union[Paragraph, Notice, Table, Image]


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    notices: list[str]
    sections: list[Section]


def format_cell(v: object) -> str:
    """Numbers to 3 significant decimals, missing values as '-', everything else as str."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) >= 1000 or (v != 0 and abs(v) < 0.001) else f"{v:.3f}"
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return format_cell(v.item())  # numpy scalar
        except (AttributeError, ValueError):
            pass
    return str(v)


def display_frame(t: Table) -> tuple[pd.DataFrame, int]:
    """The rows shown (at most ``max_rows``) and the number left out."""
    f = t.frame
    left = max(0, len(f) - t.max_rows)
    return f.head(t.max_rows), left
