"""Living review: the offline HTML report of the knowledge base."""

from mscatlas.report.build import build_report, report_context

__all__ = ["build_report", "report_context"]
