"""Airflow example: clean -> train -> score once a day, the run date being Airflow's ``ds``.

Copy this file into the scheduler's dags/ folder and install the project (``pip install
interest-tracker``) into the scheduler's environment: the commands come from
:func:`interest_tracker.deploy.pipeline_commands`, the same builder the submit scripts
and the executor image use, so what runs here is what ``cluster/submit_*.sh --dry-run``
prints. Edit ``DEPLOYMENT`` for your cluster; it is plain data on purpose (no lookups
hidden in environment variables).

Retries: a runtime failure (exit 1: lost executor, full disk, preempted node) is
retried with backoff. A bad configuration exits 2 within seconds on the driver; it
fails its retries just as fast, and the log says what to fix. Every stage overwrites
exactly its run-date partition, so a retry or a manual rerun is safe (docs/operations.md).
"""
from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.operators.bash import BashOperator

from interest_tracker.deploy import AIRFLOW_RUN_DATE, PIPELINE, pipeline_commands, shell_join

#: Where and how the jobs run. YARN cluster mode: the driver runs on the cluster, so the
#: configs, code and packed environment are URLs the cluster reads (cluster/pack_env.sh
#: builds the archives; docs/deployment.md shows the upload).
DEPLOYMENT = {
    "master": "yarn",
    "deploy_mode": "cluster",
    "app_root": "hdfs:///apps/interest-tracker/0.1.0",
    "env_archive": "hdfs:///apps/interest-tracker/0.1.0/interest-tracker-env.tar.gz",
    "config_urls": {
        "prepare_events": "hdfs:///apps/interest-tracker/conf/prepare_events.json",
        "train_model": "hdfs:///apps/interest-tracker/conf/train_model.json",
        "score_users": "hdfs:///apps/interest-tracker/conf/score_users.json",
    },
    # Jobs that get cluster/<job>.gpu.properties (GPU node pool).
    "gpu_jobs": (),
}


def commands(deployment: dict = DEPLOYMENT) -> dict[str, str]:
    """The shell command of each task; ``{{ ds }}`` is filled in by Airflow at run time."""
    opts = {k: v for k, v in deployment.items() if k not in ("master", "config_urls")}
    argv = pipeline_commands(deployment["master"], AIRFLOW_RUN_DATE, deployment["config_urls"], **opts)
    return {job: shell_join(cmd) for job, cmd in argv.items()}


COMMANDS = commands()

with DAG(
    dag_id="interest_tracker_daily",
    description="interest-tracker: clean/sessionize -> train -> score",
    schedule="@daily",
    start_date=dt.datetime(2026, 11, 1),
    catchup=False,  # backfills are explicit: `airflow dags backfill` (docs/operations.md)
    max_active_runs=1,  # days in parallel would race on vocabulary/_LATEST and the model's _LATEST
    default_args={
        "owner": "interest-tracker",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=10),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=6),
    },
    tags=["interest-tracker"],
) as dag:
    tasks = [BashOperator(task_id=job, bash_command=COMMANDS[job]) for job in PIPELINE]
    for upstream, downstream in zip(tasks, tasks[1:]):
        upstream >> downstream
