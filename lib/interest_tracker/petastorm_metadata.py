"""Petastorm's dataset metadata, written without a Spark job per dataset.

Why: ``petastorm.etl.dataset_metadata.materialize_dataset`` counts the row groups of a
dataset's files with a Spark job of one task per file, run through Python workers. Stage 1
writes three datasets of ``num_row_groups`` files each, so at 10M events on local[2] those
three jobs took about 12 s of a 65 s windows phase (issue 10) to read 96 footers. Here the
driver reads the footers itself, a few at a time, and writes the same two metadata entries
petastorm writes (the pickled Unischema and the row groups per file), through petastorm's
own helpers, then loads the row groups back the way petastorm's readers will, as
``materialize_dataset`` does. The helpers used are private to petastorm; the version is
pinned (0.13.1, scripts/bootstrap_env.sh) and the pipeline tests read the datasets with
``make_reader`` and ``make_batch_reader``.
"""
from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Mapping

from pyspark.sql import SparkSession

FOOTER_READERS = 8
"""Footers read at once on the driver (object stores answer each read in tens of ms)."""


@contextlib.contextmanager
def materialize_datasets(spark: SparkSession, schemas: Mapping[str, object], row_group_size_mb: int) -> Iterator[None]:
    """Around the Spark write of the Parquet files of every dataset in ``schemas`` (url -> Unischema):
    petastorm's write settings during it, each dataset's petastorm metadata after it."""
    from petastorm.etl import dataset_metadata as dm

    saved: dict = {}
    dm._init_spark(spark, saved, row_group_size_mb)  # noqa: SLF001 (summary files off, row-group size)
    try:
        yield
    finally:
        dm._cleanup_spark(spark, saved, row_group_size_mb)  # noqa: SLF001
    for url, schema in schemas.items():
        _write_metadata(spark, url, schema)


def _write_metadata(spark: SparkSession, url: str, schema) -> None:
    import pyarrow.parquet as pq
    from petastorm.etl import dataset_metadata as dm
    from petastorm.fs_utils import FilesystemResolver
    from petastorm.utils import add_to_dataset_metadata

    resolver = FilesystemResolver(url, spark.sparkContext._jsc.hadoopConfiguration(),  # noqa: SLF001
                                  user=spark.sparkContext.sparkUser())
    filesystem, path = resolver.filesystem_factory()(), resolver.get_dataset_path()
    dataset = pq.ParquetDataset(path, filesystem=filesystem, validate_schema=False)
    dm._generate_unischema_metadata(dataset, schema)  # noqa: SLF001

    def row_groups(piece_path: str) -> tuple[str, int]:
        with filesystem.open(piece_path) as f:
            return os.path.relpath(piece_path, dataset.paths), pq.read_metadata(f).num_row_groups

    with ThreadPoolExecutor(FOOTER_READERS) as pool:
        counts = dict(pool.map(row_groups, [piece.path for piece in dataset.pieces]))
    add_to_dataset_metadata(dataset, dm.ROW_GROUPS_PER_FILE_KEY, json.dumps(counts))
    # What petastorm's readers do first: fails here, not in training, if the entries are unusable.
    dm.load_row_groups(pq.ParquetDataset(path, filesystem=filesystem, validate_schema=False))
