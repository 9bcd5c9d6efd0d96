"""Reports people look at: per-case figures (:mod:`~mama_monai.reports.case_figures`) and the
self-contained ``index.html`` pages of ``score``, ``evaluate`` and ``demo`` (:mod:`~mama_monai.reports.html`)."""

from mama_monai.reports.case_figures import slice_score_curve_png, slice_strip_png, strip_indices
from mama_monai.reports.html import write_demo_page, write_evaluate_page, write_score_page

__all__ = [
    "slice_score_curve_png",
    "slice_strip_png",
    "strip_indices",
    "write_demo_page",
    "write_evaluate_page",
    "write_score_page",
]
