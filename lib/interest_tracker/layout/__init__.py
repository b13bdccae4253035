"""The hand-off layer: every path, pointer and manifest that passes between the stages.

Stages never build these paths themselves; they ask this package (docs/architecture.md,
"Hand-offs"). It imports no stage (no torch, no prepare/training/scoring): callers hand
in serialized state (bytes, dicts, PNG bytes).

* ``fs``: the pyarrow filesystem layer for Python processes (file, hdfs, s3, gs, abfs);
* ``hadoop``: the Spark driver's Hadoop FileSystem helpers and the one ``publish``;
* ``commit``: one commit point per run (journal + manifest written last);
* ``stage1``: stage-1 outputs (tables, vocabulary + ``_LATEST``, sequences, dataset_info);
* ``artifact``: the model artifact, its ``_LATEST`` and metrics;
* ``checkpoint``: training checkpoints;
* ``warehouse``: the scoring tables and their run manifests;
* ``partition``: the one ``run_date=D`` spelling (no pyspark, for pure-Python readers);
* ``report``: the pipeline report's pages (``ReportPages``).

Importing this package does not import pyspark; ``hadoop``, ``commit`` and ``warehouse``
do (they run on the Spark driver).
"""
from . import fs
from .artifact import ArtifactNotFound, ArtifactStore
from .checkpoint import CheckpointStore
from .stage1 import SequencesDataset, Stage1Layout

__all__ = ["fs", "ArtifactStore", "ArtifactNotFound", "CheckpointStore", "SequencesDataset", "Stage1Layout"]
