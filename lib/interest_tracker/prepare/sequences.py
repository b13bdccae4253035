"""Time-split, fixed-length, padded training windows (see docs/architecture.md).

Window k of a user covers positions [k*S, k*S + L). The target at position p (the next
event's item) is counted in exactly one window: window 0 counts every slot, later
windows only their last S slots. With S = L windows do not overlap (cheap training);
with S = L/2 every counted target sees at least L/2 events of context (evaluation).

Leakage: a split's windows are built only from events whose split time is before the
split's end, and its mask counts only targets inside the split. Events are exploded
into their windows and grouped by (user, window), a key Spark satisfies with the
user partitioning already in place, so a user with a million events produces many
small groups of at most L events, never one huge row.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .config import SequenceConfig, parse_utc
from .ordering import user_window

SPLITS = ("train", "valid", "test")
_SPLIT_RANK = {"train": 0, "valid": 1, "test": 2}


def resolve_cutoffs(events: DataFrame, cfg: SequenceConfig) -> tuple[dt.datetime, dt.datetime]:
    """(valid_start, test_start) as UTC datetimes: from the config, or relative to the data's last event."""
    if cfg.test_start:
        test_start = parse_utc(cfg.test_start, "sequences.test_start")
    else:
        last = events.agg(F.max("event_time")).first()[0]
        if last is None:
            raise ValueError("no clean events to split; check the rejected table and the run report")
        last = last.replace(tzinfo=dt.timezone.utc) if last.tzinfo is None else last.astimezone(dt.timezone.utc)
        test_start = last - dt.timedelta(days=cfg.test_days)
    if cfg.valid_start:
        valid_start = parse_utc(cfg.valid_start, "sequences.valid_start")
    else:
        valid_start = test_start - dt.timedelta(days=cfg.valid_days)
    if valid_start > test_start:
        raise ValueError(f"valid_start {valid_start} is after test_start {test_start}; fix sequences.* cutoffs")
    return valid_start, test_start


def _ts(value: dt.datetime):
    return F.lit(value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp")


def assign_splits(features: DataFrame, valid_start: dt.datetime, test_start: dt.datetime,
                  split_by: str = "event") -> DataFrame:
    """Add ``split_rank`` (0 train, 1 valid, 2 test) from the event's or its session's last time."""
    if split_by == "session":
        split_time = F.max("event_time").over(Window.partitionBy("user_id", "session_id"))
    else:
        split_time = F.col("event_time")
    return features.withColumn(
        "split_rank",
        F.when(split_time < _ts(valid_start), 0).when(split_time < _ts(test_start), 1).otherwise(2),
    )


# Groups of (user, window) that one task's collect_list keeps in a hash map. Past Spark's
# default (128) the aggregation falls back to sorting every exploded row; a group holds
# at most L events, so 65,536 groups are a few tens of MB per task.
WINDOW_GROUPS_PER_TASK = 65_536
_FALLBACK = "spark.sql.objectHashAggregate.sortBased.fallbackThreshold"


@contextlib.contextmanager
def hash_window_aggregation(spark, groups_per_task: int = WINDOW_GROUPS_PER_TASK):
    """Run the enclosed window writes with a hash (not sort) collect_list per (user, window)."""
    previous = spark.conf.get(_FALLBACK)
    spark.conf.set(_FALLBACK, str(groups_per_task))
    try:
        yield
    finally:
        spark.conf.set(_FALLBACK, previous)


def _tag(rank: int):
    """Lambda for ``F.transform``: window k -> (rank, k). One-argument, so Spark passes no index."""
    return lambda k: F.struct(F.lit(rank).alias("r"), k.alias("k"))


def _when(keep):
    """Lambda for ``F.filter`` keeping every element where the row-level condition ``keep`` holds."""
    return lambda k: keep


def build_split_windows(split_features: DataFrame, strides: Mapping[str, int], window_length: int) -> DataFrame:
    """Rows of the ``sequences`` contract for every split in ``strides`` (split -> stride), in one pass,
    with a ``split`` column naming each row's split.

    ``split_features``: output of :func:`assign_splits` (features + split_rank + pos).
    One scan, one ``lead`` and one (user, split, window) aggregation serve every split
    (issue 10: at 10M events the valid and test passes cost 47 s of the windows' 126 s). Split
    r's windows hold the user's events of ranks <= r: because ``split_rank`` never
    decreases along a user's history (event split: time order; session split: sessions
    are contiguous runs of that order), those events are a prefix of it, so the next event
    of the prefix is the next event overall, unless it lies in a later split, where the
    prefix ends (no target there). The rows are the same as building each split alone (``strides`` with one split).
    """
    L = window_length
    ranks = {split: _SPLIT_RANK[split] for split in strides}
    by_user = user_window()  # same order as pos, and no re-sort after the features
    ev = split_features.where(F.col("split_rank") <= max(ranks.values())).select(
        "user_id", "pos", "split_rank", "item_index", "event_type_index", "log_gap", "session_start",
        F.lead("item_index").over(by_user).alias("target"),
        F.lead("split_rank").over(by_user).alias("target_rank"),
    )
    whole_user = Window.partitionBy("user_id")
    pos = F.col("pos")
    parts = []
    for split, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        S = strides[split]
        k_min = F.greatest(F.lit(0), F.floor((pos - L) / F.lit(S)) + 1).cast("long")
        keep = F.col("split_rank") <= rank
        if rank > 0:
            # Valid/test windows hold targets only near the end of a history. Window k can
            # hold a target of this split only if it reaches the user's first position whose
            # target is in the split, so earlier windows (nearly all of them) are never
            # exploded: same rows as building all and dropping those without targets.
            first = F.min(F.when(F.col("target_rank") == rank, pos)).over(whole_user)
            k_lo = F.greatest(F.lit(0), F.floor((first - L) / F.lit(S)) + 1).cast("long")
            ev = ev.withColumn(f"_k_lo{rank}", k_lo)
            keep = keep & (pos >= F.col(f"_k_lo{rank}") * S)  # null (no target in the split): not kept
            k_min = F.greatest(k_min, F.coalesce(F.col(f"_k_lo{rank}"), F.lit(0)))
        k_max = F.floor(pos / F.lit(S)).cast("long")
        parts.append(F.filter(F.transform(F.sequence(k_min, k_max), _tag(rank)), _when(keep)))
    ev = ev.withColumn("_w", F.explode(F.concat(*parts) if len(parts) > 1 else parts[0]))
    ev = ev.withColumn("r", F.col("_w.r")).withColumn("k", F.col("_w.k"))
    stride = F.lit(None).cast("long")
    for split, rank in ranks.items():
        stride = F.when(F.col("r") == rank, F.lit(strides[split]).cast("long")).otherwise(stride)
    ev = ev.withColumn("slot", (pos - F.col("k") * stride).cast("int"))
    in_prefix = F.col("target_rank") <= F.col("r")
    counted = (F.col("target").isNotNull() & (F.col("target_rank") == F.col("r"))
               & ((F.col("k") == 0) | (F.col("slot") >= F.lit(L) - stride)))
    ev = (ev.withColumn("mask", F.coalesce(counted, F.lit(False)).cast("int"))
          .withColumn("target", F.coalesce(F.when(in_prefix, F.col("target")), F.lit(0))))
    grouped = ev.groupBy("user_id", "r", "k").agg(
        F.array_sort(F.collect_list(F.struct(
            "slot", "item_index", "event_type_index", "log_gap", "session_start", "target", "mask"))).alias("w"),
        F.sum("mask").cast("int").alias("num_targets"),
    ).where(F.col("num_targets") > 0)

    def padded(field: str, pad, dtype: str):
        arr = F.transform("w", lambda x: x[field])
        return F.concat(arr, F.array_repeat(F.lit(pad).cast(dtype), F.lit(L) - F.size("w"))).alias(f"_{field}")

    split_name = F.lit(None).cast("string")
    for split, rank in ranks.items():
        split_name = F.when(F.col("r") == rank, F.lit(split)).otherwise(split_name)
    return grouped.select(
        F.concat_ws(":", "user_id", F.col("k").cast("string")).alias("window_id"),
        "user_id",
        F.size("w").cast("int").alias("length"),
        padded("item_index", 0, "int").alias("input_items"),
        padded("event_type_index", 0, "int").alias("input_event_types"),
        padded("log_gap", 0.0, "float").alias("input_log_gaps"),
        padded("session_start", 0, "int").alias("input_session_starts"),
        padded("target", 0, "int").alias("target_items"),
        padded("mask", 0, "int").alias("target_mask"),
        "num_targets",
        split_name.alias("split"),
    )


DECAY_HALF_LIVES_DAYS = (1, 7, 30, 180)
"""Half-lives of the time-decayed popularity columns of ``item_stats``; training chooses
one on validation for the recent-popularity prior (evaluation/selection.py)."""


def item_train_counts(split_features: DataFrame, vocabulary: DataFrame) -> DataFrame:
    """``item_stats``: how often each vocabulary index occurs in the train split (0 when never),
    and time-decayed popularity (issue 13: the score follows items that rise and fade).

    Training uses ``train_count`` for popularity-based negatives and the popularity
    baseline. For each half-life h in :data:`DECAY_HALF_LIVES_DAYS` (days):
    ``train_decay_{h}d`` sums ``2 ** (-(T_train - t) / h)`` over the train split's events
    (``T_train``: its last event), the prior as of the validation start, so choosing it on
    validation sees no validation event; ``decay_{h}d`` sums the same over every event up
    to the data's last one, the prior the artifact ships for scoring.
    """
    t = F.col("event_time").cast("double")
    ends = split_features.agg(F.max(F.when(F.col("split_rank") == 0, t)).alias("_t_train"), F.max(t).alias("_t_all"))
    ev = split_features.select("item_index", "split_rank", t.alias("_t")).crossJoin(F.broadcast(ends))
    aggs = [F.count(F.when(F.col("split_rank") == 0, 1)).alias("train_count")]
    for h in DECAY_HALF_LIVES_DAYS:
        hs = float(h) * 86400.0
        aggs.append(F.sum(F.when(F.col("split_rank") == 0, F.pow(F.lit(2.0), -(F.col("_t_train") - F.col("_t")) / hs))
                          ).alias(f"train_decay_{h}d"))
        aggs.append(F.sum(F.pow(F.lit(2.0), -(F.col("_t_all") - F.col("_t")) / hs)).alias(f"decay_{h}d"))
    counts = ev.groupBy("item_index").agg(*aggs)
    all_idx = vocabulary.select(F.col("item_index").cast("int"))
    reserved = vocabulary.sparkSession.createDataFrame([(0,), (1,)], "item_index int")
    decayed = [F.coalesce(f"{p}decay_{h}d", F.lit(0.0)).cast("double").alias(f"{p}decay_{h}d")
               for h in DECAY_HALF_LIVES_DAYS for p in ("train_", "")]
    return (reserved.unionByName(all_idx).join(counts, "item_index", "left")
            .select("item_index", F.coalesce("train_count", F.lit(0)).cast("long").alias("train_count"), *decayed)
            .orderBy("item_index"))
