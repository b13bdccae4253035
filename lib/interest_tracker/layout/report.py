"""The pipeline report's pages: one directory per run date under ``report_dir``.

```
{report_dir}/run_date=D/index.html      the page (PNG plots beside it)
{report_dir}/run_date=D/summary.json    the figures the page shows, for machines
```

The report job's driver writes them with local file APIs, so ``report_dir`` is a local
path or a ``file://`` URL (ReportConfig checks that before Spark starts). A page is built
in a hidden staging directory beside its final place and renamed in (``publish``): a
reader (a browser, the demo summary) sees the previous page or the new one, never half of
one. The demo summary and the tests find the page through ``page``, not by spelling the
path.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from . import fs
from .partition import run_partition

log = logging.getLogger(__name__)

PAGE_FILE = "index.html"
SUMMARY_FILE = "summary.json"


class ReportPages:
    """Where the report of each run date lives, and its staged publish."""

    def __init__(self, report_dir: str):
        path = fs.local_path(str(report_dir))
        if path is None:
            raise ValueError(f"report_dir {report_dir!r} must be a local path or file:// URL (the driver writes it)")
        self.root = Path(path)

    def run_dir(self, run_date: dt.date) -> Path:
        return self.root / run_partition(run_date)

    def page(self, run_date: dt.date) -> Path:
        return self.run_dir(run_date) / PAGE_FILE

    def summary(self, run_date: dt.date) -> Path:
        return self.run_dir(run_date) / SUMMARY_FILE

    def staging_dir(self, run_date: dt.date) -> Path:
        """A fresh, empty hidden directory beside ``run_dir`` to build the page in (per process)."""
        final = self.run_dir(run_date)
        staging = final.parent / f".{final.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        return staging

    def publish(self, staging: Path, run_date: dt.date) -> Path:
        """Replace ``run_dir(run_date)`` with ``staging``; return the page's path."""
        final = self.run_dir(run_date)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return final / PAGE_FILE
