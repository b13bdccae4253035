"""The Spark driver's side of the filesystem layer: Hadoop's FileSystem through the JVM.

Spark writes tables through Hadoop, so the driver moves and renames what Spark wrote
with the same FileSystem (``file:``, ``hdfs:``, ``s3a:`` with the cluster's jars); the
driver and the executors then agree on what a URL means. This module holds the ONE
"write to staging, then rename into place" implementation (``publish``) and the partition
writer built on it; ``interest_tracker.io`` re-exports these names for older callers.

A partition is written to ``<table>/_staging/<name>-<uuid>`` and renamed to
``<table>/<name>``. A job killed mid-write leaves only a staging directory (ignored by
readers because it starts with ``_``).
"""
from __future__ import annotations

import json
import logging
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..contracts import load_contract
from .fs import join, to_url

log = logging.getLogger(__name__)

__all__ = ["to_url", "join", "exists", "delete", "list_dirs", "write_text", "read_text", "write_json", "read_json",
           "rename", "staging_url", "publish", "write_partition", "read_table", "conform_partition"]


def _fs(spark: SparkSession, url: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def _path(spark: SparkSession, url: str):
    return spark.sparkContext._jvm.org.apache.hadoop.fs.Path(url)


def exists(spark: SparkSession, url: str) -> bool:
    fs, path = _fs(spark, url)
    return bool(fs.exists(path))


def delete(spark: SparkSession, url: str) -> None:
    fs, path = _fs(spark, url)
    if fs.exists(path):
        fs.delete(path, True)


def mkdirs(spark: SparkSession, url: str) -> None:
    fs, path = _fs(spark, url)
    fs.mkdirs(path)


def list_dirs(spark: SparkSession, url: str) -> list[str]:
    """Names of the sub-directories of ``url`` (empty when it does not exist)."""
    fs, path = _fs(spark, url)
    if not fs.exists(path):
        return []
    return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory())


def list_files(spark: SparkSession, url: str) -> list[str]:
    """Names of the files directly under ``url`` (empty when it does not exist)."""
    fs, path = _fs(spark, url)
    if not fs.exists(path):
        return []
    return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isFile())


def rename(spark: SparkSession, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (parent created); raises when the filesystem refuses."""
    fs, s = _fs(spark, src)
    d = _path(spark, dst)
    parent = d.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(s, d):
        raise IOError(f"could not rename {src} to {dst}")


def write_text(spark: SparkSession, url: str, text: str) -> None:
    """Write a small text file atomically (temp file + rename)."""
    fs, path = _fs(spark, url)
    tmp = _path(spark, url + f".tmp-{uuid.uuid4().hex}")
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


def staging_url(table_url: str, name: str) -> str:
    return join(table_url, "_staging", f"{name}-{uuid.uuid4().hex[:12]}")


def publish(spark: SparkSession, staging: str, final: str) -> None:
    """Replace ``final`` with ``staging``: move the old one aside, rename, then delete it.

    Between the two renames the partition is briefly absent, never half-written. For
    several partitions that must change together, use ``layout.commit.commit_run``.
    """
    fs, final_path = _fs(spark, final)
    staging_path = _path(spark, staging)
    old = None
    if fs.exists(final_path):
        old = _path(spark, final + f".old-{uuid.uuid4().hex[:12]}")
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
    remove_empty_parent(spark, staging)
    log.info("published %s", final)


def remove_empty_parent(spark: SparkSession, url: str) -> None:
    fs, path = _fs(spark, url)
    parent = path.getParent()
    if parent is not None and fs.exists(parent) and len(fs.listStatus(parent)) == 0:
        fs.delete(parent, False)


def conform_partition(df: DataFrame, contract_name: str) -> DataFrame:
    """Columns of ``schemas/<name>.json`` minus the partition columns (they live in the directory name)."""
    contract = load_contract(contract_name)
    cols = [c for c in contract.columns if c not in contract.partition_by]
    schema = {f.name: f.dataType for f in contract.spark_schema().fields}
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{contract_name}: missing columns {missing}; see schemas/{contract_name}.json")
    return df.select([F.col(c).cast(schema[c]).alias(c) for c in cols])


def write_staged(df: DataFrame, table_url: str, partition: str, contract_name: str | None = None) -> str:
    """Write ``df`` to a new staging directory of ``table_url``; return its URL (nothing is published)."""
    if contract_name:
        df = conform_partition(df, contract_name)
    staging = staging_url(table_url, partition)
    df.write.mode("overwrite").parquet(staging)
    return staging


def write_partition(df: DataFrame, table_url: str, partition: str, contract_name: str | None = None) -> str:
    """Write ``df`` as Parquet partition ``table_url/partition`` (e.g. ``run_date=2026-11-28``), atomically.

    With ``contract_name``, the columns are conformed to ``schemas/<name>.json`` first.
    """
    staging = write_staged(df, table_url, partition, contract_name)
    final = join(table_url, partition)
    publish(df.sparkSession, staging, final)
    return final


def read_table(spark: SparkSession, table_url: str, contract_name: str) -> DataFrame:
    """Read a run_date-partitioned table with its contract schema (never inferred)."""
    contract = load_contract(contract_name)
    return spark.read.schema(contract.spark_schema()).parquet(table_url)
