"""Raw input readers with explicit schemas, and the petastorm writer.

Paths, pointers, publish and commit points live in ``interest_tracker.layout`` (the
Spark driver's Hadoop helpers in ``layout.hadoop`` are re-exported here). A partition or
dataset is written to an ``_``-prefixed staging directory and renamed into place, so a
job killed mid-write leaves the previous version readable.
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import petastorm_metadata
from .contracts import load_contract
# Paths and publish have one implementation, in the layout package; re-exported for callers of ``io``.
from .layout.hadoop import (  # noqa: F401
    delete, exists, join, list_dirs, publish, read_json, read_table, read_text, rename, staging_url, to_url,
    write_json, write_partition, write_staged, write_text,
)

log = logging.getLogger(__name__)

RAW_FIELDS = ("user_id", "item_id", "event_type", "event_time", "session_id", "attributes")
CORRUPT_COLUMN = "_corrupt_record"
RAW_FORMATS = ("jsonl", "csv", "parquet")


# --------------------------------------------------------------------------- raw input

def _raw_string_schema(with_corrupt: bool) -> T.StructType:
    fields = [T.StructField(f, T.StringType(), True) for f in RAW_FIELDS]
    if with_corrupt:
        fields.append(T.StructField(CORRUPT_COLUMN, T.StringType(), True))
    return T.StructType(fields)


_PARQUET_ALLOWED = {
    "user_id": {"string"},
    "item_id": {"string", "bigint", "int"},
    "event_type": {"string"},
    "event_time": {"string", "bigint", "double", "int", "timestamp"},
    "session_id": {"string", "bigint", "int"},
    "attributes": {"string", "map<string,string>"},
}


def read_raw(spark: SparkSession, url: str, fmt: str) -> DataFrame:
    """Read raw logs into the raw event contract: string columns + ``raw_record``.

    JSON lines and CSV are read with an all-string schema and PERMISSIVE mode, so a
    line that does not parse is kept (``_corrupt_record``) and rejected as MALFORMED
    downstream, never dropped. Parquet has no malformed rows; its column types are
    checked against the contract (never inferred into something else) and cast to
    string. ``raw_record`` holds the original line for malformed rows and the record's
    fields as JSON otherwise.
    """
    if fmt not in RAW_FORMATS:
        raise ValueError(f"input.format must be one of {RAW_FORMATS}, got {fmt!r}")
    if fmt == "jsonl":
        df = (spark.read.schema(_raw_string_schema(True))
              .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
              .json(url))
    elif fmt == "csv":
        df = (spark.read.schema(_raw_string_schema(True))
              .option("header", "true").option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
              .option("multiLine", "false").option("escape", '"')
              .csv(url))
    else:
        df = _read_raw_parquet(spark, url)
    fields = F.struct(*[F.col(f) for f in RAW_FIELDS])
    return df.select(
        *RAW_FIELDS,
        F.col(CORRUPT_COLUMN).isNotNull().alias("malformed"),
        F.coalesce(F.col(CORRUPT_COLUMN), F.to_json(fields)).alias("raw_record"),
    )


def _read_raw_parquet(spark: SparkSession, url: str) -> DataFrame:
    # Parquet files carry their own schema; we check it against the contract instead
    # of trusting it, and fail with the offending column rather than guess.
    df = spark.read.parquet(url)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    for name in ("user_id", "item_id", "event_type", "event_time"):
        if name not in types:
            raise ValueError(f"parquet input {url} has no column '{name}'; the raw contract is schemas/raw_event.json")
    cols = []
    for name in RAW_FIELDS:
        if name not in types:
            cols.append(F.lit(None).cast("string").alias(name))
            continue
        if types[name] not in _PARQUET_ALLOWED[name]:
            raise ValueError(
                f"parquet column '{name}' has type {types[name]}; allowed: {sorted(_PARQUET_ALLOWED[name])} "
                "(schemas/raw_event.json); cast it upstream or convert with jobs/import_logs.py"
            )
        c = F.col(name)
        if types[name] == "timestamp":
            c = F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
        elif types[name].startswith("map"):
            c = F.to_json(c)
        cols.append(c.cast("string").alias(name))
    return df.select(*cols, F.lit(None).cast("string").alias(CORRUPT_COLUMN))


# --------------------------------------------------------------------------- petastorm

def sequences_unischema(window_length: int):
    """Unischema of the sequences contract, so ``make_reader`` can read it too."""
    import numpy as np
    from petastorm.codecs import ScalarCodec
    from petastorm.unischema import Unischema, UnischemaField

    contract = load_contract("sequences")
    fields = []
    for f in contract.fields:
        t = f["type"]
        if t == "string":
            fields.append(UnischemaField(f["name"], np.str_, (), ScalarCodec(T.StringType()), False))
        elif t == "int":
            fields.append(UnischemaField(f["name"], np.int32, (), ScalarCodec(T.IntegerType()), False))
        elif t == "array<int>":
            fields.append(UnischemaField(f["name"], np.int32, (window_length,), None, False))
        elif t == "array<float>":
            fields.append(UnischemaField(f["name"], np.float32, (window_length,), None, False))
        else:
            raise ValueError(f"sequences contract type {t} has no petastorm mapping")
    return Unischema("InterestSequence", fields)


def write_petastorm_splits(df: DataFrame, final_urls: Mapping[str, str], window_length: int, num_row_groups: int,
                           split_col: str = "split", sort_cols: Iterable[str] = ("window_id",)) -> dict[str, str]:
    """Write one Petastorm dataset per value of ``split_col`` (a key of ``final_urls``) in one Spark job.

    One Parquet file per Spark partition and split, each a single row group (the row-group
    size limit is set far above a partition's size), so ``num_row_groups`` directly controls
    how many shards petastorm can hand out per split: use at least 4 per rank. Rows are
    hash-partitioned and sorted by window_id so reruns write identical files; the split is a
    directory of the write, not a stored column. Each dataset is staged and published
    atomically. Issue 10: one pass over the windows instead of one write per split. A split
    without rows gets an empty dataset, as a write of no rows would.
    """
    contract = load_contract("sequences")
    df = (contract.conform(df, keep=(split_col,)).repartition(num_row_groups, "window_id")
          .sortWithinPartitions(split_col, *sort_cols))
    spark = df.sparkSession
    parents = {url.rstrip("/").rpartition("/")[0] for url in final_urls.values()}
    if len(parents) != 1:
        raise ValueError(f"the split datasets must share one parent directory, got {sorted(parents)}")
    parent = parents.pop()
    staged = {split: staging_url(parent, url.rstrip("/").rpartition("/")[2]) for split, url in final_urls.items()}
    together = staging_url(parent, "_splits")
    schema = sequences_unischema(window_length)
    # The context writes each dataset's petastorm metadata on exit, after the files are in place.
    with petastorm_metadata.materialize_datasets(spark, {url: schema for url in staged.values()}, 1024):
        df.write.mode("overwrite").partitionBy(split_col).option("compression", "snappy").parquet(together)
        for split, staging in staged.items():
            part = join(together, f"{split_col}={split}")
            if exists(spark, part):
                rename(spark, part, staging)
            else:
                spark.createDataFrame([], contract.spark_schema()).write.mode("overwrite").parquet(staging)
    delete(spark, together)
    for split, staging in staged.items():
        publish(spark, staging, final_urls[split])
    return dict(final_urls)
