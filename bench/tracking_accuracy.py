"""Tracking accuracy: how fast recommendations follow a known interest switch.

    .venv/bin/python bench/tracking_accuracy.py            # defaults below, about 8 min on a busy 2-core machine

Synthetic users (lib/interest_tracker/synthetic) move their interest from one category
to another at a known event. The model is trained (training.launchers, local
launcher) on 80% of the users; on the other 20% we replay each user's history and,
after n = 0, 1, 2, ... events of the new interest, score the user exactly as the
scoring stage does (features from prepare.features.with_sequence_features, the latest L
events, predict.encode, blocked top-K with consumed items excluded) and measure the
share of the top-K items that belong to the new category. The popularity baseline
recommends the K most frequent training items, minus the user's consumed items.

Prints one line per n and the averages; nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("tracking_accuracy")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--categories", type=int, default=10)
    p.add_argument("--events-per-user", type=float, default=60.0)
    p.add_argument("--window", type=int, default=20, help="L")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--max-since", type=int, default=15)
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    import torch
    from pyspark.sql import functions as F

    from interest_tracker.model import load_model
    from interest_tracker.prepare.features import with_sequence_features
    from interest_tracker.scoring.predict import encode
    from interest_tracker.scoring.topk import augmented_items, blocked_topk
    from interest_tracker.spark import get_session
    from interest_tracker.synthetic.config import SyntheticConfig
    from interest_tracker.synthetic.generator import generate
    from interest_tracker.training.config import TrainConfig
    from interest_tracker.training.launchers import launch
    from interest_tracker.training.window_datasets import build_windows, write_dataset

    work = Path(args.workdir or tempfile.mkdtemp(prefix="tracking-"))
    t0 = time.perf_counter()
    spark = get_session("tracking-accuracy", conf={"spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("WARN")
    cfg = SyntheticConfig(num_users=args.users, num_items=args.items, num_categories=args.categories,
                          events_per_user=args.events_per_user, min_events_per_user=24, max_events_per_user=300,
                          seed=args.seed, end_time="2026-11-28T00:00:00+00:00")
    data = generate(spark, cfg, num_partitions=4)
    event_types = tuple(cfg.event_type_weights)
    truth = data.event_truth
    clean = truth.select(
        F.concat_ws(":", "user_id", F.col("event_index").cast("string")).alias("event_id"), "user_id", "item_id",
        "event_type", "event_time", F.concat_ws(":", "user_id", F.col("session_number").cast("string")).alias("session_id"),
        "event_index", "interest_category")
    is_eval = (F.abs(F.hash("user_id")) % 1000) < int(args.holdout * 1000)
    train_items = clean.where(~is_eval).select("item_id").distinct().orderBy("item_id")
    vocab_pd = train_items.toPandas()
    vocab_pd["item_index"] = np.arange(2, len(vocab_pd) + 2, dtype=np.int32)
    vocab = spark.createDataFrame(vocab_pd, "item_id string, item_index int")
    num_items = len(vocab_pd) + 2
    feats = (with_sequence_features(clean, vocab, event_types)
             .withColumn("is_eval", is_eval)
             .withColumn("epoch_s", F.col("event_time").cast("double")).toPandas())
    feats = feats.sort_values(["user_id", "pos"]).reset_index(drop=True)
    items_pd = data.items.select("item_id", "category").toPandas()
    gt = data.ground_truth.toPandas()
    log.info("generated %d events of %d users (%d held out), %d items in the vocabulary, %.0f s",
             len(feats), feats.user_id.nunique(), feats[feats.is_eval].user_id.nunique(), num_items - 2,
             time.perf_counter() - t0)

    # ---- train with the training stage's own dataset writer and local launcher
    tr = feats[~feats.is_eval]
    users = np.array(sorted(tr.user_id.unique()))
    valid_users = set(users[:: 10])
    win_in = tr.rename(columns={"event_time": "_t"}).assign(event_time=tr.epoch_s)[
        ["user_id", "item_index", "event_type_index", "event_time", "session_start"]]
    L = args.window
    splits = {"train": build_windows(win_in[~win_in.user_id.isin(valid_users)], L, L),
              "valid": build_windows(win_in[win_in.user_id.isin(valid_users)], L, L // 2)}
    splits["test"] = splits["valid"]
    dataset = work / "sequences"
    write_dataset(spark, dataset, splits, num_items=num_items, event_types=event_types, window_length=L,
                  train_stride=L, eval_stride=L // 2, files_per_split=4)
    tcfg = TrainConfig(dataset=str(dataset), artifact_root=str(work / "artifacts"), model_version="tracking",
                       launcher="local", loader="pyarrow", epochs=args.epochs, batch_size=128,
                       learning_rate=0.005, warmup_steps=20, patience=2, evaluate_test=False,
                       model={"hidden_size": args.dim, "embedding_dim": args.dim})
    t1 = time.perf_counter()
    result = launch(tcfg)
    train_s = time.perf_counter() - t1
    model = load_model(result["artifact"]).eval()
    torch.set_num_threads(2)
    log.info("trained in %.0f s: best epoch %s, valid %s", train_s, result["metrics"]["best_epoch"],
             json.dumps(result["metrics"]["valid"]))

    # ---- replay held-out users around their switch
    cat_of = dict(zip(items_pd.item_id, items_pd.category))
    index_cat = np.full(num_items, -1, dtype=np.int64)
    for item, idx in zip(vocab_pd.item_id, vocab_pd.item_index):
        index_cat[idx] = cat_of[item]
    counts = np.bincount(tr.item_index.to_numpy(), minlength=num_items).astype(np.float64)
    counts[:2] = -1
    popular = np.argsort(-counts, kind="stable")
    with torch.no_grad():
        items_aug = augmented_items(model.item_vectors(), model.output_bias,
                                    np.isin(np.arange(num_items), [0, 1]))
    rows = []
    ev = feats[feats.is_eval]
    switches = gt[gt.user_id.isin(set(ev.user_id))]
    for sw in switches.itertuples():
        u = ev[ev.user_id == sw.user_id]
        new = u[(u.event_index >= sw.switch_event_index) & (u.interest_category == sw.to_category)]
        if new.empty:
            continue
        s0 = int(new.pos.min())
        for n in range(0, args.max_since + 1):
            end = s0 + n
            if end > len(u) or end < 1:
                break
            hist = u.iloc[max(0, end - L):end]
            rows.append(dict(user_id=sw.user_id, n=n, to_category=sw.to_category, from_category=sw.from_category,
                             items=hist.item_index.to_numpy(np.int64),
                             event_types=hist.event_type_index.to_numpy(np.int64),
                             log_gaps=hist.log_gap.to_numpy(np.float32),
                             session_starts=hist.session_start.to_numpy(np.int64),
                             consumed=np.unique(u.item_index.to_numpy()[:end])))
    frame = pd.DataFrame(rows)
    vectors = encode(model, frame, L, 64, torch.device("cpu"))
    idx, _ = blocked_topk(torch.from_numpy(vectors), items_aug, args.k, list(frame.consumed), 256, 16384)
    cats = np.where(idx >= 0, index_cat[np.clip(idx, 0, None)], -2)
    frame["model_new"] = (cats == frame.to_category.to_numpy()[:, None]).mean(axis=1)
    frame["model_old"] = (cats == frame.from_category.to_numpy()[:, None]).mean(axis=1)
    pop_new, pop_old = [], []
    for r in frame.itertuples():
        consumed = set(r.consumed.tolist())
        top = [i for i in popular[: args.k + len(consumed)] if i not in consumed][: args.k]
        pc = index_cat[top]
        pop_new.append(float((pc == r.to_category).mean()))
        pop_old.append(float((pc == r.from_category).mean()))
    frame["pop_new"], frame["pop_old"] = pop_new, pop_old
    table = frame.groupby("n").agg(users=("user_id", "size"), model_new=("model_new", "mean"),
                                   model_old=("model_old", "mean"), pop_new=("pop_new", "mean"),
                                   pop_old=("pop_old", "mean"))
    print(f"# tracking accuracy: {args.users} synthetic users ({len(switches)} held-out switches), {num_items - 2} "
          f"items, {args.categories} categories, L={L}, K={args.k}, model {args.dim}-d GRU trained {train_s:.0f} s "
          f"({result['metrics']['epochs_run']} epochs), valid {json.dumps(result['metrics']['valid'])}")
    print("# share of the top-K from the NEW category after n events of the new interest (chance = 1/categories "
          f"= {1 / args.categories:.2f}); 'old' = share from the category the user left")
    print(f"{'n':>3} {'users':>6} {'model_new':>10} {'pop_new':>8} {'model_old':>10} {'pop_old':>8}")
    for n, r in table.iterrows():
        print(f"{n:>3} {int(r.users):>6} {r.model_new:>10.3f} {r.pop_new:>8.3f} {r.model_old:>10.3f} {r.pop_old:>8.3f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
