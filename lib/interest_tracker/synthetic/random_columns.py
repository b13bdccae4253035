"""Deterministic randomness as Spark columns.

The generator must give identical rows for a seed whatever the number of Spark
partitions or executors. ``F.rand`` depends on the partition layout, so every random
draw here is a hash of (seed, a tag naming the draw, the row's identity) mapped to
[0, 1): the same (user, event index) always draws the same numbers.
"""
from __future__ import annotations

import math

from pyspark.sql import Column
from pyspark.sql import functions as F

_MANTISSA = (1 << 53) - 1


def uniform(seed: int, tag: str, *keys: Column | str) -> Column:
    """A uniform draw in [0, 1) fixed by (seed, tag, keys): 53 bits of xxhash64."""
    h = F.xxhash64(F.lit(int(seed)), F.lit(tag), *[F.col(k) if isinstance(k, str) else k for k in keys])
    return h.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


def zipf_rank(u: Column, n: Column | int, s: float) -> Column:
    """0-based rank in [0, n) with P(rank r) ~ (r + 1) ** -s, by the inverse CDF of a
    continuous power law on [1, n + 1). Approximate, but one expression and no join.
    """
    n_col = F.lit(n) if isinstance(n, int) else n
    top = n_col.cast("double") + 1.0
    if math.isclose(s, 1.0):
        x = F.exp(u * F.log(top))
    else:
        a = 1.0 - s
        x = F.pow((F.pow(top, F.lit(a)) - 1.0) * u + 1.0, F.lit(1.0 / a))
    rank = F.floor(x).cast("long") - 1
    return F.least(F.greatest(rank, F.lit(0)), n_col.cast("long") - 1)


def exponential(u: Column, mean: float) -> Column:
    """Exponential(mean) draw from a uniform."""
    return -F.log(1.0 - u) * float(mean)


def log_uniform(u: Column, low: float, high: float) -> Column:
    """Log-uniform draw in [low, high] from a uniform: spans hours to days evenly per decade."""
    return F.exp(F.lit(math.log(low)) + u * float(math.log(high) - math.log(low)))


def pick(u: Column, weights: dict[str, float]) -> Column:
    """One of ``weights``' keys, with probability proportional to its weight."""
    total = float(sum(weights.values()))
    names = list(weights)
    out = F.lit(names[-1])
    acc = 0.0
    branches = []
    for name in names[:-1]:
        acc += weights[name] / total
        branches.append((acc, name))
    for bound, name in reversed(branches):
        out = F.when(u < bound, F.lit(name)).otherwise(out)
    return out
