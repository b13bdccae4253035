"""Shared by the importers: read text lines and split them into a fixed number of fields.

Reading lines as text (instead of Spark's CSV reader) keeps the decision about a
bad line here, explicit and tested: a line either has exactly the expected fields
or is passed on whole, as ``{"raw_line": ...}``, for the cleaner to reject.
"""
from __future__ import annotations

from typing import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..contracts import load_contract


def read_lines(spark: SparkSession, url: str, skip_line: str | None = None) -> DataFrame:
    """Lines of the files at ``url`` (a file, a directory or a glob; .gz is read too),
    with a trailing carriage return removed; lines equal to ``skip_line`` (a header,
    once per file) are dropped."""
    lines = spark.read.text(url).select(F.regexp_replace("value", "\r$", "").alias("line"))
    if skip_line is not None:
        lines = lines.where(F.col("line") != skip_line)
    return lines


def split_to_raw(lines: DataFrame, separator_regex: str, num_fields: int,
                 to_raw: Callable[[Callable[[int], Column]], dict[str, Column]]) -> DataFrame:
    """Split each line on ``separator_regex``; ``to_raw(field)`` maps fields to raw
    contract columns for well-formed lines. Other lines get nulls plus their raw text."""
    parts = F.split(F.col("line"), separator_regex, -1)
    ok = F.size(parts) == num_fields
    mapped = to_raw(lambda i: parts.getItem(i))
    contract = load_contract("raw_event")
    columns = []
    for name in contract.columns:
        value = mapped.get(name, F.lit(None))
        if name == "attributes":
            value = F.when(ok, value).otherwise(F.to_json(F.struct(F.col("line").alias("raw_line"))))
        else:
            value = F.when(ok, value)
        columns.append(value.cast("string").alias(name))
    return lines.select(*columns)
