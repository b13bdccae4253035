"""Training throughput (events/s), side by side with the GRU4Rec reference, in one run.

    .venv/bin/python bench/bench_training.py --dataset /tmp/yc/sequences_tune \\
        --reference /tmp/gru4rec_ref [--rounds 2] [--two-proc horovod,torch-distributor] [--loaders]

``--dataset`` is a stage-1 sequences directory; the figures in docs/benchmarks.md use the
yoochoose-100k train_tr windows that bench/eval_yoochoose.py builds (``sequences_tune``).
``--reference`` is a checkout of github.com/hidasib/GRU4Rec_PyTorch_Official kept OUTSIDE
the repo (e.g. ``git clone ... /tmp/gru4rec_ref``); it is run as a subprocess on the same
events (``yoochoose-clicks-100k_train_tr.txt``), same model size (1 GRU layer, 100 units,
cross-entropy, batch 32, its default 2,048 shared negative samples), same torch thread
count, one epoch, and its own printed events/s is read back.

"events" are trained prediction points (clicks with a next click in the session), the
reference's unit. Ours is measured inside the training loop (the epoch's points / the
epoch's seconds; start-up and validation excluded). For every run the bench prints where
the epoch's time went (``time_split_s`` of the training history: loading = waiting for
the next batch, forward_backward, allreduce_update = ``optimizer.step()``, which for
horovod includes waiting for the gradient allreduce, other), and the rounds alternate
reference and ours so both see the same machine load.

Goals: 1 process >= the reference's events/s (issue 9 point 3); 2 ranks >= 1.6x 1 rank
on an idle 2-core machine (point 4).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from interest_tracker.config import from_dict, to_dict  # noqa: E402
from interest_tracker.logs import setup_logging  # noqa: E402

MODEL = {"cell": "gru", "hidden_size": 100, "embedding_dim": 100, "event_type_dim": 4}
DATA = REPO.parent / "shared" / "data" / "yoochoose-100k"

REFERENCE_CODE = r"""
import sys, time
import numpy as np, pandas as pd, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(int(sys.argv[3]))
from gru4rec_pytorch import GRU4Rec
data = pd.read_csv(sys.argv[2], sep="\t", dtype={"SessionId": np.int64, "ItemId": np.int64, "Time": np.float64})
model = GRU4Rec(layers=[100], loss="cross-entropy", batch_size=32, n_epochs=int(sys.argv[4]),
                device=torch.device("cpu"))
model.fit(data)
"""


def reference_events_per_s(ref_dir: str, train_tsv: str, threads: int, epochs: int) -> dict:
    """Run the reference in a subprocess; return its per-epoch events/s as it prints them."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", REFERENCE_CODE, ref_dir, train_tsv, str(threads), str(epochs)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"reference failed: {proc.stderr[-2000:]}")
    eps = [float(x) for x in re.findall(r"\|\s*([0-9.]+) e/s\]", proc.stdout)]
    secs = [float(x) for x in re.findall(r"\(([0-9.]+)s\)", proc.stdout)]
    if not eps:
        raise RuntimeError(f"no 'e/s' figure in the reference's output: {proc.stdout[-2000:]}")
    return {"events_per_s": statistics.median(eps), "epoch_seconds": secs, "wall_seconds": time.perf_counter() - t}


def training(dataset: str, out: Path, spark=None, launcher: str = "local", num_proc: int = 1, epochs: int = 1,
             threads: int = 1, batch_size: int = 32, **extra) -> dict:
    from interest_tracker.training.config import TrainConfig
    from interest_tracker.training.launchers import launch

    name = "_".join([launcher, str(num_proc)] + [f"{k}-{v}" for k, v in sorted(extra.items())])
    cfg = from_dict(TrainConfig, {
        "dataset": dataset, "artifact_root": str(out / f"bench_{name}"), "resume": False, "device": "cpu",
        "launcher": launcher, "num_proc": num_proc, "model": MODEL, "loss": "full", "batch_size": batch_size,
        "shuffle_buffer_batches": 16, "loader": "pyarrow", "learning_rate": 0.003, "warmup_steps": 0,
        "epochs": epochs, "evaluate_test": False, "log_every_steps": 10**6, "torch_threads": threads,
        "start_timeout_s": 300, **extra})
    t = time.perf_counter()
    res = launch(cfg, spark)
    wall = time.perf_counter() - t
    hist = res["metrics"]["history"]
    in_loop = sum(h["seconds"] for h in hist)
    points = sum(h["events_per_s"] * h["seconds"] for h in hist)
    split = {k: sum(h["time_split_s"][k] for h in hist) for k in hist[0]["time_split_s"]}
    steps = sum(h["steps"] for h in hist)
    valid = hist[-1].get("valid") or {}
    cpu = {k: sum(h["cpu_per_rank"][k] * h["seconds"] for h in hist) / in_loop for k in hist[0]["cpu_per_rank"]}
    return {"events_per_s": points / in_loop, "train_seconds": in_loop, "wall_seconds": wall, "steps": steps,
            "points": points, "world": res.get("world_size", 1), "time_split_s": split, "cpu_per_rank": cpu,
            "valid_recall20": valid.get("recall@20"), "valid_mrr20": valid.get("mrr@20")}


def _allreduce_worker(rank: int, port: int, numel: int, reps: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    times = {}
    for n in (1, numel):
        t = torch.ones(n)
        for _ in range(5):
            dist.all_reduce(t)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        times[n] = (time.perf_counter() - start) / reps
    if rank == 0:
        Path(out).write_text(json.dumps({str(k): v for k, v in times.items()}))
    dist.destroy_process_group()


def allreduce_ms(dataset: str, reps: int = 200) -> dict:
    """Gloo allreduce between 2 processes on this machine, for 1 float and for the model's
    whole gradient: the communication floor of one data-parallel step."""
    import socket
    import tempfile

    import torch.multiprocessing as mp

    from interest_tracker.config import from_dict as cfg_from_dict
    from interest_tracker.model import InterestModel
    from interest_tracker.training.config import TrainConfig
    from interest_tracker.training.loop import read_dataset_info

    info = read_dataset_info(dataset)
    cfg = cfg_from_dict(TrainConfig, {"dataset": dataset, "artifact_root": "/tmp/unused", "model": MODEL})
    numel = sum(p.numel() for p in InterestModel(cfg.model_config(int(info["num_items"]),
                                                                  int(info["num_event_types"]))).parameters())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "allreduce.json")
        mp.start_processes(_allreduce_worker, args=(port, numel, reps, out), nprocs=2, join=True,
                           start_method="spawn")
        t = json.loads(Path(out).read_text())
    return {"gradient_floats": numel, "latency_ms": 1e3 * t["1"], "gradient_ms": 1e3 * t[str(numel)]}


def loader_rows_per_s(dataset: str, kind: str, batches: int, batch_size: int, pool: str) -> float:
    from interest_tracker.training.loaders import make_loader

    loader = make_loader(kind, str(Path(dataset) / "train"), 0, 1, batch_size, seed=1, pool=pool, workers=2)
    it = loader.epoch(0, batches + 5)
    for _ in range(5):  # warm-up: reader start, first row groups
        next(it)
    t = time.perf_counter()
    n = sum(len(b["length"]) for b in it)
    return n / (time.perf_counter() - t)


def _split(r: dict) -> str:
    s = r["time_split_s"]
    tot = r["train_seconds"] or 1e-9
    return " / ".join(f"{100 * s[k] / tot:.0f}%" for k in ("loading", "forward_backward", "allreduce_update", "other"))


def _cpu(r: dict) -> str:
    """Per rank, as shares of the epoch's wall time: the training thread's CPU (the rest of its
    time it waits), the process's other threads (horovod background, Gloo I/O, loader)."""
    c = r["cpu_per_rank"]
    return f"{100 * c['main_thread_busy']:.0f}% / {100 * c['helper_threads']:.0f}%"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--reference", help="GRU4Rec_PyTorch_Official checkout (outside the repo)")
    p.add_argument("--reference-train", default=str(DATA / "yoochoose-clicks-100k_train_tr.txt"))
    p.add_argument("--rounds", type=int, default=1, help="alternate reference / ours this many times")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads, ours and the reference's")
    p.add_argument("--two-proc", default="horovod,torch-distributor",
                   help="launchers to time with 2 ranks (comma list; empty = none)")
    p.add_argument("--loaders", action="store_true", help="also time the petastorm and pyarrow loaders")
    p.add_argument("--batch-size", type=int, default=32,
                   help="windows per step per rank (32: the reference's; the 2-rank runs use the same per rank)")
    p.add_argument("--one-proc", default="packed,padded,bucketed",
                   help="1-process variants to time (comma list of packed, padded, bucketed)")
    p.add_argument("--out", default="/tmp/bench-training")
    args = p.parse_args()
    setup_logging("WARNING")
    out = Path(args.out)
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}}
    rows = []

    launchers = [x for x in args.two_proc.split(",") if x]
    spark = None
    if launchers:
        from interest_tracker.spark import get_session

        spark = get_session("bench-training", master="local[2]")
    one_label = "ours, 1 process, packed sequences (default)"
    two: dict = {launcher: [] for launcher in launchers}
    ratios: dict = {launcher: [] for launcher in launchers}
    for rnd in range(args.rounds):
        # Each round runs everything once, back to back, so a ratio compares runs that saw the
        # same machine load; the summary quotes the median over rounds.
        if args.reference:
            r = reference_events_per_s(args.reference, args.reference_train, args.threads, args.epochs)
            results.setdefault("reference", []).append(r)
            print(f"reference: {r['events_per_s']:,.0f} events/s", flush=True)
            rows.append(("GRU4Rec reference (official PyTorch), 1 process", r["events_per_s"], None))
        variants = {"packed": (one_label, {"pack_sequences": True}),
                    "padded": ("ours, 1 process, padded (pack_sequences=false)", {"pack_sequences": False}),
                    "bucketed": ("ours, 1 process, packed + bucket_by_length", {"pack_sequences": True,
                                                                                 "bucket_by_length": True})}
        wanted = set(args.one_proc.split(",")) | {"packed"}  # packed: the 2-rank runs' 1-process reference
        for label, extra in (v for k, v in variants.items() if k in wanted):
            r = training(args.dataset, out, epochs=args.epochs, threads=args.threads, batch_size=args.batch_size,
                         **extra)
            results.setdefault(label, []).append(r)
            rows.append((label, r["events_per_s"], r))
            print(f"{label}: {r['events_per_s']:,.0f} events/s, split {_split(r)}, after {args.epochs} epoch(s) "
                  f"valid Recall@20 {r['valid_recall20']} MRR@20 {r['valid_mrr20']}", flush=True)
        for launcher in launchers:
            r = training(args.dataset, out, spark, launcher=launcher, num_proc=2, epochs=args.epochs,
                         threads=args.threads, batch_size=args.batch_size)
            two[launcher].append(r)
            ratios[launcher].append(r["events_per_s"] / results[one_label][-1]["events_per_s"])
            rows.append((f"ours, 2 ranks, {launcher} (rank 0's time split)", r["events_per_s"], r))
            print(f"2 ranks {launcher}: {r['events_per_s']:,.0f} events/s, split {_split(r)}, cpu per rank "
                  f"{_cpu(r)}, {ratios[launcher][-1]:.2f}x this round's 1 process", flush=True)
            results.setdefault(f"2 ranks {launcher}", []).append(r)

    one = statistics.median(r["events_per_s"] for r in results[one_label])
    if args.loaders:
        results["loader_rows_per_s"] = {
            f"{k}/{pool}": loader_rows_per_s(args.dataset, k, 300, 32, pool)
            for k, pool in (("pyarrow", "dummy"), ("petastorm", "thread"), ("petastorm", "dummy"))}
    results["machine"]["load_avg_end"] = os.getloadavg()[0]

    ref = statistics.median(r["events_per_s"] for r in results["reference"]) if "reference" in results else None
    print(f"\n## training throughput: {args.dataset}, GRU 100, batch {args.batch_size} per rank, {args.threads} torch thread(s), "
          f"{args.epochs} epoch(s) per run, {args.rounds} round(s); cpus={os.cpu_count()}, load average "
          f"{results['machine']['load_avg_start']:.1f} -> {results['machine']['load_avg_end']:.1f}")
    print("| run | events/s | ratio to reference | time: loading / forward+backward / allreduce+update / other "
          "| CPU per rank: training thread / other threads |")
    print("|---|---|---|---|---|")
    for label, eps, r in rows:
        ratio = f"{eps / ref:.2f}" if ref else "-"
        print(f"| {label} | {eps:,.0f} | {ratio} | {_split(r) if r else '-'} | {_cpu(r) if r else '-'} |")
    if ref:
        print(f"\n1 process (packed) / reference: {one / ref:.2f} (goal >= 1.00)")
    for launcher, runs in two.items():
        print(f"2 ranks ({launcher}) / 1 process: median {statistics.median(ratios[launcher]):.2f} over "
              f"{len(runs)} round(s) ({', '.join(f'{x:.2f}' for x in ratios[launcher])}; goal >= 1.6 on an idle "
              f"2-core machine); wall incl. start-up {statistics.median(r['wall_seconds'] for r in runs):.0f} s")
    if launchers:
        ar = allreduce_ms(args.dataset)
        results["allreduce"] = ar
        step_ms = {launcher: 1e3 * statistics.median(r["train_seconds"] / max(r["steps"], 1) for r in runs)
                   for launcher, runs in two.items()}
        print(f"communication floor (Gloo, 2 processes, loopback): allreduce of 1 float {ar['latency_ms']:.2f} ms, "
              f"of the whole gradient ({ar['gradient_floats']:,} floats) {ar['gradient_ms']:.2f} ms; a 2-rank step "
              f"takes {', '.join(f'{k} {v:.1f} ms' for k, v in step_ms.items())}")
    if args.loaders:
        for k, v in results["loader_rows_per_s"].items():
            print(f"loader {k}: {v:,.0f} rows/s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_training.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
