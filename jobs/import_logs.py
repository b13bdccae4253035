"""Convert a public log format into the raw event contract (Parquet).

    spark-submit jobs/import_logs.py --run-date 2026-11-28 --format session-rec \
        --input ../shared/data/yoochoose-100k/yoochoose-clicks-100k_train_full.txt --out /tmp/raw_rsc15
    spark-submit jobs/import_logs.py --run-date 2026-11-28 --format movielens-udata --input ml-100k/u.data --out /tmp/raw_ml
    spark-submit jobs/import_logs.py --run-date 2026-11-28 --make-movielens-sample 5000 --out /tmp/ml_sample

--format/--input/--out/--make-movielens-sample are shorthands for --set format=... etc.
(see interest_tracker.importers.config.ImportConfig for every key).
"""
from __future__ import annotations

import datetime as dt
import logging

from interest_tracker.cli import exit_with, run_job
from interest_tracker.importers.config import ImportConfig

log = logging.getLogger("import_logs")
SHORTHANDS = {"--format": "format", "--input": "input", "--out": "output",
              "--make-movielens-sample": "make_movielens_sample"}


def main(cfg: ImportConfig, run_date: dt.date) -> None:
    from interest_tracker.contracts import load_contract
    from interest_tracker.importers import read_movielens, read_session_rec
    from interest_tracker.importers.config import MOVIELENS_FMT
    from interest_tracker.spark import get_session

    spark = get_session("import-logs")
    if cfg.make_movielens_sample:
        from interest_tracker.synthetic.movielens_sample import make_movielens_sample

        n = make_movielens_sample(spark, cfg.output, cfg.make_movielens_sample)
        log.info("wrote %d synthetic MovieLens ratings to %s/u.data", n, cfg.output.rstrip("/"))
        return
    if cfg.format == "session-rec":
        raw = read_session_rec(spark, cfg.input, cfg.session_rec_event_type)
    else:
        raw = read_movielens(spark, cfg.input, MOVIELENS_FMT[cfg.format], cfg.movielens_event_type)
    load_contract("raw_event").conform(raw).write.mode("overwrite").parquet(cfg.output)
    written = spark.read.parquet(cfg.output)
    total = written.count()
    unsplit = written.where("user_id is null and attributes like '{\"raw_line\"%'").count()
    if total == 0:
        raise RuntimeError(f"no lines read from {cfg.input}; check --input and --format")
    log.info("imported %d rows from %s (%s) to %s; %d lines with the wrong number of fields passed on "
             "for the cleaner to reject", total, cfg.input, cfg.format, cfg.output, unsplit)


if __name__ == "__main__":
    exit_with(run_job("Convert a public log format into the raw event contract (Parquet).", ImportConfig, main,
                      shorthands=SHORTHANDS))
