"""Sessions: a new session after a gap, then caps on duration and length.

Never ``groupBy(user).applyInPandas``: a user with millions of events would have to fit
in one Python worker. Instead each partition's events, partitioned by ``user_id`` and in
the canonical order (:mod:`.ordering`), stream through a forward pass over Arrow batches
that carries a few numbers from one batch to the next (:mod:`.session_arrays`), so after
deduplication Spark neither shuffles for sessions nor holds a history in memory.

Rules, in order:
1. A new session starts at a user's first event, after a gap *strictly greater* than
   ``gap_minutes``, or (optionally) where the source's session_id changes.
2. A session is cut every ``max_duration_minutes`` after its start.
3. A session is cut every ``max_events`` events.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from .config import SessionConfig
from .ordering import user_window, with_event_us
from .session_arrays import OUTPUT_COLUMNS, OUTPUT_SCHEMA, RN, SessionRules, number_sessions

__all__ = ["OUTPUT_COLUMNS", "sessionize", "sessions_table"]


def sessionize(events: DataFrame, cfg: SessionConfig) -> DataFrame:
    """Add ``session_id`` ('<user>:<start ms>:<n>') and ``session_start`` (bool) to clean events,
    and the look-back sequence features ``pos`` and ``log_gap`` (:mod:`.features`).

    One window function (``row_number``, which also makes Spark deliver each user whole and
    in order) and one forward pass in numpy over the sorted batches (:mod:`.session_arrays`),
    instead of the six chained window operators the rules take in Spark SQL (issue 10).
    """
    rules = SessionRules(
        gap_us=int(cfg.gap_minutes * 60 * 1_000_000),
        max_duration_us=int(cfg.max_duration_minutes * 60 * 1_000_000),
        max_events=int(cfg.max_events),
        respect_input_sessions=bool(cfg.respect_input_sessions),
    )
    df = with_event_us(events).drop(*OUTPUT_COLUMNS).withColumn(RN, F.row_number().over(user_window()))
    schema = T.StructType([f for f in df.schema.fields if f.name != RN]
                          + [T.StructField(f.name, from_arrow_type(f.type), f.nullable) for f in OUTPUT_SCHEMA])

    def number(batches):
        return number_sessions(batches, rules)

    return df.mapInArrow(number, schema)


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
