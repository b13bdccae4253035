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
    pytest.importorskip("pyspark", reason="no pyspark here (e.g. the GPU machine of bench/device_check.sh)")
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


@pytest.fixture(scope="session")
def training_dataset(request, tmp_path_factory):
    """Stage 1's own output for the training tests: synthetic logs through ``run_prepare``
    (the production builder and writer), built once per test session.

    Small catalog, strongly sequential users (``p_sequential``), so a model can learn it in
    a few epochs; window length 8 and 8 row groups per split (>= 4 per rank for 2 ranks).
    Returns the local path of ``sequences/run_date=2026-11-28``. ``INTEREST_TRACKER_TEST_DATASET``
    names a copy of that directory built earlier by this fixture (bench/device_check.sh carries
    one to a GPU machine that has no Spark)."""
    prebuilt = os.environ.get("INTEREST_TRACKER_TEST_DATASET")
    if prebuilt:
        return Path(prebuilt)
    spark = request.getfixturevalue("spark")
    import datetime as dt

    from interest_tracker.prepare.config import InputConfig, PrepareConfig, SequenceConfig
    from interest_tracker.prepare.pipeline import run_prepare
    from interest_tracker.synthetic.config import SyntheticConfig
    from interest_tracker.synthetic.generator import generate
    from interest_tracker.synthetic.writers import write_raw

    root = tmp_path_factory.mktemp("training_dataset")
    data = generate(spark, SyntheticConfig(
        num_users=200, num_items=40, num_categories=4, events_per_user=24, min_events_per_user=8,
        max_events_per_user=48, p_interest=0.9, p_sequential=0.85, end_time="2026-11-28T23:00:00Z", seed=3))
    write_raw(data, str(root / "raw"), "jsonl")
    cfg = PrepareConfig(input=InputConfig(path=str(root / "raw"), format="jsonl"), output_root=str(root / "out"),
                        sequences=SequenceConfig(window_length=8, num_row_groups=8))
    report = run_prepare(spark, cfg, dt.date(2026, 11, 28))
    from interest_tracker.layout import fs

    return Path(fs.local_path(report["outputs"]["sequences"]))
