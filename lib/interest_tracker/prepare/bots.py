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
    # (rate column, its per-user maximum, frame in µs, threshold, reason); a later rule wins.
    rules = [rule for rule in (
        ("_day_rate", "_max_day", _DAY_US, cfg.bot_max_events_per_day, BOT_RATE_DAY),
        ("_min_rate", "_max_min", _MINUTE_US, cfg.bot_max_events_per_minute, BOT_RATE_MINUTE)) if rule[3]]
    # Every rate in one select and every maximum in the next: Spark evaluates window functions
    # of one select and one (partition, order) together, so this is two window operators, not
    # one per column (each operator buffers every user's rows; issue 10).
    df = events.select("*", *[F.count(F.when(counted, 1)).over(ordered.rangeBetween(-(span - 1), 0)).alias(r)
                              for r, _, span, _, _ in rules])
    df = df.select("*", *[F.max(r).over(per_user).alias(m) for r, m, _, _, _ in rules])
    reason = F.lit(None).cast("string")
    for _, m, _, limit, why in rules:
        reason = F.when(F.col(m) > limit, F.lit(why)).otherwise(reason)
    df = df.withColumn("quarantine_reason", F.when(counted, reason))
    return df.drop(*[c for r, m, _, _, _ in rules for c in (r, m)])
