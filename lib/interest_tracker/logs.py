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
