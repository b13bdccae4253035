"""MovieLens ratings -> raw event contract.

Formats: ``u.data`` (ML-100K: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header),
``ratings.csv`` (ML-latest / ML-25M: header ``userId,movieId,rating,timestamp``) and
``ratings.dat`` (ML-1M: ``user::item::rating::timestamp``).

A rating is not one of the configured event types, and inventing types per rating
would make the model learn our mapping, so every rating becomes one event of
``event_type`` (default "view") and the rating is kept, as written in the source,
in ``attributes``: ``{"rating":"4"}``.

No MovieLens file is available offline: ``interest_tracker.synthetic.movielens_sample``
writes a u.data-style file from the synthetic generator for demos and docs (it lives
with the generator, so this production module never imports it).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .lines import read_lines, split_to_raw

#: format name -> (separator regex, header line to drop or None)
MOVIELENS_FORMATS = {
    "u.data": ("\t", None),
    "ratings.csv": (",", "userId,movieId,rating,timestamp"),
    "ratings.dat": ("::", None),
}


def read_movielens(spark: SparkSession, url: str, fmt: str = "u.data", event_type: str = "view") -> DataFrame:
    """Raw-contract rows of MovieLens ratings at ``url`` in format ``fmt``."""
    if fmt not in MOVIELENS_FORMATS:
        raise ValueError(f"unknown MovieLens format {fmt!r}; use one of {sorted(MOVIELENS_FORMATS)}")
    separator, header = MOVIELENS_FORMATS[fmt]
    lines = read_lines(spark, url, skip_line=header)
    return split_to_raw(lines, separator, 4, lambda f: {
        "user_id": f(0),
        "item_id": f(1),
        "event_type": F.lit(event_type),
        "event_time": f(3),
        "attributes": F.to_json(F.struct(f(2).alias("rating"))),
    })
