"""Which events each user's vector is computed from, in full and incremental mode.

A vector depends only on the user's latest ``L`` events (in stage 1's canonical
within-user order, ``prepare.ordering.ORDER``: event time, then item id, then event type) and their features; the oldest of those needs one more event before it for
its time gap and session-start flag. So both modes reduce the history to the latest
``L + 1`` events per user and compute features on exactly that tail:

* full: the tail of every event in stage-1 partitions up to the run date;
* incremental: the tail of (the state's ``L + 1`` events + events in partitions newer
  than the state), only for users with such new events.

The latest ``L + 1`` of a union equal the latest ``L + 1`` of (the latest ``L + 1`` of
one part + the other part), so both modes feed the model identical rows.
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..contracts import load_contract
from ..layout import Stage1Layout
from ..layout import hadoop
from ..layout.warehouse import Warehouse
from ..prepare.ordering import ORDER, with_event_us

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "event_time", "session_id", "run_date")
STATE_TABLE = "user_scoring_state"


def read_events(spark: SparkSession, events_root: str, after: dt.date | None, upto: dt.date) -> DataFrame:
    """Clean events from stage-1 partitions ``after < run_date <= upto`` (explicit schema)."""
    url = Stage1Layout(events_root).table("events")
    if not hadoop.exists(spark, url):
        raise FileNotFoundError(f"no clean events at {url}; run stage 1 (jobs/prepare_events.py) first "
                                "or fix events_root in the scoring config")
    df = spark.read.schema(load_contract("clean_events").spark_schema()).parquet(url)
    cond = F.col("run_date") <= F.lit(upto)
    if after is not None:
        cond = cond & (F.col("run_date") > F.lit(after))
    return df.where(cond).select(*EVENT_COLUMNS)


def dedupe_events(events: DataFrame) -> DataFrame:
    """One row per event_id: the copy from the newest stage-1 partition wins."""
    w = Window.partitionBy("event_id").orderBy(F.col("run_date").desc())
    return events.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")


def _latest_first() -> list[Column]:
    # The reverse of the order features and training windows use, so "latest" means
    # the same events here as there, ties in time included.
    return [F.col(c).desc() for c in ORDER]


def latest_events(events: DataFrame, n: int) -> DataFrame:
    """Each user's latest ``n`` events (adds ``event_us``)."""
    w = Window.partitionBy("user_id").orderBy(*_latest_first())
    return (with_event_us(events).withColumn("_n", F.row_number().over(w))
            .where(F.col("_n") <= n).drop("_n"))


def consumed_items(events: DataFrame) -> DataFrame:
    """user_id, consumed_item_ids: every distinct item of the user's events, sorted."""
    return events.groupBy("user_id").agg(F.array_sort(F.collect_set("item_id")).alias("consumed_item_ids"))


def user_windows(features: DataFrame, window_length: int) -> DataFrame:
    """One row per user from featurized tail events (``L + 1`` per user at most).

    Model inputs hold the latest ``L`` events oldest first; the ``state_*`` arrays keep
    all tail events so the next incremental run can recompute the same features.
    """
    w = Window.partitionBy("user_id").orderBy(*_latest_first())
    # sort_array orders structs field by field: the leading fields are the canonical order
    ev = F.struct(*ORDER, "event_id", "event_time", "item_index", "event_type_index", "log_gap", "session_start",
                  "session_id", "run_date", F.col("_n").alias("n"))
    grouped = (with_event_us(features).withColumn("_n", F.row_number().over(w))
               .groupBy("user_id").agg(F.sort_array(F.collect_list(ev)).alias("ev")))
    used = F.filter(F.col("ev"), lambda e: e["n"] <= window_length)
    return grouped.select(
        "user_id",
        used.getField("item_index").alias("items"),
        used.getField("event_type_index").alias("event_types"),
        used.getField("log_gap").cast("array<float>").alias("log_gaps"),
        used.getField("session_start").alias("session_starts"),
        F.size(used).cast("int").alias("events_used"),
        F.element_at(F.col("ev"), -1).getField("event_time").alias("last_event_time"),
        F.col("ev.event_id").alias("event_ids"),
        F.col("ev.item_id").alias("item_ids"),
        F.col("ev.event_type").alias("event_type_names"),
        F.col("ev.event_time").alias("event_times"),
        F.col("ev.session_id").alias("session_ids"),
        F.col("ev.run_date").alias("event_run_dates"),
    )


def read_previous_state(spark: SparkSession, warehouse_root: str, run_date: dt.date):
    """(state DataFrame, its run date) of the latest state before ``run_date``, or (None, None).

    Strictly before: a rerun of the same date starts from the same state, so reruns are
    idempotent.
    """
    wh = Warehouse(warehouse_root)
    wh.recover(spark)
    prev = wh.previous_run_date(spark, STATE_TABLE, run_date)
    if prev is None:
        return None, None
    return wh.read_partition(spark, STATE_TABLE, prev), prev


def _split(table_url: str) -> tuple[Warehouse, str]:
    root, _, name = table_url.rstrip("/").rpartition("/")
    return Warehouse(root), name


def read_partition(spark: SparkSession, table_url: str, contract_name: str, run_date: dt.date) -> DataFrame:
    """One partition of a warehouse table with its contract schema; run_date is added back as a column."""
    wh, name = _split(table_url)
    if name != contract_name:
        raise ValueError(f"{table_url}: warehouse table directories are named after their contract ({contract_name})")
    return wh.read_partition(spark, name, run_date)


def previous_partition(spark: SparkSession, table_url: str, run_date: dt.date) -> dt.date | None:
    """The newest ``run_date=`` partition of a warehouse table strictly before ``run_date``."""
    wh, name = _split(table_url)
    return wh.previous_run_date(spark, name, run_date)


def state_events(state: DataFrame) -> DataFrame:
    """Explode state rows back into event rows (the EVENT_COLUMNS)."""
    z = F.arrays_zip("event_ids", "item_ids", "event_types", "event_times", "session_ids", "event_run_dates")
    return (state.select("user_id", F.explode(z).alias("e")).select(
        F.col("e.event_ids").alias("event_id"), "user_id", F.col("e.item_ids").alias("item_id"),
        F.col("e.event_types").alias("event_type"), F.col("e.event_times").alias("event_time"),
        F.col("e.session_ids").alias("session_id"), F.col("e.event_run_dates").alias("run_date")))


def state_consumed(state: DataFrame) -> DataFrame:
    """user_id, item_id rows of the state's consumed sets (to merge with new events)."""
    return state.select("user_id", F.explode("consumed_item_ids").alias("item_id"))
