"""Synthetic generator throughput: one local[2] session, the same data set written
as Parquet, JSON lines and CSV side by side, plus a no-op sink (generation alone).

Goal (from the stage-1 benchmark's needs): 10 million events in local[2] in under
15 minutes, i.e. > 11k events/s end to end. Prints one line per sink with seconds,
events/s and the ratio to the no-op sink.

    .venv/bin/python bench/bench_synthetic.py --events 1000000 --workdir /tmp/bench_synth
"""
from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger("bench_synthetic")
GOAL_EVENTS_PER_S = 10_000_000 / (15 * 60)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="ordinary events to generate (about)")
    p.add_argument("--workdir", default="/tmp/bench_synthetic")
    p.add_argument("--formats", default="noop,parquet,jsonl,csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from interest_tracker.config import load
    from interest_tracker.spark import get_session
    from interest_tracker.synthetic import SyntheticConfig, generate, write_raw

    repo = Path(__file__).resolve().parents[1]
    spark = get_session("bench-synthetic", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    cfg = load(SyntheticConfig, repo / "conf" / "synthetic_10m.json",
               [f"num_users={max(1, args.events // 100)}", "end_time=2026-11-28T23:59:59Z"])
    data = generate(spark, cfg)
    counts = data.injected_counts()
    rows = counts["ordinary_events"] + counts["bot_events"] + sum(
        v for k, v in counts.items() if k not in ("ordinary_events", "bot_events", "bot_users", "malformed"))
    # Warm-up (JIT, code generation) on a 1% data set, so the first sink timed is not penalised.
    warm = load(SyntheticConfig, repo / "conf" / "synthetic_10m.json",
                [f"num_users={max(1, args.events // 10000)}", "end_time=2026-11-28T23:59:59Z"])
    generate(spark, warm).events.write.format("noop").mode("overwrite").save()
    results = {}
    for fmt in args.formats.split(","):
        out = f"{args.workdir}/{fmt}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        if fmt == "noop":
            data.events.write.format("noop").mode("overwrite").save()
        else:
            write_raw(data, out, fmt)
        results[fmt] = time.perf_counter() - t
        log.info("%s: %.1f s", fmt, results[fmt])
    base = results.get("noop")
    print(f"# synthetic generator, local[2], {rows:,} raw rows ({counts['ordinary_events']:,} ordinary events); "
          f"goal > {GOAL_EVENTS_PER_S:,.0f} rows/s (10M in 15 min)")
    for fmt, secs in results.items():
        ratio = f"{secs / base:.2f}x no-op" if base else ""
        print(f"{fmt:8s} {secs:8.1f} s  {rows / secs:10,.0f} rows/s  {ratio}")
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
