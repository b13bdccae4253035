"""Assemble the pipeline report for one run date.

Each section is built from one stage's output. A missing output is never skipped
quietly: with ``allow_missing`` the section says what was not found and which job
writes it (and the log warns); without it the job fails. The numbers shown are also
written to ``summary.json`` beside the page, for tests and for anyone who wants them
without parsing HTML.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import io
from ..layout import ArtifactStore, Stage1Layout
from ..layout.artifact import ARTIFACT_FILE, METRICS_FILE
from ..layout.report import PAGE_FILE, SUMMARY_FILE, ReportPages
from ..layout.warehouse import Warehouse
from . import plots, summaries
from .config import ReportConfig
from .html import Section, Table, render

log = logging.getLogger(__name__)

SECTION_IDS = ("run", "counts", "sessions", "events-per-user", "learning-curves", "metrics", "drift", "timeline")
COMPARED_METRICS = ("recall@20", "mrr@20", "recall@10", "ndcg@10")


class MissingInput(Exception):
    """A stage's output for this run date is absent; the message names it and its job."""


class _Inputs:
    """Locations of every input for one run date, and their loaders."""

    def __init__(self, spark: SparkSession, cfg: ReportConfig, run_date: dt.date):
        self.spark, self.cfg, self.run_date = spark, cfg, run_date
        self.stage1 = io.to_url(cfg.events_root)
        self.artifacts = io.to_url(cfg.artifact_root)
        self.warehouse = io.to_url(cfg.warehouse_root)
        self.stage1_layout = Stage1Layout(cfg.events_root, run_date)
        self.store = ArtifactStore(cfg.artifact_root)
        self.wh = Warehouse(cfg.warehouse_root)
        self._artifact_dir: str | None = None
        self._version: str | None = None

    def _require(self, url: str, job: str) -> str:
        if not io.exists(self.spark, url):
            raise MissingInput(f"{url} not found; it is written by {job} for run date {self.run_date}")
        return url

    def stage1_report(self) -> dict:
        self._require(self.stage1_layout.report, "jobs/prepare_events.py")
        return self.stage1_layout.read_report(self.spark)

    def _partition(self, root: str, name: str) -> str:
        if root == self.warehouse:
            return self.wh.partition_url(name, self.run_date)
        return self.stage1_layout.partition_url(name)

    def _table_url(self, root: str, name: str) -> str:
        return self.wh.table_url(name) if root == self.warehouse else self.stage1_layout.table(name)

    def table(self, root: str, name: str, contract: str, job: str):
        self._require(self._partition(root, name), job)
        return io.read_table(self.spark, self._table_url(root, name), contract).where(F.col("run_date") == F.lit(self.run_date))

    def sessions(self):
        return self.table(self.stage1, "sessions", "sessions", "jobs/prepare_events.py")

    def events(self):
        return self.table(self.stage1, "events", "clean_events", "jobs/prepare_events.py")

    def drift(self):
        return self.table(self.warehouse, "user_interest_drift", "user_interest_drift", "jobs/score_users.py")

    def history(self, root: str, name: str, contract: str, job: str):
        """Every partition of a table up to and including this run date."""
        self._require(self._partition(root, name), job)
        return io.read_table(self.spark, self._table_url(root, name), contract).where(
            F.col("run_date") <= F.lit(self.run_date))

    def categories(self):
        """item_id, category (text) from ``item_categories_path``, or None when not configured."""
        if not self.cfg.item_categories_path:
            return None
        url = io.to_url(self.cfg.item_categories_path)
        if not io.exists(self.spark, url):
            raise MissingInput(f"item_categories_path {url} not found (set it to the catalogue used for scoring)")
        return (self.spark.read.parquet(url).select("item_id", F.col("category").cast("string").alias("category"))
                .dropDuplicates(["item_id"]))

    def artifact_dir(self) -> str:
        if self._artifact_dir is None:
            # The artifact is read through the layout's pyarrow filesystem layer (local, HDFS, S3).
            version = self.cfg.model_version or self.store.latest()
            if not version:
                raise MissingInput(f"{self.store.latest_url} not found; it is written by jobs/train_model.py "
                                   f"for run date {self.run_date}")
            if not self.store.exists(version):
                raise MissingInput(f"{self.store.version_url(version)} not found; it is written by "
                                   f"jobs/train_model.py for run date {self.run_date}")
            self._version, self._artifact_dir = version, self.store.version_url(version)
        return self._artifact_dir

    def metrics(self) -> dict:
        self.artifact_dir()
        if not self.store.exists(self._version, METRICS_FILE):
            raise MissingInput(f"{self.store.file_url(self._version, METRICS_FILE)} not found; it is written by "
                               f"jobs/train_model.py for run date {self.run_date}")
        return self.store.metrics(self._version)

    def artifact_manifest(self) -> dict:
        self.artifact_dir()
        return self.store.manifest(self._version) if self.store.exists(self._version, ARTIFACT_FILE) else {}


def _counts_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    rep = inp.stage1_report()
    c = rep["counts"]
    total = int(c["input_rows"])
    rows = [("input rows", total), ("clean", int(c["clean"]))]
    for group in ("rejected", "duplicates", "quarantined"):
        rows += [(f"{group}: {k}", int(v)) for k, v in sorted(c.get(group, {}).items())]
    summary["counts"] = dict(rows)
    table = Table(["rows", "count", "share of input"],
                  [(name, n, f"{100.0 * n / total:.2f}%" if total else "n/a") for name, n in rows])
    sec = Section("counts", "Input and reject counts", tables=[table])
    sec.notes.append("Every input row is clean, rejected, a duplicate or quarantined; the counts "
                     f"{'reconcile' if rep.get('reconciled', True) else 'DO NOT reconcile'} "
                     f"(stage-1 report for {rep.get('run_date')}).")
    # Log scale: a reject reason with 10 rows must stay visible next to a million clean rows.
    plots.bars([r[0] for r in rows[1:]], [r[1] for r in rows[1:]], out / "counts.png",
               title="where the input rows went (log scale)", xlabel="", ylabel="rows (log scale)",
               horizontal=True, log_scale=True, annotate=True)
    sec.images.append(("counts.png", "input rows by outcome, log scale"))
    stats = rep.get("stats") or {}
    if stats:
        sec.tables.append(Table(["statistic", "value"], sorted(stats.items())))
        summary["stats"] = stats
    return sec


def _dense(values: list[int], counts: list[int], cap: int) -> tuple[list[str], list[int]]:
    """Bars for every value 1..cap (zeros included, so the axis is linear), ``cap+`` last, nulls first."""
    by_value = dict(zip(values, counts))
    low = 0 if 0 in by_value else 1
    keys = ([-1] if -1 in by_value else []) + list(range(low, cap + 1))
    labels = ["null" if k == -1 else (f"{k}+" if k == cap else str(k)) for k in keys]
    return labels, [by_value.get(k, 0) for k in keys]


def _sessions_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    cap = inp.cfg.max_bucket
    sessions = inp.sessions()
    vc = summaries.capped_value_counts(sessions, "event_count", cap).collect()
    q = summaries.duration_quantiles(sessions).first().asDict()
    values, counts = [r["value"] for r in vc], [r["count"] for r in vc]
    summary["session_length"] = {"values": values, "counts": counts, "duration_quantiles_s": q}
    sec = Section("sessions", "Session length")
    if not values:
        sec.missing = f"the sessions partition for {inp.run_date} is empty"
        return sec
    plots.bars(*_dense(values, counts, cap), out / "session_length.png", title="events per session",
               xlabel="events in the session", ylabel="sessions")
    sec.images.append(("session_length.png", "histogram of events per session"))
    sec.tables.append(Table(["sessions", "p10 duration s", "p50", "p90", "p99"],
                            [[q["sessions"], q["p10"], q["p50"], q["p90"], q["p99"]]]))
    return sec


def _bin_label(lower: int, upper: int) -> str:
    return str(lower) if lower == upper else f"{lower}-{upper}"


def _users_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    per_user = summaries.events_per_user(inp.events())
    bins = summaries.log2_binned_counts(per_user, "events").collect()
    summary["events_per_user"] = {"bins": [(r["lower"], r["upper"]) for r in bins],
                                  "counts": [r["count"] for r in bins]}
    sec = Section("events-per-user", "Events per user")
    if not bins:
        sec.missing = f"the clean events partition for {inp.run_date} is empty"
        return sec
    # Log-spaced bins (1, 2-3, 4-7, ...): a few heavy users no longer squash everyone else
    # into one capped bar. Empty bins between the first and last stay on the axis.
    by_bin = {r["bin"]: r["count"] for r in bins}
    keys = range(min(by_bin), max(by_bin) + 1)
    labels = [_bin_label(1 << k, (1 << (k + 1)) - 1) if k >= 0 else "0" for k in keys]
    plots.bars(labels, [by_bin.get(k, 0) for k in keys], out / "events_per_user.png",
               title="clean events per user (log-spaced bins)", xlabel="events in the run date's partition",
               ylabel="users", annotate=True)
    sec.images.append(("events_per_user.png", "histogram of events per user in log-spaced bins"))
    sec.tables.append(Table(["events", "users", "share of users"],
                            [(_bin_label(r["lower"], r["upper"]), r["count"],
                              f"{100.0 * r['count'] / sum(by_bin.values()):.1f}%") for r in bins]))
    sec.notes.append(f"{sum(by_bin.values()):,} users with clean events on {inp.run_date}.")
    return sec


def _learning_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    metrics = inp.metrics()
    history = metrics.get("history") or []
    metric = metrics.get("early_stopping_metric", "mrr@20")
    sec = Section("learning-curves", "Learning curves")
    summary["learning_curves"] = [{"epoch": h["epoch"], "train_loss": h["train_loss"],
                                   metric: (h.get("valid") or {}).get(metric)} for h in history]
    if not history:
        sec.missing = f"{inp.artifact_dir()}/metrics.json has no per-epoch 'history'"
        return sec
    plots.learning_curves(history, metric, out / "learning_curves.png")
    sec.images.append(("learning_curves.png", "training loss and validation metrics per epoch"))
    sec.tables.append(Table(["epoch", "train loss", f"valid {metric}", "seconds"],
                            [(h["epoch"], h["train_loss"], (h.get("valid") or {}).get(metric), h.get("seconds"))
                             for h in history]))
    sec.notes.append(f"model {os.path.basename(inp.artifact_dir().rstrip('/'))}: best epoch "
                     f"{metrics.get('best_epoch')} of {metrics.get('epochs_run')} (early stopping on {metric}).")
    return sec


def _metrics_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    metrics = inp.metrics()
    split = "test" if metrics.get("test") else "valid"
    rows: dict[str, dict] = {}
    if metrics.get(split):
        rows["model"] = metrics[split]
    # metrics.json: "baselines": {split: {name: {metric: value}}} (evaluation/selection.py),
    # or {name: {...}} from older artifacts; "selection": {"scorers": {split: {"blend": ...}}}
    # adds the model's blended scorers. Any of them may be absent.
    baselines = metrics.get("baselines") or {}
    if isinstance(baselines, dict) and isinstance(baselines.get(split), dict):
        baselines = baselines[split]
    for name, vals in sorted(baselines.items()) if isinstance(baselines, dict) else ():
        if isinstance(vals, dict) and any(isinstance(vals.get(m), (int, float)) for m in COMPARED_METRICS):
            rows[name] = vals
    scorers = ((metrics.get("selection") or {}).get("scorers") or {}).get(split) or {}
    for name, vals in sorted(scorers.items()) if isinstance(scorers, dict) else ():
        if name != "model" and isinstance(vals, dict):
            rows[f"model+{name}"] = vals
    summary["metrics"] = {"split": split, "rows": rows}
    sec = Section("metrics", f"Metrics against the baselines ({split} split)")
    if not rows:
        sec.missing = f"{inp.artifact_dir()}/metrics.json has no '{split}' metrics"
        return sec
    if len(rows) == 1:
        sec.notes.append("metrics.json records no 'baselines' (an artifact from before they were added): "
                         "only the model is shown.")
    sec.tables.append(Table(["model", *COMPARED_METRICS], [(n, *[r.get(m) for m in COMPARED_METRICS])
                                                          for n, r in rows.items()]))
    plots.metric_comparison({n: {m: r.get(m) for m in COMPARED_METRICS} for n, r in rows.items()}, COMPARED_METRICS,
                            out / "metrics.png")
    sec.images.append(("metrics.png", "model and baselines per metric"))
    return sec


def _drift_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    drift = inp.drift()
    s = summaries.drift_summary(drift).first().asDict()
    hist = summaries.drift_histogram(drift, inp.cfg.drift_bins).collect()
    summary["drift"] = {**s, "histogram": [(r["lower"], r["upper"], r["users"]) for r in hist]}
    sec = Section("drift", "Interest drift")
    sec.tables.append(Table(["users", "without a previous vector", "mean cosine", "median cosine",
                             "top category changed", "top category compared"],
                            [[s["users"], s["without_previous"], s["mean_cosine"], s["median_cosine"],
                              s["top_category_changed"], s["top_category_compared"]]]))
    if not hist:
        sec.notes.append("no user has a previous vector yet (first scored run, or a new model version): "
                         "the drift histogram starts with the second run.")
        return sec
    width = 2.0 / inp.cfg.drift_bins
    by_bin = {r["bin"]: r["users"] for r in hist}
    labels = [f"{-1.0 + b * width:.1f}" for b in range(inp.cfg.drift_bins)]
    plots.bars(labels, [by_bin.get(b, 0) for b in range(inp.cfg.drift_bins)], out / "drift.png",
               title="cosine similarity to the previous run's interest vector (1 = unchanged)",
               xlabel="lower edge of the bin", ylabel="users", annotate=True)
    sec.images.append(("drift.png", "histogram of interest drift (cosine similarity)"))
    if s["top_category_compared"]:
        sec.notes.append(f"{s['top_category_changed']:,} of {s['top_category_compared']:,} users have a different "
                         "top recommended category than in the previous run.")
    return sec


def _timeline_section(inp: _Inputs, out: Path, summary: dict) -> Section:
    """A few users who moved the most: their events' categories over time and the model's
    top recommended category after each run. This is the product's point in one picture."""
    sec = Section("timeline", "Interest timeline of sample users")
    drift = inp.drift()
    picked = summaries.sample_drift_users(drift, inp.cfg.timeline_users).collect()
    users = [r["user_id"] for r in picked]
    summary["timeline"] = {"users": users}
    if not users:
        sec.missing = f"the drift partition for {inp.run_date} is empty"
        return sec
    categories = inp.categories()
    history = inp.history(inp.warehouse, "user_interest_drift", "user_interest_drift", "jobs/score_users.py")
    runs = (history.where(F.col("user_id").isin(users))
            .select("user_id", "run_date", "top_category", "cosine_similarity").orderBy("user_id", "run_date").collect())
    run_dates = sorted({r["run_date"] for r in runs})
    if categories is None:
        sec.missing = ("no item categories: set item_categories_path (item_id, category) in the report config "
                       "to plot interests by category")
        sec.tables.append(Table(["user", "run date", "cosine similarity"],
                                [(r["user_id"], r["run_date"].isoformat(), r["cosine_similarity"]) for r in runs]))
        return sec
    events = inp.history(inp.stage1, "events", "clean_events", "jobs/prepare_events.py")
    pts = (summaries.user_category_events(events.where(F.col("user_id").isin(users)), categories)
           .orderBy("user_id", "event_time").collect())
    panels = []
    for r in picked:
        u = r["user_id"]
        mine = [x for x in runs if x["user_id"] == u]
        moves = " -> ".join(x["top_category"] or "?" for x in mine)
        cos = r["cosine_similarity"]
        panels.append({"user_id": u, "events": [(p["event_time"], p["category"]) for p in pts if p["user_id"] == u],
                       "runs": [(x["run_date"], x["top_category"], x["cosine_similarity"]) for x in mine],
                       "title": f"{u}: top category {moves}" + (f", cosine {cos:.2f} to the previous run"
                                                               if cos is not None else "")})
    summary["timeline"]["runs"] = {p["user_id"]: [(d.isoformat(), c) for d, c, _ in p["runs"]] for p in panels}
    plots.interest_timeline(panels, out / "timeline.png", run_dates)
    sec.images.append(("timeline.png", "per-user interest timeline: event categories and top recommended category"))
    sec.notes.append(f"The {len(users)} users whose interest moved most on {inp.run_date} (top recommended category "
                     "changed first, then lowest cosine similarity). Dots: the category of each clean event; "
                     "squares: the top category of the user's recommendations after each run.")
    return sec


def _run_section(inp: _Inputs, summary: dict) -> Section:
    rows = [("run date", inp.run_date.isoformat()), ("stage-1 output", inp.stage1),
            ("artifacts", inp.artifacts), ("warehouse", inp.warehouse)]
    try:
        manifest = inp.artifact_manifest()
        rows += [("model version", manifest.get("model_version")), ("model created", manifest.get("created_at")),
                 ("vocabulary version", manifest.get("vocab_version"))]
    except MissingInput as e:
        rows.append(("model", f"not available: {e}"))
    summary["run"] = dict(rows)
    return Section("run", "Run", tables=[Table(["item", "value"], rows)])


def build_report(spark: SparkSession, cfg: ReportConfig, run_date: dt.date) -> Path:
    """Write ``{report_dir}/run_date=D/index.html`` (+ PNGs, summary.json); return the page's path.

    The folder is built under a staging name and renamed (``layout.report.ReportPages``), so a
    reader never sees half a report.
    """
    pages = ReportPages(cfg.report_dir)
    staging = pages.staging_dir(run_date)
    inp = _Inputs(spark, cfg, run_date)
    summary: dict = {"run_date": run_date.isoformat(), "missing": {}}
    builders: list[tuple[str, str, Callable]] = [
        ("counts", "Input and reject counts", _counts_section),
        ("sessions", "Session length", _sessions_section),
        ("events-per-user", "Events per user", _users_section),
        ("learning-curves", "Learning curves", _learning_section),
        ("metrics", "Metrics against the baselines", _metrics_section),
        ("drift", "Interest drift", _drift_section),
        ("timeline", "Interest timeline of sample users", _timeline_section),
    ]
    sections = [_run_section(inp, summary)]
    for sid, title, fn in builders:
        try:
            sections.append(fn(inp, staging, summary))
        except MissingInput as e:
            if not cfg.allow_missing:
                raise
            log.warning("report section %r: %s", sid, e)
            summary["missing"][sid] = str(e)
            sections.append(Section(sid, title, missing=str(e)))
    page = render(f"interest-tracker pipeline report, {run_date.isoformat()}",
                  f"generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}", sections)
    (staging / PAGE_FILE).write_text(page)
    (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    path = pages.publish(staging, run_date)
    log.debug("pipeline report written: %s", path)
    return path
