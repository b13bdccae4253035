"""Configuration of ``jobs/import_logs.py``, validated before Spark starts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import require

ImportFormat = Literal["session-rec", "movielens-udata", "movielens-csv", "movielens-dat"]

#: job format name -> read_movielens fmt
MOVIELENS_FMT = {"movielens-udata": "u.data", "movielens-csv": "ratings.csv", "movielens-dat": "ratings.dat"}


@dataclass(frozen=True)
class ImportConfig:
    """Which public format to convert, from where, to where (Parquet, raw event contract)."""

    format: ImportFormat = "session-rec"
    #: input URL: a file, a directory or a glob (--input)
    input: str = ""
    #: output URL of the Parquet raw logs (--out); replaced whole on each run
    output: str = ""
    #: event type given to every session-rec event
    session_rec_event_type: str = "click"
    #: event type given to every MovieLens rating (the rating goes to attributes)
    movielens_event_type: str = "view"
    #: when > 0: instead of importing, write a u.data-style sample of this many
    #: synthetic ratings to <output>/u.data (no MovieLens file is available offline)
    make_movielens_sample: int = 0

    def __post_init__(self) -> None:
        require(bool(self.output), "'output' is not set; pass --out URL")
        require(self.make_movielens_sample >= 0,
                f"'make_movielens_sample' must be >= 0, got {self.make_movielens_sample}")
        require(self.make_movielens_sample > 0 or bool(self.input),
                "'input' is not set; pass --input URL (a file, directory or glob)")
        require(bool(self.session_rec_event_type) and bool(self.movielens_event_type),
                "event types must be non-empty; set session_rec_event_type / movielens_event_type")
