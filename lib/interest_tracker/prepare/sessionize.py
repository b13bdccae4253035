"""Sessions from window functions only: lag + flag + running sum, then caps.

Never ``groupBy(user).applyInPandas``: a user with millions of events would have to fit
in one Python worker. Every window here has the same spec (partitioned by ``user_id``,
canonical event order, see :mod:`.ordering`); the caps are computed with running
``last(..., ignorenulls)`` instead of finer partitions, so after deduplication Spark
neither shuffles nor re-sorts for sessions.

Rules, in order:
1. A new session starts at a user's first event, after a gap *strictly greater* than
   ``gap_minutes``, or (optionally) where the source's session_id changes.
2. A session is cut every ``max_duration_minutes`` after its start.
3. A session is cut every ``max_events`` events.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .config import SessionConfig
from .ordering import user_running_window, user_window, with_event_us


def sessionize(events: DataFrame, cfg: SessionConfig) -> DataFrame:
    """Add ``session_id`` ('<user>:<start ms>:<n>') and ``session_start`` (bool) to clean events."""
    w, running = user_window(), user_running_window()
    us = F.col("event_us")
    prev = F.lag(us).over(w)
    new = prev.isNull() | ((us - prev) > F.lit(int(cfg.gap_minutes * 60 * 1_000_000)))
    if cfg.respect_input_sessions:
        new = new | ~F.lag("input_session_id").over(w).eqNullSafe(F.col("input_session_id"))
    df = with_event_us(events).withColumn("_new", new).withColumn("_rn", F.row_number().over(w))
    # duration cap: chunks of max_duration after the gap-session's start
    gap_start = F.last(F.when(F.col("_new"), us), ignorenulls=True).over(running)
    df = df.withColumn("_chunk", F.floor((us - gap_start) / F.lit(int(cfg.max_duration_minutes * 60 * 1_000_000))))
    df = df.withColumn("_cb", F.col("_new") | (F.col("_chunk") != F.lag("_chunk").over(w)))
    # length cap: pieces of max_events within each chunk
    chunk_rn = F.last(F.when(F.col("_cb"), F.col("_rn")), ignorenulls=True).over(running)
    df = df.withColumn("_piece", F.floor((F.col("_rn") - chunk_rn) / F.lit(cfg.max_events)))
    boundary = F.col("_cb") | (F.col("_piece") != F.lag("_piece").over(w))
    df = df.withColumn("session_start", boundary)
    n = F.sum(F.col("session_start").cast("long")).over(running)
    start_ms = F.last(F.when(F.col("session_start"), F.floor(us / 1000)), ignorenulls=True).over(running)
    df = df.withColumn("session_id", F.concat_ws(":", "user_id", start_ms.cast("string"), n.cast("string")))
    return df.drop("_new", "_rn", "_chunk", "_cb", "_piece")


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
