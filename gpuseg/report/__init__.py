"""The run report: figures as PNG files and one self-contained, offline HTML page.

``write_report(result, folder)`` draws every figure (:mod:`.figures`) from a
:class:`~gpuseg.result.SegmentationResult`, writes them to
``folder/figures/*.png`` and embeds the same bytes in ``folder/report.html``
(:mod:`.page`), which needs no network, no other file and no script to show.

The page's module is imported on first use, so that the process drawing
figures beside the page (:mod:`.drawing`) imports only :mod:`.figures`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .page import REPORT_FILE, write_report

__all__ = ["REPORT_FILE", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import page

        return getattr(page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
