"""Stage 1 orchestration: the I/O edge around the pure transforms of this package.

One persisted frame carries every valid row tagged with its fate (duplicate, quarantined,
low support, clean), so the raw input is parsed once and the events are shuffled by user
once for dedupe, bot detection and sessions; the counts of the run report come from
that frame and reconcile exactly with the input.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import io
from ..config import to_dict
from . import bots, clean, dedupe, features, report, sequences, sessionize, support, vocabulary
from .config import PrepareConfig

log = logging.getLogger(__name__)


class Layout:
    """URLs of stage-1 outputs under ``output_root`` (docs/architecture.md)."""

    def __init__(self, output_root: str, run_date: dt.date):
        self.root = io.to_url(output_root)
        self.run_date = run_date
        self.partition = f"run_date={run_date.isoformat()}"

    def table(self, name: str) -> str:
        return io.join(self.root, name)

    @property
    def vocabulary(self) -> str:
        return io.join(self.root, "vocabulary")

    @property
    def sequences(self) -> str:
        return io.join(self.root, "sequences", self.partition)

    @property
    def report(self) -> str:
        return io.join(self.root, "reports", self.partition, "report.json")


def _counts(df: DataFrame, col: str) -> dict:
    return {r[0]: int(r[1]) for r in df.groupBy(col).count().collect() if r[0] is not None}


def latest_vocabulary(spark: SparkSession, layout: Layout) -> tuple[DataFrame | None, int]:
    """(latest vocabulary, its version) or (None, 0) on the first run."""
    pointer = io.join(layout.vocabulary, "_LATEST")
    if not io.exists(spark, pointer):
        return None, 0
    version = int(io.read_text(spark, pointer).strip())
    df = io.read_table(spark, io.join(layout.vocabulary, f"version={version}"), "vocabulary")
    return df, version


def run_prepare(spark: SparkSession, cfg: PrepareConfig, run_date: dt.date) -> dict:
    """Run stage 1 for ``run_date``; return the run report (also written as JSON)."""
    layout = Layout(cfg.output_root, run_date)
    started = dt.datetime.now(dt.timezone.utc)
    cc = cfg.cleaning

    raw = io.read_raw(spark, io.to_url(cfg.input.path), cfg.input.format)
    validated = clean.validate(raw, cc, run_date).persist(StorageLevel.MEMORY_AND_DISK)
    validation_counts = _counts(validated.fillna({"reject_reason": "_VALID"}), "reject_reason")
    input_rows = sum(validation_counts.values())
    n_valid = validation_counts.pop("_VALID", 0)
    log.info("read %d rows (%d valid)", input_rows, n_valid)

    valid = validated.where(F.col("reject_reason").isNull()).select(
        "user_id", "item_id", "event_type", "event_time", F.col("session_id").alias("input_session_id"),
        "attributes", "raw_record",
    )
    tagged = (valid.transform(dedupe.tag_duplicates).transform(lambda d: bots.tag_bots(d, cc))
              .persist(StorageLevel.MEMORY_AND_DISK))
    duplicate_counts = _counts(tagged, "duplicate_kind")
    kept = tagged.where(F.col("duplicate_kind").isNull())
    quarantined = kept.where(F.col("quarantine_reason").isNotNull())
    quarantine_counts = _counts(quarantined, "quarantine_reason")

    supported = (kept.where(F.col("quarantine_reason").isNull())
                 .transform(lambda d: clean.with_event_weights(d, cc))
                 .transform(clean.with_event_id)
                 .transform(lambda d: support.tag_low_support(d, cc)))
    low_support = supported.where(F.col("support_reason").isNotNull())
    events = (sessionize.sessionize(supported.where(F.col("support_reason").isNull()), cfg.sessions)
              .persist(StorageLevel.MEMORY_AND_DISK))
    support_counts = _counts(low_support, "support_reason") if (cc.min_item_support or cc.min_user_events) else {}

    # ---- writes (each partition atomically)
    rejected = validated.where(F.col("reject_reason").isNotNull()).select("raw_record", "reject_reason", "reject_detail")
    if support_counts:
        rejected = rejected.unionByName(low_support.select(
            "raw_record", F.col("support_reason").alias("reject_reason"),
            F.lit("below the minimum-support threshold").alias("reject_detail")))
    io.write_partition(rejected, layout.table("rejected"), layout.partition, "rejected_events")
    io.write_partition(quarantined, layout.table("quarantine"), layout.partition, "quarantined_events")
    events_url = io.write_partition(events, layout.table("events"), layout.partition, "clean_events")
    sessions_url = io.write_partition(sessionize.sessions_table(events), layout.table("sessions"), layout.partition,
                                      "sessions")

    # The clean count is read back from what was written, so the reconciliation below
    # checks the output itself, not a number computed beside it.
    written_events = spark.read.parquet(events_url)
    n_clean = written_events.count()
    counts = {
        "input_rows": input_rows,
        "clean": n_clean,
        "rejected": {**validation_counts, **support_counts},
        "duplicates": duplicate_counts,
        "quarantined": quarantine_counts,
    }
    rep = {
        "stage": "prepare",
        "run_date": run_date.isoformat(),
        "input": {"path": cfg.input.path, "format": cfg.input.format},
        "output_root": layout.root,
        "counts": counts,
        "config": to_dict(cfg),
    }
    report.reconcile(rep)
    written_sessions = spark.read.parquet(sessions_url)
    stats = written_events.agg(F.min("event_time"), F.max("event_time"), F.approx_count_distinct("item_id")).first()
    rep["stats"] = {"users": written_sessions.select("user_id").distinct().count(),
                    "sessions": written_sessions.count(),
                    "items_approx": int(stats[2]),
                    "first_event": str(stats[0]), "last_event": str(stats[1])}
    log.info("cleaned and sessionized in %.1f s", (dt.datetime.now(dt.timezone.utc) - started).total_seconds())

    if cfg.write_sequences and n_clean > 0:
        rep["sequences"] = write_sequences(spark, cfg, layout, events)
    rep["outputs"] = {name: layout.table(name) for name in ("events", "rejected", "quarantine", "sessions")}
    rep["outputs"].update(vocabulary=layout.vocabulary, sequences=layout.sequences, report=layout.report)
    rep["elapsed_s"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1)
    io.write_json(spark, layout.report, rep)
    for df in (events, tagged, validated):
        df.unpersist()
    log.info("run report: %s", json.dumps(rep["counts"]))
    return rep


def history_events(spark: SparkSession, layout: Layout, run_events: DataFrame, history: str) -> DataFrame:
    """This run's events, plus earlier run dates' when ``history == 'all'``."""
    if history == "run":
        return run_events
    earlier = [p for p in io.list_dirs(spark, layout.table("events"))
               if p.startswith("run_date=") and p < layout.partition]
    if not earlier:
        return run_events
    past = (io.read_table(spark, layout.table("events"), "clean_events")
            .where(F.col("run_date") < F.lit(layout.run_date.isoformat()).cast("date")).drop("run_date"))
    return past.unionByName(run_events.select(*past.columns))


def write_sequences(spark: SparkSession, cfg: PrepareConfig, layout: Layout, run_events: DataFrame) -> dict:
    """Vocabulary (append-only) + per-split Petastorm datasets + item_stats + dataset_info.json."""
    sc = cfg.sequences
    previous, version = latest_vocabulary(spark, layout)
    vocab, n_new = vocabulary.extend_vocabulary(run_events, previous, version + 1)
    if n_new or previous is None:
        version += 1
        io.write_partition(vocab, layout.vocabulary, f"version={version}", "vocabulary")
        io.write_text(spark, io.join(layout.vocabulary, "_LATEST"), f"{version}\n")
        vocab = io.read_table(spark, io.join(layout.vocabulary, f"version={version}"), "vocabulary")
    vocab = vocab.persist()
    vocab_size = int(vocab.agg(F.max("item_index")).first()[0]) + 1
    log.info("vocabulary version %d: %d indexes (%d new items)", version, vocab_size, n_new)

    events = history_events(spark, layout, run_events, sc.history)
    names = [e.name for e in cfg.cleaning.event_types]
    feats = features.with_sequence_features(events, vocab, names)
    valid_start, test_start = sequences.resolve_cutoffs(events, sc)
    split_feats = sequences.assign_splits(feats, valid_start, test_start, sc.split_by).persist(StorageLevel.MEMORY_AND_DISK)

    info = {
        "run_date": layout.run_date.isoformat(), "window_length": sc.window_length,
        "train_stride": sc.train_stride_, "eval_stride": sc.eval_stride_, "num_items": vocab_size,
        "num_event_types": len(names) + 1, "event_types": names, "vocab_version": version,
        "valid_start": valid_start.isoformat(), "test_start": test_start.isoformat(), "split_by": sc.split_by,
        "rows": {}, "targets": {}, "row_groups": {},
    }
    for split in sequences.SPLITS:
        stride = sc.train_stride_ if split == "train" else sc.eval_stride_
        windows = sequences.build_windows(split_feats, split, sc.window_length, stride)
        url = io.join(layout.sequences, split)
        io.write_petastorm(windows, url, sc.window_length, sc.num_row_groups)
        written = spark.read.parquet(url)
        agg = written.agg(F.count(F.lit(1)), F.sum("num_targets")).first()
        info["rows"][split] = int(agg[0])
        info["targets"][split] = int(agg[1] or 0)
        info["row_groups"][split] = len(written.inputFiles())
        log.info("%s windows: %d rows, %d targets", split, info["rows"][split], info["targets"][split])
    stats = sequences.item_train_counts(split_feats, vocab).coalesce(1)
    io.write_partition(stats, layout.sequences, "item_stats")
    info["fingerprint"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    io.write_json(spark, io.join(layout.sequences, "dataset_info.json"), info)
    split_feats.unpersist()
    vocab.unpersist()
    return info
