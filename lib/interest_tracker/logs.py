"""Logging setup for jobs and scripts: one format, level from the command line."""
from __future__ import annotations

import logging
import warnings


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # py4j and petastorm are chatty at INFO; their warnings about pyarrow's legacy
    # dataset API are known and harmless on the pinned pyarrow 14.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("petastorm").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
