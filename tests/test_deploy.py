"""The spark-submit command builder, the submit scripts that call it, and the DAG example.

No Spark here: these tests pin the exact command lines, so the scripts, the DAG and
the image cannot drift apart, and check the faults users hit when moving to a cluster.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

from interest_tracker.config import ConfigError
from interest_tracker.deploy import (
    AIRFLOW_RUN_DATE,
    JOBS,
    NO_EXECUTOR_PYTHON,
    PIPELINE,
    SubmitError,
    build_submit_command,
    non_url_paths,
    pipeline_commands,
    read_properties,
    shell_join,
)
from interest_tracker.deploy.submit import job_properties, master_kind

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
LOG_CONFIG = REPO / "conf/log4j2.properties"
QUIET = f"-Dlog4j2.configurationFile={LOG_CONFIG}"


def conf_of(argv: list[str]) -> dict[str, str]:
    """The ``--conf k=v`` pairs of a command line."""
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture()
def config_file(tmp_path):
    p = tmp_path / "prepare.json"
    p.write_text(json.dumps({"input_url": "file:///data/raw", "output_root": "file:///data/out"}))
    return p


def test_local_command_is_exact(config_file):
    argv = build_submit_command("prepare_events", "local[2]", "2026-11-28", f"file://{config_file}",
                                overrides=["cleaning.max_field_length=256"])
    props = {**read_properties(CLUSTER / "common.properties"), **read_properties(CLUSTER / "prepare_events.properties"),
             # Spark at WARN: the driver (the only JVM in local mode) reads the project's log4j2 file.
             "spark.driver.extraJavaOptions": QUIET}
    expected = ["spark-submit", "--master", "local[2]", "--deploy-mode", "client",
                "--name", "interest-tracker-prepare_events-2026-11-28"]
    for k in sorted(props):
        expected += ["--conf", f"{k}={props[k]}"]
    expected += [str(REPO / "jobs/prepare_events.py"), "--config", str(config_file),
                 "--run-date", "2026-11-28", "--set", "cleaning.max_field_length=256"]
    assert argv == expected


def test_standalone_with_provisioned_python(config_file):
    argv = build_submit_command("score_users", "spark://127.0.0.1:7077", "2026-11-28", str(config_file),
                                executor_python="/opt/venv/bin/python", conf={"spark.cores.max": "2"})
    c = conf_of(argv)
    assert flag(argv, "--master") == "spark://127.0.0.1:7077"
    assert c["spark.pyspark.python"] == "/opt/venv/bin/python"
    assert c["spark.cores.max"] == "2"
    assert c["spark.sql.execution.arrow.maxRecordsPerBatch"] == "2048"
    assert "--archives" not in argv and "--py-files" not in argv and "--files" not in argv
    # Same paths on every node: driver and executors read the same log4j2 file.
    assert c["spark.driver.extraJavaOptions"] == c["spark.executor.extraJavaOptions"] == QUIET
    assert argv[-4:] == ["--config", str(config_file), "--run-date", "2026-11-28"]


def test_yarn_client_ships_packed_env_and_code(config_file):
    argv = build_submit_command("train_model", "yarn", "2026-11-28", f"file://{config_file}",
                                env_archive="hdfs:///apps/it/env.tar.gz", code_zip="hdfs:///apps/it/code.zip",
                                driver_python="/usr/bin/python3.11")
    c = conf_of(argv)
    assert flag(argv, "--archives") == "hdfs:///apps/it/env.tar.gz#environment"
    assert flag(argv, "--py-files") == "hdfs:///apps/it/code.zip"
    assert c["spark.pyspark.python"] == "./environment/bin/python"
    assert c["spark.pyspark.driver.python"] == "/usr/bin/python3.11"
    # The client-mode driver reads the local log4j2 file; YARN containers get it with --files.
    assert flag(argv, "--files") == str(LOG_CONFIG)
    assert c["spark.driver.extraJavaOptions"] == QUIET
    assert c["spark.executor.extraJavaOptions"] == "-Dlog4j2.configurationFile=log4j2.properties"
    # Horovod's barrier stage: no dynamic allocation, one rank per executor.
    assert c["spark.dynamicAllocation.enabled"] == "false"
    assert c["spark.task.cpus"] == c["spark.executor.cores"]
    assert "spark.executor.resource.gpu.amount" not in c


def test_the_report_ships_no_environment_in_client_mode(config_file):
    """Its executors run only Spark SQL: no archive to unpack on the driver and on every executor."""
    assert NO_EXECUTOR_PYTHON == {"pipeline_report"}
    for master in ("yarn", "spark://h:7077"):
        argv = build_submit_command("pipeline_report", master, "2026-11-28", f"file://{config_file}",
                                    env_archive="hdfs:///apps/it/env.tar.gz", driver_python="/usr/bin/python3.11")
        c = conf_of(argv)
        assert "--archives" not in argv and "spark.pyspark.python" not in c
        assert c["spark.pyspark.driver.python"] == "/usr/bin/python3.11"
    # A provisioned interpreter stays the driver's; nothing to ship needs nothing; an archive
    # without the driver's interpreter is refused as for every client-mode job.
    argv = build_submit_command("pipeline_report", "spark://h:7077", "2026-11-28", f"file://{config_file}",
                                executor_python="/opt/venv/bin/python")
    c = conf_of(argv)
    assert "spark.pyspark.python" not in c and c["spark.pyspark.driver.python"] == "/opt/venv/bin/python"
    argv = build_submit_command("pipeline_report", "yarn", "2026-11-28", f"file://{config_file}")
    assert "--archives" not in argv and "spark.pyspark.driver.python" not in conf_of(argv)
    with pytest.raises(ConfigError, match="needs driver_python"):
        build_submit_command("pipeline_report", "yarn", "2026-11-28", f"file://{config_file}",
                             env_archive="hdfs:///apps/it/env.tar.gz")
    # In cluster mode the driver itself runs on the cluster, from the archive.
    argv = build_submit_command("pipeline_report", "yarn", "2026-11-28", "hdfs:///conf/report.json",
                                deploy_mode="cluster", env_archive="hdfs:///it/env.tgz", app_root="hdfs:///apps/it")
    assert flag(argv, "--archives") == "hdfs:///it/env.tgz#environment"
    assert conf_of(argv)["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./environment/bin/python"


def test_yarn_cluster_mode_ships_the_config(config_file):
    argv = build_submit_command("prepare_events", "yarn", "2026-11-28", "hdfs:///conf/prepare.json",
                                deploy_mode="cluster", env_archive="hdfs:///it/env.tgz", code_zip="hdfs:///it/code.zip",
                                app_root="hdfs:///apps/it/0.1.0")
    c = conf_of(argv)
    assert flag(argv, "--deploy-mode") == "cluster"
    assert flag(argv, "--files") == f"hdfs:///conf/prepare.json,{LOG_CONFIG}"
    assert flag(argv, "--config") == "prepare.json"
    assert c["spark.driver.extraJavaOptions"] == c["spark.executor.extraJavaOptions"] == \
        "-Dlog4j2.configurationFile=log4j2.properties"
    assert "hdfs:///apps/it/0.1.0/jobs/prepare_events.py" in argv
    assert c["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert "spark.pyspark.driver.python" not in c


def test_kubernetes_image_cluster_mode():
    argv = build_submit_command("score_users", "k8s://https://10.0.0.1:6443", "2026-11-28", "s3a://b/conf/score.json",
                                deploy_mode="cluster", image="registry/interest-tracker:0.1.0")
    c = conf_of(argv)
    assert c["spark.kubernetes.container.image"] == "registry/interest-tracker:0.1.0"
    assert c["spark.pyspark.python"] == "/opt/venv/bin/python"
    assert "local:///opt/interest-tracker/jobs/score_users.py" in argv
    assert flag(argv, "--files") == "s3a://b/conf/score.json" and flag(argv, "--config") == "score.json"
    # The image carries the log4j2 file (cluster/Dockerfile): nothing to ship.
    image_conf = "-Dlog4j2.configurationFile=/opt/interest-tracker/conf/log4j2.properties"
    assert c["spark.driver.extraJavaOptions"] == c["spark.executor.extraJavaOptions"] == image_conf


def test_gpu_layer_only_for_training(config_file):
    argv = build_submit_command("train_model", "k8s://https://k:6443", "2026-11-28", "s3a://b/t.json",
                                deploy_mode="cluster", image="img:1", gpu=True)
    c = conf_of(argv)
    assert c["spark.executor.resource.gpu.amount"] == "1"
    assert c["spark.task.resource.gpu.amount"] == "1"
    script = c["spark.executor.resource.gpu.discoveryScript"]
    assert script == "/opt/interest-tracker/cluster/get_gpus_resources.sh"
    assert (CLUSTER / Path(script).name).is_file()
    with pytest.raises(SubmitError, match="only train_model runs on GPUs"):
        build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file), gpu=True)


def test_later_layers_win(tmp_path):
    (tmp_path / "common.properties").write_text("# c\nspark.a=1\nspark.b 2\n")
    (tmp_path / "train_model.properties").write_text("! j\nspark.b=3\nspark.c = x=y\n")
    (tmp_path / "train_model.gpu.properties").write_text("spark.c=gpu\n")
    assert job_properties("train_model", tmp_path) == {"spark.a": "1", "spark.b": "3", "spark.c": "x=y"}
    assert job_properties("train_model", tmp_path, gpu=True)["spark.c"] == "gpu"
    argv = build_submit_command("train_model", "local[1]", "2026-11-28", str(tmp_path / "c.json"),
                                properties_dir=tmp_path, conf={"spark.a": "override"}, log_config=False)
    assert conf_of(argv) == {"spark.a": "override", "spark.b": "3", "spark.c": "x=y"}


def test_spark_logging_is_quiet_by_default_and_info_comes_back_on_request(config_file, tmp_path):
    quiet = conf_of(build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file)))
    assert quiet["spark.driver.extraJavaOptions"] == QUIET and "spark.log.level" not in quiet
    assert "rootLogger.level = ${env:SPARK_LOG_LEVEL:-warn}" in LOG_CONFIG.read_text()
    loud = conf_of(build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file),
                                        spark_log_level="info"))
    assert loud["spark.log.level"] == "INFO"
    # A user's own JVM options are kept, after ours.
    mine = conf_of(build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file),
                                        conf={"spark.driver.extraJavaOptions": "-Dx=1"}))
    assert mine["spark.driver.extraJavaOptions"] == f"{QUIET} -Dx=1"
    assert "spark.driver.extraJavaOptions" not in conf_of(
        build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file), log_config=False))
    with pytest.raises(SubmitError, match="spark_log_level"):
        build_submit_command("score_users", "local[2]", "2026-11-28", str(config_file), spark_log_level="chatty")
    # The submit scripts read SPARK_LOG_LEVEL from the environment.
    res = run_cli(str(CLUSTER / "submit_score_users.sh"), "--master", "local[2]", "--run-date", "2026-11-28",
                  "--config-url", str(config_file), "--dry-run", env_extra={"SPARK_LOG_LEVEL": "INFO"})
    assert res.returncode == 0, res.stderr
    assert "spark.log.level=INFO" in res.stdout


def test_properties_files_are_valid_and_complete():
    for job in JOBS:
        props = job_properties(job, CLUSTER)
        assert props, job
        assert all(k.startswith("spark.") for k in props), (job, props)
    prep = job_properties("prepare_events", CLUSTER)
    assert prep["spark.sql.adaptive.enabled"] == "true"
    assert int(prep["spark.sql.shuffle.partitions"]) >= 200
    assert prep["spark.sql.adaptive.skewJoin.enabled"] == "true"
    score = job_properties("score_users", CLUSTER)
    assert int(score["spark.sql.execution.arrow.maxRecordsPerBatch"]) > 0


def test_malformed_properties_line_names_the_file(tmp_path):
    (tmp_path / "bad.properties").write_text("spark.ok=1\nspark.novalue\n")
    with pytest.raises(SubmitError, match=r"bad.properties:2"):
        read_properties(tmp_path / "bad.properties")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(master="mesos://x:5050"), "is not one of"),
        (dict(run_date="28/11/2026"), "YYYY-MM-DD"),
        (dict(job="train"), "unknown job"),
        (dict(master="yarn"), "needs the Python environment on the executors"),
        (dict(master="yarn", image="img"), "Kubernetes masters"),
        (dict(master="yarn", env_archive="hdfs:///e.tgz"), "needs driver_python"),
        (dict(master="yarn", env_archive="/local/e.tgz", code_zip="hdfs:///c.zip"), "must be a URL"),
        (dict(master="yarn", config_url="hdfs:///c.json", executor_python="/p"), "client mode"),
        (dict(master="spark://h:7077", deploy_mode="cluster", executor_python="/p"), "standalone does not run Python"),
        (dict(master="local[2]", deploy_mode="cluster"), "needs a cluster master"),
        (dict(master="yarn", deploy_mode="cluster", executor_python="/p"), "needs app_root"),
        (dict(master="yarn", executor_python="/p", image="i"), "choose one way"),
        (dict(overrides=["novalue"]), "dotted.key=value"),
    ],
)
def test_faults_say_how_to_fix(kwargs, message):
    args = dict(job="prepare_events", master="local[2]", run_date="2026-11-28", config_url="/tmp/c.json")
    args.update(kwargs)
    job, master, run_date, config_url = (args.pop(k) for k in ("job", "master", "run_date", "config_url"))
    with pytest.raises(ConfigError, match=message):
        build_submit_command(job, master, run_date, config_url, **args)


def test_master_kinds():
    assert [master_kind(m) for m in ("local", "local[*]", "local[4,2]", "yarn", "spark://a:1,b:2",
                                     "k8s://https://k:6443")] == ["local", "local", "local", "yarn", "standalone", "k8s"]


def test_non_url_paths_finds_local_paths():
    cfg = {"output_root": "/tmp/out", "input_url": "s3a://b/raw", "model": {"artifact_root": "relative/dir",
           "name": "/not/a/path/key"}, "report_dir": "file:///shared/r"}
    assert non_url_paths(cfg) == ["output_root", "model.artifact_root"]


def test_airflow_template_date_renders_to_a_valid_command():
    argv = build_submit_command("score_users", "local[2]", AIRFLOW_RUN_DATE, "/tmp/c.json")
    line = shell_join(argv)
    assert "--run-date '{{ ds }}'" in line
    rendered = shlex.split(line.replace("{{ ds }}", "2026-11-28"))
    assert rendered == build_submit_command("score_users", "local[2]", "2026-11-28", "/tmp/c.json")


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHON": sys.executable, **(env_extra or {})}
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_submit_scripts_print_the_builder_command(job, config_file):
    res = run_cli(str(CLUSTER / f"submit_{job}.sh"), "--master", "spark://127.0.0.1:7077", "--run-date", "2026-11-28",
                  "--config-url", f"file://{config_file}", "--executor-python", "/opt/venv/bin/python",
                  "--conf", "spark.cores.max=2", "--set", "a.b=1", "--dry-run")
    assert res.returncode == 0, res.stderr
    expected = build_submit_command(job, "spark://127.0.0.1:7077", "2026-11-28", f"file://{config_file}",
                                    executor_python="/opt/venv/bin/python", conf={"spark.cores.max": "2"},
                                    overrides=["a.b=1"])
    assert res.stdout.strip() == shell_join(expected)


def test_submit_script_refuses_local_paths_on_a_cluster(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"output_root": "/tmp/out"}))
    res = run_cli(str(CLUSTER / "submit_prepare_events.sh"), "--master", "yarn", "--run-date", "2026-11-28",
                  "--config-url", str(cfg), "--executor-python", "/p", "--dry-run")
    assert res.returncode == 2
    assert "['output_root']" in res.stderr and "use URLs" in res.stderr
    # ... and an override that fixes the path makes it pass.
    res = run_cli(str(CLUSTER / "submit_prepare_events.sh"), "--master", "yarn", "--run-date", "2026-11-28",
                  "--config-url", str(cfg), "--executor-python", "/p", "--set", "output_root=hdfs:///out", "--dry-run")
    assert res.returncode == 0, res.stderr


# --- the Airflow DAG, imported against a minimal stub of the Airflow API ---------------

class _StubDAG:
    current = None

    def __init__(self, dag_id, **kwargs):
        self.dag_id, self.kwargs, self.tasks = dag_id, kwargs, []

    def __enter__(self):
        _StubDAG.current = self
        return self

    def __exit__(self, *exc):
        _StubDAG.current = None


class _StubBashOperator:
    def __init__(self, task_id, bash_command, **kwargs):
        self.task_id, self.bash_command, self.downstream = task_id, bash_command, []
        _StubDAG.current.tasks.append(self)

    def __rshift__(self, other):
        self.downstream.append(other.task_id)
        return other


@pytest.fixture()
def dag_module(monkeypatch):
    airflow = types.ModuleType("airflow")
    airflow.DAG = _StubDAG
    operators = types.ModuleType("airflow.operators")
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = _StubBashOperator
    for name, mod in (("airflow", airflow), ("airflow.operators", operators), ("airflow.operators.bash", bash)):
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("interest_tracker_dag", CLUSTER / "airflow/interest_tracker_dag.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dag_runs_clean_train_score_daily_with_retries(dag_module):
    dag = dag_module.dag
    assert [t.task_id for t in dag.tasks] == list(PIPELINE) == ["prepare_events", "train_model", "score_users"]
    assert [t.downstream for t in dag.tasks] == [["train_model"], ["score_users"], []]
    assert dag.kwargs["schedule"] == "@daily"
    assert dag.kwargs["default_args"]["retries"] >= 1


def test_dag_commands_equal_the_builder(dag_module):
    d = dag_module.DEPLOYMENT
    for task in dag_module.dag.tasks:
        expected = build_submit_command(
            task.task_id, d["master"], "{{ ds }}", d["config_urls"][task.task_id], deploy_mode=d["deploy_mode"],
            env_archive=d["env_archive"], app_root=d["app_root"],
        )
        assert task.bash_command == shell_join(expected)
        assert shlex.split(task.bash_command)[-2:] == ["--run-date", "{{ ds }}"]


def test_pipeline_commands_needs_every_config():
    with pytest.raises(SubmitError, match="train_model"):
        pipeline_commands("local[2]", "2026-11-28", {"prepare_events": "/a.json", "score_users": "/c.json"})


@pytest.mark.parametrize("table", ["user_interest", "user_recommendations", "user_interest_drift"])
def test_data_contract_page_documents_every_column(table):
    """docs/data-contract.md must not fall behind schemas/: every column of a consumer table is listed."""
    from interest_tracker.contracts import load_contract

    doc = (REPO / "docs/data-contract.md").read_text()
    section = doc.split(f"### `{table}`")[1].split("\n### ")[0]
    for f in load_contract(table).fields:
        assert re.search(rf"^\| {re.escape(f['name'])} \| {re.escape(f['type'])} \| {'no' if f['nullable'] is False else 'yes'} \|",
                         section, re.M), f"{table}.{f['name']} ({f['type']}) missing or wrong in docs/data-contract.md"
