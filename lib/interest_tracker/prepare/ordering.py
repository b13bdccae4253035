"""The one within-user event order every stage-1 window (and scoring) uses.

Every per-user window (dedupe, bot rates, sessions, features, targets) is partitioned
by ``user_id`` and ordered by a prefix of ``(event_us, item_id, event_type, ...)``.
Because each required ordering is a prefix of the one before it, Spark shuffles the
events once and sorts them once for the whole stage. After deduplication
``(user_id, item_id, event_type, event_us)`` is unique, so this order is total and
reruns are deterministic even when timestamps tie.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

ORDER = ("event_us", "item_id", "event_type")


def with_event_us(df: DataFrame) -> DataFrame:
    """Add ``event_us`` (epoch microseconds of ``event_time``) when it is not there yet."""
    if "event_us" in df.columns:
        return df
    return df.withColumn("event_us", F.expr("unix_micros(event_time)"))


def user_window():
    return Window.partitionBy("user_id").orderBy(*ORDER)

