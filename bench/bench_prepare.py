"""Stage-1 benchmark: full clean + sessionize + sequences vs two hand-written baselines.

    .venv/bin/python bench/bench_prepare.py --events 10000000 --driver-memory 4g --workdir /tmp/bench_prepare

All three run in the same local[2] session on the same synthetic Parquet input, one
after the other, so the ratios are meaningful on a noisy machine:
* bare: read three columns, lag + running sum to number sessions, write (what a
  hand-written sessionization does);
* fair: read all six columns, one shuffle + sort by (user, time), lag + running sum,
  then write the events and a sessions table (the minimum I/O the stage must do);
* full: ``run_prepare`` (validation with reason codes, dedupe, bot rates, sessions with
  caps, four tables, vocabulary, three Petastorm datasets with L=20), with its phase
  breakdown (``phases_s`` of the run report).
Peak memory is the largest resident set of this process plus all its children (the
driver JVM, Python workers), sampled every 0.2 s, with the driver memory given by
``--driver-memory`` (default 4g), and placed in the phase that reached it
(``full_peak_rss_gb_by_phase``). Goal (issue 10): full <= 5x bare, peak RSS <= 6 GiB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import threading
import time

import psutil

log = logging.getLogger("bench_prepare")


class PeakRSS:
    """Samples the RSS of this process and all its children (the Spark JVM, Python workers).

    ``peak`` is the largest total; ``parts`` the largest of each kind (this driver process,
    the JVM, the Python workers together), so that a high total says which of them grew.
    RSS counts a page shared by several processes once per process: PySpark's workers are
    forked from one daemon and share its pages, so ``peak_pss`` (the proportional set size,
    each shared page divided among its sharers) is also kept, with the most Python workers
    seen at once (``workers``). ``timeline`` keeps every sample (monotonic time, RSS by kind), so
    a peak can be placed in the phase of the run that reached it (:func:`peaks_by_phase`)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.parts, self._stop = interval, 0, {}, threading.Event()
        self.peak_pss, self.workers, self.timeline = 0, 0, []

    def _sample(self) -> tuple[dict[str, int], int, int]:
        me = psutil.Process(os.getpid())
        parts = {"driver_python": me.memory_info().rss, "jvm": 0, "python_workers": 0}
        pss, workers = _pss(me), 0
        for child in me.children(recursive=True):
            try:
                kind = "jvm" if "java" in child.name() else "python_workers"
                parts[kind] += child.memory_info().rss
                pss += _pss(child)
                workers += kind == "python_workers"
            except psutil.Error:
                pass
        return parts, pss, workers

    def _run(self):
        while not self._stop.is_set():
            parts, pss, workers = self._sample()
            self.timeline.append((time.monotonic(), parts))
            self.peak = max(self.peak, sum(parts.values()))
            self.peak_pss, self.workers = max(self.peak_pss, pss), max(self.workers, workers)
            for kind, rss in parts.items():
                self.parts[kind] = max(self.parts.get(kind, 0), rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak, self.parts, self.peak_pss, self.workers, self.timeline = 0, {}, 0, 0, []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._stop.clear()


def peaks_by_phase(timeline, start: float, phases: dict) -> dict:
    """Peak RSS (GiB: total, and the JVM's and the Python workers' own) within each phase.

    ``phases``: the run report's ``phases_s`` (name -> seconds, in the order they ran), laid end
    to end from ``start`` (monotonic time just before the run; its clock starts a few
    milliseconds later); what follows the last phase (the commit) is ``after the phases``.
    """
    bounds, t = [], start
    for name, seconds in phases.items():
        bounds.append((name, t, t + seconds))
        t += seconds
    bounds.append(("after the phases", t, float("inf")))
    out = {}
    for name, lo, hi in bounds:
        inside = [parts for when, parts in timeline if lo <= when < hi]
        if inside:
            out[name] = {"total": round(max(sum(p.values()) for p in inside) / 2**30, 2),
                         **{k: round(max(p[k] for p in inside) / 2**30, 2) for k in ("jvm", "python_workers")}}
    return out


def _pss(proc) -> int:
    """Proportional set size (Linux); RSS where the kernel does not report it."""
    try:
        return proc.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return proc.memory_info().rss


def bare_sessionize(spark, raw_url: str, out_url: str, gap_s: int = 1800) -> int:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = spark.read.parquet(raw_url).select(
        "user_id", "item_id", F.expr("try_cast(event_time AS double)").alias("t"))
    w = Window.partitionBy("user_id").orderBy("t")
    new = (F.lag("t").over(w).isNull() | ((F.col("t") - F.lag("t").over(w)) > gap_s)).cast("int")
    out = df.withColumn("session", F.sum(new).over(w.rowsBetween(Window.unboundedPreceding, 0)))
    out.write.mode("overwrite").parquet(out_url)
    return spark.read.parquet(out_url).count()


def fair_sessionize(spark, raw_url: str, out_url: str, gap_s: int = 1800) -> int:
    """All six columns, one shuffle + sort by (user, time), sessions, then events and sessions written."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = ("user_id", "item_id", "event_type", "event_time", "session_id", "attributes")
    df = spark.read.parquet(raw_url).select(*cols).withColumn("t", F.expr("try_cast(event_time AS double)"))
    w = Window.partitionBy("user_id").orderBy("t")
    new = (F.lag("t").over(w).isNull() | ((F.col("t") - F.lag("t").over(w)) > gap_s)).cast("int")
    events = df.withColumn("session", F.sum(new).over(w.rowsBetween(Window.unboundedPreceding, 0)))
    events = events.persist(StorageLevel.MEMORY_AND_DISK)
    events.write.mode("overwrite").parquet(f"{out_url}/events")
    (events.groupBy("user_id", "session").agg(F.min("t").alias("start"), F.max("t").alias("end"),
                                              F.count(F.lit(1)).alias("n"))
     .write.mode("overwrite").parquet(f"{out_url}/sessions"))
    events.unpersist()
    return spark.read.parquet(f"{out_url}/events").count()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--workdir", default="bench_output/prepare")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--keep", action="store_true", help="keep the generated input for a rerun")
    p.add_argument("--generate-only", action="store_true", help="only write the input (then rerun with --keep)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from interest_tracker.prepare.config import InputConfig, PrepareConfig, SequenceConfig
    from interest_tracker.prepare.pipeline import run_prepare
    from interest_tracker.spark import get_session
    from interest_tracker.synthetic.config import SyntheticConfig
    from interest_tracker.synthetic.generator import generate

    work = os.path.abspath(args.workdir)
    spark = get_session("bench-prepare", master="local[2]", conf={
        "spark.driver.memory": args.driver_memory, "spark.sql.shuffle.partitions": "16",
        "spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("WARN")
    raw = f"{work}/raw"
    users = max(1, args.events // 100)
    if not os.path.exists(f"{raw}/_SUCCESS"):
        t = time.time()
        cfg = SyntheticConfig(num_users=users, num_items=100_000, num_categories=50, events_per_user=100,
                              min_events_per_user=20, max_events_per_user=1000, time_format="epoch_s",
                              end_time="2026-11-28T23:00:00Z", seed=3)
        generate(spark, cfg).events.write.mode("overwrite").parquet(raw)
        log.info("generated input in %.0f s", time.time() - t)
    if args.generate_only:
        spark.stop()
        return 0
    n = spark.read.parquet(raw).count()
    log.info("input: %d events, %d users; load average %s", n, users, os.getloadavg())

    results = {}
    with PeakRSS() as mem:
        t = time.time()
        bare_sessionize(spark, raw, f"{work}/bare_out")
        results["bare_s"] = time.time() - t
    results["bare_peak_rss_gb"] = mem.peak / 2**30
    with PeakRSS() as mem:
        t = time.time()
        fair_sessionize(spark, raw, f"{work}/fair_out")
        results["fair_s"] = time.time() - t
    results["fair_peak_rss_gb"] = mem.peak / 2**30
    shutil.rmtree(f"{work}/out", ignore_errors=True)
    cfg = PrepareConfig(input=InputConfig(path=raw, format="parquet"), output_root=f"{work}/out",
                        sequences=SequenceConfig(window_length=20, num_row_groups=32))
    with PeakRSS() as mem:
        t, started = time.time(), time.monotonic()
        report = run_prepare(spark, cfg, dt.date(2026, 11, 28))
        results["full_s"] = time.time() - t
    results["full_peak_rss_gb_by_phase"] = peaks_by_phase(mem.timeline, started, report.get("phases_s") or {})
    results["full_peak_rss_gb"] = mem.peak / 2**30
    results["full_peak_rss_gb_by_process"] = {k: round(v / 2**30, 2) for k, v in mem.parts.items()}
    results["full_peak_pss_gb"] = mem.peak_pss / 2**30
    results["full_python_workers_at_most"] = mem.workers
    results.update(
        events=n,
        full_events_per_s=n / results["full_s"],
        bare_events_per_s=n / results["bare_s"],
        ratio_full_over_bare=results["full_s"] / results["bare_s"],
        ratio_full_over_fair=results["full_s"] / results["fair_s"],
        ratio_fair_over_bare=results["fair_s"] / results["bare_s"],
        goal="full stage <= 5.0x the bare lag+cumsum sessionization; peak RSS <= 6 GiB",
        driver_memory=args.driver_memory,
        phases_s=report.get("phases_s"),
        counts=report["counts"],
        sequences_rows=report["sequences"]["rows"],
        sequences_targets=report["sequences"]["targets"],
        load_average_at_end=os.getloadavg(),
        cpu_count=os.cpu_count(),
        date=dt.date.today().isoformat(),
    )
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
