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
from .config import InputError
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
REQUIRED_RAW_FIELDS = ("user_id", "item_id", "event_type", "event_time")
_PARSED = "_parsed"


# --------------------------------------------------------------------------- raw input

def _raw_string_schema(with_corrupt: bool) -> T.StructType:
    fields = [T.StructField(f, T.StringType(), True) for f in RAW_FIELDS]
    if with_corrupt:
        fields.append(T.StructField(CORRUPT_COLUMN, T.StringType(), True))
    return T.StructType(fields)


_PARQUET_ALLOWED = {
    "user_id": {"string", "bigint", "int"},
    "item_id": {"string", "bigint", "int"},
    "event_type": {"string"},
    "event_time": {"string", "bigint", "double", "int", "timestamp"},
    "session_id": {"string", "bigint", "int"},
    "attributes": {"string", "map<string,string>"},
}


def read_raw(spark: SparkSession, url: str, fmt: str) -> DataFrame:
    """Read raw logs into the raw event contract: string columns + ``malformed`` + ``raw_record``.

    Every input record becomes exactly one row, so the run report's input count is the
    number of records in the files: a record that does not parse is kept (``malformed``)
    and rejected as MALFORMED downstream, never dropped, split or merged. Files in
    subdirectories of ``url`` are read too. Parquet has no malformed rows; its column types
    are checked against the contract (never inferred into something else) and cast to
    string. ``raw_record`` holds the original line for malformed rows and the record's
    fields as JSON otherwise. Input that no row can stand for (a CSV header or a Parquet
    schema outside the contract) raises :class:`InputError`, which names the fix.
    """
    if fmt not in RAW_FORMATS:
        raise ValueError(f"input.format must be one of {RAW_FORMATS}, got {fmt!r}")
    # A missing path stays Spark's error (exit 1): on a schedule it is most often a day whose
    # files have not landed yet, which a retry fixes.
    if fmt == "jsonl":
        df = _read_raw_jsonl(spark, url)
    elif fmt == "csv":
        df = _read_raw_csv(spark, url)
    else:
        df = _read_raw_parquet(spark, url)
    fields = F.struct(*[F.col(f) for f in RAW_FIELDS])
    return df.select(
        *RAW_FIELDS,
        F.col(CORRUPT_COLUMN).isNotNull().alias("malformed"),
        F.coalesce(F.col(CORRUPT_COLUMN), F.to_json(fields)).alias("raw_record"),
    )


def explain_read_error(error: BaseException) -> InputError | None:
    """The fix for a raw-input error that shows only as the files are read, or None.

    A CSV file whose header differs from the first file's is found by the first pass over
    the input (``_read_raw_csv`` raises it in a task); this turns that task failure into
    an input error that names the file.
    """
    text = str(error)
    marker = "CSV header does not conform to the first file's header"
    if marker not in text:
        return None
    found = text[text.index(marker):].splitlines()[0]
    return InputError(f"{found}; every file needs the same header row naming the raw contract's columns "
                      "(schemas/raw_event.json)")


def _text_lines(spark: SparkSession, url: str) -> DataFrame:
    """The non-blank lines (``value``) of every file under ``url``, subdirectories included;
    Spark keeps each line's bytes as they are in the file."""
    line = F.col("value")
    return spark.read.option("recursiveFileLookup", "true").text(url).where(~line.rlike("^\\s*$"))


def _valid_utf8(line):
    """True where the line's bytes are valid UTF-8 (decoding would replace nothing)."""
    return F.decode(line.cast("binary"), "UTF-8") == line


def _read_raw_jsonl(spark: SparkSession, url: str) -> DataFrame:
    # Spark's JSON reader makes rows of what a line holds, not of the line: a line with two
    # objects (a lost newline upstream) or an array gives one or many rows, or none for
    # ``[]``, and text after the first object is ignored, all silently. So each non-blank
    # line is parsed as the one element of a JSON array: exactly one object, or MALFORMED.
    # Spark strings keep the file's bytes; a line that is not valid UTF-8 is MALFORMED too,
    # with its bytes kept as evidence (clean.evidence_columns).
    line = F.col("value")
    lines = _text_lines(spark, url)
    schema = T.ArrayType(_raw_string_schema(False))
    # Parsed in a projection of its own, which the columns below read, so that the plan
    # parses each line once however many of them read it (a parse costs more than the
    # rest of the reader: docs/benchmarks.md, stage 1, seventeenth session).
    parsed = lines.select(line, F.from_json(F.concat(F.lit("["), line, F.lit("]")), schema,
                                            {"mode": "PERMISSIVE"}).alias(_PARSED))
    p = F.col(_PARSED)
    one = (F.size(p) == 1) & p[0].isNotNull() & _valid_utf8(line)
    return parsed.select(
        *[F.when(one, p[0][f]).alias(f) for f in RAW_FIELDS],
        F.when(~one, line).alias(CORRUPT_COLUMN),
    )


def _read_raw_csv(spark: SparkSession, url: str) -> DataFrame:
    # Each non-blank line is one record, parsed on its own (``from_csv``), so the reader
    # sees the line itself:
    # * columns are taken by the header's names (the first file's header; any order, the
    #   optional columns may be missing); each file's header line is dropped, a file
    #   without one loses no row, and a header line with other names fails the run
    #   (``raise_error``, in the first pass) instead of shifting a file's columns;
    # * a line with an odd number of quote characters is MALFORMED: a quoted field that
    #   does not close on its line (a line break inside quotes, or a stray quote) would
    #   otherwise be accepted cut short, and the rest of it read as another record;
    # * a line that is not valid UTF-8 is MALFORMED, its bytes kept as evidence (the CSV
    #   reader would have replaced them by U+FFFD, merging different ids).
    names = _csv_header(spark, url)
    line = F.col("value")
    lines = _text_lines(spark, url)
    ddl = ", ".join(f"{n} string" for n in names) + f", {CORRUPT_COLUMN} string"
    parse = F.from_csv(line, ddl, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN, "escape": '"'})

    # Only a line naming user_id and event_time can be a header, so other lines pay for no
    # header check (a CASE WHEN does not evaluate the branches it skips). The file's own
    # header line is dropped; one with other names stops the run here, in the first pass.
    named = line.contains("user_id") & line.contains("event_time")
    values = [F.regexp_replace(F.trim(parse[n]), "^\ufeff", "") for n in names]
    own_header = F.lit(True)
    for n, v in zip(names, values):
        own_header = own_header & F.coalesce(v == n, F.lit(False))
    header_like = F.array_contains(F.array(*values), "user_id") & F.array_contains(F.array(*values), "event_time")
    failure = F.raise_error(F.concat(
        F.lit("CSV header does not conform to the first file's header ("), F.lit(",".join(names)),
        F.lit("): found '"), F.substring(line, 1, 300), F.lit("' in "), F.input_file_name()))
    keep = (F.when(~named, F.lit(True)).when(own_header, F.lit(False))
            .when(header_like, failure.cast("boolean")).otherwise(F.lit(True)))
    # Parsed once, in a projection of its own (see _read_raw_jsonl).
    parsed = lines.where(keep).select(line, parse.alias(_PARSED))
    p = F.col(_PARSED)
    odd_quotes = F.when(line.contains('"'),
                        (F.length(line) - F.length(F.translate(line, '"', ""))) % 2 == 1).otherwise(F.lit(False))
    bad = p[CORRUPT_COLUMN].isNotNull() | odd_quotes | ~_valid_utf8(line)
    return parsed.select(
        *[F.when(~bad, p[f]).alias(f) if f in names else F.lit(None).cast("string").alias(f) for f in RAW_FIELDS],
        F.when(bad, line).alias(CORRUPT_COLUMN),
    )


def _csv_header(spark: SparkSession, url: str) -> list[str]:
    try:
        header = (spark.read.option("header", "true").option("inferSchema", "false")
                  .option("recursiveFileLookup", "true").option("escape", '"').csv(url).columns)
    except Exception as e:  # noqa: BLE001 - Spark cannot name columns of empty input
        if "Unable to infer schema" not in str(e):
            raise
        header = []
    if not header:
        return list(RAW_FIELDS)  # nothing to read: every file is empty
    names = [h.strip().lstrip("\ufeff").strip() for h in header]
    contract = ", ".join(RAW_FIELDS)
    unknown = [n for n in names if n not in RAW_FIELDS]
    missing = [n for n in REQUIRED_RAW_FIELDS if n not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise InputError(
            f"CSV input {url}: the first line must be a header naming the raw contract's columns ({contract}; "
            f"session_id and attributes are optional, in any order), got {header}"
            + (f"; unknown: {unknown}" if unknown else "") + (f"; missing: {missing}" if missing else "")
            + ". Add or fix the header row (schemas/raw_event.json).")
    return names


def _read_raw_parquet(spark: SparkSession, url: str) -> DataFrame:
    # Parquet files carry their own schema; we check it against the contract instead
    # of trusting it, and fail with the offending column rather than guess. The files'
    # schemas are merged, so a column only some files have is read from those files.
    try:
        df = spark.read.option("mergeSchema", "true").option("recursiveFileLookup", "true").parquet(url)
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    except Exception as e:  # noqa: BLE001 - Spark's schema errors, turned into the fix
        text = str(e)
        if "Unable to infer schema" in text:  # no Parquet file (an empty day): no rows
            return spark.createDataFrame([], _raw_string_schema(True))
        if "TIMESTAMP(NANOS" in text:
            raise InputError(
                f"parquet input {url} has a nanosecond timestamp column, which Spark 3.5 cannot read; write "
                "microseconds instead (pandas: df.to_parquet(..., coerce_timestamps='us', "
                "allow_truncated_timestamps=True); pyarrow: pq.write_table(..., coerce_timestamps='us'))") from e
        if "Failed to merge" in text or "incompatible" in text.lower():
            lines = text.splitlines()
            first = next((ln.strip() for ln in lines if "incompatible data types" in ln), lines[0] if lines else "")
            raise InputError(
                f"parquet input {url}: the files disagree on a column's type ({first[:300]}); write every file "
                "with the raw contract's types (schemas/raw_event.json)") from e
        raise
    for name in REQUIRED_RAW_FIELDS:
        if name not in types:
            raise InputError(f"parquet input {url} has no column '{name}'; the raw contract is schemas/raw_event.json")
    cols = []
    for name in RAW_FIELDS:
        if name not in types:
            cols.append(F.lit(None).cast("string").alias(name))
            continue
        if types[name] not in _PARQUET_ALLOWED[name]:
            raise InputError(
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
