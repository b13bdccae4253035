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
