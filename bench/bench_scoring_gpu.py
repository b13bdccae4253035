"""Scoring on one GPU: the predict function's compute (GRU encode + blocked top-K with consumed
exclusion) against a GPU matmul bound of the same product, in one process, side by side.

    python bench/bench_scoring_gpu.py [--users 200000] [--items 100000] [--device cuda]

Why in-process and not through Spark: the GPU machine of bench/device_check.sh has torch
with CUDA but no Spark or Java. This runs the same functions the Spark UDF runs per
batch (``InterestModel.encode_last``, ``scoring.topk.augmented_items`` / ``blocked_topk``)
on the device that ``interest_tracker.device`` picks, so it measures what the GPU executor
path computes, minus Arrow and the Python worker (bench/bench_scoring.py measures those
on the CPU).

Three figures, same shapes:
  bound    users x (D+1) @ (D+1) x items in blocks of score_batch rows on the GPU, plus a
           top-K per block (torch.topk), output discarded. Reference: 100%.
  topk     blocked_topk with the vectors given (what scoring does for unchanged users).
  end2end  encode the users' latest L events with the GRU, then blocked_topk.
Prints the figures and the ratios; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--consumed", type=int, default=20)
    p.add_argument("--score-batch", type=int, default=4096, help="users per top-K product")
    p.add_argument("--encode-batch", type=int, default=4096, help="users per GRU pass")
    p.add_argument("--item-block", type=int, default=131072)
    p.add_argument("--device", default="cuda", choices=["auto", "cuda", "cpu"])
    args = p.parse_args(argv)

    import torch

    from interest_tracker.device import resolve_device
    from interest_tracker.model import InterestModel, ModelConfig
    from interest_tracker.scoring.topk import augmented_items, blocked_topk

    device = resolve_device(args.device, "local")
    torch.manual_seed(0)
    n_items = args.items + 2
    model = InterestModel(ModelConfig(num_items=n_items, hidden_size=args.dim, embedding_dim=args.dim)).eval()
    model = model.to(device)
    rng = np.random.default_rng(0)
    U, L = args.users, args.window
    items = torch.from_numpy(rng.integers(2, n_items, (U, L))).to(device)
    types = torch.from_numpy(rng.integers(1, 5, (U, L))).to(device)
    gaps = torch.from_numpy(rng.random((U, L), dtype=np.float32) * 8).to(device)
    starts = torch.from_numpy((rng.random((U, L)) < 0.1).astype(np.float32)).to(device)
    lengths = torch.full((U,), L, dtype=torch.long, device=device)
    consumed = [rng.integers(2, n_items, args.consumed) for _ in range(U)]
    excluded = np.zeros(n_items, dtype=bool)
    excluded[:2] = True
    with torch.no_grad():
        items_aug = augmented_items(model.item_vectors(), model.output_bias, excluded).to(device)

    def bound() -> float:
        q = torch.randn(args.score_batch, args.dim + 1, device=device)
        _sync(device)
        t = time.perf_counter()
        done = 0
        while done < U:
            n = min(args.score_batch, U - done)
            torch.topk(q[:n] @ items_aug.T, args.k, dim=1)
            done += n
        _sync(device)
        return time.perf_counter() - t

    def encode():
        out = []
        with torch.no_grad():
            for s in range(0, U, args.encode_batch):
                e = min(s + args.encode_batch, U)
                out.append(model.encode_last(items[s:e], types[s:e], gaps[s:e], starts[s:e], lengths[s:e]))
        return torch.cat(out).float()

    def topk(vectors) -> None:
        blocked_topk(vectors, items_aug, args.k, consumed, args.score_batch, args.item_block)

    vectors = torch.randn(U, args.dim, device=device) * 0.1
    bound()  # warm-up (kernels, allocator)
    topk(vectors[: args.score_batch * 2])
    encode()
    bound_s = bound()
    _sync(device)
    t = time.perf_counter()
    topk(vectors)
    _sync(device)
    topk_s = time.perf_counter() - t
    t = time.perf_counter()
    topk(encode())
    _sync(device)
    e2e_s = time.perf_counter() - t

    flops = 2.0 * U * n_items * (args.dim + 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    print(f"# GPU scoring bench: {U} users x {args.items} items, K={args.k}, D={args.dim}, L={L}, "
          f"{args.consumed} consumed/user, device={device} ({name}), torch {torch.__version__}, "
          f"cpus={os.cpu_count()}")
    for label, secs, goal in (("bound", bound_s, "reference (100%)"), ("topk", topk_s, ">= 50% of bound"),
                              ("end2end", e2e_s, "context (adds the GRU)")):
        print(f"{label:8s} {secs:8.2f} s  {U / secs:12,.0f} users/s  {flops / secs / 1e12:6.2f} TFLOP/s(product)  "
              f"{bound_s / secs * 100:6.1f}% of bound   goal: {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
