"""End to end on a real Spark standalone cluster: a master and two 1-core workers on 127.0.0.1.

Every job goes through ``spark-submit --master spark://127.0.0.1:PORT`` with the command
built by :func:`interest_tracker.deploy.build_submit_command`, so executors are separate
JVMs with their own Python workers, on two workers. Python reaches the executors the way
users ship it to YARN or standalone clusters: the environment packed by
``cluster/pack_env.sh`` (dependencies, horovod and the project, non-editable), passed with
``--archives file://...env.tar.gz#environment``; executors and Horovod ranks run
``./environment/bin/python`` from the unpacked archive, not this checkout's venv (the
driver, in client mode, runs on the submitting machine). The archive is built once per
content of requirements/, setup.py, lib/ and schemas/ and cached in
``~/.cache/interest-tracker/packed-env/`` (building it takes minutes). The image mode is
covered by tests/test_dockerfile.py. Evidence comes from Spark's event logs (which
executor ran which task, and on which worker) and the executors' work directories, not
from the jobs' own claims.

Order (the tests share one cluster and build on each other):
1. stage 1 (prepare_events) on the cluster, SIGKILLing one worker mid-job: tasks ran on
   executors of both workers, from the packed environment, and the run completes with
   tables, report and sequences equal to those of a run without failures (stage 1 on the
   same raw logs in local mode, in this process, while the environment is being packed);
2. stage 2 (train_model) with Horovod, 2 ranks, one per worker, on that run's sequences;
3. stage 3 (score_users) writes the warehouse tables;
4. the pipeline report, submitted to the cluster too, with no environment shipped: its
   executors run only Spark SQL (deploy.NO_EXECUTOR_PYTHON), and are given no Python at all.

Where the time goes (2 cores): packing the environment (minutes, single-threaded: pip and
gzip), then one spark-submit per stage (JVMs, executors unpacking the archive). The
packing runs in the background while the raw logs and the reference stage-1 run use the
other core, and stage 1 runs on the cluster once: the killed-worker run is also the run
whose task placement and environment are checked.

Run alone: ``.venv/bin/python -m pytest tests/test_cluster_standalone.py -o log_cli=true --log-cli-level=INFO``
(the INFO log shows the executors per worker and the Horovod ranks per worker).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from interest_tracker.deploy import build_submit_command, shell_join
from interest_tracker.deploy.standalone import StandaloneCluster, spark_home
from interest_tracker.layout import ArtifactStore, Stage1Layout, fs
from interest_tracker.layout.report import ReportPages
from interest_tracker.layout.warehouse import DRIFT, INTEREST, RECOMMENDATIONS

# Each test includes spark-submit JVM start-ups on a 2-core machine: allow more than pytest.ini's 900 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
log = logging.getLogger("cluster-test")

REPO = Path(__file__).resolve().parents[1]
RUN = dt.date(2026, 11, 28)
JOB_TIMEOUT_S = 600
# Sizing for two 1-core, 2 GB workers; everything else comes from cluster/*.properties.
SMALL_CLUSTER_CONF = {
    "spark.executor.cores": "1",
    "spark.task.cpus": "1",
    "spark.cores.max": "2",
    "spark.executor.memory": "768m",
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.eventLog.enabled": "true",
    # Barrier/horovod stages wait for both executors instead of failing when one is late.
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
}


# --------------------------------------------------------------------------- helpers

class Run:
    """One spark-submit: its command, exit code, log and event log."""

    def __init__(self, name: str, argv: list[str], rc: int, log_path: Path, events_dir: Path, seconds: float):
        self.name, self.argv, self.rc, self.log_path, self.events_dir, self.seconds = (
            name, argv, rc, log_path, events_dir, seconds)

    @property
    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict]:
        files = sorted(self.events_dir.iterdir())
        assert len(files) == 1, f"expected one event log in {self.events_dir}, got {files}"
        return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def executor_workers(events: list[dict], port_to_worker: dict[int, str]) -> dict[str, str]:
    """executor id -> worker name, from the executors' log URLs (each worker's UI port)."""
    out = {}
    for e in events:
        if e["Event"] == "SparkListenerExecutorAdded":
            urls = e["Executor Info"].get("Log Urls", {})
            port = int(re.search(r":(\d+)/", urls["stdout"]).group(1))
            out[e["Executor ID"]] = port_to_worker.get(port, f"unknown-port-{port}")
    return out


def tasks_by_executor(events: list[dict], stage_filter=None) -> dict[str, int]:
    stages = {e["Stage Info"]["Stage ID"]: e["Stage Info"] for e in events if e["Event"] == "SparkListenerStageSubmitted"}
    counts: dict[str, int] = defaultdict(int)
    for e in events:
        if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] == "Success":
            if stage_filter is None or stage_filter(stages.get(e["Stage ID"], {})):
                counts[e["Task Info"]["Executor ID"]] += 1
    return dict(counts)


def job_group_stages(events: list[dict], prefix: str) -> set[int]:
    """Stage ids of the Spark jobs whose job group starts with ``prefix`` (horovod.spark.run.N)."""
    return {sid for e in events if e["Event"] == "SparkListenerJobStart"
            and str((e.get("Properties") or {}).get("spark.jobGroup.id", "")).startswith(prefix)
            for sid in e["Stage IDs"]}


def rank_prefixes_per_worker(cluster: StandaloneCluster, app_id: str) -> dict[str, list[str]]:
    """Horovod ranks whose output ("[r]<stderr>:...") is in each worker's executor logs for ``app_id``."""
    out = {}
    for d in cluster.daemons:
        if d.work_dir is None:
            continue
        ranks = set()
        for f in d.work_dir.glob(f"{app_id}/*/std*"):
            ranks.update(re.findall(r"^\[(\d+)\]<std(?:out|err)>", f.read_text(errors="replace"), re.M))
        out.setdefault(d.name, [])
        out[d.name] = sorted(set(out[d.name]) | ranks)
    return out


def failed_tasks(events: list[dict]) -> list[str]:
    return [e["Task End Reason"]["Reason"] for e in events
            if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] != "Success"]


def tasks_per_worker(run: Run, cluster: StandaloneCluster, stage_filter=None) -> dict[str, int]:
    ports = {d.webui_port: d.name for d in cluster.daemons if d.name.startswith("worker")}
    events = run.events()
    where = executor_workers(events, ports)
    per_worker: dict[str, int] = defaultdict(int)
    for ex, n in tasks_by_executor(events, stage_filter).items():
        per_worker[where.get(ex, f"executor-{ex}")] += n
    return dict(per_worker)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def cluster(workspace):
    c = StandaloneCluster(workspace / "cluster", workers=2, cores=1, memory="2g")
    c.start()
    log.info("standalone cluster %s: %s", c.master_url,
             [(w["id"], w["cores"], w["memory"]) for w in c.alive_workers()])
    try:
        yield c
    finally:
        c.stop()


def _pack_stamp() -> str:
    """Hash of everything that goes into the packed env (so a code change repacks)."""
    h = hashlib.sha1()
    files = [REPO / "cluster/pack_env.sh", REPO / "setup.py", *sorted((REPO / "requirements").glob("*.txt")),
             *sorted((REPO / "lib").rglob("*.py")), *sorted((REPO / "schemas").glob("*.json"))]
    for f in files:
        h.update(str(f.relative_to(REPO)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


class PackJob:
    """``cluster/pack_env.sh`` running in the background (or already cached): ``wait()`` -> the archive."""

    def __init__(self, out: Path, proc: subprocess.Popen | None = None, partial: Path | None = None,
                 log_path: Path | None = None):
        self.out, self.proc, self.partial, self.log_path = out, proc, partial, log_path
        self.t0 = time.monotonic()

    @property
    def archive(self) -> Path:
        return self.out / "interest-tracker-env.tar.gz"

    def wait(self) -> Path:
        if self.proc is not None:
            t_wait = time.monotonic()
            rc = self.proc.wait(timeout=1500)
            assert rc == 0 and (self.partial / self.archive.name).is_file(), (
                f"cluster/pack_env.sh failed (exit {rc}):\n" + self.log_path.read_text(errors="replace")[-3000:])
            os.rename(self.partial, self.out)  # a complete pack only: an interrupted one is never reused
            self.proc, self.partial = None, None
            log.info("packed the environment in %.0f s (%.0f s of it waited for, the rest overlapped): %s (%.0f MB)",
                     time.monotonic() - self.t0, time.monotonic() - t_wait, self.archive,
                     self.archive.stat().st_size / 1e6)
        return self.archive

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        if self.partial is not None:
            shutil.rmtree(self.partial, ignore_errors=True)


@pytest.fixture(scope="module")
def pack_job(workspace):
    """Start ``cluster/pack_env.sh`` (what users upload), once per content of what it packs.

    Packing takes minutes on one core (pip, then gzip), so it runs in the background: the
    local-mode fixtures (raw logs, the reference stage-1 run) and the cluster start-up use
    the other core meanwhile, and ``packed_env`` waits for it.
    """
    pytest.importorskip("horovod", reason="horovod not built: scripts/build_horovod.sh (make env)")
    tools = Path(sys.executable).parent.parent / ".interest-tracker/tools"
    if not (tools / "venv_pack").is_dir():
        pytest.skip("venv-pack not installed: run scripts/install_test_tools.sh (make test-tools)")
    cache = Path(os.environ.get("INTEREST_TRACKER_PACK_CACHE", Path.home() / ".cache/interest-tracker/packed-env"))
    out = cache / _pack_stamp()
    if (out / "interest-tracker-env.tar.gz").is_file():
        yield PackJob(out)
        return
    if cache.is_dir():  # keep only the newest pack: each is ~1 GB
        for old in cache.iterdir():
            shutil.rmtree(old, ignore_errors=True)
    partial = cache / f".{out.name}.partial-{os.getpid()}"
    log_path = workspace / "pack_env.log"
    with open(log_path, "wb") as f:
        proc = subprocess.Popen([str(REPO / "cluster/pack_env.sh"), str(partial)], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "TOOLS_DIR": str(tools)}, start_new_session=True)
    job = PackJob(out, proc, partial, log_path)
    try:
        yield job
    finally:
        job.stop()


@pytest.fixture(scope="module")
def packed_env(pack_job) -> Path:
    """``cluster/pack_env.sh``'s env archive, once the background pack is done."""
    return pack_job.wait()


@pytest.fixture(scope="module")
def submit(cluster, workspace, packed_env):
    """``submit(name, job, config_dict, during=None)`` -> Run; ``during(proc, log_path)`` runs while it does."""

    def _submit(name: str, job: str, config: dict, during=None, extra_conf: dict | None = None,
                extra_env: dict | None = None) -> Run:
        cfg_path = workspace / f"{name}.json"
        cfg_path.write_text(json.dumps(config, indent=2))
        events_dir = workspace / "events" / name
        events_dir.mkdir(parents=True)
        # The kill test reads Spark's INFO lines (tasks, executors), so Spark logs at INFO here.
        argv = build_submit_command(
            job, cluster.master_url, RUN, f"file://{cfg_path}", env_archive=f"file://{packed_env}",
            driver_python=sys.executable, spark_log_level="INFO",
            spark_submit=str(spark_home() / "bin" / "spark-submit"),
            conf={**SMALL_CLUSTER_CONF, "spark.eventLog.dir": f"file://{events_dir}",
                  "spark.sql.warehouse.dir": f"file://{workspace / 'spark-warehouse'}", **(extra_conf or {})},
        )
        log_path = workspace / f"{name}.log"
        log.info("%s: %s", name, shell_join(argv))
        t0 = time.monotonic()
        env = {**cluster.env(), "HOROVOD_GLOO_IFACE": "lo", "SPARK_LOG_LEVEL": "INFO", **(extra_env or {})}
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workspace,
                                    start_new_session=True)
            try:
                if during is not None:
                    during(proc, log_path)
                rc = proc.wait(timeout=JOB_TIMEOUT_S)
            except BaseException:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise
        run = Run(name, argv, rc, log_path, events_dir, time.monotonic() - t0)
        log.info("%s: exit %d in %.0f s", name, rc, run.seconds)
        assert rc == 0, f"{name} failed (exit {rc}); last log lines:\n" + "\n".join(run.text.splitlines()[-60:])
        return run

    return _submit


@pytest.fixture(scope="module")
def raw_logs(spark, workspace):
    """Tiny synthetic raw logs (conf/synthetic_tiny.json), written with the shared local session."""
    from interest_tracker.config import load
    from interest_tracker.synthetic import SyntheticJobConfig, generate, write_synthetic

    out = workspace / "synth"
    cfg = load(SyntheticJobConfig, REPO / "conf/synthetic_tiny.json", [f"output=file://{out}"]).with_run_date(RUN)
    counts = write_synthetic(generate(spark, cfg), cfg.output, "jsonl", False)
    log.info("synthetic raw logs: %s", counts)
    return out / "raw"


def prepare_config(raw: Path, out: Path) -> dict:
    return {"input": {"path": f"file://{raw}", "format": "jsonl"}, "output_root": f"file://{out}",
            "sequences": {"window_length": 10, "num_row_groups": 8}}


def read_partition(spark, layout, table: str, contract: str):
    """Run RUN of a stage-1 table (``layout``: a Stage1Layout) or warehouse table (a Warehouse)."""
    from pyspark.sql import functions as F

    from interest_tracker import io

    url = layout.table(table) if isinstance(layout, Stage1Layout) else layout.table_url(table)
    return io.read_table(spark, url, contract).where(F.col("run_date") == F.lit(RUN))


def assert_same_rows(a, b, what: str) -> None:
    na, nb = a.count(), b.count()
    assert na == nb, f"{what}: {na} rows vs {nb}"
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0, f"{what}: rows differ"


# --------------------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def reference_out(pack_job, raw_logs, spark, workspace) -> Path:
    """Stage 1 on the same raw logs without failures: the job's library call in local mode
    (the shared session), run while the environment is packed. Stage 1's output does not
    depend on where, or how many times, its tasks ran, so the killed cluster run must write
    exactly this."""
    from interest_tracker.config import from_dict
    from interest_tracker.prepare.config import PrepareConfig
    from interest_tracker.prepare.pipeline import run_prepare

    out = workspace / "out-reference"
    t0 = time.monotonic()
    run_prepare(spark, from_dict(PrepareConfig, prepare_config(raw_logs, out)), RUN)
    log.info("reference stage-1 run (local mode) in %.0f s", time.monotonic() - t0)
    return out


@pytest.fixture(scope="module")
def prepare_run(pack_job, reference_out, submit, cluster, raw_logs, workspace):
    """Stage 1 on the cluster, one worker SIGKILLed mid-job; -> (Run, {"index", "executor"} of the kill)."""
    killed = {}

    def kill_mid_job(proc, log_path):
        # Once a few Spark jobs have finished (shuffle output now lives on both executors),
        # wait for a task to start on some executor and SIGKILL the JVM of the worker that
        # hosts it, while the stage-1 job is still running.
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            text = log_path.read_text(errors="replace")
            done = [m.end() for m in re.finditer(r"Job \d+ finished", text)]
            if len(done) >= 4:
                started = re.findall(r"Starting task \S+ in stage \S+ \(TID \d+\) \([^,]+, executor (\d+),",
                                     text[done[3]:])
                if started:
                    worker_id = re.search(rf"Executor added: [^/\s]+/{started[-1]} on (worker-\S+)", text).group(1)
                    index = cluster.worker_index_of(worker_id)
                    cluster.kill_worker(index)
                    killed.update(index=index, executor=started[-1])
                    return
            time.sleep(0.1)

    try:
        run = submit("prepare-killed", "prepare_events", prepare_config(raw_logs, workspace / "out-killed"),
                     during=kill_mid_job)
    finally:
        if killed:  # bring the cluster back to two workers for the Horovod stage
            cluster.start_worker(killed["index"])
    return run, killed


def test_executors_run_the_packed_environment(prepare_run, cluster, packed_env):
    """The executors ran Python from the unpacked archive: the submit names no other Python
    for them, and every executor directory of the app holds the unpacked environment."""
    run, _ = prepare_run
    conf = dict(run.argv[i + 1].split("=", 1) for i, a in enumerate(run.argv) if a == "--conf")
    assert run.argv[run.argv.index("--archives") + 1] == f"file://{packed_env}#environment"
    assert conf["spark.pyspark.python"] == "./environment/bin/python"
    app_id = next(e["App ID"] for e in run.events() if e["Event"] == "SparkListenerApplicationStart")
    unpacked = {d.name: sorted(d.work_dir.glob(f"{app_id}/*/environment/bin/python"))
                for d in cluster.daemons if d.work_dir is not None}
    log.info("unpacked environments of %s: %s", app_id, unpacked)
    assert set(unpacked) == {"worker0", "worker1"} and all(unpacked.values()), unpacked  # on both workers


def test_prepare_runs_on_executors_of_both_workers(prepare_run, cluster, workspace):
    run, _ = prepare_run
    assert "Executor: Running task" not in run.text, (
        "the driver ran the tasks itself (local mode): the job ignored spark-submit's --master. "
        "interest_tracker.spark.get_session must attach to spark-submit's JVM before reading SparkConf")
    per_worker = tasks_per_worker(run, cluster)
    log.info("prepare_events tasks per worker: %s", per_worker)
    assert set(per_worker) == {"worker0", "worker1"}, per_worker
    assert min(per_worker.values()) > 0
    report = fs.read_json(Stage1Layout(str(workspace / "out-killed"), RUN).report)
    assert report["reconciled"] and report["counts"]["clean"] > 0


def test_prepare_survives_a_killed_worker(prepare_run, reference_out, cluster, workspace, spark):
    run, killed = prepare_run
    assert killed, "the job finished before the worker could be killed"
    events = run.events()
    removed = [e for e in events if e["Event"] == "SparkListenerExecutorRemoved"]
    failures = failed_tasks(events)
    log.info("killed worker%d (executor %s) mid-job: executors removed %s; failed task attempts %s", killed["index"], killed["executor"],
             [(e["Executor ID"], e["Removed Reason"]) for e in removed], failures)
    assert [e["Executor ID"] for e in removed] == [killed["executor"]], "the driver did not lose the killed executor"
    per_worker = tasks_per_worker(run, cluster)
    log.info("prepare_events (with failure) tasks per worker: %s", per_worker)
    assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker

    clean, killed_out = Stage1Layout(str(reference_out), RUN), Stage1Layout(str(workspace / "out-killed"), RUN)
    for table, contract in (("events", "clean_events"), ("sessions", "sessions"), ("rejected", "rejected_events"),
                            ("quarantine", "quarantined_events")):
        assert_same_rows(read_partition(spark, clean, table, contract),
                         read_partition(spark, killed_out, table, contract), table)
    a, b = fs.read_json(clean.report), fs.read_json(killed_out.report)
    assert a["counts"] == b["counts"]
    info_a, info_b = clean.dataset().info(), killed_out.dataset().info()
    assert {k: info_a[k] for k in ("rows", "targets", "num_items")} == {k: info_b[k] for k in ("rows", "targets", "num_items")}
    for split in ("train", "valid", "test"):
        cols = "window_id", "user_id", "length", "input_items", "target_items", "target_mask"
        sa = spark.read.parquet(clean.dataset().split(split)).select(*cols)
        sb = spark.read.parquet(killed_out.dataset().split(split)).select(*cols)
        assert_same_rows(sa, sb, f"sequences/{split}")


def _need_job(name: str) -> None:
    if not (REPO / "jobs" / f"{name}.py").is_file():
        pytest.skip(f"jobs/{name}.py has not landed yet: the cluster test cannot run this stage")


@pytest.fixture(scope="module")
def train_run(submit, prepare_run, workspace, cluster):
    _need_job("train_model")
    pytest.importorskip("horovod", reason="horovod not built: scripts/build_horovod.sh (make env)")
    cluster.wait_for_workers(2)
    cfg = {"dataset": Stage1Layout(str(workspace / "out-killed"), RUN).sequences,  # the cluster's stage 1
           # A plain path here (the layout takes paths and URLs alike; tests/test_s3_handoff.py
           # covers s3://). Rank 0 and this test process share the machine's disk.
           "artifact_root": str(workspace / "artifacts"), "launcher": "horovod", "num_proc": 2,
           "epochs": 2, "batch_size": 32, "eval_batch_size": 128, "warmup_steps": 0, "reader_pool": "dummy",
           "model": {"hidden_size": 16, "embedding_dim": 16, "event_type_dim": 4}, "log_every_steps": 5}
    return submit("train", "train_model", cfg)


def test_train_runs_two_horovod_ranks_on_two_workers(train_run, cluster, workspace):
    events = train_run.events()
    horovod_stages = job_group_stages(events, "horovod.spark.run")
    assert horovod_stages, "no Spark job in a horovod.spark.run job group"
    per_worker = tasks_per_worker(train_run, cluster, lambda info: info.get("Stage ID") in horovod_stages)
    app_id = next(e["App ID"] for e in events if e["Event"] == "SparkListenerApplicationStart")
    ranks = rank_prefixes_per_worker(cluster, app_id)
    log.info("horovod: one Spark task per rank, per worker: %s; rank output found in executor logs: %s",
             per_worker, ranks)
    assert per_worker == {"worker0": 1, "worker1": 1}, per_worker
    latest = ArtifactStore(str(workspace / "artifacts")).latest()
    art = workspace / "artifacts" / latest
    for f in ("weights.pt", "model_config.json", "artifact.json", "metrics.json"):
        assert (art / f).is_file(), f
    manifest = json.loads((art / "artifact.json").read_text())
    assert manifest["environment"]["world_size"] == 2 and manifest["environment"]["launcher"] == "horovod"
    # Rank 0 ran the packed env's interpreter (./environment/bin/python in its executor's
    # directory), not the driver's venv: Horovod ranks use what the executors were given.
    assert manifest["environment"]["executable"] == "./environment/bin/python" or \
        manifest["environment"]["executable"].endswith("/environment/bin/python"), manifest["environment"]
    metrics = json.loads((art / "metrics.json").read_text())
    assert metrics["epochs_run"] >= 1 and metrics["history"]


@pytest.fixture(scope="module")
def score_run(submit, train_run, workspace):
    _need_job("score_users")
    cfg = {"events_root": f"file://{workspace}/out-killed", "artifact_root": str(workspace / "artifacts"),
           "warehouse_root": f"file://{workspace}/warehouse", "mode": "full", "top_k": 5, "register_tables": False}
    return submit("score", "score_users", cfg)


def test_score_writes_the_warehouse_tables(score_run, cluster, workspace, spark):
    from pyspark.sql import functions as F

    per_worker = tasks_per_worker(score_run, cluster)
    log.info("score_users tasks per worker: %s", per_worker)
    assert set(per_worker) == {"worker0", "worker1"}, per_worker
    from interest_tracker.layout.warehouse import Warehouse

    wh = Warehouse(str(workspace / "warehouse"))
    users = read_partition(spark, Stage1Layout(str(workspace / "out-killed"), RUN), "events", "clean_events"
                           ).select("user_id").distinct().count()
    interest = read_partition(spark, wh, INTEREST, "user_interest")
    recs = read_partition(spark, wh, RECOMMENDATIONS, "user_recommendations")
    drift = read_partition(spark, wh, DRIFT, "user_interest_drift")
    assert interest.count() == users > 0
    assert drift.count() == users
    per_user = recs.groupBy("user_id").agg(F.count("*").alias("n"), F.min("rank").alias("lo"), F.max("rank").alias("hi"))
    assert per_user.count() == users
    assert per_user.where((F.col("n") != 5) | (F.col("lo") != 1) | (F.col("hi") != 5)).count() == 0


def test_report_job_on_the_cluster(submit, score_run, cluster, workspace):
    """The report ships no environment (its executors run only Spark SQL; deploy.NO_EXECUTOR_PYTHON),
    and its executors are given a Python that does not exist: a Python task there would fail the job."""
    cfg = {"events_root": f"file://{workspace}/out-killed", "artifact_root": str(workspace / "artifacts"),
           "warehouse_root": f"file://{workspace}/warehouse", "report_dir": str(workspace / "report"),
           "allow_missing": False}
    run = submit("report", "pipeline_report", cfg, extra_env={"PYSPARK_PYTHON": "/nonexistent/bin/python"})
    conf = dict(run.argv[i + 1].split("=", 1) for i, a in enumerate(run.argv) if a == "--conf")
    assert "--archives" not in run.argv and "spark.pyspark.python" not in conf
    assert conf["spark.pyspark.driver.python"] == sys.executable
    app_id = next(e["App ID"] for e in run.events() if e["Event"] == "SparkListenerApplicationStart")
    executor_dirs = [p for d in cluster.daemons if d.work_dir is not None for p in d.work_dir.glob(f"{app_id}/*")]
    assert executor_dirs, f"no executor of {app_id} ran on the workers"
    assert not [p for p in executor_dirs if (p / "environment").exists()]
    assert tasks_by_executor(run.events()), "the report ran no task on the executors"
    page = ReportPages(str(workspace / "report")).page(RUN)
    summary = json.loads((page.parent / "summary.json").read_text())
    assert summary["missing"] == {}
    assert summary["counts"]["input rows"] > summary["counts"]["clean"] > 0
    log.info("pipeline report: %s", page)
