"""Small HTML builders of the report: sections, tables, lists and number formats, all escaping."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape


def section(title: str, body: str) -> str:
    """A ``<section>`` with its ``<h2>`` title."""
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, escaped: bool = False,
          text_columns: Sequence[int] = (0,)) -> str:
    """A table with numbers right-aligned and ``text_columns`` left-aligned.

    Cells are escaped here unless the caller built (and escaped) them as HTML.
    """
    cell = (lambda text: str(text)) if escaped else (lambda text: escape(str(text)))

    def align(i: int) -> str:
        return ' class="text"' if i in text_columns else ""

    head = "".join(f"<th{align(i)}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{align(i)}>{cell(c)}</td>" for i, c in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bullets(items: Iterable[str]) -> str:
    """An unordered list of escaped items."""
    return "<ul>" + "".join(f"<li>{escape(str(item))}</li>" for item in items) + "</ul>"


def number(value: float | None) -> str:
    """Three decimals, or ``n/a`` for a missing or non-finite value."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def percent(value: float | None) -> str:
    """A percentage to one decimal, or ``n/a``."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1%}"
