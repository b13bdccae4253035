"""Aggregations behind the report's plots: pure ``DataFrame -> DataFrame`` functions.

The cluster does the counting; only small aggregates (at most a few hundred rows) come
back to the driver for plotting, whatever the size of the day.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def capped_value_counts(df: DataFrame, column: str, cap: int) -> DataFrame:
    """``(value, count)`` of an integer column, values >= ``cap`` counted as ``cap``.

    Heavy tails (a user with 10k events) would otherwise squash every other bar; the
    last bar is labelled ``cap+`` in the plot. Nulls are counted under value -1 so they
    stay visible.
    """
    value = F.when(F.col(column).isNull(), F.lit(-1)).otherwise(F.least(F.col(column).cast("int"), F.lit(cap)))
    return df.groupBy(value.alias("value")).agg(F.count(F.lit(1)).alias("count")).orderBy("value")


def events_per_user(events: DataFrame) -> DataFrame:
    """``(user_id, events)``: clean events per user."""
    return events.groupBy("user_id").agg(F.count(F.lit(1)).alias("events"))


def drift_histogram(drift: DataFrame, bins: int) -> DataFrame:
    """``(bin, lower, upper, users)`` of cosine similarity over [-1, 1]; null similarities excluded.

    Nulls (users new since the previous run) are not a similarity; :func:`drift_summary`
    counts them so the report shows them next to the histogram.
    """
    width = 2.0 / bins
    b = F.least(F.floor((F.col("cosine_similarity") + 1.0) / width).cast("int"), F.lit(bins - 1))
    return (drift.where(F.col("cosine_similarity").isNotNull())
            .groupBy(F.greatest(b, F.lit(0)).alias("bin"))
            .agg(F.count(F.lit(1)).alias("users"))
            .withColumn("lower", F.col("bin") * width - 1.0)
            .withColumn("upper", (F.col("bin") + 1) * width - 1.0)
            .select("bin", "lower", "upper", "users")
            .orderBy("bin"))


def drift_summary(drift: DataFrame) -> DataFrame:
    """One row: users, users without a previous vector, mean/median similarity, top-category changes."""
    return drift.agg(
        F.count(F.lit(1)).alias("users"),
        F.sum(F.col("cosine_similarity").isNull().cast("long")).alias("without_previous"),
        F.avg("cosine_similarity").alias("mean_cosine"),
        F.percentile_approx("cosine_similarity", 0.5, 10000).alias("median_cosine"),
        F.sum(F.col("top_category_changed").cast("long")).alias("top_category_changed"),
        F.sum(F.col("top_category_changed").isNotNull().cast("long")).alias("top_category_compared"),
    )


def duration_quantiles(sessions: DataFrame, probs: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99)) -> DataFrame:
    """One row: session-duration quantiles in seconds (``p10``, ``p50`` ...) plus the session count."""
    q = F.percentile_approx("duration_s", list(probs), 10000)
    row = sessions.agg(F.count(F.lit(1)).alias("sessions"), q.alias("q"))
    return row.select("sessions", *[F.col("q")[i].alias(f"p{round(p * 100)}") for i, p in enumerate(probs)])


def log2_binned_counts(df: DataFrame, column: str) -> DataFrame:
    """``(bin, lower, upper, count)`` of a non-negative integer column in power-of-two bins.

    Bin ``b >= 0`` holds values ``2**b .. 2**(b+1) - 1`` (1, 2-3, 4-7, 8-15, ...), so a heavy
    tail spreads over a few bars instead of piling into one capped bar; 0 is bin -1 and
    nulls are bin -2, so they stay visible. Exact integer arithmetic, no floating-point log.
    """
    v = F.col(column).cast("long")
    # bit length - 1 = floor(log2(v)) for v >= 1: the position of the highest set bit.
    b = F.length(F.bin(v)) - 1
    binned = F.when(v.isNull(), F.lit(-2)).when(v <= 0, F.lit(-1)).otherwise(b)
    return (df.groupBy(binned.cast("int").alias("bin")).agg(F.count(F.lit(1)).alias("count"))
            .withColumn("lower", F.expr("CASE WHEN bin >= 0 THEN shiftleft(1L, bin) WHEN bin = -1 THEN 0L END"))
            .withColumn("upper", F.expr("CASE WHEN bin >= 0 THEN shiftleft(1L, bin + 1) - 1 WHEN bin = -1 THEN 0L END"))
            .select("bin", "lower", "upper", "count").orderBy("bin"))


def sample_drift_users(drift: DataFrame, n: int) -> DataFrame:
    """``n`` users of one drift partition that moved the most: top category changed first,
    then the lowest cosine similarity; users without a previous vector last. Ties by user_id,
    so the choice is deterministic."""
    return (drift.select("user_id", "cosine_similarity", "top_category_changed")
            .orderBy(F.coalesce(F.col("top_category_changed"), F.lit(False)).desc(),
                     F.col("cosine_similarity").asc_nulls_last(),
                     F.col("user_id"))
            .limit(n))


def user_category_events(events: DataFrame, categories: DataFrame) -> DataFrame:
    """``(user_id, event_time, run_date, category)`` of clean events; category null when unknown."""
    return (events.select("user_id", "item_id", "event_time", "run_date")
            .join(categories.select("item_id", "category"), "item_id", "left")
            .select("user_id", "event_time", "run_date", "category"))
