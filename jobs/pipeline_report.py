"""spark-submit entry point: the HTML pipeline report (PNG plots) of one run date.

    spark-submit jobs/pipeline_report.py --config conf/report_demo.json --run-date 2026-11-28 \
        [--set report_dir=/srv/reports --set allow_missing=false]

Reads stage-1 report.json, sessions and clean events, the model artifact's metrics.json
and the user_interest_drift table; writes {report_dir}/run_date=D/index.html and logs
its path. Exit codes: 0 ok, 1 runtime failure, 2 configuration error.
"""
import datetime as dt
import logging
import sys
import time

from interest_tracker.cli import run_job
from interest_tracker.report.config import ReportConfig

log = logging.getLogger("pipeline_report")


def main(cfg: ReportConfig, run_date: dt.date) -> None:
    from interest_tracker.report.build import build_report
    from interest_tracker.spark import get_session

    start = time.perf_counter()
    spark = get_session("interest-tracker-report")
    page = build_report(spark, cfg, run_date)
    log.info("report for %s written in %.0f s: %s", run_date, time.perf_counter() - start, page)


if __name__ == "__main__":
    sys.exit(run_job("Write the HTML pipeline report of one run date.", ReportConfig, main))
