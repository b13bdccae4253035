"""Window loaders: petastorm and pyarrow behind one interface.

A loader gives each rank a stream of fixed-size batches (dicts of numpy arrays) from
its own shard of row groups. ``epoch(e, steps)`` yields exactly ``steps`` batches: every
rank runs the same number of steps whatever its shard holds, because petastorm shards by
row group (ranks get unequal row counts) and a rank that stops early would leave the
others blocked in an allreduce. Streams are read with ``num_epochs=None`` (endless) and
cut at ``steps``, which also avoids petastorm's thread-pool reader ending a shuffled
epoch with 0 rows. Each epoch opens a reader seeded with ``(seed, epoch)``: with the
``dummy`` pool (petastorm) or the pyarrow loader the order is then a pure function of the
seed and epoch, which is what makes resume-after-kill repeat an uninterrupted run.

``read_split`` reads a whole split once, unsharded, for evaluation.
"""
from __future__ import annotations

import glob
import logging
import os
import warnings
from typing import Iterator, Protocol
from urllib.parse import urlparse

import numpy as np

log = logging.getLogger(__name__)

TRAIN_FIELDS = ("input_items", "input_event_types", "input_log_gaps", "input_session_starts",
                "target_items", "target_mask", "length")
EVAL_FIELDS = TRAIN_FIELDS + ("window_id",)

Batch = dict


class WindowLoader(Protocol):
    def epoch(self, epoch: int, steps: int) -> Iterator[Batch]:
        """Exactly ``steps`` batches of ``batch_size`` rows from this rank's shard."""


def to_url(path_or_url: str) -> str:
    return path_or_url if "://" in path_or_url else "file://" + os.path.abspath(path_or_url)


def to_path(path_or_url: str) -> str:
    u = urlparse(path_or_url)
    if u.scheme in ("", "file"):
        return u.path if u.scheme else path_or_url
    raise ValueError(f"{path_or_url!r}: the pyarrow loader reads local paths only; use loader='petastorm' "
                     "for remote storage")


class _Rebatcher:
    """Turns variable-size chunks into shuffled fixed-size batches (a small shuffle buffer)."""

    def __init__(self, batch_size: int, buffer_batches: int, rng: np.random.Generator, fields,
                 bucket_by_length: bool = False):
        self.batch_size = batch_size
        self.bucket = bucket_by_length and "length" in fields
        self.buffer_rows = max(1, buffer_batches) * batch_size
        self.rng = rng
        self.fields = fields
        self.pending: list[dict] = []
        self.rows = 0

    def push(self, chunk: dict) -> Iterator[Batch]:
        n = len(chunk[self.fields[0]])
        if n == 0:
            return
        self.pending.append(chunk)
        self.rows += n
        if self.rows < self.buffer_rows:
            return
        merged = {f: np.concatenate([c[f] for c in self.pending]) for f in self.fields}
        perm = self.rng.permutation(self.rows)
        merged = {f: v[perm] for f, v in merged.items()}
        full = (self.rows // self.batch_size) * self.batch_size
        starts = list(range(0, full, self.batch_size))
        if self.bucket:
            # Rows of similar length share a batch (the loop trims padding past the longest),
            # and the batches are shuffled, so each step still sees a random length bucket.
            order = np.argsort(merged["length"][:full], kind="stable")
            head = {f: v[:full][order] for f, v in merged.items()}
            merged = {f: np.concatenate([head[f], v[full:]]) for f, v in merged.items()}
            starts = [starts[i] for i in self.rng.permutation(len(starts))]
        for s in starts:
            yield {f: v[s:s + self.batch_size] for f, v in merged.items()}
        rest = {f: v[full:] for f, v in merged.items()}
        self.pending = [rest] if full < self.rows else []
        self.rows -= full


def _take(stream: Iterator[dict], steps: int, rebatcher: _Rebatcher, what: str) -> Iterator[Batch]:
    produced = 0
    chunks = 0
    for chunk in stream:
        chunks += 1
        for batch in rebatcher.push(chunk):
            yield batch
            produced += 1
            if produced >= steps:
                return
        if chunks > 1000 and produced == 0:
            break
    raise RuntimeError(f"{what}: the stream ended after {produced} of {steps} batches; the shard is "
                       "empty or smaller than one batch. Write more row groups (>= 4 per rank) or lower "
                       "batch_size / num_proc")


class PetastormLoader:
    """``make_batch_reader`` with ``cur_shard``/``shard_count``; endless, cut per epoch."""

    def __init__(self, url: str, rank: int, world: int, batch_size: int, seed: int,
                 pool: str = "thread", workers: int = 2, buffer_batches: int = 4, fields=TRAIN_FIELDS,
                 bucket_by_length: bool = False):
        self.bucket_by_length = bucket_by_length
        self.url, self.rank, self.world = to_url(url), rank, world
        self.batch_size, self.seed, self.pool, self.workers = batch_size, seed, pool, workers
        self.buffer_batches, self.fields = buffer_batches, tuple(fields)
        if world > 1:
            # petastorm shards by row group: a rank past the last one would fail deep inside the
            # reader (NoDataAvailableError) while the others wait for it. Every rank checks, so
            # they all stop with the fix instead of some hanging in a collective.
            groups = count_row_groups(self.url)
            if groups < world:
                raise ValueError(f"{world} ranks but {self.url} has {groups} row group(s): petastorm gives each "
                                 f"rank whole row groups, so rank(s) {groups}..{world - 1} would get none; "
                                 "write >= 4 row groups per rank in stage 1 (sequences.num_row_groups) or lower "
                                 "num_proc")

    def epoch(self, epoch: int, steps: int) -> Iterator[Batch]:
        from petastorm import make_batch_reader

        with warnings.catch_warnings():
            # petastorm suggests make_reader whenever a Unischema is stored; make_batch_reader is
            # right for plain-typed fixed-length arrays (DEVELOPERS.md), so the warning is noise.
            warnings.filterwarnings("ignore", message="Please use make_reader")
            reader = self._open(make_batch_reader, epoch)
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        try:
            stream = ({f: _as_2d(getattr(b, f)) for f in self.fields} for b in reader)
            yield from _take(stream, steps, _Rebatcher(self.batch_size, self.buffer_batches, rng, self.fields,
                                                        self.bucket_by_length),
                             f"petastorm shard {self.rank}/{self.world} of {self.url}")
        finally:
            reader.stop()
            reader.join()

    def _open(self, make_batch_reader, epoch: int):
        return make_batch_reader(
            self.url, schema_fields=list(self.fields), num_epochs=None,
            cur_shard=self.rank if self.world > 1 else None,
            shard_count=self.world if self.world > 1 else None,
            shuffle_row_groups=True, seed=self.seed + 1009 * epoch,
            reader_pool_type=self.pool, workers_count=self.workers,
        )


def _as_2d(values):
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1 and len(values) \
            and isinstance(values[0], np.ndarray):
        return np.stack(values)
    return values


def row_groups(path: str) -> list[tuple[str, int]]:
    """(file, row_group) pairs of a parquet directory, in a stable order."""
    import pyarrow.parquet as pq

    files = sorted(f for f in glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True)
                   if not os.path.basename(f).startswith(("_", ".")))
    if not files:
        raise FileNotFoundError(f"no parquet files under {path}; is it a stage-1 split directory?")
    out = []
    for f in files:
        out.extend((f, i) for i in range(pq.ParquetFile(f).num_row_groups))
    return out


def count_row_groups(url: str) -> int:
    """Row groups of a parquet directory on any filesystem the layout reads (petastorm's
    URLs included); files named ``_*`` or ``.*`` (``_SUCCESS``, ``_common_metadata``) are skipped."""
    import pyarrow.dataset as pads

    from ..layout import fs

    filesystem, path = fs.resolve(url)
    return sum(f.metadata.num_row_groups
               for f in pads.dataset(path, filesystem=filesystem, format="parquet").get_fragments())


def _table_to_arrays(table, fields) -> dict:
    import pyarrow as pa

    out = {}
    for f in fields:
        col = table.column(f).combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            n = len(col)
            flat = col.flatten().to_numpy(zero_copy_only=False)
            out[f] = flat.reshape(n, -1) if n else flat.reshape(0, 0)
        elif pa.types.is_string(col.type):
            out[f] = np.asarray(col.to_pylist(), dtype=object)
        else:
            out[f] = col.to_numpy(zero_copy_only=False)
    return out


class PyarrowLoader:
    """Reads this rank's row groups (``i % world == rank``) with pyarrow; same batches contract."""

    def __init__(self, url: str, rank: int, world: int, batch_size: int, seed: int,
                 buffer_batches: int = 4, fields=TRAIN_FIELDS, bucket_by_length: bool = False, **_ignored):
        self.bucket_by_length = bucket_by_length
        self.path = to_path(url)
        self.rank, self.world, self.batch_size, self.seed = rank, world, batch_size, seed
        self.buffer_batches, self.fields = buffer_batches, tuple(fields)
        groups = row_groups(self.path)
        self.groups = groups[rank::world]
        if not self.groups:
            raise ValueError(f"rank {rank} of {world} gets no row group of {self.path} ({len(groups)} in all); "
                             "write >= 4 row groups per rank in stage 1 or lower num_proc")

    def _stream(self, rng: np.random.Generator) -> Iterator[dict]:
        import pyarrow.parquet as pq

        files: dict[str, pq.ParquetFile] = {}
        while True:
            for i in rng.permutation(len(self.groups)):
                f, g = self.groups[i]
                pf = files.get(f) or files.setdefault(f, pq.ParquetFile(f))
                yield _table_to_arrays(pf.read_row_group(g, columns=list(self.fields)), self.fields)

    def epoch(self, epoch: int, steps: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        yield from _take(self._stream(rng), steps, _Rebatcher(self.batch_size, self.buffer_batches, rng, self.fields,
                                                              self.bucket_by_length),
                         f"pyarrow shard {self.rank}/{self.world} of {self.path}")


def make_loader(kind: str, url: str, rank: int, world: int, batch_size: int, seed: int, *,
                pool: str = "thread", workers: int = 2, buffer_batches: int = 4, fields=TRAIN_FIELDS,
                bucket_by_length: bool = False):
    if kind == "petastorm":
        return PetastormLoader(url, rank, world, batch_size, seed, pool=pool, workers=workers,
                               buffer_batches=buffer_batches, fields=fields, bucket_by_length=bucket_by_length)
    if kind == "pyarrow":
        return PyarrowLoader(url, rank, world, batch_size, seed, buffer_batches=buffer_batches, fields=fields,
                             bucket_by_length=bucket_by_length)
    raise ValueError(f"unknown loader {kind!r}; use 'petastorm' or 'pyarrow'")


def read_split(url: str, batch_rows: int, fields=EVAL_FIELDS) -> Iterator[Batch]:
    """Every row of a split once, in file order, in chunks of at most ``batch_rows`` rows."""
    import pyarrow.parquet as pq

    path = to_path(url)
    for f, g in row_groups(path):
        arrays = _table_to_arrays(pq.ParquetFile(f).read_row_group(g, columns=list(fields)), fields)
        n = len(arrays[fields[0]])
        for s in range(0, n, batch_rows):
            yield {k: v[s:s + batch_rows] for k, v in arrays.items()}


def count_rows(url: str) -> int:
    import pyarrow.parquet as pq

    path = to_path(url)
    return sum(pq.ParquetFile(f).metadata.row_group(g).num_rows for f, g in row_groups(path))
