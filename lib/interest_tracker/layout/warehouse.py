"""The warehouse: the four scoring tables (``run_date``-partitioned Parquet) and their run manifests.

```
{warehouse_root}/user_interest/run_date=D/
{warehouse_root}/user_recommendations/run_date=D/
{warehouse_root}/user_interest_drift/run_date=D/
{warehouse_root}/user_scoring_state/run_date=D/
{warehouse_root}/_manifests/run_date=D.json    the run's commit point (layout.commit)
```

A run stages all four partitions, then ``publish_run`` makes them visible together and
writes the manifest last: tables, partitions, row counts, model version and whatever the
scoring job adds in ``extra``. Readers and the catalog registration trust the manifest.
"""
from __future__ import annotations

import datetime as dt
import logging

from . import commit, fs, hadoop
from .partition import KEY, parse_run_partition, partition_url, run_partition

log = logging.getLogger(__name__)

INTEREST = "user_interest"
RECOMMENDATIONS = "user_recommendations"
DRIFT = "user_interest_drift"
STATE = "user_scoring_state"
TABLES = (INTEREST, RECOMMENDATIONS, DRIFT, STATE)


def run_name(run_date: dt.date) -> str:
    """A run's partition and manifest name (``run_date=D``)."""
    return run_partition(run_date)


class Warehouse:
    def __init__(self, root: str):
        self.root = fs.to_url(root).rstrip("/")

    def table_url(self, name: str) -> str:
        return fs.join(self.root, name)

    def partition_url(self, name: str, run_date: dt.date) -> str:
        return partition_url(self.table_url(name), run_date)

    def manifest_url(self, run_date: dt.date) -> str:
        return commit.manifest_url(self.root, run_name(run_date))

    # ---- readers outside Spark (DuckDB, pandas, benchmarks): through layout.fs
    def committed_manifest(self, run_date: dt.date) -> dict | None:
        """The run manifest of ``run_date`` read through ``layout.fs``, or None if the run never committed.

        For readers without Spark. It does not roll back a publish that was killed half
        way (only the Spark driver renames; ``read_manifest`` there recovers first): a
        present manifest means the run committed, and its partitions hold that run.
        """
        url = self.manifest_url(run_date)
        return fs.read_json(url) if fs.is_file(url) else None

    def committed_partition(self, name: str, run_date: dt.date) -> str:
        """URL of table ``name``'s partition for ``run_date``, as its committed run manifest names it.

        Raises FileNotFoundError (with the fix) when the run has no manifest or the
        manifest does not list the table.
        """
        manifest = self.committed_manifest(run_date)
        if manifest is None:
            raise FileNotFoundError(f"{self.manifest_url(run_date)} not found: no scoring run for {run_date} "
                                    f"committed under {self.root}; run jobs/score_users.py --run-date {run_date}")
        table = manifest.get("tables", {}).get(name)
        if table is None:
            raise FileNotFoundError(f"{self.manifest_url(run_date)} lists no table {name!r} "
                                    f"(it has {sorted(manifest.get('tables', {}))})")
        return table["partition"]

    # ---- Spark driver
    def recover(self, spark) -> list[str]:
        """Roll back (or finish) a run that was killed while publishing."""
        return commit.recover(spark, self.root)

    def stage(self, df, name: str, run_date: dt.date) -> str:
        """Write one table's partition to a staging directory (contract columns, partition column dropped)."""
        return hadoop.write_staged(df, self.table_url(name), run_name(run_date), name)

    def discard(self, spark, staged: dict[str, str]) -> None:
        for url in staged.values():
            try:
                hadoop.delete(spark, url)
                hadoop.remove_empty_parent(spark, url)
            except Exception:  # noqa: BLE001 - a leftover _staging dir is harmless; keep the original error
                log.warning("could not remove %s", url)

    def publish_run(self, spark, run_date: dt.date, staged: dict[str, str], *, model_version: str,
                    extra: dict | None = None) -> dict:
        """Make every staged partition visible together; the manifest written last is the commit point."""
        row_counts = {name: spark.read.parquet(url).count() for name, url in staged.items()}
        moves = [(url, self.partition_url(name, run_date)) for name, url in staged.items()]
        manifest = {
            "kind": "warehouse-run", "run_date": run_date.isoformat(), "model_version": model_version,
            "tables": {name: {"partition": self.partition_url(name, run_date), "rows": row_counts[name]}
                       for name in staged},
            "extra": dict(extra or {}),
        }
        return commit.commit_run(spark, self.root, run_name(run_date), moves, manifest)

    def read_manifest(self, spark, run_date: dt.date) -> dict | None:
        return commit.read_manifest(spark, self.root, run_name(run_date))

    def has_partition(self, spark, name: str, run_date: dt.date) -> bool:
        return hadoop.exists(spark, self.partition_url(name, run_date))

    def run_dates(self, spark, name: str) -> list[dt.date]:
        dates = []
        for part in hadoop.list_dirs(spark, self.table_url(name)):
            if not part.startswith(f"{KEY}="):
                continue  # _staging, _backup: not partitions
            day = parse_run_partition(part)
            if day is None:
                log.warning("ignoring unexpected directory %s/%s", self.table_url(name), part)
            else:
                dates.append(day)
        return sorted(dates)

    def previous_run_date(self, spark, name: str, run_date: dt.date) -> dt.date | None:
        """The newest ``run_date=`` partition of a table strictly before ``run_date``."""
        earlier = [d for d in self.run_dates(spark, name) if d < run_date]
        return max(earlier) if earlier else None

    def read_partition(self, spark, name: str, run_date: dt.date):
        """One partition with its contract schema; run_date is added back as a column."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        from ..contracts import load_contract

        contract = load_contract(name)
        schema = T.StructType([f for f in contract.spark_schema().fields if f.name not in contract.partition_by])
        df = spark.read.schema(schema).parquet(self.partition_url(name, run_date))
        return df.withColumn("run_date", F.lit(run_date))

    def read_table(self, spark, name: str):
        return hadoop.read_table(spark, self.table_url(name), name)
