"""The pipeline report: one HTML page with PNG plots describing one run date.

``build.build_report`` reads what the three stages wrote (stage-1 ``report.json``,
sessions and clean events; the model artifact's ``metrics.json``; the
``user_interest_drift`` table), aggregates with Spark, plots on the driver and writes
``{report_dir}/run_date=D/index.html``. ``jobs/pipeline_report.py`` is the entry point.
"""
from .config import ReportConfig

__all__ = ["ReportConfig"]
