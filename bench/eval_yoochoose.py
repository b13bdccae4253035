"""Real-data evaluation on yoochoose-100k with the session-rec / GRU4Rec protocol.

    .venv/bin/python bench/eval_yoochoose.py --stage tune  [--set key=value ...]
    .venv/bin/python bench/eval_yoochoose.py --stage final [--set key=value ...]

Protocol (../shared/data/README.md): sessions are users; tune by training on
``train_tr`` and evaluating on ``train_valid``; the ``final`` stage trains on
``train_full`` for the number of epochs chosen while tuning (no early stopping: its
valid split, train_valid, is inside train_full) and runs the test split once. The first
item of a session is never a target, repeats stay as inputs and targets, and items
already seen are not filtered. Evaluation events with items unknown to training are
deleted and sessions left shorter than 2 dropped (counted and printed).

Windows go through stage 1's own sequence builder: the TSV rows become the features
frame that ``interest_tracker.prepare.sequences.build_windows`` takes (one event type,
``log_gap = log1p(seconds since the previous click)``, ``session_start`` on the first
click), and are written with ``interest_tracker.io.write_petastorm``. Each split is
built from its own file, so the split ranks are just labels here.

Prints Recall@20, MRR@20, Recall@10 and NDCG@10 for the model, the popularity and the
item-to-item transition baselines; in the final stage also on the 99-session subset
(387 points) for the four published peer lists. Writes ``results_<stage>.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from interest_tracker.config import apply_overrides, from_dict, to_dict  # noqa: E402
from interest_tracker.logs import setup_logging  # noqa: E402

log = logging.getLogger("eval_yoochoose")
DATA = REPO.parent / "shared" / "data" / "yoochoose-100k"
EXPECTED_POINTS = {"train_valid": 12455, "test": 10152}
PEERS = ("ar", "sr", "vsknn", "gru4rec")
REPORT = ("recall@20", "mrr@20", "recall@10", "ndcg@10")
WINDOW_LENGTH = 20

# Tuned on train_tr -> train_valid (see docs/benchmarks.md, "Stage 2: training" for the search).
DEFAULT_TRAIN = {
    "launcher": "local", "loader": "petastorm", "reader_pool": "thread",
    "model": {"cell": "gru", "hidden_size": 100, "embedding_dim": 100, "event_type_dim": 4,
              "tied_embeddings": True, "dropout": 0.0, "embedding_dropout": 0.0},
    "loss": "full", "optimizer": "adam", "learning_rate": 0.003, "warmup_steps": 0,
    "batch_size": 32, "epochs": 10, "patience": 3, "early_stopping_metric": "mrr@20",
    "log_every_steps": 200, "seed": 1, "torch_threads": 1,
}


def read_tsv(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"yoochoose-clicks-100k_{name}.txt", sep="\t",
                       dtype={"SessionId": np.int64, "ItemId": np.int64, "Time": np.float64})


def vocabulary(train: pd.DataFrame) -> dict[int, int]:
    """Item id -> index 2.. (0 = padding, 1 = unknown), in item-id order."""
    return {int(i): k + 2 for k, i in enumerate(np.sort(train["ItemId"].unique()))}


def protocol_filter(events: pd.DataFrame, vocab: dict[int, int], name: str) -> pd.DataFrame:
    known = events["ItemId"].isin(vocab.keys())
    kept = events[known]
    sizes = kept.groupby("SessionId")["ItemId"].transform("size")
    out = kept[sizes >= 2]
    log.info("%s: %d events, %d with unknown items deleted, %d more in sessions shorter than 2 dropped",
             name, len(events), int((~known).sum()), int(len(kept) - len(out)))
    return out


def features(spark, events: pd.DataFrame, vocab: dict[int, int], split_rank: int):
    """The frame stage 1's build_windows takes: one row per click, ``pos`` in time order.

    Stage 1 orders a user's events by (event_us, item_id, event_type); ``event_us`` is made
    strictly increasing within a session (ties nudged by 1 microsecond, in file order) so
    that order is exactly the session-rec order that ``pos`` and the peer lists use.
    """
    ev = events.assign(_o=np.arange(len(events))).sort_values(["SessionId", "Time", "_o"], kind="stable")
    pos = ev.groupby("SessionId").cumcount().to_numpy()
    gaps = np.log1p(np.clip(ev.groupby("SessionId")["Time"].diff().fillna(0.0).to_numpy(), 0, None))
    us = np.round(ev["Time"].to_numpy() * 1e6).astype(np.int64)
    for i in range(1, len(us)):
        if pos[i] > 0 and us[i] <= us[i - 1]:
            us[i] = us[i - 1] + 1
    pdf = pd.DataFrame({
        "user_id": ev["SessionId"].astype(str).to_numpy(), "pos": pos.astype(np.int64),
        "event_us": us, "item_id": ev["ItemId"].astype(str).to_numpy(), "event_type": "click",
        "item_index": ev["ItemId"].map(vocab).fillna(1).astype(np.int32).to_numpy(),
        "event_type_index": np.ones(len(ev), np.int32), "log_gap": gaps.astype(np.float32),
        "session_start": (pos == 0).astype(np.int32), "split_rank": np.full(len(ev), split_rank, np.int32),
    })
    schema = ("user_id string, pos long, event_us long, item_id string, event_type string, item_index int, "
              "event_type_index int, log_gap float, session_start int, split_rank int")
    return spark.createDataFrame(pdf, schema=schema)


def build_dataset(spark, root: Path, train_name: str, valid_name: str, test_name: str | None) -> dict:
    """Stage-1 windows for each split, item_stats and dataset_info.json under ``root``."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from interest_tracker.io import write_petastorm
    from interest_tracker.prepare.sequences import build_windows

    train = read_tsv(train_name)
    vocab = vocabulary(train)
    num_items = len(vocab) + 2
    splits = {"train": (train, 0, WINDOW_LENGTH), "valid": (protocol_filter(read_tsv(valid_name), vocab, valid_name),
                                                             1, WINDOW_LENGTH // 2)}
    if test_name:
        splits["test"] = (protocol_filter(read_tsv(test_name), vocab, test_name), 2, WINDOW_LENGTH // 2)
    rows, targets = {}, {}
    for name, (events, rank, stride) in splits.items():
        windows = build_windows(features(spark, events, vocab, rank), name, WINDOW_LENGTH, stride).cache()
        write_petastorm(windows, "file://" + str((root / name).resolve()), WINDOW_LENGTH, 16)
        agg = windows.selectExpr("count(*) as n", "sum(num_targets) as t").first()
        rows[name], targets[name] = int(agg["n"]), int(agg["t"])
        windows.unpersist()
    counts = np.zeros(num_items, np.int64)
    np.add.at(counts, train["ItemId"].map(vocab).to_numpy(), 1)
    (root / "item_stats").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"item_index": np.arange(num_items, dtype=np.int32), "train_count": counts}),
                   root / "item_stats" / "part-0.parquet")
    info = {"run_date": "yoochoose-100k", "window_length": WINDOW_LENGTH, "train_stride": WINDOW_LENGTH,
            "eval_stride": WINDOW_LENGTH // 2, "num_items": num_items, "num_event_types": 2,
            "event_types": ["click"], "vocab_version": 1, "valid_start": None, "test_start": None,
            "split_by": "session", "rows": rows, "targets": targets, "row_groups": {k: 16 for k in rows},
            "source": {"train": train_name, "valid": valid_name, "test": test_name}}
    info["fingerprint"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    (root / "dataset_info.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    item_ids = np.zeros(num_items, np.int64)
    for i, k in vocab.items():
        item_ids[k] = i
    np.save(root / "item_ids.npy", item_ids)
    return info


def baselines(root: Path, splits: list[str], stride: int, keep: set | None = None) -> dict:
    from interest_tracker.evaluation.baselines import PopularityBaseline, TransitionBaseline, training_pairs
    from interest_tracker.evaluation.harness import evaluate
    from interest_tracker.training.loaders import read_split

    info = json.loads((root / "dataset_info.json").read_text())
    src, dst = training_pairs(read_split(str(root / "train"), 4096,
                                         fields=("input_items", "target_items", "target_mask")))
    models = {"popularity": PopularityBaseline(info["num_items"], dst),
              "transitions": TransitionBaseline(info["num_items"], src, dst)}
    out = {}
    for split in splits:
        for name, scorer in models.items():
            t = time.perf_counter()
            res, per = evaluate(scorer, read_split(str(root / split), 512), stride=stride, keep=keep)
            out[f"{name}/{split}"] = res
            log.info("%s on %s: %s (%.1fs)", name, split, fmt(res), time.perf_counter() - t)
    return out


def fmt(m: dict) -> str:
    return " ".join(f"{k}={m[k]:.4f}" for k in REPORT) + f" points={m['points']}"


def table(results: dict) -> str:
    lines = ["| model | split | Recall@20 | MRR@20 | Recall@10 | NDCG@10 | points |", "|---|---|---|---|---|---|---|"]
    for key, m in results.items():
        name, split = key.split("/", 1)
        lines.append(f"| {name} | {split} | " + " | ".join(f"{m[k]:.4f}" for k in REPORT) + f" | {m['points']} |")
    return "\n".join(lines)


def run(stage: str, out: Path, overrides: list[str], rebuild: bool = False) -> dict:
    from interest_tracker.evaluation.harness import evaluate, model_scorer
    from interest_tracker.evaluation.metrics import DEFAULT_KS
    from interest_tracker.evaluation.peers import load_peer_lists, score_peer_lists, session_items
    from interest_tracker.model import load_model
    from interest_tracker.spark import get_session
    from interest_tracker.training.config import TrainConfig
    from interest_tracker.training.launchers import launch
    from interest_tracker.training.loaders import read_split

    root = out / f"sequences_{stage}"
    spark = get_session("eval-yoochoose", master="local[2]")
    t0 = time.perf_counter()
    if (root / "dataset_info.json").exists() and not rebuild:
        info = json.loads((root / "dataset_info.json").read_text())
        log.info("reusing the windows in %s (pass --rebuild to build them again)", root)
    elif stage == "tune":
        info = build_dataset(spark, root, "train_tr", "train_valid", None)
    else:
        info = build_dataset(spark, root, "train_full", "train_valid", "test")
    log.info("windows built through stage 1 in %.1fs: rows=%s targets=%s", time.perf_counter() - t0,
             info["rows"], info["targets"])
    eval_split, eval_file = ("valid", "train_valid") if stage == "tune" else ("test", "test")
    if info["targets"][eval_split] != EXPECTED_POINTS[eval_file]:
        raise RuntimeError(f"{eval_file}: {info['targets'][eval_split]} prediction points, the protocol has "
                           f"{EXPECTED_POINTS[eval_file]}: the windows do not follow the protocol")

    base = dict(DEFAULT_TRAIN, dataset=str(root), artifact_root=str(out / "artifacts"), model_version=stage,
                resume=False, evaluate_test=(stage == "final"))
    if stage == "final":
        base.update(keep_best=False, patience=10**6)  # epochs chosen while tuning; valid is inside train_full
    cfg = from_dict(TrainConfig, apply_overrides(base, overrides))
    t = time.perf_counter()
    result = launch(cfg, spark)
    train_s = time.perf_counter() - t
    m = result["metrics"]
    hist = m["history"]
    eps = [h["events_per_s"] for h in hist]
    results = {f"model/{eval_split}": m[eval_split]}
    results.update(baselines(root, [eval_split], info["eval_stride"]))
    report = {"stage": stage, "train_config": to_dict(cfg), "train_seconds": train_s,
              "train_seconds_in_epochs": sum(h["seconds"] for h in hist), "epochs_run": len(hist),
              "best_epoch": m["best_epoch"], "events_per_s_median": float(np.median(eps)),
              "valid_per_epoch": [h["valid"] for h in hist], "train_loss_per_epoch": [h["train_loss"] for h in hist],
              "results": results, "artifact": result["artifact"]}
    if stage == "final":
        sessions = session_items(read_tsv("test"))
        subset_results = {}
        keys = None
        for peer in PEERS:
            res, per = score_peer_lists(load_peer_lists(DATA / "peer-recommendations" / f"{peer}.csv"), sessions,
                                        DEFAULT_KS)
            keys = set(per) if keys is None else keys
            if set(per) != keys:
                raise RuntimeError(f"peer {peer} covers different points than {PEERS[0]}")
            subset_results[f"{peer}/test-99"] = res
        model = load_model(result["artifact"])
        res, _ = evaluate(model_scorer(model), read_split(str(root / "test"), 512), stride=info["eval_stride"],
                          keep=keys)
        subset_results["model/test-99"] = res
        for k, v in baselines(root, ["test"], info["eval_stride"], keep=keys).items():
            subset_results[k.replace("/test", "/test-99")] = v
        report["results_99_sessions"] = subset_results
    (out / f"results_{stage}.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"\n## yoochoose-100k, stage {stage}: trained {len(hist)} epochs in {report['train_seconds_in_epochs']:.1f}s "
          f"(median {report['events_per_s_median']:.0f} events/s), wall {train_s:.1f}s with evaluation")
    print(table(results))
    if "results_99_sessions" in report:
        print("\n### 99-session subset (peer lists' points)")
        print(table(report["results_99_sessions"]))
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=["tune", "final"], required=True)
    p.add_argument("--out", default="/tmp/yoochoose-eval", help="scratch directory (outside the repo)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the windows even if --out has them")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig override")
    args = p.parse_args()
    setup_logging("INFO")
    run(args.stage, Path(args.out), args.set, args.rebuild)
    return 0


if __name__ == "__main__":
    sys.exit(main())
