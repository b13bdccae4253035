"""Assemble the output tables from scored users, and publish them as one run.

All four partitions (``user_interest``, ``user_recommendations``,
``user_interest_drift``, ``user_scoring_state``) are first written to staging
directories; only when every write succeeded does ``layout.Warehouse.publish_run`` move
them in together and write the run manifest (``_manifests/run_date=D.json``) last: the
run's one commit point. A failure while Spark writes leaves every previous partition
untouched; a failure while moving rolls back to the previous run (layout/commit.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..contracts import load_contract
from ..layout.hadoop import staging_url
from ..layout.warehouse import DRIFT, INTEREST, RECOMMENDATIONS, STATE, TABLES, Warehouse, run_name

log = logging.getLogger(__name__)

__all__ = ["INTEREST", "RECOMMENDATIONS", "DRIFT", "STATE", "TABLES", "publish_tables", "register_tables"]


def conform(df: DataFrame, name: str) -> DataFrame:
    return load_contract(name).conform(df)


def interest_table(scored: DataFrame, model_version: str, run_date: dt.date) -> DataFrame:
    return conform(scored.select(
        "user_id", "vector", F.lit(model_version).alias("model_version"), F.lit(run_date).alias("as_of"),
        "events_used", "last_event_time", F.lit(run_date).alias("run_date")), INTEREST)


def recommendations_table(scored: DataFrame, model_version: str, run_date: dt.date) -> DataFrame:
    recs = scored.select("user_id", F.posexplode(F.arrays_zip("rec_item_ids", "rec_scores")).alias("pos", "r"))
    return conform(recs.select(
        "user_id", (F.col("pos") + 1).alias("rank"), F.col("r.rec_item_ids").alias("item_id"),
        F.col("r.rec_scores").alias("score"), F.lit(model_version).alias("model_version"),
        F.lit(run_date).alias("run_date")), RECOMMENDATIONS)


def _sum(arr) -> F.Column:
    return F.aggregate(arr, F.lit(0.0).cast("double"), lambda acc, x: acc + x)


def cosine(a: str, b: str) -> F.Column:
    """cos(a, b) in double precision; null when either is null or has norm 0."""
    dot = _sum(F.zip_with(a, b, lambda x, y: x.cast("double") * y.cast("double")))
    na = _sum(F.transform(a, lambda x: x.cast("double") * x.cast("double")))
    nb = _sum(F.transform(b, lambda x: x.cast("double") * x.cast("double")))
    return F.when((na > 0) & (nb > 0), dot / (F.sqrt(na) * F.sqrt(nb)))


def top_categories(recs: DataFrame, categories: DataFrame) -> DataFrame:
    """user_id, top_category: the most frequent category in the user's recommendations."""
    counts = recs.join(categories, "item_id").groupBy("user_id", "category").count()
    w = Window.partitionBy("user_id").orderBy(F.col("count").desc(), F.col("category"))
    return (counts.withColumn("_n", F.row_number().over(w)).where("_n = 1")
            .select("user_id", F.col("category").alias("top_category")))


def drift_table(interest: DataFrame, recs: DataFrame, run_date: dt.date, categories: DataFrame | None,
                previous_interest: DataFrame | None, previous_drift: DataFrame | None,
                previous_date: dt.date | None) -> DataFrame:
    df = interest.select("user_id", "model_version", "vector")
    if previous_interest is not None:
        prev = previous_interest.select("user_id", F.col("vector").alias("prev_vector"),
                                        F.col("model_version").alias("prev_model_version"))
        df = df.join(prev, "user_id", "left")
        same_model = F.col("prev_model_version") == F.col("model_version")
        df = df.withColumn("cosine_similarity", F.when(same_model, cosine("vector", "prev_vector")))
    else:
        df = df.withColumn("cosine_similarity", F.lit(None).cast("double"))
    if categories is not None:
        df = df.join(top_categories(recs, categories), "user_id", "left")
    else:
        df = df.withColumn("top_category", F.lit(None).cast("string"))
    if previous_drift is not None:
        df = df.join(previous_drift.select("user_id", F.col("top_category").alias("previous_top_category")),
                     "user_id", "left")
    else:
        df = df.withColumn("previous_top_category", F.lit(None).cast("string"))
    return conform(df.select(
        "user_id", "model_version", F.lit(previous_date).cast("date").alias("previous_run_date"),
        "cosine_similarity", "top_category", "previous_top_category",
        (F.col("top_category") != F.col("previous_top_category")).alias("top_category_changed"),
        F.lit(run_date).alias("run_date")), DRIFT)


def state_table(scored: DataFrame, windows: DataFrame, model_version: str, fingerprint: str,
                run_date: dt.date) -> DataFrame:
    """State for changed users (``windows`` holds their tail events) ; see pipeline for the rest."""
    df = scored.select("user_id", "vector", "events_used", "last_event_time").join(
        windows.select("user_id", "event_ids", "item_ids", F.col("event_type_names").alias("event_types"),
                       "event_times", "session_ids", "event_run_dates", "consumed_item_ids"), "user_id")
    return conform(df.select(
        "user_id", F.lit(model_version).alias("model_version"), F.lit(fingerprint).alias("settings_fingerprint"),
        "event_ids", "item_ids", "event_types", "event_times", "session_ids", "event_run_dates", "vector",
        "events_used", "last_event_time", "consumed_item_ids", F.lit(run_date).alias("run_date")), STATE)


def table_url(warehouse_root: str, name: str) -> str:
    return Warehouse(warehouse_root).table_url(name)


def publish_tables(spark: SparkSession, warehouse_root: str, run_date: dt.date, frames: dict[str, DataFrame], *,
                   model_version: str = "", extra: dict | None = None) -> dict[str, str]:
    """Write every frame to staging, then publish them all as one run (manifest written last).

    ``extra`` goes into the run manifest (e.g. the scorer the job chose). Returns
    ``{table: partition URL}``.
    """
    wh = Warehouse(warehouse_root)
    wh.recover(spark)
    partition = run_name(run_date)
    staged: dict[str, str] = {}
    try:
        for name, df in frames.items():
            contract = load_contract(name)
            cols = [c for c in contract.columns if c not in contract.partition_by]
            staging = staging_url(wh.table_url(name), partition)
            staged[name] = staging
            write_staging(df.select(*cols), staging)
    except BaseException:
        wh.discard(spark, staged)
        raise
    manifest = wh.publish_run(spark, run_date, staged, model_version=model_version, extra=extra)
    return {name: t["partition"] for name, t in manifest["tables"].items()}


def write_staging(df: DataFrame, url: str) -> None:
    df.write.mode("overwrite").parquet(url)


def _norm(url: str) -> str:
    """'file:/x', 'file:///x/' and '/x' name the same place."""
    return re.sub(r"^file:/+", "/", url).rstrip("/")


def register_tables(spark: SparkSession, database: str, warehouse_root: str, run_date: dt.date,
                    names=TABLES) -> None:
    """Register each table in the Spark catalog (external parquet table) and add the run's partition.

    The files are the source of truth; the catalog entry only points at them, so
    re-registering is idempotent and another engine can read the same directories. Only
    a committed run (its manifest exists) is registered: the catalog trusts the manifest.
    """
    if Warehouse(warehouse_root).read_manifest(spark, run_date) is None:
        raise RuntimeError(f"run {run_date} has no manifest under {warehouse_root}/_manifests: it was never "
                           "committed; rerun jobs/score_users.py for that date before registering it")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    for name in names:
        url = table_url(warehouse_root, name)
        contract = load_contract(name)
        ddl = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in contract.spark_schema().fields)
        full = f"{database}.{name}"
        if spark.catalog.tableExists(full):
            location = spark.sql(f"DESCRIBE TABLE EXTENDED {full}").where("col_name = 'Location'").collect()
            if location and _norm(location[0]["data_type"]) != _norm(url):
                log.warning("catalog table %s pointed at %s; re-registering at %s", full, location[0]["data_type"], url)
                spark.sql(f"DROP TABLE {full}")  # external table: its files are kept
        if not spark.catalog.tableExists(full):
            spark.sql(f"CREATE TABLE {full} ({ddl}) USING parquet "
                      f"PARTITIONED BY ({', '.join(contract.partition_by)}) LOCATION '{url}'")
            spark.sql(f"ALTER TABLE {full} RECOVER PARTITIONS")
        else:
            spark.sql(f"ALTER TABLE {full} ADD IF NOT EXISTS PARTITION (run_date = DATE'{run_date.isoformat()}')")
        spark.sql(f"REFRESH TABLE {full}")


def sample_recommendations(spark: SparkSession, warehouse_root: str, run_date: dt.date, users: int) -> list[tuple]:
    """(user_id, [item ids best first]) for the first ``users`` users of a run, for demos and smoke checks."""
    recs = Warehouse(warehouse_root).read_partition(spark, RECOMMENDATIONS, run_date)
    first = recs.select("user_id").distinct().orderBy("user_id").limit(users)
    rows = (recs.join(first, "user_id").groupBy("user_id")
            .agg(F.sort_array(F.collect_list(F.struct("rank", "item_id"))).alias("r"))
            .orderBy("user_id").collect())
    return [(r.user_id, [x.item_id for x in r.r]) for r in rows]
