"""One commit point per run: many staged directories become visible together, or none does.

Plain Parquet directories have no transaction log, so a run that replaces several
partitions commits like this (docs/architecture.md, "Commit points"):

1. every output is already written under an ``_``-prefixed staging directory;
2. a journal (``<root>/_manifests/_journal-<run>.json``) lists each move: staging URL,
   final URL, backup URL, and whether a previous version existed;
3. for each output: the previous version is renamed aside to its backup (under
   ``<table>/_backup/``, which Spark and ``*/*.parquet`` globs ignore) and the staged one
   is renamed in;
4. the run manifest ``<root>/_manifests/<run>.json`` is written (temp file + rename):
   THIS is the commit point; it carries the journal's ``commit_id``;
5. backups and the journal are deleted.

An exception during step 3 rolls back synchronously (backups renamed back). A process
killed during step 3 leaves the journal: ``recover`` (called by the next run of the same
root, and by ``read_manifest``) sees a journal whose ``commit_id`` is not in the
manifest and rolls back; if the manifest already carries it, it only cleans up (roll
forward). The one residual window: between the first rename of step 3 and the end of
recovery, a reader that globs directories without the manifest can see some outputs new
and others old. Readers that trust the manifest never see a mix of row counts.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Callable

from pyspark.sql import SparkSession

from . import hadoop
from .fs import join

log = logging.getLogger(__name__)

MANIFESTS = "_manifests"
BACKUP = "_backup"

# Test hook: called as hook(index, final_url) after each output is renamed into place.
# The atomic-run tests set it to raise after the 2nd of 4 publishes.
after_publish_hook: Callable[[int, str], None] | None = None


def manifest_url(root: str, run: str) -> str:
    return join(root, MANIFESTS, f"{run}.json")


def journal_url(root: str, run: str) -> str:
    return join(root, MANIFESTS, f"_journal-{run}.json")


def _backup_url(final: str) -> str:
    parent, _, name = final.rstrip("/").rpartition("/")
    return join(parent, BACKUP, f"{name}-{uuid.uuid4().hex[:12]}")


def commit_run(spark: SparkSession, root: str, run: str, moves: list[tuple[str, str]], manifest: dict) -> dict:
    """Publish every ``(staging, final)`` of ``moves`` and write the run manifest last.

    A move whose staging is None removes ``final`` (a rerun that no longer produces it):
    the previous version goes to its backup like any replaced output, and comes back on a
    rollback.

    ``manifest`` is what readers get back from ``read_manifest`` (plus ``run``,
    ``commit_id`` and ``committed_at``). Returns the written manifest.
    """
    recover(spark, root)
    commit_id = uuid.uuid4().hex
    entries = [{"staging": s, "final": f, "backup": _backup_url(f), "had_previous": hadoop.exists(spark, f)}
               for s, f in moves]
    journal = journal_url(root, run)
    hadoop.write_json(spark, journal, {"run": run, "commit_id": commit_id, "moves": entries})
    try:
        for i, e in enumerate(entries):
            if e["had_previous"]:
                hadoop.rename(spark, e["final"], e["backup"])
            if e["staging"] is not None:
                hadoop.rename(spark, e["staging"], e["final"])
                hadoop.remove_empty_parent(spark, e["staging"])
            if after_publish_hook is not None:
                after_publish_hook(i, e["final"])
        full = {**manifest, "run": run, "commit_id": commit_id,
                "committed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        hadoop.write_json(spark, manifest_url(root, run), full)  # the commit point
    except BaseException:
        log.error("run %s failed while publishing; rolling back to the previous version", run)
        _rollback(spark, entries)
        hadoop.delete(spark, journal)
        raise
    _cleanup(spark, entries)
    hadoop.delete(spark, journal)
    log.info("committed run %s under %s (%d outputs)", run, root, len(entries))
    return full


def _rollback(spark: SparkSession, entries: list[dict]) -> None:
    for e in reversed(entries):
        removal = e["staging"] is None
        staged_moved = not removal and not hadoop.exists(spark, e["staging"])
        if e["had_previous"]:
            if hadoop.exists(spark, e["backup"]):
                hadoop.delete(spark, e["final"])
                hadoop.rename(spark, e["backup"], e["final"])
        elif staged_moved:
            hadoop.delete(spark, e["final"])
        hadoop.remove_empty_parent(spark, e["backup"])
        if not removal:
            hadoop.delete(spark, e["staging"])
            hadoop.remove_empty_parent(spark, e["staging"])


def _cleanup(spark: SparkSession, entries: list[dict]) -> None:
    for e in entries:
        hadoop.delete(spark, e["backup"])
        hadoop.remove_empty_parent(spark, e["backup"])


def recover(spark: SparkSession, root: str) -> list[str]:
    """Finish what a killed run left under ``root``: roll back uncommitted moves, clean committed ones.

    Returns the runs that were recovered.
    """
    done = []
    for name in hadoop.list_files(spark, join(root, MANIFESTS)):
        if not (name.startswith("_journal-") and name.endswith(".json")):
            continue
        url = join(root, MANIFESTS, name)
        journal = json.loads(hadoop.read_text(spark, url))
        murl = manifest_url(root, journal["run"])
        committed = (hadoop.exists(spark, murl)
                     and hadoop.read_json(spark, murl).get("commit_id") == journal["commit_id"])
        if committed:
            log.warning("run %s was committed but not cleaned up; removing its backups", journal["run"])
            _cleanup(spark, journal["moves"])
        else:
            log.warning("run %s was interrupted while publishing; rolling back to the previous version",
                        journal["run"])
            _rollback(spark, journal["moves"])
        hadoop.delete(spark, url)
        done.append(journal["run"])
    return done


def read_manifest(spark: SparkSession, root: str, run: str) -> dict | None:
    """The committed manifest of ``run`` (after recovering any interrupted run), or None."""
    recover(spark, root)
    url = manifest_url(root, run)
    return hadoop.read_json(spark, url) if hadoop.exists(spark, url) else None
