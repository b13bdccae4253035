"""Convert a public log format into the raw event contract (Parquet).

    spark-submit jobs/import_logs.py --run-date 2026-11-28 --format session-rec \
        --input ../shared/data/yoochoose-100k/yoochoose-clicks-100k_train_full.txt --out /tmp/raw_rsc15
    spark-submit jobs/import_logs.py --run-date 2026-11-28 --format movielens-udata --input ml-100k/u.data --out /tmp/raw_ml
    spark-submit jobs/import_logs.py --run-date 2026-11-28 --make-movielens-sample 5000 --out /tmp/ml_sample

--format/--input/--out/--make-movielens-sample are shorthands for --set format=... etc.
(see interest_tracker.importers.config.ImportConfig for every key).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from interest_tracker.cli import exit_with, run_job
from interest_tracker.importers.config import ImportConfig

log = logging.getLogger("import_logs")
SHORTHANDS = {"--format": "format", "--input": "input", "--out": "output",
              "--make-movielens-sample": "make_movielens_sample"}


def _add_shorthands(parser: argparse.ArgumentParser) -> None:
    for flag, key in SHORTHANDS.items():
        parser.add_argument(flag, dest=f"shorthand_{key}", metavar=key.upper(), help=f"same as --set {key}=VALUE")


def _as_overrides(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    _add_shorthands(parser)
    known, _ = parser.parse_known_args(argv)
    extra = []
    for key in SHORTHANDS.values():
        value = getattr(known, f"shorthand_{key}")
        if value is not None:
            extra += ["--set", f"{key}={value}"]
    return argv + extra


def main(cfg: ImportConfig, run_date: dt.date) -> None:
    from interest_tracker.contracts import load_contract
    from interest_tracker.importers import make_movielens_sample, read_movielens, read_session_rec
    from interest_tracker.importers.config import MOVIELENS_FMT
    from interest_tracker.spark import get_session

    spark = get_session("import-logs")
    if cfg.make_movielens_sample:
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
                      argv=_as_overrides(sys.argv[1:]), extra_args=_add_shorthands))
