"""Stage 1's outputs under ``output_root``: one place that knows their paths, formats and pointers.

```
events/run_date=D/          clean_events           (partition)
rejected/run_date=D/        rejected_events        (partition)
quarantine/run_date=D/      quarantined_events     (partition)
sessions/run_date=D/        sessions               (partition)
vocabulary/version=N/       vocabulary             (append-only; vocabulary/_LATEST holds N)
sequences/run_date=D/       train/ valid/ test/ (petastorm), item_stats/, dataset_info.json
reports/run_date=D/report.json
_manifests/run_date=D.json  the run's commit point (layout.commit)
```

``Stage1Layout`` is the Spark driver's view (Hadoop FileSystem, used by prepare, scoring
and the report); ``SequencesDataset`` is the Python view of one ``sequences/run_date=D``
directory that training reads through the pyarrow filesystem layer.
"""
from __future__ import annotations

import datetime as dt
import io as _io
import logging

from . import fs
from .partition import KEY, run_partition

log = logging.getLogger(__name__)

TABLES = {"events": "clean_events", "rejected": "rejected_events", "quarantine": "quarantined_events",
          "sessions": "sessions"}
SPLITS = ("train", "valid", "test")
DATASET_INFO = "dataset_info.json"
ITEM_STATS = "item_stats"
LATEST = "_LATEST"
REPORT_FILE = "report.json"


class Stage1Layout:
    """URLs and typed reads/writes of stage-1 outputs for one run date (docs/architecture.md)."""

    def __init__(self, output_root: str, run_date: dt.date | None = None):
        self.root = fs.to_url(output_root)
        self.run_date = run_date
        self.partition = run_partition(run_date) if run_date else None

    # ---- paths
    def table(self, name: str) -> str:
        if name not in TABLES:
            raise KeyError(f"unknown stage-1 table {name!r}; one of {sorted(TABLES)}")
        return fs.join(self.root, name)

    def partition_url(self, name: str, run_date: dt.date | None = None) -> str:
        return fs.join(self.table(name), f"run_date={(run_date or self.run_date).isoformat()}")

    @property
    def vocabulary(self) -> str:
        return fs.join(self.root, "vocabulary")

    def vocabulary_version(self, version: int) -> str:
        return fs.join(self.vocabulary, f"version={version}")

    @property
    def vocabulary_pointer(self) -> str:
        return fs.join(self.vocabulary, LATEST)

    @property
    def sequences(self) -> str:
        return fs.join(self.root, "sequences", self.partition)

    @property
    def report_dir(self) -> str:
        return fs.join(self.root, "reports", self.partition)

    @property
    def report(self) -> str:
        return fs.join(self.report_dir, REPORT_FILE)

    def dataset(self) -> "SequencesDataset":
        return SequencesDataset(self.sequences)

    # ---- Spark driver reads and writes (Hadoop FileSystem)
    def read_table(self, spark, name: str):
        from . import hadoop

        return hadoop.read_table(spark, self.table(name), TABLES[name])

    def latest_vocabulary_version(self, spark) -> int:
        """N of ``vocabulary/_LATEST``, 0 before the first vocabulary."""
        from . import hadoop

        if not hadoop.exists(spark, self.vocabulary_pointer):
            return 0
        text = hadoop.read_text(spark, self.vocabulary_pointer).strip()
        try:
            return int(text)
        except ValueError as e:
            raise ValueError(f"{self.vocabulary_pointer} holds {text!r}, not a version number; "
                             "write the newest vocabulary/version=N's N into it") from e

    def read_vocabulary(self, spark, version: int):
        from . import hadoop

        return hadoop.read_table(spark, self.vocabulary_version(version), "vocabulary")

    def write_vocabulary_pointer(self, spark, version: int) -> None:
        from . import hadoop

        hadoop.write_text(spark, self.vocabulary_pointer, f"{version}\n")

    def write_dataset_info(self, spark, info: dict, sequences_url: str | None = None) -> None:
        from . import hadoop

        hadoop.write_json(spark, fs.join(sequences_url or self.sequences, DATASET_INFO), info)

    def read_dataset_info(self, spark) -> dict:
        from . import hadoop

        return hadoop.read_json(spark, fs.join(self.sequences, DATASET_INFO))

    def write_report(self, spark, report: dict, directory: str | None = None) -> None:
        """``report.json`` into ``reports/run_date=D`` (or into ``directory``, a staging copy of it)."""
        from . import hadoop

        hadoop.write_json(spark, fs.join(directory or self.report_dir, REPORT_FILE), report)

    def read_report(self, spark) -> dict:
        from . import hadoop

        return hadoop.read_json(spark, self.report)

    def earlier_event_partitions(self, spark) -> list[str]:
        from . import hadoop

        return [p for p in hadoop.list_dirs(spark, fs.join(self.root, "events"))
                if p.startswith(f"{KEY}=") and p < self.partition]


class SequencesDataset:
    """One ``{output_root}/sequences/run_date=D`` directory, read through the pyarrow filesystem layer."""

    def __init__(self, url: str):
        self.url = fs.to_url(url).rstrip("/")

    def split(self, name: str) -> str:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; one of {SPLITS}")
        return fs.join(self.url, name)

    @property
    def item_stats(self) -> str:
        return fs.join(self.url, ITEM_STATS)

    @property
    def output_root(self) -> str:
        return self.url.rsplit("/", 2)[0]

    def has_info(self) -> bool:
        """True once stage 1 has written this dataset's ``dataset_info.json`` (the dataset is complete)."""
        return fs.is_file(fs.join(self.url, DATASET_INFO))

    def write_info(self, info: dict) -> None:
        """For writers outside Spark (tests' and benchmarks' window builders)."""
        fs.write_json(fs.join(self.url, DATASET_INFO), info)

    def write_item_stats(self, table) -> None:
        """``item_stats/`` from a pyarrow Table (item_index int, train_count bigint, ...), for writers
        outside Spark (tests' hand-made window datasets); stage 1 writes it with Spark."""
        import pyarrow.parquet as pq

        missing = {"item_index", "train_count"} - set(table.column_names)
        if missing:
            raise ValueError(f"item_stats needs columns item_index and train_count; missing {sorted(missing)}")
        fs.delete(self.item_stats)
        filesystem, path = fs.resolve(fs.join(self.item_stats, "part-00000.parquet"))
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(table, path, filesystem=filesystem)

    def info(self) -> dict:
        url = fs.join(self.url, DATASET_INFO)
        if not fs.exists(url):
            raise FileNotFoundError(f"{url} not found: 'dataset' must be a stage-1 sequences/run_date=D "
                                    "directory (run jobs/prepare_events.py first)")
        return fs.read_json(url)

    def read_item_stats(self):
        """The ``item_stats`` parquet (item_index int, train_count bigint) as a pyarrow Table."""
        import pyarrow.parquet as pq

        filesystem, path = fs.resolve(self.item_stats)
        return pq.read_table(path, filesystem=filesystem, columns=["item_index", "train_count"])

    def vocabulary_url(self, version) -> str | None:
        """``{output_root}/vocabulary/version=N`` beside this dataset, or None when absent."""
        if version is None:
            return None
        url = fs.join(self.output_root, "vocabulary", f"version={version}")
        return url if fs.is_dir(url) else None

    def vocabulary_parquet(self, version) -> bytes | None:
        """The vocabulary of ``version`` as one Parquet file's bytes (for the model artifact), or None."""
        import pyarrow.parquet as pq

        url = self.vocabulary_url(version)
        if url is None:
            return None
        filesystem, path = fs.resolve(url)
        table = pq.read_table(path, filesystem=filesystem)
        buf = _io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
