"""Logging setup for jobs and scripts: one format, level from the command line.

A job's console is read by people (the demo, a scheduler's task log), so an ordinary line
is ``HH:MM:SS logger: message`` and only warnings and errors carry their level. That also
keeps Spark's JVM INFO lines (``yy/MM/dd HH:mm:ss INFO Class: ...``) recognisable: with
the project's conf/log4j2.properties there are none, and tests/test_quiet_logs.py checks it.
"""
from __future__ import annotations

import logging
import warnings

#: Third-party Python loggers that are chatty at INFO, and the level they get.
QUIET_LOGGERS = {"py4j": logging.WARNING, "petastorm": logging.WARNING}


class ConsoleFormatter(logging.Formatter):
    """``14:02:11 prepare_events: message``; ``WARNING``/``ERROR`` lines also name their level."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        self._loud = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record) if record.levelno < logging.WARNING else self._loud.format(record)


class Py4JRetryNoticeFilter(logging.Filter):
    """Drop py4j's INFO notice "Exception while sending command." (with its traceback) that
    precedes a successful retry; keep every other record.

    Where it comes from (found with a stack dump, see tests/test_quiet_logs.py): py4j's
    FinalizerWorker, the daemon thread that tells the JVM to release objects whose Python
    proxies were garbage-collected, sends on its thread's pooled connection after the JVM
    side has closed it (seen during every ``horovod.spark.run``, whose driver services
    create and drop many JVM proxies). py4j's ``GatewayClient.send_command`` then logs
    ``logging.info(..., exc_info=True)`` on the ROOT logger (not on "py4j", so quieting the
    py4j logger cannot catch it), opens a fresh connection and resends; the resend succeeds.
    So a successful run printed a "Connection reset by peer" traceback that means nothing.
    When the resend is not possible py4j logs the same text with ``logging.exception``
    (ERROR): that record is kept, as is anything else from py4j.
    """

    MESSAGE = "Exception while sending command."

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg == self.MESSAGE
                    and record.pathname.replace("\\", "/").endswith("py4j/java_gateway.py"))


def silence_py4j_retry_notice() -> None:
    """Install :class:`Py4JRetryNoticeFilter` on the root logger (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(f, Py4JRetryNoticeFilter) for f in root.filters):
        root.addFilter(Py4JRetryNoticeFilter())


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once (later calls keep the first handler, as basicConfig does)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(ConsoleFormatter())
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # py4j and petastorm are chatty at INFO; their warnings about pyarrow's legacy
    # dataset API are known and harmless on the pinned pyarrow 14.
    for name, lvl in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(lvl)
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    silence_py4j_retry_notice()
