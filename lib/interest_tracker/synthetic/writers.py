"""Writers for synthetic data: raw logs in the three input formats, plus the truth.

Layout under an output root: ``raw/`` (the logs), ``items/``, ``ground_truth/``
(Parquet), optionally ``event_truth/``, and ``injected.json`` (what the cleaner
should find). Malformed lines cannot be produced by Spark's JSON or CSV writers, so
they are collected on the driver (they are a small fraction) and written as one
extra file, ``part-malformed.*``, inside the same directory.

Text formats, as stage 1 must read them:
* jsonl: one JSON object per line, all values strings; null fields are omitted.
* csv: header ``user_id,item_id,event_type,event_time,session_id,attributes``, RFC 4180
  quoting (a quote inside a quoted field is doubled), so read with
  ``option("escape", '"')``; an empty unquoted field is null, ``""`` is the empty string.
"""
from __future__ import annotations

import json
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .config import RawFormat
from .generator import RAW_COLUMNS, SyntheticData

log = logging.getLogger(__name__)

CSV_HEADER = ",".join(RAW_COLUMNS)
MALFORMED_FILE = {"jsonl": "part-malformed.jsonl", "csv": "part-malformed.csv"}


def write_raw(data: SyntheticData, url: str, fmt: RawFormat, mode: str = "overwrite") -> dict[str, int]:
    """Write ``data.events`` (and, for text formats, the malformed lines) to ``url``.

    Returns the injected counts as written: for Parquet ``malformed`` is 0, because a
    Parquet file has no unparseable rows (a warning says so when some were configured).
    """
    spark = data.events.sparkSession
    counts = data.injected_counts()
    events = data.events
    if fmt == "parquet":
        events.write.mode(mode).parquet(url)
        if counts["malformed"]:
            log.warning("parquet output cannot hold malformed rows: the %d drawn are not written "
                        "(malformed count reported as 0)", counts["malformed"])
        counts["malformed"] = 0
        return counts
    if fmt == "jsonl":
        (events.select(F.to_json(F.struct(*RAW_COLUMNS)).alias("value"))
         .write.mode(mode).text(url))
        lines = _collect_lines(data.malformed, "json_line")
    elif fmt == "csv":
        events.write.mode(mode).option("header", True).option("escape", '"').csv(url)
        lines = _collect_lines(data.malformed, "csv_line")
        if lines:
            lines = [CSV_HEADER] + lines
    else:
        raise ValueError(f"unknown raw format {fmt!r}; use one of jsonl, csv, parquet")
    if lines:
        write_text_file(spark, f"{url.rstrip('/')}/{MALFORMED_FILE[fmt]}", "\n".join(lines) + "\n")
    written = len(lines) - (1 if fmt == "csv" and lines else 0)
    if written != counts["malformed"]:
        raise RuntimeError(f"wrote {written} malformed lines but drew {counts['malformed']}; this is a bug")
    return counts


def write_synthetic(data: SyntheticData, out: str, fmt: RawFormat, write_event_truth: bool = False) -> dict[str, int]:
    """Write raw/, items/, ground_truth/ (and event_truth/) and injected.json under ``out``."""
    out = out.rstrip("/")
    counts = write_raw(data, f"{out}/raw", fmt)
    data.items.write.mode("overwrite").parquet(f"{out}/items")
    data.ground_truth.write.mode("overwrite").parquet(f"{out}/ground_truth")
    if write_event_truth:
        data.event_truth.write.mode("overwrite").parquet(f"{out}/event_truth")
    write_text_file(data.events.sparkSession, f"{out}/injected.json",
                    json.dumps({"format": fmt, "counts": counts}, indent=2, sort_keys=True) + "\n")
    return counts


def _collect_lines(malformed: DataFrame, column: str) -> list[str]:
    return [r[0] for r in malformed.orderBy("user_id", "event_index").select(column).collect()]


def write_text_file(spark: SparkSession, url: str, text: str) -> None:
    """Write one small text file at ``url`` through Hadoop's FileSystem (any scheme Spark reads)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
