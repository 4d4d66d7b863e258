"""The run report: figures as PNG files and one self-contained, offline HTML page.

``write_report(result, folder)`` draws every figure (:mod:`.figures`) from a
:class:`~gpuseg.result.SegmentationResult`, writes them to
``folder/figures/*.png`` and embeds the same bytes in ``folder/report.html``
(:mod:`.page`), which needs no network, no other file and no script to show.
"""
from __future__ import annotations

from .page import REPORT_FILE, write_report

__all__ = ["REPORT_FILE", "write_report"]
