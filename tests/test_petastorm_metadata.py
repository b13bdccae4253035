"""Stage 1's petastorm metadata (read on the driver) equals what petastorm's own job writes.

interest_tracker.petastorm_metadata replaces the Spark job that materialize_dataset runs to
count row groups; the readers must see the same two metadata entries and shard the same
row groups.
"""
import json

import numpy as np
import pyarrow.parquet as pq

from interest_tracker import petastorm_metadata


def _unischema():
    from petastorm.unischema import Unischema, UnischemaField

    return Unischema("T", [UnischemaField("x", np.int64, (), None, False)])


def _entries(path):
    from petastorm.etl.dataset_metadata import ROW_GROUPS_PER_FILE_KEY, UNISCHEMA_KEY

    meta = pq.read_schema(f"{path}/_common_metadata").metadata
    key = lambda k: k if isinstance(k, bytes) else k.encode()
    return json.loads(meta[key(ROW_GROUPS_PER_FILE_KEY)]), meta[key(UNISCHEMA_KEY)]


def test_the_metadata_equals_petastorms_and_the_readers_shard_it(spark, tmp_path):
    from petastorm import make_batch_reader
    from petastorm.etl.dataset_metadata import materialize_dataset
    from pyspark.sql import functions as F

    # Random longs do not compress: ~2.4 MB per file, so several 1 MB row groups in each.
    df = spark.range(600_000).select((F.rand(5) * 1e15).cast("long").alias("x")).repartition(3)
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    with materialize_dataset(spark, f"file://{theirs}", _unischema(), row_group_size_mb=1):
        df.write.parquet(str(theirs))
    with petastorm_metadata.materialize_datasets(spark, {f"file://{ours}": _unischema()}, 1):
        df.write.parquet(str(ours))
    (their_groups, their_schema), (our_groups, our_schema) = _entries(theirs), _entries(ours)
    assert our_schema == their_schema
    assert sorted(our_groups.values()) == sorted(their_groups.values())
    assert sum(our_groups.values()) >= 6 and set(our_groups) == {p.name for p in ours.glob("part-*.parquet")}
    rows = []
    for shard in range(2):
        with make_batch_reader(f"file://{ours}", num_epochs=1, cur_shard=shard, shard_count=2, workers_count=1,
                               shuffle_row_groups=False) as reader:
            rows.append(np.concatenate([b.x for b in reader]))
    assert rows[0].size and rows[1].size
    assert sorted(np.concatenate(rows).tolist()) == sorted(r.x for r in df.collect())
    # The Hadoop settings are restored after the write.
    assert spark.sparkContext._jsc.hadoopConfiguration().get("parquet.block.size") != str(1024 * 1024)
