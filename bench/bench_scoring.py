"""Scoring throughput: users/s of the stage-3 predict function in Spark local mode, side by
side (same run) with the best plain numpy does for the same work on the same cores.

    .venv/bin/python bench/bench_scoring.py                     # 100k users x 100k items, K=20, local[2]
    .venv/bin/python bench/bench_scoring.py --users 20000       # quicker
    .venv/bin/python bench/bench_scoring.py --sweep-bound --users 4096   # pick the bound's block sizes
    git show REV:lib/interest_tracker/scoring/topk.py > /tmp/topk_before.py
    .venv/bin/python bench/bench_scoring.py --topk-before /tmp/topk_before.py --users 2048   # a topk.py change, side by side
    .venv/bin/python bench/bench_scoring.py --product-check   # the block product: numpy kernels vs torch

Figures, one run, same shapes (users x (D+1) @ (D+1) x items, float32, K=20):
  bound      plain numpy, the same work as the job's top-K: blocked matmul into ONE
             preallocated (user_block x item_block) buffer (``np.matmul(..., out=)``),
             the user's consumed items set to -inf, a top-K per block
             (``np.argpartition``), the per-block candidates merged per user and sorted.
             Item matrix padded exactly as the job pads it (``topk.augmented_items``).
             numpy's OpenBLAS runs the best kernels this CPU has (OPENBLAS_CORETYPE, see
             best_openblas_core: on a VM with a generic CPU model it would pick SSE3 ones).
             Threads: the same total as the Spark side. local[2] runs 2 Python workers,
             each with torch (MKL) at 1 thread (ExecutorConfig.torch_threads) and
             OMP_NUM_THREADS=1 (PySpark sets it in the worker; the bench reads it), so the bound runs in
             2 processes x 1 BLAS thread, each on half the users; its time is from a
             common start barrier to the last process's end. The bench prints the
             threads each side really has (``threads:`` lines) and CPU/wall per worker.
             Run twice (before and after the Spark runs) to bracket the load; the
             reference is the faster one (the stricter bound).
  bound-grouped  the same with the job's own selection trick in numpy (max per group of
             64 items, top-K groups, top-K over their candidates); printed for context.
  topk       the scoring UDF with vectors given (blocked top-K + consumed exclusion +
             item id mapping + Arrow), via DataFrame.mapInPandas -> noop sink.
             Goal: >= 50% of bound (the same work as the bound plus Spark's).
  end2end    the same UDF encoding each user's latest L events with the GRU first: the
             job's full work for a changed user. Compared with the same bound.
The bound does not map indexes to string ids, build pandas frames or cross Arrow; the job
does, and the breakdown shows what that costs.

Breakdown (``--no-breakdown`` turns it off): the bench wraps the UDF (bench code only; the
production predict function has no timers) and, inside each Python worker, wraps
``predict.worker_model``, ``predict.encode``, ``topk.blocked_topk`` and the matmul callback
of ``topk.select_topk``. Per worker it sums: input (read a batch from the JVM + Arrow ->
pandas), the model build (once per worker and run), GRU encode,
matmul, top-K (blocked_topk minus its matmuls: masking, selection, merge, sort), glue
(the rest of score_frame: vectors, consumed ids -> indexes, indexes -> string ids, the
output frame) and output (pandas -> Arrow + write to the JVM, which runs the noop sink).
Prints seconds summed over workers and each worker's CPU/wall. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time

import numpy as np

log = logging.getLogger("bench_scoring")

GROUP = 64  # the job's group size (topk.GROUP); the bound-grouped variant uses the same


# ---------------------------------------------------------------------------------------
# threads really in use


def blas_threads() -> dict:
    """Threads of the BLAS libraries loaded in this process (numpy's OpenBLAS, torch's MKL)."""
    info = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line and line.rstrip().endswith(".so")}
    except OSError:
        libs = set()
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ("openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, sym):
                info["numpy_openblas"] = getattr(lib, sym)()
                break
        for sym in ("openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, sym):
                fn = getattr(lib, sym)
                fn.restype = ctypes.c_char_p
                info["openblas_core"] = fn().decode()
                break
    if "torch" in sys.modules:
        import torch

        info["torch_intra_op"] = torch.get_num_threads()
    return info


# ---------------------------------------------------------------------------------------
# the bound


def numpy_topk_users(q: np.ndarray, items_t: np.ndarray, k: int, consumed: np.ndarray | None,
                     item_block: int, buf: np.ndarray, select: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (indexes, scores) per row of q (B, D+1) against items_t (D+1, N), best first.

    One product per item block into the preallocated ``buf`` (B, item_block); consumed
    items (consumed[r] lists row r's item indexes) score -inf; each block's top-k goes into
    a per-user candidate list, merged once at the end."""
    b, n = q.shape[0], items_t.shape[1]
    nblocks = -(-n // item_block)
    cand_v = np.empty((b, nblocks * k), dtype=buf.dtype)
    cand_i = np.empty((b, nblocks * k), dtype=np.int64)
    if consumed is not None:
        rows_c = np.repeat(np.arange(b), consumed.shape[1])
        cols_c = consumed.ravel()
    for j, b0 in enumerate(range(0, n, item_block)):
        b1 = min(b0 + item_block, n)
        w = b1 - b0
        s = buf[:, :w]
        np.matmul(q, items_t[:, b0:b1], out=s)
        if consumed is not None:
            m = (cols_c >= b0) & (cols_c < b1)
            s[rows_c[m], cols_c[m] - b0] = -np.inf
        kk = min(k, w)
        if select == "argpartition":
            part = np.argpartition(s, w - kk, axis=1)[:, w - kk:]
        else:  # grouped: the job's two-stage selection, in numpy (w is a multiple of GROUP)
            ng = w // GROUP
            kg = min(k, ng)
            g = s.reshape(b, ng, GROUP).max(axis=2)
            gi = np.argpartition(g, ng - kg, axis=1)[:, ng - kg:]
            cols = (gi[:, :, None] * GROUP + np.arange(GROUP)).reshape(b, kg * GROUP)
            cv = np.take_along_axis(s, cols, 1)
            kk = min(k, kg * GROUP)
            p = np.argpartition(cv, cv.shape[1] - kk, axis=1)[:, cv.shape[1] - kk:]
            part = np.take_along_axis(cols, p, 1)
        c0 = j * k
        cand_i[:, c0:c0 + kk] = part + b0
        cand_v[:, c0:c0 + kk] = np.take_along_axis(s, part, 1)
        if kk < k:
            cand_v[:, c0 + kk:c0 + k] = -np.inf
            cand_i[:, c0 + kk:c0 + k] = -1
    p = np.argpartition(cand_v, cand_v.shape[1] - k, axis=1)[:, cand_v.shape[1] - k:]
    v = np.take_along_axis(cand_v, p, 1)
    i = np.take_along_axis(cand_i, p, 1)
    order = np.argsort(-v, axis=1, kind="stable")
    return np.take_along_axis(i, order, 1), np.take_along_axis(v, order, 1)


def _bound_proc(items_aug: np.ndarray, users: int, n_consumed: int, k: int, user_block: int,
                item_block: int, select: str, seed: int, barrier, queue) -> None:
    """One bound process: its share of the users, timed from the common barrier."""
    rng = np.random.default_rng(seed)
    dim1 = items_aug.shape[1]
    items_t = items_aug.T  # (D+1, N) view of the (N, D+1) matrix: each block is a transposed row slice
    q = np.empty((users, dim1), dtype=items_aug.dtype)
    q[:, :-1] = (rng.integers(-1000, 1001, (users, dim1 - 1)) / 10000.0).astype(items_aug.dtype)
    q[:, -1] = 1.0  # the bias coordinate
    num_real = items_aug.shape[0]
    consumed = rng.integers(2, num_real, (users, n_consumed)) if n_consumed else None
    buf = np.empty((user_block, item_block), dtype=items_aug.dtype)
    out_i = np.empty((users, k), dtype=np.int64)
    out_v = np.empty((users, k), dtype=items_aug.dtype)
    threads = blas_threads()
    barrier.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for u0 in range(0, users, user_block):
        u1 = min(u0 + user_block, users)
        out_i[u0:u1], out_v[u0:u1] = numpy_topk_users(
            q[u0:u1], items_t, k, None if consumed is None else consumed[u0:u1], item_block,
            buf[: u1 - u0], select)
    t1, c1 = time.perf_counter(), time.process_time()
    queue.put({"start": t0, "end": t1, "cpu": c1 - c0, "threads": threads, "checksum": float(out_v[:, 0].sum())})


def best_openblas_core() -> str | None:
    """The OpenBLAS kernel set this CPU supports. numpy's OpenBLAS (DYNAMIC_ARCH) picks its
    kernels from the CPU model number; a VM that reports a generic model (this one:
    "Intel(R) Xeon(R) Processor") gets 'Prescott' (SSE3) kernels, 3-4x slower at sgemm than
    the AVX-512 ones it supports. OPENBLAS_CORETYPE overrides the pick."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return None
    return "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None


def numpy_bound(items_aug: np.ndarray, users: int, n_consumed: int, k: int, user_block: int, item_block: int,
                procs: int, threads: int, select: str = "argpartition", coretype: str | None = None) -> dict:
    """Wall seconds of the bound over ``users``, in ``procs`` processes x ``threads`` BLAS threads.

    Processes are spawned with the BLAS thread variables (and OPENBLAS_CORETYPE) set, so
    numpy's OpenBLAS starts with that many threads and those kernels; the bench prints what
    each process really had."""
    ctx = mp.get_context("spawn")
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
    saved = {key: os.environ.get(key) for key in keys}
    for key in keys[:3]:
        os.environ[key] = str(threads)
    if coretype:
        os.environ["OPENBLAS_CORETYPE"] = coretype
    try:
        barrier, queue = ctx.Barrier(procs), ctx.Queue()
        shares = [users // procs + (1 if i < users % procs else 0) for i in range(procs)]
        ps = [ctx.Process(target=_bound_proc, args=(items_aug, shares[i], n_consumed, k, user_block, item_block,
                                                    select, 1000 + i, barrier, queue)) for i in range(procs)]
        for p in ps:
            p.start()
        results = [queue.get() for _ in ps]
        for p in ps:
            p.join()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"seconds": wall, "procs": procs, "threads": threads, "select": select,
            "cpu": sum(r["cpu"] for r in results),
            "cpu_per_wall": [round(r["cpu"] / (r["end"] - r["start"]), 2) for r in results],
            "blas": results[0]["threads"]}


def tree_cpu() -> dict:
    """CPU seconds (user + system, reaped children included) of each process under this one:
    the Spark JVM, the PySpark daemon and its Python workers."""
    import psutil

    out = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return out


# ---------------------------------------------------------------------------------------
# the breakdown (bench only: wraps production functions inside each Python worker)


def _install_timers() -> dict:
    """Wrap predict.encode, topk.blocked_topk and select_topk's matmul callback in this worker."""
    from interest_tracker.scoring import predict as P
    from interest_tracker.scoring import topk as TK

    timers = getattr(TK, "_bench_timers", None)
    if timers is not None:
        return timers
    timers = {"encode": 0.0, "topk_total": 0.0, "matmul": 0.0, "model": 0.0}
    enc, btk, sel, wmod = P.encode, TK.blocked_topk, TK.select_topk, P.worker_model

    def timed(fn, key):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timers[key] += time.perf_counter() - t

        return wrapper

    worker_model, encode, blocked_topk = timed(wmod, "model"), timed(enc, "encode"), timed(btk, "topk_total")

    def select_topk(score_block, *a, **kw):
        def timed_block(b0, b1):
            t = time.perf_counter()
            s = score_block(b0, b1)
            timers["matmul"] += time.perf_counter() - t
            return s

        return sel(timed_block, *a, **kw)

    P.encode, TK.blocked_topk, TK.select_topk, P.worker_model = encode, blocked_topk, select_topk, worker_model
    TK._bench_timers = timers
    return timers


def timed_score_fn(score_fn, out_dir: str):
    """``score_fn`` (from make_score_fn) with per-task timings written to out_dir as JSON."""

    def run(batches):
        timers = _install_timers()
        before = dict(timers)
        t = {"input": 0.0, "output": 0.0, "udf": 0.0, "rows": 0}
        wall0, cpu0 = time.perf_counter(), time.process_time()

        def inputs():
            it = iter(batches)
            while True:
                s = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    t["input"] += time.perf_counter() - s
                    return
                t["input"] += time.perf_counter() - s
                t["rows"] += len(frame)
                yield frame

        gen = score_fn(inputs())
        while True:
            s = time.perf_counter()
            try:
                out = next(gen)
            except StopIteration:
                t["udf"] += time.perf_counter() - s
                break
            t["udf"] += time.perf_counter() - s
            s = time.perf_counter()
            yield out
            t["output"] += time.perf_counter() - s
        rec = {key: timers[key] - before[key] for key in timers}
        rec.update(t, pid=os.getpid(), wall=time.perf_counter() - wall0, cpu=time.process_time() - cpu0,
                   threads=blas_threads())
        with open(os.path.join(out_dir, f"{os.getpid()}-{time.time_ns()}.json"), "w") as f:
            json.dump(rec, f)

    return run


def read_breakdown(out_dir: str) -> dict:
    recs = [json.load(open(p)) for p in glob.glob(os.path.join(out_dir, "*.json"))]
    if not recs:
        return {}
    tot = {k: sum(r[k] for r in recs) for k in ("input", "output", "udf", "encode", "topk_total", "matmul",
                                                 "model", "wall", "cpu", "rows")}
    compute = tot["udf"] - tot["input"]
    parts = {
        "arrow in (JVM -> pandas)": tot["input"],
        "GRU encode": tot["encode"],
        "matmul": tot["matmul"],
        "top-K (mask, select, merge, sort)": tot["topk_total"] - tot["matmul"],
        "model build (once per worker and run)": tot["model"],
        "glue (vectors, ids <-> indexes, frame)": compute - tot["model"] - tot["encode"] - tot["topk_total"],
        "arrow out (pandas -> JVM, noop write)": tot["output"],
    }
    per_pid: dict = {}
    for r in recs:
        d = per_pid.setdefault(r["pid"], {"wall": 0.0, "cpu": 0.0, "tasks": 0})
        d["wall"] += r["wall"]
        d["cpu"] += r["cpu"]
        d["tasks"] += 1
    return {"parts": parts, "task_wall": tot["wall"], "rows": tot["rows"], "workers": per_pid,
            "threads": sorted({json.dumps(r["threads"], sort_keys=True) for r in recs})}


def print_breakdown(name: str, bd: dict, job_s: float) -> None:
    if not bd:
        print(f"  {name}: no breakdown records")
        return
    tw = bd["task_wall"]
    print(f"  {name} breakdown: {bd['rows']} rows, {len(bd['workers'])} Python workers, "
          f"task time summed over workers {tw:.1f} s (= {tw / job_s:.2f} x the job's wall {job_s:.1f} s)")
    for part, secs in bd["parts"].items():
        print(f"    {part:40s} {secs:8.1f} s  {100 * secs / tw:5.1f}%")
    other = tw - sum(bd["parts"].values())
    print(f"    {'(task start/end, unaccounted)':40s} {other:8.1f} s  {100 * other / tw:5.1f}%")
    for pid, d in sorted(bd["workers"].items()):
        print(f"    worker pid {pid}: {d['tasks']} tasks, {d['wall']:.1f} s wall, CPU/wall {d['cpu'] / d['wall']:.2f}")
    for th in bd["threads"]:
        print(f"    threads in worker: {th}")


def _numpy_product_rate(items_aug: np.ndarray, item_block: int, reps: int, queue) -> None:
    """numpy's (256 x D+1) @ (D+1 x item_block) products into one out= buffer: GFLOP per CPU second."""
    q = np.random.default_rng(0).standard_normal((256, items_aug.shape[1])).astype(np.float32)
    buf = np.empty((256, item_block), dtype=np.float32)
    starts = range(0, items_aug.shape[0] - item_block + 1, item_block)
    c = time.process_time()
    for _ in range(reps):
        for b0 in starts:
            np.matmul(q, items_aug[b0:b0 + item_block].T, out=buf)
    queue.put((blas_threads().get("openblas_core"),
               2.0 * 256 * items_aug.shape[1] * item_block * len(starts) * reps / (time.process_time() - c) / 1e9))


def product_check(items_aug: np.ndarray, item_block: int, reps: int = 3) -> None:
    """GFLOP/s per CPU second of the block product, 1 thread: numpy with its own OpenBLAS
    kernel pick and with the best one for this CPU, torch fresh output and torch out=."""
    import torch

    ctx = mp.get_context("spawn")
    for coretype in (None, best_openblas_core()):
        saved = {key: os.environ.get(key) for key in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")}
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.environ.pop("OPENBLAS_CORETYPE", None)
        if coretype:
            os.environ["OPENBLAS_CORETYPE"] = coretype
        try:
            queue = ctx.Queue()
            proc = ctx.Process(target=_numpy_product_rate, args=(items_aug, item_block, reps, queue))
            proc.start()
            core, rate = queue.get()
            proc.join()
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        print(f"  numpy OPENBLAS_CORETYPE={coretype or '(unset)'} -> kernels {core}: {rate:6.1f} GFLOP/CPU-s")
    torch.set_num_threads(1)
    t_items = torch.from_numpy(items_aug)
    v = torch.from_numpy(np.random.default_rng(0).standard_normal((256, items_aug.shape[1])).astype(np.float32))
    tile = torch.empty((256, item_block))
    starts = range(0, items_aug.shape[0] - item_block + 1, item_block)
    flop = 2.0 * 256 * items_aug.shape[1] * item_block * len(starts) * reps
    for name, fn in (("torch v @ block.T (fresh)", lambda b0: v @ t_items[b0:b0 + item_block].T),
                     ("torch mm(..., out=tile)", lambda b0: torch.mm(v, t_items[b0:b0 + item_block].T, out=tile))):
        c = time.process_time()
        for _ in range(reps):
            for b0 in starts:
                fn(b0)
        print(f"  {name:33s}: {flop / (time.process_time() - c) / 1e9:6.1f} GFLOP/CPU-s")


def compare_topk(before_path: str, items_aug_t, users: int, n_consumed: int, k: int, batch: int, item_block: int,
                 reps: int) -> None:
    """Another version of topk.py (a file) against the installed one: blocked_topk CPU seconds,
    1 torch thread, one process, alternating reps; and whether the outputs are bitwise equal."""
    import importlib.util

    import torch

    from interest_tracker.scoring import topk as after

    spec = importlib.util.spec_from_file_location("topk_before", before_path)
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    dim = items_aug_t.shape[1] - 1
    vec = torch.from_numpy((rng.integers(-1000, 1001, (users, dim)) / 1e4).astype(np.float32))
    consumed = [rng.integers(2, items_aug_t.shape[0] - GROUP, n_consumed) for _ in range(users)]
    res, cpu = {}, {"before": [], "after": []}
    for _ in range(reps):
        for name, mod in (("before", before), ("after", after)):
            c = time.process_time()
            res[name] = mod.blocked_topk(vec, items_aug_t, k, consumed, batch, item_block)
            cpu[name].append(time.process_time() - c)
    same = all(np.array_equal(a, b) for a, b in zip(res["before"], res["after"]))
    b, a = min(cpu["before"]), min(cpu["after"])
    print(f"# blocked_topk {users} users x {items_aug_t.shape[0]} item rows, K={k}, {n_consumed} consumed, batch {batch}, "
          f"item block {item_block}, 1 torch thread, load avg {os.getloadavg()[0]:.1f}")
    print(f"  CPU-s per rep: before {['%.2f' % x for x in cpu['before']]}  after {['%.2f' % x for x in cpu['after']]}")
    print(f"  best: before {users / b:.0f} users/CPU-s, after {users / a:.0f} users/CPU-s, after/before {b / a:.2f}x; "
          f"outputs bitwise identical: {same}")


# ---------------------------------------------------------------------------------------


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
    p.add_argument("--bound-user-block", type=int, default=256)
    p.add_argument("--bound-item-block", type=int, default=4096)
    p.add_argument("--bound-grouped-item-block", type=int, default=16384)
    p.add_argument("--openblas-coretype", default="auto",
                   help="OPENBLAS_CORETYPE of the bound: auto (the best this CPU supports), none (numpy's own pick), or a name")
    p.add_argument("--bound-procs", type=int, default=2, help="processes of the bound (Spark: Python workers)")
    p.add_argument("--bound-threads", type=int, default=1, help="BLAS threads per bound process (Spark: torch_threads)")
    p.add_argument("--sweep-bound", action="store_true", help="time the bound over block sizes and exit")
    p.add_argument("--sweep-select", default="argpartition,grouped")
    p.add_argument("--sweep-user-blocks", default="128,256,512")
    p.add_argument("--sweep-item-blocks", default="2048,4096,8192,16384")
    p.add_argument("--topk-before", metavar="FILE", help="compare this topk.py with the installed one and exit")
    p.add_argument("--reps", type=int, default=3, help="repetitions of --topk-before")
    p.add_argument("--product-check", action="store_true",
                   help="GFLOP/s of the block product: numpy's kernel pick vs this CPU's best, torch; and exit")
    p.add_argument("--skip-end2end", action="store_true")
    p.add_argument("--skip-grouped", action="store_true", help="do not run the bound-grouped context figure")
    p.add_argument("--no-breakdown", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    import torch

    from interest_tracker.model import InterestModel, ModelConfig
    from interest_tracker.model.interest_model import PAD_INDEX, UNKNOWN_INDEX
    from interest_tracker.scoring.topk import augmented_items

    torch.manual_seed(0)
    num_items = args.items + 2
    model = InterestModel(ModelConfig(num_items=num_items, hidden_size=args.dim, embedding_dim=args.dim)).eval()
    excluded = np.zeros(num_items, dtype=bool)
    excluded[[PAD_INDEX, UNKNOWN_INDEX]] = True
    with torch.no_grad():  # the job's own item matrix: float32, bias column, padded to whole groups
        items_aug = augmented_items(model.item_vectors(), model.output_bias, excluded).numpy()
    print(f"# scoring bench: {args.users} users x {args.items} items, K={args.k}, D={args.dim}, L={args.window}, "
          f"{args.consumed} consumed/user, master={args.master}, cpus={os.cpu_count()}, "
          f"items_aug {items_aug.shape} {items_aug.dtype}, load avg at start={os.getloadavg()[0]:.1f}", flush=True)

    if args.product_check:
        print(f"# block product 256 x {items_aug.shape[1]} @ {items_aug.shape[1]} x {args.item_block}, float32, "
              f"1 thread, load avg {os.getloadavg()[0]:.1f}")
        product_check(items_aug, args.item_block)
        return 0
    if args.topk_before:
        compare_topk(args.topk_before, torch.from_numpy(items_aug), args.users, args.consumed, args.k,
                     args.score_batch, args.item_block, args.reps)
        return 0

    coretype = {"auto": best_openblas_core(), "none": None}.get(args.openblas_coretype, args.openblas_coretype)

    def bound(select: str, user_block=None, item_block=None, users=None) -> dict:
        r = numpy_bound(items_aug, users or args.users, args.consumed, args.k, user_block or args.bound_user_block,
                        item_block or args.bound_item_block, args.bound_procs, args.bound_threads, select, coretype)
        r["load"] = os.getloadavg()[0]
        log.info("bound %s: %.1f s (%s)", select, r["seconds"], r)
        return r

    if args.sweep_bound:
        for select in args.sweep_select.split(","):
            for ub in map(int, args.sweep_user_blocks.split(",")):
                for ib in map(int, args.sweep_item_blocks.split(",")):
                    r = bound(select, ub, ib)
                    print(f"sweep {select:12s} user_block={ub:4d} item_block={ib:6d}: {r['seconds']:7.2f} s "
                          f"{args.users / r['seconds']:9.0f} users/s  {args.users / r['cpu']:6.0f} users/CPU-s  "
                          f"cpu/wall {r['cpu_per_wall']}  "
                          f"load {r['load']:.1f}", flush=True)
        return 0

    bounds = [bound("argpartition")]
    if not args.skip_grouped:
        bounds.append(bound("grouped", item_block=args.bound_grouped_item_block))

    import io as _io

    from pyspark.sql import functions as F

    from interest_tracker.config import to_dict
    from interest_tracker.scoring.config import ExecutorConfig
    from interest_tracker.scoring.predict import OUTPUT_SCHEMA, ScoringPayload, make_score_fn
    from interest_tracker.spark import get_session

    buf = _io.BytesIO()
    torch.save({k: v.detach() for k, v in model.state_dict().items()}, buf)
    item_ids = tuple([None, None] + [f"item-{i}" for i in range(args.items)])
    payload_obj = ScoringPayload("bench", json.dumps(to_dict(model.config)), buf.getvalue(), item_ids, None)

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

    breakdowns, cpus = {}, {}

    def run(name, df) -> float:
        fn = make_score_fn(payload, L, args.k, True, executor)
        out_dir = tempfile.mkdtemp(prefix=f"bench_scoring_{name}_")
        if not args.no_breakdown:
            fn = timed_score_fn(fn, out_dir)
        cpu0 = tree_cpu()
        t = time.perf_counter()
        df.mapInPandas(fn, OUTPUT_SCHEMA).write.format("noop").mode("overwrite").save()
        secs = time.perf_counter() - t
        cpu1 = tree_cpu()
        cpus[name] = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
        breakdowns[name] = (read_breakdown(out_dir), os.getloadavg()[0])
        log.info("%s: %.1f s", name, secs)
        return secs

    # warm-up on every partition, so each Python worker has started and imported torch. Each run
    # still builds the model once per worker (the cache key holds a per-run token, as in the job).
    run("warmup", with_vectors.where(F.abs(F.hash("user_id")) % 1000 == 0))
    topk_s = run("topk", with_vectors)
    end2end_s = None if args.skip_end2end else run("end2end", no_vectors)
    spark.stop()

    bounds.append(bound("argpartition"))  # again after the Spark runs: brackets the load
    ref = min((b for b in bounds if b["select"] == "argpartition"), key=lambda b: b["seconds"])
    ref_s = ref["seconds"]
    flops = 2.0 * args.users * items_aug.shape[0] * items_aug.shape[1]

    def line(name, secs, goal, cpu=None):
        ups = args.users / secs
        cpu_txt = f"{cpu:7.1f} CPU-s ({100 * ref['cpu'] / cpu:5.1f}% by CPU)" if cpu else " " * 27
        return (f"{name:14s} {secs:8.1f} s  {ups:9.0f} users/s  {flops / secs / 1e9:6.1f} GFLOP/s(product)  "
                f"{(ref_s / secs) * 100:6.1f}% of bound  {cpu_txt}   {goal}")

    print(f"# load avg at end={os.getloadavg()[0]:.1f}")
    print(f"# bound: numpy {np.__version__}, {ref['procs']} processes x {ref['threads']} BLAS thread(s), "
          f"user block {args.bound_user_block}, item block {args.bound_item_block}, one out= buffer, "
          f"consumed -inf, top-K per block, merged and sorted per user")
    for b in bounds:
        print(f"#   {b['select']:12s} {b['seconds']:7.1f} s  load {b['load']:.1f}  CPU/wall per process "
              f"{b['cpu_per_wall']}  threads {b['blas']}")
    print(line("bound", ref_s, "reference (100%): the faster argpartition run", ref["cpu"]))
    for b in bounds:
        if b["select"] == "grouped":
            print(line("bound-grouped", b["seconds"], "context: the job's group trick in numpy", b["cpu"]))
    print(line("topk", topk_s, "goal: >= 50% of bound", cpus["topk"]))
    if end2end_s is not None:
        print(line("end2end", end2end_s, "the job's full work (GRU encode + top-K); goal: >= 50% of bound",
                   cpus["end2end"]))
    print("# CPU-s: the bound's processes; for Spark, every process under this one (JVM, daemon, workers).")
    print("# '% by CPU' = bound CPU-s / run CPU-s: the same ratio with the other engineers' load taken out.")
    if not args.no_breakdown:
        print_breakdown("topk", breakdowns["topk"][0], topk_s)
        if end2end_s is not None:
            print_breakdown("end2end", breakdowns["end2end"][0], end2end_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
