"""``python -m interest_tracker.deploy JOB ...``: submit one job (or print its command).

The per-job scripts in ``cluster/`` and the executor image's entrypoint call this, so
they run exactly what :func:`interest_tracker.deploy.build_submit_command` returns.
Before submitting to a cluster it checks that every path in the job's config is a URL
(executors cannot see the driver's disk).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from ..config import ConfigError, apply_overrides
from ..logs import setup_logging
from .submit import JOBS, build_submit_command, has_scheme, master_kind, non_url_paths, shell_join

log = logging.getLogger("interest_tracker.deploy")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m interest_tracker.deploy", description=__doc__.splitlines()[0])
    p.add_argument("job", choices=sorted(JOBS))
    p.add_argument("--master", required=True, help="local[N], yarn, spark://HOST:PORT or k8s://https://HOST:PORT")
    p.add_argument("--run-date", required=True, help="YYYY-MM-DD")
    p.add_argument("--config-url", required=True, help="the job's JSON config (file:// in client mode)")
    p.add_argument("--deploy-mode", default="client", choices=["client", "cluster"])
    p.add_argument("--env-archive", help="URL of the venv packed by cluster/pack_env.sh")
    p.add_argument("--code-zip", help="URL of the project zip built by cluster/pack_env.sh")
    p.add_argument("--image", help="executor image (Kubernetes), built from cluster/Dockerfile")
    p.add_argument("--executor-python", help="interpreter present at this path on every node")
    p.add_argument("--driver-python", help="driver interpreter in client mode")
    p.add_argument("--gpu", action="store_true", help="add cluster/<job>.gpu.properties (train_model)")
    p.add_argument("--app-root", help="URL holding jobs/ (cluster mode)")
    p.add_argument("--properties-dir", help="folder with the *.properties files (default: cluster/)")
    p.add_argument("--spark-submit", default=os.environ.get("SPARK_SUBMIT", "spark-submit"))
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="job config override (repeatable)")
    p.add_argument("--log-config", default=None,
                   help="log4j2 file for Spark's JVMs (default: the project's conf/log4j2.properties, Spark at "
                        "WARN); 'spark-default' leaves Spark's own INFO logging")
    p.add_argument("--spark-log-level", default=os.environ.get("SPARK_LOG_LEVEL") or None, metavar="LEVEL",
                   help="Spark's JVM log level, e.g. INFO (default: $SPARK_LOG_LEVEL, else WARN)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return p


def _check_config_paths(config_url: str, overrides: Sequence[str], master: str) -> None:
    """Refuse local paths in a cluster job's config (only checkable when the file is local)."""
    if master_kind(master) == "local":
        return
    path = config_url[len("file://"):] if config_url.startswith("file://") else config_url
    if has_scheme(path) or not Path(path).is_file():
        return
    try:
        data = apply_overrides(json.loads(Path(path).read_text()), overrides)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from e
    bad = non_url_paths(data)
    if bad:
        raise ConfigError(
            f"{bad} in {path} are local paths, but executors on {master} cannot see this machine's disk; "
            "use URLs (hdfs://, s3a://, or file:// on a filesystem every node mounts)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging("INFO")
    conf = {}
    try:
        for item in args.conf:
            if "=" not in item:
                raise ConfigError(f"--conf {item!r} must look like key=value")
            k, v = item.split("=", 1)
            conf[k] = v
        _check_config_paths(args.config_url, args.set, args.master)
        cmd = build_submit_command(
            args.job, args.master, args.run_date, args.config_url,
            deploy_mode=args.deploy_mode, env_archive=args.env_archive, code_zip=args.code_zip,
            image=args.image, executor_python=args.executor_python, driver_python=args.driver_python,
            gpu=args.gpu, overrides=args.set, conf=conf, app_root=args.app_root,
            properties_dir=args.properties_dir, spark_submit=args.spark_submit,
            log_config=False if args.log_config == "spark-default" else args.log_config,
            spark_log_level=args.spark_log_level,
        )
    except ConfigError as e:
        log.error("cannot submit: %s", e)
        return 2
    if args.dry_run:
        sys.stdout.write(shell_join(cmd) + "\n")
        return 0
    log.info("submitting: %s", shell_join(cmd))
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
