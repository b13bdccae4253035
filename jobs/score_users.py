"""spark-submit entry point for stage 3: score every user into warehouse tables.

    spark-submit jobs/score_users.py --config conf/score_demo.json --run-date 2026-11-28 \
        [--set mode=full --set top_k=50 --set executor.device=gpu]

Writes user_interest, user_recommendations, user_interest_drift and user_scoring_state
partitions run_date=D under warehouse_root (contracts in schemas/), registered in the
Spark catalog database ``database``. Config keys: lib/interest_tracker/scoring/config.py.
Exit codes: 0 ok, 1 runtime failure (retry may help), 2 configuration error (fix the config).
"""
import datetime as dt
import logging
import sys
import time

from interest_tracker.cli import run_job
from interest_tracker.scoring.config import ScoringConfig

log = logging.getLogger("score_users")


def main(cfg: ScoringConfig, run_date: dt.date) -> None:
    from interest_tracker.scoring.pipeline import score_run
    from interest_tracker.scoring.tables import sample_recommendations
    from interest_tracker.spark import get_session

    start = time.perf_counter()
    spark = get_session("interest-tracker-score")
    result = score_run(spark, cfg, run_date)
    log.info("%s run %s with model %s done in %.0f s: %d users (%d encoded by the model); tables %s under %s",
             result.mode, run_date, result.model_version, time.perf_counter() - start, result.users,
             result.users_encoded, ", ".join(f"{cfg.database}.{name}" for name in result.tables), cfg.warehouse_root)
    if cfg.show_users:
        for user, items in sample_recommendations(spark, cfg.warehouse_root, run_date, cfg.show_users):
            log.info("recommendations for %s: %s", user, " ".join(items))


def cli(argv=None) -> int:
    return run_job("Score every user: interest vectors, top-K recommendations, interest drift.", ScoringConfig,
                   lambda cfg, run_date: main(cfg, run_date), argv, shorthands={"--show-users": "show_users"})


if __name__ == "__main__":
    sys.exit(cli())
