"""Stage 1 orchestration: the I/O edge around the pure transforms of this package.

One pass parses the raw input, tags every valid row with its fate (duplicate,
quarantined, low support, clean), shuffles the events by user once for dedupe, bot
detection and sessions, and writes the events table; the fates and the input and
rejected counts are observed on the way (``Observation``), so the run report's counts
cost no extra pass and reconcile exactly with the input. The rejected and quarantine
tables read the input again only when that pass counted rows for them.

Every output of a run (the four table partitions, the vocabulary version and its
``_LATEST``, ``sequences/run_date=D``, the report) is written to staging first and made
visible together by ``layout.commit.commit_run``: the run manifest
``{output_root}/_manifests/run_date=D.json``, written last, is the run's commit point.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from .. import io
from ..config import to_dict
from ..layout import Stage1Layout, commit, hadoop
from ..layout.stage1 import ITEM_STATS
from . import bots, clean, dedupe, features, report, sequences, sessionize, support, vocabulary
from .config import PrepareConfig

log = logging.getLogger(__name__)


Layout = Stage1Layout  # stage-1 paths live in the layout package


# The cached clean events: the clean_events contract without event_id (and run_date, the
# partition), plus event_us, the canonical order's key (prepare/ordering.py), and the sequence
# features the session pass computes (features.PASS_FEATURES), so that the run's windows are
# cut from the cache in its own partitions and order, without a second shuffle.
EVENT_CACHE_COLUMNS = ("user_id", "item_id", "event_type", "event_weight", "event_time", "session_id",
                       "input_session_id", "attributes", "event_us", "session_start", "pos", "log_gap")


def latest_vocabulary(spark: SparkSession, layout: Stage1Layout) -> tuple[DataFrame | None, int]:
    """(latest vocabulary, its version) or (None, 0) on the first run."""
    version = layout.latest_vocabulary_version(spark)
    if version == 0:
        return None, 0
    return layout.read_vocabulary(spark, version), version


class _Run:
    """What this run staged: ``(staging, final)`` moves, committed together at the end."""

    def __init__(self, spark: SparkSession, layout: Stage1Layout):
        self.spark, self.layout = spark, layout
        self.moves: list[tuple[str, str]] = []

    def table(self, df: DataFrame, name: str, contract: str) -> str:
        staging = hadoop.write_staged(df, self.layout.table(name), self.layout.partition, contract)
        self.moves.append((staging, self.layout.partition_url(name)))
        return staging

    def directory(self, final: str) -> str:
        parent, _, name = final.rstrip("/").rpartition("/")
        staging = hadoop.staging_url(parent, name)
        self.moves.append((staging, final))
        return staging

    def remove(self, final: str) -> None:
        """Remove ``final`` at the commit, if a previous run of this date wrote it."""
        if hadoop.exists(self.spark, final):
            self.moves.append((None, final))

    def discard(self) -> None:
        for staging, _ in self.moves:
            if staging is not None:
                hadoop.delete(self.spark, staging)
                hadoop.remove_empty_parent(self.spark, staging)


def run_prepare(spark: SparkSession, cfg: PrepareConfig, run_date: dt.date) -> dict:
    """Run stage 1 for ``run_date``; return the run report (also written as JSON)."""
    layout = Stage1Layout(cfg.output_root, run_date)
    commit.recover(spark, layout.root)  # roll back a run killed while publishing
    run = _Run(spark, layout)
    try:
        rep = _run_prepare(spark, cfg, layout, run)
        manifest = {"kind": "stage1-run", "run_date": run_date.isoformat(), "counts": rep["counts"],
                    "outputs": rep["outputs"], "sequences": rep.get("sequences")}
        commit.commit_run(spark, layout.root, layout.partition, run.moves, manifest)
    except BaseException as e:
        run.discard()
        explained = io.explain_read_error(e)
        if explained is not None:
            raise explained from e
        raise
    log.info("run report: %s", json.dumps(rep["counts"]))
    return rep


def _run_prepare(spark: SparkSession, cfg: PrepareConfig, layout: Stage1Layout, run: _Run) -> dict:
    run_date = layout.run_date
    started = dt.datetime.now(dt.timezone.utc)
    cc = cfg.cleaning
    clock = report.PhaseClock()

    raw = io.read_raw(spark, io.to_url(cfg.input.path), cfg.input.format)
    validated = clean.validate(raw, cc, run_date)
    if cfg.input.format != "parquet":
        # Text is parsed once and kept; Parquet is cheaper to read twice than to cache.
        validated = validated.persist(StorageLevel.MEMORY_AND_DISK)
    cached_input = validated
    # Input rows are counted by the first pass over the input itself (no extra action).
    seen = Observation("input")
    validated = validated.observe(seen, F.count(F.lit(1)).alias("rows"), F.count("reject_reason").alias("rejected"))

    # raw_record (the record's JSON, serialised per row) is evidence, kept only for rejected and
    # quarantined rows; the clean events' path does not carry it (about a tenth of the stage at
    # 10M events, issue 10): dedupe orders and compares the fields themselves (prepare/dedupe.py).
    # With the support filters on, the rejected table takes low-support rows from the tagged
    # frame, so then it carries the records.
    support_filters = bool(cc.min_item_support or cc.min_user_events)

    def tag(frame: DataFrame, *extra: str) -> DataFrame:
        # The one shuffle and sort of the stage: dedupe, bot rates, then (below) sessions and
        # features reuse this partitioning and order (prepare/ordering.py).
        valid = frame.where(F.col("reject_reason").isNull()).select(
            "user_id", "item_id", "event_type", "event_time", F.col("session_id").alias("input_session_id"),
            "attributes", *extra)
        return valid.transform(dedupe.tag_duplicates).transform(lambda d: bots.tag_bots(d, cc))

    tagged = tag(validated, *(["raw_record"] if support_filters else []))
    # Every valid row's fate is counted as the events pass goes by (no action of its own).
    # The tagged rows are read once on a day without quarantined users, so they are not
    # cached (issue 10: building that cache cost about as much as the pass itself); with
    # the support filters on, the rejected table reads them again, so then they are.
    fate = Observation("fates")
    tagged = tagged.observe(fate, *report.fate_metrics())
    if support_filters:
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
    kept = tagged.where(F.col("duplicate_kind").isNull())
    # The quarantined rows with their records: from the tagged cache when it holds them, else
    # from the input again (the quarantine table is written only on a day that has some).
    with_records = kept if support_filters else tag(cached_input, "raw_record").where(
        F.col("duplicate_kind").isNull())
    quarantined = with_records.where(F.col("quarantine_reason").isNotNull())
    supported = (kept.where(F.col("quarantine_reason").isNull())
                 .transform(lambda d: clean.with_event_weights(d, cc))
                 .transform(lambda d: support.tag_low_support(d, cc)))
    # The cache keeps what the events table, the sessions and the sequences read, and the
    # order key (event_us): not the raw records, nor the 64-character event id, which is
    # computed as the events table is written (10M ids were 640 MB of cached strings).
    # Only the cached columns go through the session pass's Python workers.
    to_number = supported.where(F.col("support_reason").isNull()).select(
        *[c for c in EVENT_CACHE_COLUMNS if c not in sessionize.OUTPUT_COLUMNS])
    events = (sessionize.sessionize(to_number, cfg.sessions)
              .select(*EVENT_CACHE_COLUMNS)
              .persist(StorageLevel.MEMORY_AND_DISK))

    # ---- writes (staged; committed together at the end). Evidence columns are safe for any bytes.
    # The first action: read, validate, dedupe, bot rates, sessions, the events cache and table.
    events_url = run.table(events.transform(clean.with_event_id), "events", "clean_events")
    fates = report.fates(fate.get)
    clock.lap("read, validate, dedupe, bot rates, sessions + events table")
    # That pass counted the rejected and the quarantined rows; a table with none (a clean
    # day's log) is written empty instead of reading and validating the input again.
    invalid = validated.where(F.col("reject_reason").isNotNull())
    if int(seen.get["rejected"]) == 0:
        invalid = spark.createDataFrame([], invalid.schema)
    rejected = invalid.select(
        *clean.evidence_columns(F.col("raw_record")), "reject_reason",
        clean.safe_text(F.col("reject_detail")).alias("reject_detail"))
    if support_filters:
        rejected = rejected.unionByName(supported.where(F.col("support_reason").isNotNull()).select(
            *clean.evidence_columns(F.col("raw_record")), F.col("support_reason").alias("reject_reason"),
            F.lit("below the minimum-support threshold").alias("reject_detail")))
    rejected_url = run.table(rejected, "rejected", "rejected_events")
    clock.lap("rejected table")
    if not fates["quarantined"]:
        quarantined = spark.createDataFrame([], quarantined.schema)
    run.table(quarantined.select(
        *[clean.safe_text(F.col(c)).alias(c) for c in ("user_id", "item_id", "event_type")], "event_time",
        "quarantine_reason", *clean.evidence_columns(F.col("raw_record"))), "quarantine", "quarantined_events")
    if support_filters:
        tagged.unpersist()
    clock.lap("quarantine table")
    sessions_url = run.table(sessionize.sessions_table(events), "sessions", "sessions")
    clock.lap("sessions table")

    # Clean and rejected counts are read back from what was written, so the reconciliation
    # below checks the outputs themselves against the rows read, not numbers computed beside them.
    written_events = spark.read.parquet(events_url)
    n_clean = written_events.count()
    rejected_counts = {r[0]: int(r[1]) for r in spark.read.parquet(rejected_url).groupBy("reject_reason").count().collect()}
    input_rows = int(seen.get["rows"])
    log.info("read %d rows (%d valid)", input_rows, fates["valid"])
    counts = {
        "input_rows": input_rows,
        "clean": n_clean,
        "rejected": rejected_counts,
        "duplicates": fates["duplicates"],
        "quarantined": fates["quarantined"],
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
    clock.lap("read-back counts + stats")
    log.info("cleaned and sessionized in %.1f s", (dt.datetime.now(dt.timezone.utc) - started).total_seconds())

    if cfg.write_sequences and n_clean > 0:
        rep["sequences"] = write_sequences(spark, cfg, layout, events, run, clock)
    else:
        # A rerun replaces the run whole: windows an earlier run of this date wrote go too.
        run.remove(layout.sequences)
    rep["outputs"] = {name: layout.table(name) for name in ("events", "rejected", "quarantine", "sessions")}
    rep["outputs"].update(vocabulary=layout.vocabulary, sequences=layout.sequences if "sequences" in rep else None,
                          report=layout.report)
    rep["elapsed_s"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1)
    rep["phases_s"] = clock.phases
    layout.write_report(spark, rep, run.directory(layout.report_dir))
    for df in (events, cached_input):
        df.unpersist()
    return rep


def history_events(spark: SparkSession, layout: Layout, run_events: DataFrame, history: str) -> DataFrame:
    """This run's events, plus earlier run dates' when ``history == 'all'``."""
    if history == "run":
        return run_events
    if not layout.earlier_event_partitions(spark):
        return run_events
    past = (layout.read_table(spark, "events")
            .where(F.col("run_date") < F.lit(layout.run_date.isoformat()).cast("date")).drop("run_date"))
    columns = [c for c in past.columns if c in run_events.columns]  # the cache holds no event_id
    return past.select(*columns).unionByName(run_events.select(*columns))


def write_sequences(spark: SparkSession, cfg: PrepareConfig, layout: Stage1Layout, run_events: DataFrame,
                    run: _Run, clock: report.PhaseClock | None = None) -> dict:
    """Vocabulary (append-only) + per-split Petastorm datasets + item_stats + dataset_info.json, all staged."""
    sc = cfg.sequences
    previous, version = latest_vocabulary(spark, layout)
    vocab, added = vocabulary.extend_vocabulary(run_events, previous, version + 1)
    added = added.persist()  # small (one row per new item): counted, then written from this cache
    n_new = added.count()
    if n_new or previous is None:
        version += 1
        vocab_dir = run.directory(layout.vocabulary_version(version))
        hadoop.conform_partition(vocab, "vocabulary").write.mode("overwrite").parquet(vocab_dir)
        hadoop.write_text(spark, run.directory(layout.vocabulary_pointer), f"{version}\n")
        vocab = hadoop.read_table(spark, vocab_dir, "vocabulary")
    vocab = vocab.persist()
    vocab_size = int(vocab.agg(F.max("item_index")).first()[0]) + 1
    added.unpersist()  # the vocabulary is cached (or read back) now
    log.info("vocabulary version %d: %d indexes (%d new items)", version, vocab_size, n_new)
    clock = clock or report.PhaseClock()
    clock.lap("vocabulary")

    events = history_events(spark, layout, run_events, sc.history)
    names = [e.name for e in cfg.cleaning.event_types]
    # The run's own events (a first run, or history "run") carry the look-back features from
    # the session pass, and stay in its partitions and order; with earlier runs' events, or
    # splits by session (a window per session), the features are computed again over the union.
    precomputed = events is run_events and sc.split_by == "event"
    log.info("sequence features: %s", "from the session pass (no second shuffle)" if precomputed
             else "computed again over the history (a window per user)")
    feats = features.with_sequence_features(events, vocab, names, precomputed=precomputed)
    valid_start, test_start = sequences.resolve_cutoffs(events, sc)
    # Not cached: the windows read it once (every split in one pass) and the item stats need
    # only its cheap columns, so recomputing them from the cached events beats writing 10M
    # rows of features to a cache (in memory, that ran a 4g heap out at 10M events).
    split_feats = sequences.assign_splits(feats, valid_start, test_start, sc.split_by)

    info = {
        "run_date": layout.run_date.isoformat(), "window_length": sc.window_length,
        "train_stride": sc.train_stride_, "eval_stride": sc.eval_stride_, "num_items": vocab_size,
        "num_event_types": len(names) + 1, "event_types": names, "vocab_version": version,
        "valid_start": valid_start.isoformat(), "test_start": test_start.isoformat(), "split_by": sc.split_by,
        "rows": {}, "targets": {}, "row_groups": {},
    }
    seq_dir = run.directory(layout.sequences)
    strides = {split: sc.train_stride_ if split == "train" else sc.eval_stride_ for split in sequences.SPLITS}
    windows = sequences.build_split_windows(split_feats, strides, sc.window_length, in_order=precomputed)
    urls = {split: io.join(seq_dir, split) for split in sequences.SPLITS}
    io.write_petastorm_splits(windows, urls, sc.window_length, sc.num_row_groups)
    for split, url in urls.items():
        written = spark.read.parquet(url)
        agg = written.agg(F.count(F.lit(1)), F.sum("num_targets")).first()
        info["rows"][split] = int(agg[0])
        info["targets"][split] = int(agg[1] or 0)
        info["row_groups"][split] = len(written.inputFiles())
        log.info("%s windows: %d rows, %d targets", split, info["rows"][split], info["targets"][split])
    if info["targets"]["train"] == 0:
        log.warning("the train split has no targets (every event is on or after valid_start %s): training on "
                    "this dataset will fail; give the log more days than sequences.valid_days + test_days, or set "
                    "sequences.valid_start / test_start", valid_start.isoformat())
    clock.lap("windows, all splits (+ features, split cutoffs)")
    stats = sequences.item_train_counts(split_feats, vocab).coalesce(1)
    hadoop.write_partition(stats, seq_dir, ITEM_STATS)
    info["fingerprint"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    layout.write_dataset_info(spark, info, seq_dir)
    clock.lap("item stats + dataset info")
    vocab.unpersist()
    return info
