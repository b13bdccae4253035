"""One local SparkSession for the whole test session (UI off, few shuffle partitions, UTC)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import time

import pytest

# Collected Spark timestamps become naive Python datetimes in the process's zone: pin it.
os.environ["TZ"] = "UTC"
time.tzset()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from interest_tracker.spark import get_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warehouse = tmp_path_factory.mktemp("warehouse")
    session = get_session(
        "interest-tracker-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "4",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.ui.enabled": "false",
            "spark.driver.memory": "3g",
            "spark.sql.adaptive.enabled": "false",
        },
    )
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def yoochoose_dir():
    d = SHARED_DATA / "yoochoose-100k"
    if not d.is_dir():
        pytest.skip(f"real data not found at {d} (see ../shared/data/README.md)")
    return d
