"""Quarantine bot-like users: too many events in any 60 s or 24 h window.

Sliding windows (range frames over microseconds) catch a burst that straddles a
minute or day boundary, which fixed calendar buckets would split in two. All windows
are partitioned by ``user_id``, so no extra shuffle happens after deduplication.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .config import CleaningConfig
from .ordering import with_event_us

BOT_RATE_MINUTE = "BOT_RATE_MINUTE"
BOT_RATE_DAY = "BOT_RATE_DAY"
_MINUTE_US = 60 * 1_000_000
_DAY_US = 24 * 3600 * 1_000_000


def tag_bots(events: DataFrame, cfg: CleaningConfig) -> DataFrame:
    """Add ``quarantine_reason`` (null for normal users) to every event of a bot-like user."""
    if cfg.bot_max_events_per_minute == 0 and cfg.bot_max_events_per_day == 0:
        return events.withColumn("quarantine_reason", F.lit(None).cast("string"))
    # Duplicates (tagged earlier, same user partitioning) are not counted towards rates.
    counted = F.col("duplicate_kind").isNull() if "duplicate_kind" in events.columns else F.lit(True)
    events = with_event_us(events)
    ordered = Window.partitionBy("user_id").orderBy("event_us")
    per_user = Window.partitionBy("user_id")
    df = events
    reason = F.lit(None).cast("string")
    if cfg.bot_max_events_per_day:
        day_count = F.count(F.when(counted, 1)).over(ordered.rangeBetween(-(_DAY_US - 1), 0))
        df = df.withColumn("_day_rate", day_count).withColumn("_max_day", F.max("_day_rate").over(per_user))
        reason = F.when(F.col("_max_day") > cfg.bot_max_events_per_day, F.lit(BOT_RATE_DAY)).otherwise(reason)
    if cfg.bot_max_events_per_minute:
        minute_count = F.count(F.when(counted, 1)).over(ordered.rangeBetween(-(_MINUTE_US - 1), 0))
        df = df.withColumn("_min_rate", minute_count).withColumn("_max_min", F.max("_min_rate").over(per_user))
        reason = F.when(F.col("_max_min") > cfg.bot_max_events_per_minute, F.lit(BOT_RATE_MINUTE)).otherwise(reason)
    df = df.withColumn("quarantine_reason", F.when(counted, reason))
    return df.drop(*[c for c in ("_day_rate", "_max_day", "_min_rate", "_max_min") if c in df.columns])
