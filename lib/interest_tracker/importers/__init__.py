"""Converters from public log formats to the raw event contract (``schemas/raw_event.json``).

Each reader returns the contract's six string columns and keeps every input line:
a line with the wrong number of fields becomes a row whose required fields are null
and whose ``attributes`` is ``{"raw_line": "<the line>"}``, so stage 1 rejects it as
MISSING_FIELD with the original text, instead of it vanishing here.

The MovieLens sample maker is ``interest_tracker.synthetic.movielens_sample`` (it is
built on the synthetic generator, which production code never imports).
"""
from .movielens import MOVIELENS_FORMATS, read_movielens
from .session_rec import SESSION_REC_HEADER, read_session_rec

__all__ = ["MOVIELENS_FORMATS", "SESSION_REC_HEADER", "read_movielens", "read_session_rec"]
