"""Train the recurrent interest model on stage 1's sequences and write the model artifact.

    spark-submit jobs/train_model.py --config conf/train_demo.json --run-date 2026-11-28 \
        [--set launcher=horovod --set num_proc=2 --set epochs=5]

``dataset``, ``artifact_root`` and ``model_version`` may contain ``{run_date}``, filled
from --run-date. Every key is documented in interest_tracker.training.config.TrainConfig
(and docs/benchmarks.md, "Stage 2: training"). Exit codes: 0 ok, 1 runtime error, 2 config error.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time

from interest_tracker.cli import exit_with, run_job
from interest_tracker.training.config import TrainConfig

log = logging.getLogger("train_model")


def main(cfg: TrainConfig, run_date: dt.date) -> None:
    from interest_tracker.training.launchers import launch

    day = run_date.isoformat()
    cfg = dataclasses.replace(
        cfg,
        dataset=cfg.dataset.replace("{run_date}", day),
        artifact_root=cfg.artifact_root.replace("{run_date}", day),
        model_version=(cfg.model_version or "v{run_date}").replace("{run_date}", day),
    )
    spark = None
    if cfg.launcher != "local":
        from interest_tracker.spark import get_session

        spark = get_session("train-model")
    start = time.perf_counter()
    result = launch(cfg, spark)
    m = result["metrics"]
    log.info("artifact %s in %.0f s (best epoch %s, %d steps)", result["artifact"], time.perf_counter() - start,
             m["best_epoch"], m["global_step"])
    for split in ("valid", "test"):
        if m.get(split):
            log.info("%s: %s", split, json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                                  for k, v in sorted(m[split].items())}))


if __name__ == "__main__":
    exit_with(run_job("Train the recurrent interest model and write the model artifact.", TrainConfig, main))
