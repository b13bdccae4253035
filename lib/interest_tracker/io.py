"""Every read and write of the pipeline: explicit schemas, URL paths, atomic publish.

Paths are URLs (``file://``, ``hdfs://``, ``s3a://``) or local paths; filesystem
operations go through Hadoop's FileSystem API on the driver JVM, so the same code works
on a laptop and on a cluster where the driver's disk is not the executors'.

Atomic publish: a partition is written to ``<table>/_staging/<name>-<uuid>`` and then
renamed to ``<table>/<name>``. A job killed mid-write leaves only a staging directory
(ignored by readers because it starts with ``_``), so the previous partition stays
readable and a rerun replaces it whole.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .contracts import load_contract

log = logging.getLogger(__name__)

RAW_FIELDS = ("user_id", "item_id", "event_type", "event_time", "session_id", "attributes")
CORRUPT_COLUMN = "_corrupt_record"
RAW_FORMATS = ("jsonl", "csv", "parquet")


# --------------------------------------------------------------------------- paths

def to_url(path: str) -> str:
    """Local paths become ``file://`` URLs; URLs pass through unchanged."""
    if "://" in path:
        return path
    import os

    return "file://" + os.path.abspath(path)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])


def _fs(spark: SparkSession, url: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, url: str) -> bool:
    fs, path = _fs(spark, url)
    return bool(fs.exists(path))


def delete(spark: SparkSession, url: str) -> None:
    fs, path = _fs(spark, url)
    if fs.exists(path):
        fs.delete(path, True)


def list_dirs(spark: SparkSession, url: str) -> list[str]:
    """Names of the sub-directories of ``url`` (empty when it does not exist)."""
    fs, path = _fs(spark, url)
    if not fs.exists(path):
        return []
    return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory())


def write_text(spark: SparkSession, url: str, text: str) -> None:
    """Write a small text file atomically (temp file + rename)."""
    fs, path = _fs(spark, url)
    jvm = spark.sparkContext._jvm
    tmp = jvm.org.apache.hadoop.fs.Path(url + f".tmp-{uuid.uuid4().hex}")
    out = fs.create(tmp, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    if fs.exists(path):
        fs.delete(path, False)
    if not fs.rename(tmp, path):
        raise IOError(f"could not rename {tmp} to {url}")


def read_text(spark: SparkSession, url: str) -> str:
    fs, path = _fs(spark, url)
    jvm = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        while True:
            line = reader.readLine()
            if line is None:
                break
            lines.append(line)
        return "\n".join(lines)
    finally:
        stream.close()


def write_json(spark: SparkSession, url: str, obj) -> None:
    write_text(spark, url, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(spark: SparkSession, url: str):
    return json.loads(read_text(spark, url))


# --------------------------------------------------------------------------- publish

def staging_url(table_url: str, name: str) -> str:
    return join(table_url, "_staging", f"{name}-{uuid.uuid4().hex[:12]}")


def publish(spark: SparkSession, staging: str, final: str) -> None:
    """Replace ``final`` with ``staging``: move the old one aside, rename, then delete it.

    Between the two renames the partition is briefly absent, never half-written.
    """
    fs, final_path = _fs(spark, final)
    jvm = spark.sparkContext._jvm
    staging_path = jvm.org.apache.hadoop.fs.Path(staging)
    old = None
    if fs.exists(final_path):
        old = jvm.org.apache.hadoop.fs.Path(final + f".old-{uuid.uuid4().hex[:12]}")
        if not fs.rename(final_path, old):
            raise IOError(f"could not move {final} aside")
    parent = final_path.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(staging_path, final_path):
        if old is not None:
            fs.rename(old, final_path)
        raise IOError(f"could not publish {staging} as {final}")
    if old is not None:
        fs.delete(old, True)
    staging_parent = staging_path.getParent()
    if staging_parent is not None and fs.exists(staging_parent) and len(fs.listStatus(staging_parent)) == 0:
        fs.delete(staging_parent, False)
    log.info("published %s", final)


def write_partition(df: DataFrame, table_url: str, partition: str, contract_name: str | None = None) -> str:
    """Write ``df`` as Parquet partition ``table_url/partition`` (e.g. ``run_date=2026-11-28``), atomically.

    With ``contract_name``, the columns are conformed to ``schemas/<name>.json`` first
    (minus the partition columns, which live in the directory name).
    """
    if contract_name:
        contract = load_contract(contract_name)
        cols = [c for c in contract.columns if c not in contract.partition_by]
        schema = {f.name: f.dataType for f in contract.spark_schema().fields}
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{contract_name}: missing columns {missing}; see schemas/{contract_name}.json")
        df = df.select([F.col(c).cast(schema[c]).alias(c) for c in cols])
    spark = df.sparkSession
    staging = staging_url(table_url, partition)
    df.write.mode("overwrite").parquet(staging)
    final = join(table_url, partition)
    publish(spark, staging, final)
    return final


def read_table(spark: SparkSession, table_url: str, contract_name: str) -> DataFrame:
    """Read a run_date-partitioned table with its contract schema (never inferred)."""
    contract = load_contract(contract_name)
    return spark.read.schema(contract.spark_schema()).parquet(table_url)


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


def write_petastorm(df: DataFrame, final_url: str, window_length: int, num_row_groups: int,
                    sort_cols: Iterable[str] = ("window_id",)) -> str:
    """Write ``df`` as a Petastorm dataset with about ``num_row_groups`` row groups, atomically.

    One Parquet file per Spark partition, each a single row group (the row-group size
    limit is set far above a partition's size), so ``num_row_groups`` directly controls
    how many shards petastorm can hand out: use at least 4 per rank. Rows are
    hash-partitioned and sorted by window_id so reruns write identical files.
    """
    from petastorm.etl.dataset_metadata import materialize_dataset

    contract = load_contract("sequences")
    df = contract.conform(df).repartition(num_row_groups, "window_id").sortWithinPartitions(*sort_cols)
    spark = df.sparkSession
    parent, _, name = final_url.rstrip("/").rpartition("/")
    staging = staging_url(parent, name)
    with materialize_dataset(spark, staging, sequences_unischema(window_length), row_group_size_mb=1024):
        df.write.mode("overwrite").option("compression", "snappy").parquet(staging)
    publish(spark, staging, final_url)
    return final_url
