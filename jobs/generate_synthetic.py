"""Generate synthetic behaviour logs with known interest switches.

    spark-submit jobs/generate_synthetic.py --config conf/synthetic_demo.json --run-date 2026-11-28 \
        --out /tmp/synth --format jsonl [--set num_users=5000 --set injection.replay=0.01]

Writes <out>/raw/ (the logs), <out>/items/, <out>/ground_truth/, <out>/injected.json
(and <out>/event_truth/ with --set write_event_truth=true). Events end on the run date.
--out/--format are shorthands for --set output=... / --set format=... (see
interest_tracker.synthetic.config.SyntheticJobConfig for every key).
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from interest_tracker.cli import exit_with, run_job
from interest_tracker.synthetic.config import SyntheticJobConfig

log = logging.getLogger("generate_synthetic")
SHORTHANDS = {"--out": "output", "--format": "format"}


def main(cfg: SyntheticJobConfig, run_date: dt.date) -> None:
    from interest_tracker.spark import get_session
    from interest_tracker.synthetic import generate, write_synthetic

    cfg = cfg.with_run_date(run_date)
    spark = get_session("generate-synthetic")
    start = time.perf_counter()
    counts = write_synthetic(generate(spark, cfg), cfg.output, cfg.format, cfg.write_event_truth)
    total = counts["ordinary_events"] + counts["bot_events"] + sum(
        v for k, v in counts.items() if k not in ("ordinary_events", "bot_events", "bot_users"))
    log.info("wrote %d raw rows (%s) to %s/raw in %.1f s, end_time=%s", total, cfg.format,
             cfg.output.rstrip("/"), time.perf_counter() - start, cfg.end_time)
    log.info("of which: %s", ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())))


if __name__ == "__main__":
    exit_with(run_job("Generate synthetic behaviour logs with known interest switches.", SyntheticJobConfig, main,
                      shorthands=SHORTHANDS))
