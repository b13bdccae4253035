"""The one spelling of a run's directory: ``run_date=YYYY-MM-DD``.

Every run-dated output (stage 1's tables, sequences and reports, the warehouse tables,
their run manifests, the report pages) is named by this key, Hive-style, so Spark,
Trino and DuckDB read ``run_date`` back as a column from the directory name. It lives
here, apart from the Spark-side modules, so pure-Python readers (benchmarks, the demo
summary, DuckDB consumers) can name a partition without importing pyspark.
"""
from __future__ import annotations

import datetime as dt

from . import fs

KEY = "run_date"


def run_partition(run_date: dt.date) -> str:
    """``run_date=YYYY-MM-DD``: the directory (or manifest) name of one run."""
    return f"{KEY}={run_date.isoformat()}"


def parse_run_partition(name: str) -> dt.date | None:
    """The date of a ``run_date=YYYY-MM-DD`` directory name; None for any other name."""
    prefix = f"{KEY}="
    if not name.startswith(prefix):
        return None
    try:
        return dt.date.fromisoformat(name[len(prefix):])
    except ValueError:
        return None


def partition_url(table_url: str, run_date: dt.date) -> str:
    """``{table_url}/run_date=D`` (a path stays a path, a URL stays a URL)."""
    return fs.join(str(table_url), run_partition(run_date))
