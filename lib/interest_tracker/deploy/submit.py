"""Build the spark-submit command line for one job on one kind of cluster.

Why one function: a cluster run breaks on things local mode hides (the Python on the
executors, code that must be shipped, paths the executors cannot see). Keeping every
such decision here means the submit scripts, the DAG and the image entrypoint cannot
drift apart, and the unit tests pin the exact command lines.

The recommended Spark confs per job live in ``cluster/*.properties`` (not in Python) and
are turned into explicit ``--conf`` flags. We do not use ``--properties-file``: on Spark
3.5 it replaces the cluster's ``spark-defaults.conf`` instead of adding to it.

How code and Python reach the executors (one of, for any non-local master):

* ``env_archive``: a venv packed by ``cluster/pack_env.sh`` (dependencies and the project)
  shipped with ``--archives URL#environment``; ``code_zip`` optionally adds the project as a
  zip on ``--py-files`` (see docs/deployment.md, "Current limitations");
* ``image``: the executor image built from ``cluster/Dockerfile`` (Kubernetes);
* ``executor_python``: an interpreter that already exists at the same path on every
  node (a shared or pre-provisioned environment).

Jobs whose executors run no Python (:data:`NO_EXECUTOR_PYTHON`: the pipeline report) ship
none of these in client mode: the driver runs ``driver_python`` and the executors only
Spark SQL, so the archive would be unpacked on the driver and on every executor for nothing.

Spark's own logging: every command carries the project's ``conf/log4j2.properties``
(Spark at WARN, so the console shows the jobs' one line per phase) for the driver and,
where the file can be there when the executor JVM starts, for the executors (see
:func:`_log_config_options`). ``spark_log_level="INFO"`` (``--spark-log-level``, or
``SPARK_LOG_LEVEL`` in the submitting shell) turns Spark's INFO back on.
"""
from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlparse

from ..config import ConfigError

#: job name -> entry point, relative to the application root.
JOBS: dict[str, str] = {
    "generate_synthetic": "jobs/generate_synthetic.py",
    "prepare_events": "jobs/prepare_events.py",
    "train_model": "jobs/train_model.py",
    "score_users": "jobs/score_users.py",
    "pipeline_report": "jobs/pipeline_report.py",
}
#: The daily pipeline, in dependency order (clean -> train -> score).
PIPELINE: tuple[str, ...] = ("prepare_events", "train_model", "score_users")
#: Jobs whose executors run no Python: Spark SQL reads and aggregations only, the Python
#: (plotting) runs on the driver. In client mode they ship no environment: ``--archives`` is
#: unpacked by the driver too, once per application, and by every executor before its first
#: task (20-35 s each for the 335 MB archive on a 2-core node), all for nothing here.
#: tests/test_cluster_standalone.py runs the report with executors that have no Python at all.
NO_EXECUTOR_PYTHON: frozenset[str] = frozenset({"pipeline_report"})

#: Where the executor image keeps its interpreter and the project (see cluster/Dockerfile).
IMAGE_PYTHON = "/opt/venv/bin/python"
IMAGE_APP_ROOT = "/opt/interest-tracker"
#: The alias a packed environment is unpacked under in each container's working dir.
ENV_ALIAS = "environment"
#: The Spark log configuration (log4j2) of the project, and where the executor image keeps it:
#: the image also copies it to $SPARK_HOME/conf, on every Spark JVM's classpath.
LOG_CONFIG_NAME = "log4j2.properties"
IMAGE_LOG_CONFIG = f"{IMAGE_APP_ROOT}/conf/{LOG_CONFIG_NAME}"
LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
#: Airflow's template for the logical date; accepted verbatim as a run date.
AIRFLOW_RUN_DATE = "{{ ds }}"

_MASTER_PATTERNS = (
    re.compile(r"local(\[(\d+|\*)(,\d+)?\])?"),
    re.compile(r"yarn"),
    re.compile(r"spark://[^/\s:]+:\d+(,[^/\s:]+:\d+)*"),
    re.compile(r"k8s://https?://\S+"),
)
_PATH_KEY = re.compile(r"(^|_)(root|path|dir|uri|url)$")


class SubmitError(ConfigError):
    """The submit request cannot work on the chosen cluster; the message says how to fix it."""


def master_kind(master: str) -> str:
    """``local``, ``yarn``, ``standalone`` or ``k8s``; raise for anything else."""
    if not any(p.fullmatch(master) for p in _MASTER_PATTERNS):
        raise SubmitError(
            f"master {master!r} is not one of local[N], yarn, spark://HOST:PORT, k8s://https://HOST:PORT; "
            "pass --master with one of those"
        )
    if master.startswith("local"):
        return "local"
    if master.startswith("spark://"):
        return "standalone"
    if master.startswith("k8s://"):
        return "k8s"
    return "yarn"


def has_scheme(path: str) -> bool:
    """True for ``file:///x``, ``hdfs://nn/x``, ``s3a://b/x``, ``local:///x``; False for ``/x``."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", path)) and not re.match(r"^[a-zA-Z]:\\", path)


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Java-style ``.properties`` file (``key=value`` or ``key value``, ``#``/``!`` comments)."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"^(\S+?)\s*[=:\s]\s*(.*)$", line)
        if not m or not m.group(2):
            raise SubmitError(f"{path}:{n}: expected 'key=value', got {raw!r}; fix the properties file")
        out[m.group(1)] = m.group(2).strip()
    return out


def default_properties_dir() -> Path:
    """``cluster/`` of the source tree (also present in the executor image)."""
    cand = Path(__file__).resolve().parents[3] / "cluster"
    if not (cand / "common.properties").is_file():
        raise SubmitError(
            f"no cluster/common.properties next to the package ({cand}); pass properties_dir= "
            "(--properties-dir) pointing at the project's cluster/ folder"
        )
    return cand


def default_log_config() -> str | None:
    """``conf/log4j2.properties`` of the source tree (or the image), or None when not found
    (a pip-installed package without the source tree: Spark then logs with its defaults
    until the job's session applies WARN, see interest_tracker.spark)."""
    cand = Path(__file__).resolve().parents[3] / "conf" / LOG_CONFIG_NAME
    return str(cand) if cand.is_file() else None


def _log_config_options(log_config: str, kind: str, deploy_mode: str, image: str | None,
                        executor_python: str | None) -> tuple[list[str], dict[str, str]]:
    """``(files to ship, {"driver"|"executor": -D option})`` for ``log_config``.

    log4j2 reads its file when a JVM starts, so the file must be on that machine by then:
    * the driver in client mode runs here: the local file;
    * the driver in cluster mode and YARN executors: ``--files`` (YARN and Kubernetes put it
      in the container's working directory before the JVM starts), by its bare name;
    * the executor image: the copy inside the image;
    * standalone executors with ``executor_python`` (same paths on every node): the same path.
    Executors of a standalone cluster with a packed env get no option: files shipped there
    arrive after the executor JVM started (its log goes to the worker's files, not to the
    console, either way). In local mode the executors are the driver.
    """
    option = "-Dlog4j2.configurationFile={}".format
    files: list[str] = []
    java: dict[str, str] = {}
    shipped = PurePosixPath(urlparse(log_config).path or log_config).name
    if deploy_mode == "client":
        java["driver"] = option(_local_path(log_config, "log_config"))
    elif image:
        java["driver"] = option(IMAGE_LOG_CONFIG)
    else:
        files.append(log_config)
        java["driver"] = option(shipped)
    if image:
        java["executor"] = option(IMAGE_LOG_CONFIG)
    elif kind == "yarn":
        if log_config not in files:
            files.append(log_config)
        java["executor"] = option(shipped)
    elif kind == "standalone" and executor_python:
        java["executor"] = option(_local_path(log_config, "log_config"))
    return files, java


def job_properties(job: str, properties_dir: Path, gpu: bool = False) -> dict[str, str]:
    """Merged confs for ``job``: common, then the job's own, then its GPU layer (later wins)."""
    files = [properties_dir / "common.properties", properties_dir / f"{job}.properties"]
    if gpu:
        gpu_file = properties_dir / f"{job}.gpu.properties"
        if not gpu_file.is_file():
            raise SubmitError(f"job {job!r} has no GPU settings ({gpu_file} missing); only train_model runs on GPUs")
        files.append(gpu_file)
    merged: dict[str, str] = {}
    for f in files:
        if not f.is_file():
            raise SubmitError(f"missing {f}; every job needs cluster/common.properties and cluster/<job>.properties")
        merged.update(read_properties(f))
    return merged


def non_url_paths(data: object, prefix: str = "") -> list[str]:
    """Dotted keys of a config mapping whose path-like values are not URLs.

    On a cluster the executors do not see the driver's disk, so ``output_root=/tmp/x``
    would silently write pieces of a table to several machines' local disks.
    """
    found: list[str] = []
    if isinstance(data, Mapping):
        for k, v in data.items():
            key = f"{prefix}{k}"
            if isinstance(v, str) and _PATH_KEY.search(str(k)) and v and not has_scheme(v):
                found.append(key)
            else:
                found.extend(non_url_paths(v, key + "."))
    return found


def _run_date_text(run_date: str | dt.date) -> str:
    if isinstance(run_date, dt.date):
        return run_date.isoformat()
    if run_date == AIRFLOW_RUN_DATE:
        return run_date
    try:
        return dt.date.fromisoformat(run_date).isoformat()
    except ValueError as e:
        raise SubmitError(f"run date must be YYYY-MM-DD (or {AIRFLOW_RUN_DATE!r} in a DAG), got {run_date!r}") from e


def _local_path(url: str, what: str) -> str:
    """``file:///x`` or ``/x`` -> ``/x``; anything else is an error (client mode reads it locally)."""
    if not has_scheme(url):
        return str(Path(url).resolve())
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return parsed.path
    raise SubmitError(
        f"{what} {url!r} must be on the submitting machine in client mode (file:// or a path): the driver "
        "reads it locally; copy it there or use deploy_mode='cluster' (--deploy-mode cluster), which ships it"
    )


def build_submit_command(
    job: str,
    master: str,
    run_date: str | dt.date,
    config_url: str,
    *,
    deploy_mode: str = "client",
    env_archive: str | None = None,
    code_zip: str | None = None,
    image: str | None = None,
    executor_python: str | None = None,
    driver_python: str | None = None,
    gpu: bool = False,
    overrides: Sequence[str] = (),
    conf: Mapping[str, str] | None = None,
    app_root: str | None = None,
    properties_dir: str | Path | None = None,
    spark_submit: str = "spark-submit",
    log_config: str | bool | None = None,
    spark_log_level: str | None = None,
) -> list[str]:
    """Return the argv that submits ``job`` for ``run_date`` to ``master``.

    ``config_url`` is the job's JSON config. In client mode the driver reads it from the
    submitting machine (``file://`` or a path); in cluster mode it is shipped with
    ``--files`` (any URL the cluster can read) and passed to the job by file name.
    ``overrides`` become the job's ``--set key=value`` flags; ``conf`` adds or replaces
    Spark confs after the properties files. ``log_config`` is the log4j2 file (None: the
    project's conf/log4j2.properties; False: leave Spark's logging alone); ``spark_log_level``
    (e.g. ``"INFO"``) sets ``spark.log.level``, applied when the job's session starts. Raises :class:`SubmitError` (a ConfigError)
    for combinations that cannot work on that cluster, with the fix in the message.
    """
    if job not in JOBS:
        raise SubmitError(f"unknown job {job!r}; choose one of {sorted(JOBS)}")
    kind = master_kind(master)
    date_text = _run_date_text(run_date)
    if deploy_mode not in ("client", "cluster"):
        raise SubmitError(f"deploy_mode must be 'client' or 'cluster', got {deploy_mode!r}")
    if deploy_mode == "cluster" and kind == "local":
        raise SubmitError("deploy_mode='cluster' needs a cluster master; use client mode with local[N]")
    if deploy_mode == "cluster" and kind == "standalone":
        raise SubmitError(
            "Spark standalone does not run Python drivers in cluster mode; use deploy_mode='client' "
            "with spark://, or YARN/Kubernetes for cluster mode"
        )

    shipping = [name for name, v in (("env_archive", env_archive), ("image", image),
                                     ("executor_python", executor_python)) if v]
    if len(shipping) > 1:
        raise SubmitError(f"choose one way to ship Python to executors, got {shipping}")
    # A client-mode driver of a job whose executors run no Python needs no shipped environment
    # (the image stays: on Kubernetes it is the executors' container, not only their Python).
    executors_need_python = not (job in NO_EXECUTOR_PYTHON and deploy_mode == "client")
    if not executors_need_python:
        if env_archive and not driver_python:
            raise SubmitError(
                "client mode with env_archive= needs driver_python= (--driver-python): the driver runs on "
                "the submitting machine, outside the unpacked archive"
            )
        # The provisioned interpreter was also the driver's (spark.pyspark.python); keep it there.
        driver_python = driver_python or executor_python
        env_archive = executor_python = None
    if kind != "local" and not shipping and executors_need_python:
        raise SubmitError(
            f"master {master!r} needs the Python environment on the executors: pass env_archive= "
            "(--env-archive, a venv packed by cluster/pack_env.sh), image= (--image, cluster/Dockerfile) "
            "or executor_python= (--executor-python, an interpreter present on every node)"
        )
    if image and kind != "k8s":
        raise SubmitError(
            f"image= is for Kubernetes masters (k8s://...), not {kind}; on {kind} run executors from a "
            "packed env (--env-archive) or a provisioned interpreter (--executor-python)"
        )
    for name, url in (("env_archive", env_archive), ("code_zip", code_zip)):
        if url and kind != "local" and not has_scheme(url):
            raise SubmitError(f"{name} {url!r} must be a URL the cluster can read (hdfs://, s3a://, file://)")

    if spark_log_level is not None and spark_log_level.upper() not in LOG_LEVELS:
        raise SubmitError(f"spark_log_level must be one of {', '.join(LOG_LEVELS)}, got {spark_log_level!r}")
    if log_config is True:
        raise SubmitError("log_config must be a path/URL, None (the project's file) or False (Spark's defaults)")

    props_dir = Path(properties_dir) if properties_dir else default_properties_dir()
    confs = job_properties(job, props_dir, gpu=gpu)

    # Where the job's entry point is, as the driver sees it.
    if app_root is None:
        if image and deploy_mode == "cluster":
            app_root = f"local://{IMAGE_APP_ROOT}"
        elif deploy_mode == "cluster":
            raise SubmitError(
                "deploy_mode='cluster' needs app_root= (--app-root), a URL holding jobs/ that the cluster "
                "can read (e.g. hdfs:///apps/interest-tracker/0.1.0, uploaded by cluster/publish_app.sh)"
            )
        else:
            app_root = str(Path(__file__).resolve().parents[3])
    entry = f"{app_root.rstrip('/')}/{JOBS[job]}"

    argv = [spark_submit, "--master", master, "--deploy-mode", deploy_mode,
            "--name", f"interest-tracker-{job}-{date_text}"]

    python_confs: dict[str, str] = {}
    if env_archive:
        argv += ["--archives", f"{env_archive}#{ENV_ALIAS}"]
        python_confs["spark.pyspark.python"] = f"./{ENV_ALIAS}/bin/python"
        if kind == "yarn" and deploy_mode == "cluster":
            python_confs["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = f"./{ENV_ALIAS}/bin/python"
        if deploy_mode == "client":
            if not driver_python:
                raise SubmitError(
                    "client mode with env_archive= needs driver_python= (--driver-python): the driver runs on "
                    "the submitting machine, outside the unpacked archive"
                )
            python_confs["spark.pyspark.driver.python"] = driver_python
    elif image:
        python_confs["spark.kubernetes.container.image"] = image
        python_confs["spark.pyspark.python"] = IMAGE_PYTHON
        if driver_python:
            python_confs["spark.pyspark.driver.python"] = driver_python
    elif executor_python:
        python_confs["spark.pyspark.python"] = executor_python
        if driver_python:
            python_confs["spark.pyspark.driver.python"] = driver_python
    elif driver_python:
        python_confs["spark.pyspark.driver.python"] = driver_python
    if code_zip:
        argv += ["--py-files", code_zip]

    files: list[str] = []
    log_java: dict[str, str] = {}
    log_file = default_log_config() if log_config is None else (log_config or None)
    if log_file:
        log_files, log_java = _log_config_options(log_file, kind, deploy_mode, image, executor_python)
        files += log_files
    if deploy_mode == "cluster":
        files.insert(0, config_url)
        config_arg = PurePosixPath(urlparse(config_url).path or config_url).name
    else:
        config_arg = _local_path(config_url, "config")
    if files:
        argv += ["--files", ",".join(files)]

    merged = {**confs, **python_confs, **dict(conf or {})}
    for role, opt in log_java.items():
        key = f"spark.{role}.extraJavaOptions"
        merged[key] = f"{opt} {merged[key]}" if merged.get(key) else opt
    if spark_log_level is not None:
        merged["spark.log.level"] = spark_log_level.upper()
    for key in sorted(merged):
        argv += ["--conf", f"{key}={merged[key]}"]
    argv += [entry, "--config", config_arg, "--run-date", date_text]
    for item in overrides:
        if "=" not in item:
            raise SubmitError(f"override {item!r} must look like dotted.key=value")
        argv += ["--set", item]
    return argv


def pipeline_commands(master: str, run_date: str | dt.date, config_urls: Mapping[str, str],
                      jobs: Iterable[str] = PIPELINE, **kwargs) -> dict[str, list[str]]:
    """Commands for several jobs with shared options (the DAG and the cluster test use this)."""
    missing = [j for j in jobs if j not in config_urls]
    if missing:
        raise SubmitError(f"no config URL for job(s) {missing}; give one per job")
    per_job_gpu = kwargs.pop("gpu_jobs", ())
    return {
        j: build_submit_command(j, master, run_date, config_urls[j], gpu=j in per_job_gpu, **kwargs)
        for j in jobs
    }


def shell_join(argv: Sequence[str]) -> str:
    """One shell-quoted line (what the scripts print with --dry-run and the DAG runs)."""
    return " ".join(shlex.quote(a) for a in argv)
