"""A successful job is quiet: no Spark INFO on the console, no harmless tracebacks.

The job runs through ``spark-submit`` with the command the submit scripts build
(:func:`interest_tracker.deploy.build_submit_command`, which adds conf/log4j2.properties),
so this checks what users run, not a twin. The generator job is the fast one: a tiny
config, a few Spark stages (which is where Spark's INFO lines would come from).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from interest_tracker.deploy import build_submit_command
from interest_tracker.deploy.standalone import spark_home
from interest_tracker.logs import ConsoleFormatter, Py4JRetryNoticeFilter

REPO = Path(__file__).resolve().parents[1]
# Spark's JVM log layout (Spark's default and conf/log4j2.properties): "26/11/30 14:02:11 INFO Class: ..."
JVM_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")


def submit_generator(tmp_path: Path, **kwargs) -> tuple[int, list[str]]:
    out = tmp_path / "synth"
    argv = build_submit_command(
        "generate_synthetic", "local[2]", "2026-11-28", str(REPO / "conf/synthetic_tiny.json"),
        overrides=[f"output=file://{out}"], spark_submit=str(spark_home() / "bin" / "spark-submit"),
        conf={"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2"}, driver_python=sys.executable,
        **kwargs)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SPARK_LOG_LEVEL", None)
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    return res.returncode, (res.stdout + res.stderr).splitlines()


def test_a_job_through_spark_submit_prints_no_info_line(tmp_path):
    rc, lines = submit_generator(tmp_path)
    assert rc == 0, "\n".join(lines[-40:])
    info = [ln for ln in lines if re.search(r"\bINFO\b", ln)]
    assert info == [], info[:10]
    assert not [ln for ln in lines if "Traceback" in ln], "\n".join(lines)
    # The job still says what it did, one line per phase (plus its per-kind counts).
    assert any(re.search(r"generate_synthetic: wrote \d+ raw rows", ln) for ln in lines), lines
    assert len(lines) < 40, "\n".join(lines)


def test_spark_log_level_info_brings_spark_info_back(tmp_path):
    """Negative control: the same job with Spark's INFO on prints Spark's INFO lines, so the
    check above can fail, and the switch documented in conf/log4j2.properties works."""
    rc, lines = submit_generator(tmp_path, spark_log_level="INFO")
    assert rc == 0, "\n".join(lines[-40:])
    jvm_info = [ln for ln in lines if JVM_LINE.match(ln) and " INFO " in ln]
    assert len(jvm_info) > 20, lines[:40]


def test_py4j_retry_notice_is_dropped_and_real_errors_are_kept():
    """The record py4j logs (on the root logger) before a successful resend is dropped; the
    ERROR it logs when the resend is impossible, and anything else, pass."""
    f = Py4JRetryNoticeFilter()
    where = "/venv/site-packages/pyspark/python/lib/py4j-0.10.9.7-src.zip/py4j/java_gateway.py"

    def record(level, msg, path=where):
        return logging.LogRecord("root", level, path, 1052, msg, None, None)

    assert not f.filter(record(logging.INFO, "Exception while sending command."))
    assert f.filter(record(logging.ERROR, "Exception while sending command."))
    assert f.filter(record(logging.INFO, "Exception while sending command.", "/app/mine.py"))
    assert f.filter(record(logging.INFO, "Closing down clientserver connection"))


def test_console_format_names_only_warnings_and_errors():
    fmt = ConsoleFormatter()
    info = fmt.format(logging.LogRecord("prepare_events", logging.INFO, __file__, 1, "cleaned %d rows", (5,), None))
    warn = fmt.format(logging.LogRecord("prepare_events", logging.WARNING, __file__, 1, "odd", None, None))
    assert re.fullmatch(r"\d\d:\d\d:\d\d prepare_events: cleaned 5 rows", info)
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING prepare_events: odd", warn)


@pytest.mark.parametrize("level, expected", [("info", "INFO"), (None, "WARN")])
def test_spark_log_level_precedence(level, expected, monkeypatch):
    from interest_tracker import spark as spark_mod

    monkeypatch.delenv("SPARK_LOG_LEVEL", raising=False)
    spark_mod.set_spark_log_level(level)
    try:
        assert spark_mod.spark_log_level() == expected
        monkeypatch.setenv("SPARK_LOG_LEVEL", "ERROR")
        # the flag beats the conf, the conf beats the environment
        assert spark_mod.spark_log_level("DEBUG") == (expected if level else "DEBUG")
        assert spark_mod.spark_log_level() == (expected if level else "ERROR")
    finally:
        spark_mod.set_spark_log_level(None)
