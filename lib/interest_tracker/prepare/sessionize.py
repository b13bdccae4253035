"""Sessions from window functions only: lag + flag + running sum, then caps.

Never ``groupBy(user).applyInPandas``: a user with millions of events would have to fit
in one Python worker. Every window here is partitioned by ``user_id`` (or by
``user_id`` plus a finer key, which Spark satisfies with the same hash partitioning), so
sessionization adds sorts but no shuffle after deduplication.

Rules, in order:
1. A new session starts at a user's first event, after a gap *strictly greater* than
   ``gap_minutes``, or (optionally) where the source's session_id changes.
2. A session is cut every ``max_duration_minutes`` after its start.
3. A session is cut every ``max_events`` events.
Events with equal timestamps are ordered by ``event_id`` so the result is deterministic.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .config import SessionConfig


def sessionize(events: DataFrame, cfg: SessionConfig) -> DataFrame:
    """Add ``session_id`` ('<user>:<start ms>:<n>') and ``session_start`` (bool) to clean events."""
    us = F.expr("unix_micros(event_time)")
    by_user = Window.partitionBy("user_id").orderBy("event_time", "event_id")
    running = by_user.rowsBetween(Window.unboundedPreceding, 0)
    gap_us = us - F.lag(us).over(by_user)
    new = F.lag(us).over(by_user).isNull() | (gap_us > F.lit(int(cfg.gap_minutes * 60 * 1_000_000)))
    if cfg.respect_input_sessions:
        new = new | ~F.lag("input_session_id").over(by_user).eqNullSafe(F.col("input_session_id"))
    df = events.withColumn("_gap_session", F.sum(new.cast("long")).over(running))

    # Duration cap: chunks of max_duration after the gap-session's start.
    by_gap = Window.partitionBy("user_id", "_gap_session")
    start = F.min(us).over(by_gap)
    df = df.withColumn("_chunk", F.floor((us - start) / F.lit(int(cfg.max_duration_minutes * 60 * 1_000_000))))
    # Length cap: pieces of max_events within each chunk.
    by_chunk = Window.partitionBy("user_id", "_gap_session", "_chunk").orderBy("event_time", "event_id")
    df = df.withColumn("_piece", F.floor((F.row_number().over(by_chunk) - 1) / F.lit(cfg.max_events)))

    key = F.struct("_gap_session", "_chunk", "_piece")
    first = F.lag(key).over(by_user).isNull() | (F.lag(key).over(by_user) != key)
    df = df.withColumn("session_start", first).withColumn("_n", F.sum(first.cast("long")).over(running))
    by_session = Window.partitionBy("user_id", "_n")
    session_start_ms = F.min(F.expr("unix_millis(event_time)")).over(by_session)
    df = df.withColumn("session_id", F.concat_ws(":", "user_id", session_start_ms.cast("string"), F.col("_n").cast("string")))
    return df.drop("_gap_session", "_chunk", "_piece", "_n")


def sessions_table(sessionized: DataFrame) -> DataFrame:
    """One row per session (the ``sessions`` contract, without run_date)."""
    return sessionized.groupBy("user_id", "session_id").agg(
        F.min("event_time").alias("session_start"),
        F.max("event_time").alias("session_end"),
        F.count(F.lit(1)).cast("int").alias("event_count"),
    ).withColumn(
        "duration_s",
        (F.expr("unix_micros(session_end)") - F.expr("unix_micros(session_start)")) / F.lit(1e6),
    ).select("session_id", "user_id", "session_start", "session_end", "event_count", "duration_s")
