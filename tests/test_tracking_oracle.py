"""bench/tracking_accuracy.py's oracle against the generator it claims to mirror.

The oracle (the generator's own next-event distribution) is the ceiling quoted next to the
tracking goal in docs/benchmarks.md, so it must stay the generator's distribution: if the
generator's draws or its successor arithmetic change, these tests fail. The bench script
is imported by path (bench/ is not a package), not copied.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tracking_accuracy", ROOT / "bench" / "tracking_accuracy.py")
ta = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ta)


@pytest.mark.parametrize("s", [1.0, 1.3])
def test_power_law_pmf_is_the_distribution_of_the_generators_zipf_rank(spark, s):
    from pyspark.sql import functions as F

    from interest_tracker.synthetic.random_columns import uniform, zipf_rank

    n, draws = 50, 200_000
    ranks = (spark.range(draws).select(zipf_rank(uniform(11, "oracle-test", "id"), n, s).alias("r"))
             .groupBy("r").agg(F.count("*").alias("c")).toPandas())
    freq = np.zeros(n)
    freq[ranks.r.to_numpy()] = ranks.c.to_numpy() / draws
    pmf = ta._power_law_pmf(n, s)
    assert pmf.sum() == pytest.approx(1.0)
    assert pmf[0] > pmf[1] > pmf[10] > pmf[-1] > 0
    # Binomial noise at 200k draws is below 0.0011 per rank (3 sigma at p = 0.25).
    assert np.abs(freq - pmf).max() < 0.003


def test_the_oracle_puts_the_generators_successor_first(spark):
    """With p_sequential 0.5 the successor (probability >= 0.5) outranks every fresh draw
    (each < 0.5), so for every event the generator drew as a successor, the oracle's top-1
    given the previous item must be that event's item; consumed items are never listed."""
    from interest_tracker.synthetic.config import SyntheticConfig
    from interest_tracker.synthetic.generator import generate

    cfg = SyntheticConfig(num_users=40, num_items=210, num_categories=7, events_per_user=30,
                          min_events_per_user=20, max_events_per_user=60, p_sequential=0.5,
                          seed=3, end_time="2026-11-28T23:59:59Z")
    data = generate(spark, cfg, num_partitions=2)
    truth = data.event_truth.toPandas().sort_values(["user_id", "event_index"]).reset_index(drop=True)
    cat = data.items.select("item_id", "category", "popularity_rank").toPandas()
    oracle = ta.Oracle(cfg, dict(zip(cat.item_id, cat.popularity_rank - 1)))
    prev = truth.groupby("user_id").item_id.shift(1)
    seq = truth[(truth.source == "sequential") & prev.notna()]
    assert len(seq) > 100
    got = [oracle.top(int(r.interest_category), prev[i], set(), 1)[0] for i, r in seq.iterrows()]
    assert got == seq.item_id.tolist()
    # A fresh draw's top-20: the interest's category dominates, consumed items are skipped.
    first = truth.iloc[5]
    top = oracle.top(int(first.interest_category), first.item_id, {first.item_id}, 20)
    assert len(top) == 20 and first.item_id not in top
    category = dict(zip(cat.item_id, cat.category))
    assert np.mean([category[i] == first.interest_category for i in top]) > 0.5
