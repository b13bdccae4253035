"""Time-split, fixed-length, padded training windows (see docs/architecture.md).

Window k of a user covers positions [k*S, k*S + L). The target at position p (the next
event's item) is counted in exactly one window: window 0 counts every slot, later
windows only their last S slots. With S = L windows do not overlap (cheap training);
with S = L/2 every counted target sees at least L/2 events of context (evaluation).

Leakage: a split's windows are built only from events whose split time is before the
split's end, and its mask counts only targets inside the split. The windows are cut
from each partition's user-sorted events by :mod:`.window_arrays` (numpy over Arrow
batches), which streams a long history in pieces, so a user with a million events
produces many rows of at most L events and never has to fit in memory whole.
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..config import ConfigError
from .config import SequenceConfig, parse_utc
from . import window_arrays
from .ordering import ORDER

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
        where = "sequences.test_start" if cfg.test_start else f"sequences.test_days (test_start is {test_start})"
        raise ConfigError(f"sequences.valid_start {valid_start} is after the test split's start {test_start}; "
                          f"move sequences.valid_start earlier or fix {where}")
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


def build_split_windows(split_features: DataFrame, strides: Mapping[str, int], window_length: int,
                        max_buffered_rows: int = window_arrays.DEFAULT_MAX_BUFFERED_ROWS,
                        in_order: bool = False) -> DataFrame:
    """Rows of the ``sequences`` contract for every split in ``strides`` (split -> stride), in one pass,
    with a ``split`` column naming each row's split.

    ``split_features``: output of :func:`assign_splits` (features + split_rank + pos), still
    partitioned by user, as the features' window or the session pass leaves it. With
    ``in_order``, the caller knows the rows are also in each user's position order (the
    session pass's order, which Spark cannot see), and they are not sorted again; the
    builder checks the order either way and refuses rows out of it.
    Each partition's Arrow batches are cut into windows by :mod:`.window_arrays` (numpy): no
    explode, no (user, window) aggregation and no sort beyond the features' own (issue 10:
    at 10M events the windows phase took 138-163 s with the Spark SQL builder this
    replaces, 61-69 s with this one). Split r's windows hold the user's events of ranks
    <= r, a prefix of the history because
    ``split_rank`` never decreases along it (the builder checks that, and the order). The
    rows are the same as building each split alone (``strides`` with one split).
    """
    spec = window_arrays.WindowSpec(window_length, dict(strides))

    def cut(batches):
        return window_arrays.build_windows(batches, spec, max_buffered_rows)

    # A no-op after the features' window (Spark drops a sort its child already satisfies);
    # a real sort within each user after the session split's per-session window.
    ev = split_features if in_order else split_features.sortWithinPartitions("user_id", *ORDER)
    ev = ev.select(*window_arrays.INPUT_COLUMNS)
    return ev.mapInArrow(cut, window_arrays.OUTPUT_DDL)


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
