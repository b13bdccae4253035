"""The one place a SparkSession is built.

Library functions receive a session; only jobs and the test fixture call
:func:`get_session`. Settings that every stage relies on for correctness (UTC
session time zone, explicit-schema-friendly options) are set here; tuning settings
(shuffle partitions, AQE, Arrow batch size) belong to spark-submit ``--conf`` flags
or ``cluster/*.properties``, and are only defaulted here for local mode.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Mapping

log = logging.getLogger(__name__)

# Correctness settings: always applied, whatever the cluster passes.
REQUIRED_CONF = {
    # Event times are stored and compared in UTC; never depend on the JVM's zone.
    "spark.sql.session.timeZone": "UTC",
    # Overwrite only the partitions a run writes (idempotent reruns per run date).
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Parquet timestamps as INT64 micros: readable by pyarrow, DuckDB, Trino, Hive 3.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

# Local-mode defaults for small data; a cluster overrides them with --conf.
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    # No redrawn progress bars on a console that people (and log files) read.
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
}

#: Spark's JVM log level when nothing asks for another one. conf/log4j2.properties starts
#: the JVM at this level; setting it again once the session exists also quiets a plain
#: ``spark-submit jobs/x.py`` that was started without that file (after its start-up lines).
DEFAULT_SPARK_LOG_LEVEL = "WARN"
SPARK_LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
_requested_log_level: str | None = None


def set_spark_log_level(level: str | None) -> None:
    """Ask for Spark's JVM log level (``INFO`` to see Spark's own progress); None: the default.

    Called by :func:`interest_tracker.cli.run_job` for ``--spark-log-level``; applied by
    :func:`get_session`. Precedence: this, then ``--conf spark.log.level``, then the
    ``SPARK_LOG_LEVEL`` environment variable (which conf/log4j2.properties also reads), then WARN.
    """
    global _requested_log_level
    if level is not None and level.upper() not in SPARK_LOG_LEVELS:
        from .config import ConfigError

        raise ConfigError(f"--spark-log-level must be one of {', '.join(SPARK_LOG_LEVELS)}, got {level!r}")
    _requested_log_level = level.upper() if level else None


def spark_log_level(conf_value: str | None = None) -> str:
    """The level :func:`get_session` applies (see :func:`set_spark_log_level` for the order)."""
    for candidate in (_requested_log_level, conf_value, os.environ.get("SPARK_LOG_LEVEL")):
        if candidate and candidate.upper() in SPARK_LOG_LEVELS:
            return candidate.upper()
    return DEFAULT_SPARK_LOG_LEVEL


def get_session(app_name: str, master: str | None = None, conf: Mapping[str, str] | None = None):
    """Return the active SparkSession or build one.

    ``master`` is only used when no master is given by spark-submit (``spark.master``
    unset): this keeps ``python jobs/x.py`` working in local mode while a scheduler's
    ``spark-submit --master yarn`` wins.
    """
    from pyspark.sql import SparkSession

    # Executors must run the same interpreter as the driver in local mode.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    active = SparkSession.getActiveSession()
    if active is None:
        from pyspark import SparkConf, SparkContext

        if "PYSPARK_GATEWAY_PORT" in os.environ:
            # Started by spark-submit: attach to its JVM first, so SparkConf sees --master
            # and --conf. Without this SparkConf() is empty and local[2] would override
            # the scheduler's --master (every task then runs on the driver).
            SparkContext._ensure_initialized()
        existing = SparkConf()
        if not existing.contains("spark.master"):
            builder = builder.master(master or "local[2]")
            for k, v in LOCAL_DEFAULTS.items():
                if not existing.contains(k):
                    builder = builder.config(k, v)
    for k, v in {**(conf or {}), **REQUIRED_CONF}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    for k, v in REQUIRED_CONF.items():
        spark.conf.set(k, v)
    spark.sparkContext.setLogLevel(spark_log_level(spark.sparkContext.getConf().get("spark.log.level", None)))
    log.info("spark session %s master=%s", spark.sparkContext.applicationId, spark.sparkContext.master)
    return spark


@contextlib.contextmanager
def session_conf(spark, settings: Mapping[str, str | None]) -> Iterator[None]:
    """Set runtime SQL confs for one block and put back what was there before.

    Why: a session outlives one job in the tests, in notebooks and in the bench scripts that
    chain the stages. A job that tunes a conf for its own work (scoring's Arrow batch size)
    must not hand it to whatever runs next: a 16-row batch left behind made a later
    one-user sessionization in the same session ten times slower. ``None`` leaves a key as is.
    """
    previous = {k: spark.conf.get(k, None) for k, v in settings.items() if v is not None}
    for k in previous:
        spark.conf.set(k, settings[k])
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
