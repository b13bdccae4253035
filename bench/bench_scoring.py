"""Scoring throughput: users/s of the stage-3 predict function in Spark local mode,
side by side with the floating-point bound of the same matrix product on this machine.

    .venv/bin/python bench/bench_scoring.py                     # 100k users x 100k items, K=20, local[2]
    .venv/bin/python bench/bench_scoring.py --users 20000       # quicker

Three figures, same process, same data shapes:
  bound      plain numpy (users x D) @ (D x items) in row blocks, output discarded; numpy
             uses every core, as Spark's local[2] does. Goal reference: 100%.
  topk       the scoring UDF with vectors given (blocked top-K + consumed exclusion +
             item id mapping + Arrow), via DataFrame.mapInPandas -> noop sink.
             Goal: >= 50% of bound.
  end2end    the same UDF encoding each user's latest L events with the GRU first.
             Reported for context (the bound does not count the GRU's work).
Prints one line per figure and the ratios; nothing is asserted.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

log = logging.getLogger("bench_scoring")


def numpy_bound(users: int, items: np.ndarray, dim: int, block: int, seed: int = 0) -> float:
    """Seconds for users x (dim) @ (dim x items) in blocks of ``block`` rows."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((block, dim), dtype=np.float32)
    t = time.perf_counter()
    done = 0
    while done < users:
        n = min(block, users - done)
        out = q[:n] @ items.T
        done += n
    del out
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--dim", type=int, default=100, help="embedding_dim = hidden_size")
    p.add_argument("--window", type=int, default=50, help="L, events per user fed to the GRU")
    p.add_argument("--consumed", type=int, default=20, help="consumed items excluded per user")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--arrow-batch", type=int, default=4096)
    p.add_argument("--score-batch", type=int, default=256)
    p.add_argument("--item-block", type=int, default=16384)
    p.add_argument("--skip-end2end", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    import torch
    from pyspark.sql import functions as F

    from interest_tracker.model import InterestModel, ModelConfig
    from interest_tracker.scoring.config import ExecutorConfig
    from interest_tracker.scoring.predict import OUTPUT_SCHEMA, ScoringPayload, make_score_fn
    from interest_tracker.spark import get_session

    torch.manual_seed(0)
    num_items = args.items + 2
    model = InterestModel(ModelConfig(num_items=num_items, hidden_size=args.dim, embedding_dim=args.dim)).eval()
    import io as _io

    buf = _io.BytesIO()
    torch.save({k: v.detach() for k, v in model.state_dict().items()}, buf)
    import json

    from interest_tracker.config import to_dict

    item_ids = tuple([None, None] + [f"item-{i}" for i in range(args.items)])
    payload_obj = ScoringPayload("bench", json.dumps(to_dict(model.config)), buf.getvalue(), item_ids, None)

    # ---- bound: plain numpy, same shape (users x D+1 @ D+1 x items: the bias column included)
    items_np = np.ascontiguousarray(
        np.concatenate([model.item_vectors().detach().numpy(), model.output_bias.detach().numpy()[:, None]], 1))
    bound_s = numpy_bound(args.users, items_np, args.dim + 1, args.score_batch)
    flops = 2.0 * args.users * num_items * (args.dim + 1)
    log.info("bound: numpy %dx%d @ %dx%d: %.1f s", args.users, args.dim + 1, args.dim + 1, num_items, bound_s)

    spark = get_session("bench-scoring", master=args.master,
                        conf={"spark.sql.shuffle.partitions": str(args.partitions),
                              "spark.sql.execution.arrow.maxRecordsPerBatch": str(args.arrow_batch)})
    spark.sparkContext.setLogLevel("WARN")
    payload = spark.sparkContext.broadcast(payload_obj)
    executor = ExecutorConfig(score_batch_size=args.score_batch, item_block_size=args.item_block,
                              arrow_batch_size=args.arrow_batch)
    L, N = args.window, args.items

    def seq(expr: str, n: int):
        return F.expr(f"transform(sequence(1, {n}), x -> {expr})")

    base = spark.range(0, args.users, numPartitions=args.partitions).select(
        "id", F.concat(F.lit("user-"), F.col("id").cast("string")).alias("user_id"),
        seq(f"cast(2 + pmod(hash(id, x), {N}) as int)", L).alias("items"),
        seq("cast(1 + pmod(hash(id, x, 7), 4) as int)", L).alias("event_types"),
        seq("cast(log1p(pmod(hash(id, x, 8), 3600)) as float)", L).alias("log_gaps"),
        seq("cast(if(pmod(hash(id, x, 9), 10) = 0, 1, 0) as int)", L).alias("session_starts"),
        seq(f"concat('item-', cast(pmod(hash(id, x, 10), {N}) as string))", args.consumed).alias("consumed_item_ids"),
        F.lit(L).alias("events_used"),
        F.current_timestamp().alias("last_event_time"),
    ).cache()
    base.count()
    with_vectors = base.withColumn(
        "vector", seq("cast((pmod(hash(id, x, 11), 2001) - 1000) / 10000.0 as float)", args.dim)).cache()
    with_vectors.count()
    no_vectors = base.withColumn("vector", F.lit(None).cast("array<float>")).drop("id")

    def run(df) -> float:
        fn = make_score_fn(payload, L, args.k, True, executor)
        t = time.perf_counter()
        df.mapInPandas(fn, OUTPUT_SCHEMA).write.format("noop").mode("overwrite").save()
        return time.perf_counter() - t

    # warm-up on every partition, so each Python worker has imported torch and built the model
    run(with_vectors.where(F.abs(F.hash("user_id")) % 1000 == 0))
    topk_s = run(with_vectors)
    end2end_s = None if args.skip_end2end else run(no_vectors)

    def line(name, secs, goal):
        ups = args.users / secs
        return (f"{name:8s} {secs:8.1f} s  {ups:10.0f} users/s  {flops / secs / 1e9:7.1f} GFLOP/s(product)  "
                f"{(bound_s / secs) * 100:6.1f}% of bound   goal: {goal}")

    print(f"# scoring bench: {args.users} users x {args.items} items, K={args.k}, D={args.dim}, L={args.window}, "
          f"{args.consumed} consumed/user, master={args.master}, cpus={os.cpu_count()}, "
          f"load avg={os.getloadavg()[0]:.1f}")
    print(line("bound", bound_s, "reference (100%)"))
    print(line("topk", topk_s, ">= 50% of bound"))
    if end2end_s is not None:
        print(line("end2end", end2end_s, "context: includes the GRU over L events"))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
