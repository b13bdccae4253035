"""Training throughput (events/s) with 1 and 2 processes, and loader rows/s, in one run.

    .venv/bin/python bench/bench_training.py --dataset /tmp/yoochoose-eval/sequences_tune \
        [--epochs 1] [--launcher2 horovod|torch-distributor] [--loader-batches 300]

``--dataset`` is any stage-1 sequences directory; the figures in docs/benchmarks.md use
the yoochoose-100k train_tr windows that bench/eval_yoochoose.py builds. The model has the
size of the GRU4Rec reference (GRU, 100 units, 100-d embeddings, full softmax, batch 32).
"events" are trained prediction points (clicks with a next click), the unit of the
reference implementation's events/s. Throughput is measured inside the training loop
(the epoch's points / the epoch's seconds), so process and Spark start-up are excluded
and printed separately.

Goals (stated beside each figure): >= 7,000-9,000 events/s (the reference on the same
2-core CPU); petastorm loader within 2x of the pyarrow loader's rows/s.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from interest_tracker.config import from_dict  # noqa: E402
from interest_tracker.layout import SequencesDataset  # noqa: E402
from interest_tracker.logs import setup_logging  # noqa: E402

MODEL = {"cell": "gru", "hidden_size": 100, "embedding_dim": 100, "event_type_dim": 4}


def loader_rows_per_s(dataset: str, kind: str, batches: int, batch_size: int, pool: str) -> float:
    from interest_tracker.training.loaders import make_loader

    loader = make_loader(kind, SequencesDataset(dataset).split("train"), 0, 1, batch_size, seed=1, pool=pool, workers=2)
    it = loader.epoch(0, batches + 5)
    for _ in range(5):  # warm-up: reader start, first row groups
        next(it)
    t = time.perf_counter()
    n = sum(len(b["length"]) for b in it)
    return n / (time.perf_counter() - t)


def training(dataset: str, launcher: str, num_proc: int, epochs: int, out: Path, spark, batch_size: int = 32,
             bucket: bool = False) -> dict:
    from interest_tracker.training.config import TrainConfig
    from interest_tracker.training.launchers import launch

    cfg = from_dict(TrainConfig, {
        "dataset": dataset, "artifact_root": str(out / f"bench_{launcher}_{num_proc}"), "resume": False,
        "launcher": launcher, "num_proc": num_proc, "model": MODEL, "loss": "full", "batch_size": batch_size, "bucket_by_length": bucket, "shuffle_buffer_batches": 16,
        "learning_rate": 0.003, "warmup_steps": 0, "epochs": epochs, "evaluate_test": False,
        "log_every_steps": 10**6, "torch_threads": 1, "start_timeout_s": 300})
    t = time.perf_counter()
    res = launch(cfg, spark)
    wall = time.perf_counter() - t
    hist = res["metrics"]["history"]
    in_loop = sum(h["seconds"] for h in hist)
    points = sum(h["events_per_s"] * h["seconds"] for h in hist)
    return {"events_per_s": points / in_loop, "train_seconds": in_loop, "wall_seconds": wall,
            "world": res.get("world_size", 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--launcher2", default="horovod", choices=["horovod", "torch-distributor"])
    p.add_argument("--loader-batches", type=int, default=300)
    p.add_argument("--out", default="/tmp/bench-training")
    p.add_argument("--extra-batch-sizes", default="", help="also time 1 process at these batch sizes, e.g. 128,256")
    p.add_argument("--skip-loaders-and-2proc", action="store_true", help="only the 1-process figures")
    args = p.parse_args()
    setup_logging("WARNING")
    from interest_tracker.spark import get_session

    out = Path(args.out)
    spark = get_session("bench-training", master="local[2]")
    one = training(args.dataset, "local", 1, args.epochs, out, spark)
    bucketed = training(args.dataset, "local", 1, args.epochs, out, spark, bucket=True)
    print(f"| train 1 process, batch 32, bucket_by_length events/s | {bucketed['events_per_s']:,.0f} | "
          f">= 7,000-9,000; ratio to unbucketed: {bucketed['events_per_s'] / one['events_per_s']:.2f} |")
    extra = {int(b): training(args.dataset, "local", 1, args.epochs, out, spark, int(b))
             for b in args.extra_batch_sizes.split(",") if b}
    for b, r in extra.items():
        print(f"| train 1 process, batch {b} events/s | {r['events_per_s']:,.0f} | ratio to batch 32: "
              f"{r['events_per_s'] / one['events_per_s']:.2f} (quality at this batch size not tuned) |")
    print(f"| train 1 process, batch 32 events/s | {one['events_per_s']:,.0f} | >= 7,000-9,000 |")
    if args.skip_loaders_and_2proc:
        return 0
    rows = {}
    for kind, pool in (("pyarrow", "dummy"), ("petastorm", "thread"), ("petastorm", "dummy")):
        rows[f"{kind}/{pool}"] = loader_rows_per_s(args.dataset, kind, args.loader_batches, 32, pool)
    two = training(args.dataset, args.launcher2, 2, args.epochs, out, spark)
    figures = {"loader_rows_per_s": rows, "train_1proc": one, f"train_2proc_{args.launcher2}": two,
               "train_1proc_extra_batch_sizes": extra, "train_1proc_bucketed": bucketed}
    print("\n## training benchmark (dataset %s, batch 32, GRU 100)" % args.dataset)
    print("| figure | value | goal |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| loader {k} rows/s | {v:,.0f} | petastorm >= 0.5x pyarrow |")
    base = rows["pyarrow/dummy"]
    for k in ("petastorm/thread", "petastorm/dummy"):
        print(f"| ratio {k} / pyarrow | {rows[k] / base:.2f} | >= 0.5 |")
    print(f"| train 1 process events/s | {one['events_per_s']:,.0f} | >= 7,000-9,000 (GRU4Rec reference) |")
    print(f"| train 2 processes ({args.launcher2}) events/s | {two['events_per_s']:,.0f} | >= 1 process |")
    print(f"| ratio 2 / 1 processes | {two['events_per_s'] / one['events_per_s']:.2f} | > 1 on >= 2 free cores |")
    print(f"| wall seconds 1 / 2 processes (incl. start-up, per-epoch eval) | {one['wall_seconds']:.1f} / "
          f"{two['wall_seconds']:.1f} | - |")
    (out / "bench_training.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
