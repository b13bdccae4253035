"""Argument parsing shared by every ``jobs/*.py`` entry point.

A job is: parse args -> typed config (validated, before Spark starts) -> SparkSession
-> library calls -> exit code. Exit codes let a scheduler tell a bad configuration
(2: fix the config, do not retry) from a runtime failure (1: retry may help).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from typing import Callable, Sequence, TypeVar

from . import config as config_mod
from .logs import setup_logging

T = TypeVar("T")
log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_CONFIG_ERROR = 2


def parse_run_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise config_mod.ConfigError(f"--run-date must be YYYY-MM-DD, got {text!r}") from e


def job_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", help="JSON config file (see docs/ and conf/)")
    p.add_argument("--run-date", required=True, help="logical run date YYYY-MM-DD (the scheduler's ds)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set cleaning.max_field_length=256 (repeatable)")
    p.add_argument("--log-level", default="INFO", help="level of the job's own (Python) log lines")
    p.add_argument("--spark-log-level", default=None, metavar="LEVEL",
                   help="Spark's JVM log level, e.g. INFO to see Spark's own progress (default: WARN, "
                        "or $SPARK_LOG_LEVEL; conf/log4j2.properties reads the same variable)")
    return p


def _shorthand_overrides(argv: Sequence[str], shorthands: dict[str, str]) -> list[str]:
    """``--out X`` -> ``--set output=X`` for each declared shorthand flag."""
    parser = argparse.ArgumentParser(add_help=False)
    for flag, key in shorthands.items():
        parser.add_argument(flag, dest=f"shorthand_{key}")
    known, _ = parser.parse_known_args(list(argv))
    extra = []
    for key in shorthands.values():
        value = getattr(known, f"shorthand_{key}")
        if value is not None:
            extra += ["--set", f"{key}={value}"]
    return list(argv) + extra


def run_job(
    description: str,
    config_cls: type[T],
    main: Callable[[T, dt.date], object],
    argv: Sequence[str] | None = None,
    shorthands: dict[str, str] | None = None,
) -> int:
    """Parse args, load + validate the config, call ``main(config, run_date)``; return an exit code.

    ``shorthands`` maps convenience flags to config keys (``{"--out": "output"}``): each
    is the same as ``--set key=VALUE``, so the config stays the one source of truth.
    """
    parser = job_parser(description)
    shorthands = shorthands or {}
    for flag, key in shorthands.items():
        parser.add_argument(flag, dest=f"shorthand_{key}", metavar=key.upper(), help=f"same as --set {key}=VALUE")
    argv = _shorthand_overrides(sys.argv[1:] if argv is None else argv, shorthands)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        from .spark import set_spark_log_level  # no pyspark import: spark.py imports it lazily

        set_spark_log_level(args.spark_log_level)
        cfg = config_mod.load(config_cls, args.config, args.set)
        run_date = parse_run_date(args.run_date)
    except config_mod.ConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_CONFIG_ERROR
    try:
        main(cfg, run_date)
    except config_mod.InputError as e:
        log.error("input error: %s", e)
        return EXIT_CONFIG_ERROR
    except config_mod.ConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_CONFIG_ERROR
    except Exception:  # noqa: BLE001 - the scheduler needs an exit code, the log keeps the trace
        log.exception("job failed")
        return EXIT_RUNTIME_ERROR
    return EXIT_OK


def exit_with(code: int) -> None:
    sys.exit(code)
