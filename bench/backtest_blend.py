"""Choose the published blend by backtesting earlier cutoffs, then report it on later ones.

    # after bench/eval_drift.py --scorers model,... has run every cutoff (it keeps each
    # cutoff's artifact, stage-1 output and the model's user_interest table):
    .venv/bin/python bench/backtest_blend.py --work bench_output/drift_ml2 \
        --choose-on 2013-09-01,2014-03-01,2014-09-01,2015-03-01,2015-09-01 \
        --report-on 2016-03-01,2017-03-01,2018-03-01

Why: a daily table is judged by what returning users do next (bench/eval_next_day.py), and
on a small log the validation split before one cutoff holds a dozen return points, too
few to choose a blend on. Earlier cutoffs, pooled, hold more. For every candidate blend
(the recent prior: popularity or one of stage 1's decayed popularities; the mixture or the
product form, ``scoring/blend.py``) and every cutoff, this script recomputes each
returning user's top-K with the production code (``scoring.blend.blended_topk`` on the
artifact's item matrix and priors, the user's published interest vector, consumed items
excluded) and scores it with ``eval_next_day.evaluate`` against the rules. The candidate
with the most first-item hits pooled over ``--choose-on`` (ties: pooled Recall@K, then the
simpler candidate) is the one to pin in ``conf/score_<source>_drift.json`` (``scorer:
blend``, ``blend: {...}``) and ``conf/train_<source>_drift.json`` (``recent_prior``); the
published tables then come from the jobs (bench/eval_drift.py), not from this script.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import eval_next_day  # noqa: E402  (bench/ is not a package)

log = logging.getLogger("backtest_blend")

MIXTURE_MODEL_WEIGHTS = (0.1, 0.25, 0.5)
PRODUCT_POWERS = (0.125, 0.25, 0.5, 1.0)
TRANSITION_SHARES = (0.0, 0.5)
"""Share of the item transitions in the rules (the rest is the recent prior)."""


def candidates(sources: list[str]) -> list[tuple[str, dict]]:
    """(recent source, BlendWeights fields): each rule alone, mixtures and products, with the
    rules the recent prior alone or half item transitions."""
    out = []
    for src in sources:
        for ts in TRANSITION_SHARES:
            out.append((src, {"model": 0.0, "transitions": ts, "recent": round(1 - ts, 6)}))
            for wm in MIXTURE_MODEL_WEIGHTS:
                rest = round(1 - wm, 6)
                out.append((src, {"model": wm, "transitions": round(rest * ts, 6),
                                  "recent": round(rest - round(rest * ts, 6), 6)}))
            for power in PRODUCT_POWERS:
                out.append((src, {"model": 0.0, "transitions": ts, "recent": round(1 - ts, 6), "model_power": power}))
    out.append(("popularity", {"model": 0.0, "transitions": 1.0, "recent": 0.0}))  # transitions alone
    for power in PRODUCT_POWERS:
        out.append(("popularity", {"model": 0.0, "transitions": 1.0, "recent": 0.0, "model_power": power}))
    out.append(("popularity", {"model": 1.0, "transitions": 0.0, "recent": 0.0}))  # the model alone
    return out


def label(src: str, w: dict) -> str:
    if w["model"] == 1.0:
        return "model"
    rules = src if not w["transitions"] else "transitions" if not w["recent"] else f"transitions+{src}"
    if w.get("model_power"):
        return f"{rules} x model^{w['model_power']:g}"
    if w["model"] > 0:
        return f"{w['model']:g} model + {1 - w['model']:g} {rules}"
    return f"{rules} (rule)"


def cutoff_tables(work: Path, cutoff: dt.date, raw: pd.DataFrame, cands, k: int) -> tuple[dict, dict]:
    """label -> user -> item ids for every candidate at one cutoff; and the evaluation."""
    import pyarrow.parquet as pq
    import torch

    from interest_tracker.layout import ArtifactStore, SequencesDataset, Stage1Layout, fs
    from interest_tracker.layout.warehouse import INTEREST, Warehouse
    from interest_tracker.layout.artifact import CONFIG_FILE, WEIGHTS_FILE
    from interest_tracker.model.weights import model_from_bytes
    from interest_tracker.scoring.blend import BlendWeights, Priors, PriorTensors, blended_topk, normalised
    from interest_tracker.scoring.topk import augmented_items

    day = cutoff - dt.timedelta(days=1)
    c = work / f"cutoff={cutoff.isoformat()}"
    store = ArtifactStore(str(c / "artifacts"))
    version = store.resolve(None)
    model = model_from_bytes(store.read_text(version, CONFIG_FILE), store.read_bytes(version, WEIGHTS_FILE))
    n = model.config.num_items
    vocab = store.read_vocabulary(version).select(["item_id", "item_index"]).to_pandas()
    ids = np.full(n, None, dtype=object)
    ids[vocab.item_index.to_numpy()] = vocab.item_id.to_numpy()
    index_of = dict(zip(vocab.item_id, vocab.item_index))
    excluded = np.zeros(n, dtype=bool)
    excluded[:2] = True
    with torch.no_grad():
        items_aug = augmented_items(model.item_vectors(), model.output_bias, excluded)
    shipped = Priors.from_bytes(store.read_bytes(version, "priors.npz"))
    stats_fs, stats_path = fs.resolve(SequencesDataset(Stage1Layout(str(c / "stage1"), day).sequences).item_stats)
    stats = pq.read_table(stats_path, filesystem=stats_fs).to_pandas()
    recent = {"popularity": shipped.popularity}
    for col in stats.columns:
        if col.startswith("decay_"):
            v = np.zeros(n)
            v[stats.item_index.to_numpy()] = stats[col].to_numpy()
            recent[col] = normalised(v)
    part = fs.resolve(Warehouse(str(c / "warehouse_model")).committed_partition(INTEREST, day))  # the run's manifest
    interest = pq.read_table(part[1], filesystem=part[0], columns=["user_id", "vector"]).to_pandas()
    cut = pd.Timestamp(cutoff.isoformat(), tz="UTC")
    hist, fut = raw[raw.ts < cut], raw[raw.ts >= cut]
    users = sorted(set(hist.user_id) & set(fut.user_id) & set(interest.user_id))
    vec = dict(zip(interest.user_id, interest.vector))
    vectors = torch.tensor(np.stack([np.asarray(vec[u], dtype=np.float32) for u in users]))
    h = hist[hist.user_id.isin(users)].sort_values(["user_id", "ts", "item_id"], kind="mergesort")
    by_user = h.groupby("user_id").item_id
    consumed = {u: np.array(sorted({index_of[i] for i in g if i in index_of}), dtype=np.int64) for u, g in by_user}
    last_item = by_user.last()  # h is in stage-1 order, so the last row is the user's last event
    last = np.array([index_of.get(last_item[u], 1) for u in users], dtype=np.int64)
    consumed_rows = [consumed.get(u, np.zeros(0, np.int64)) for u in users]
    prior_tensors = {}  # one per recent source, shared by its candidates
    tables = {}
    for src, fields in cands:
        if src not in recent:
            continue
        if src not in prior_tensors:
            pri = Priors(shipped.indptr, shipped.successors, shipped.counts, shipped.popularity, recent[src], src)
            prior_tensors[src] = PriorTensors(pri, "cpu", items_aug.dtype, width=items_aug.shape[0])
        idx, _ = blended_topk(vectors, items_aug, prior_tensors[src], BlendWeights.from_dict(fields), last, k,
                              consumed_rows)
        tables[label(src, fields)] = {u: [ids[i] for i in idx[r] if i >= 0] for r, u in enumerate(users)}
    return tables, eval_next_day.evaluate(hist, fut, tables, cut, k, 10, (30.0, 90.0), 5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="bench/eval_drift.py's work dir (raw/ and cutoff=*/)")
    p.add_argument("--choose-on", required=True, help="comma-separated earlier cutoffs")
    p.add_argument("--report-on", default="", help="comma-separated later cutoffs (reported, never chosen on)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work = Path(args.work)
    raw_dir = work / "raw" / "raw" if (work / "raw" / "raw").is_dir() else work / "raw"  # synthetic: raw/raw
    raw = eval_next_day.read_raw_events(str(raw_dir), "parquet")
    cands = candidates(["popularity", "decay_1d", "decay_7d", "decay_30d", "decay_180d"])
    choose = [dt.date.fromisoformat(x) for x in args.choose_on.split(",") if x]
    report = [dt.date.fromisoformat(x) for x in args.report_on.split(",") if x]
    results = {}
    for cutoff in choose + report:
        _, res = cutoff_tables(work, cutoff, raw, cands, args.k)
        results[cutoff.isoformat()] = res
        log.info("cutoff %s: %d returning users, best rule %s", cutoff, res["returning_users"], res["best_rule"])
    k = args.k

    def pooled(cutoffs, name):
        hits = sum(results[c.isoformat()]["rows"][name][f"hr@{k}"] * results[c.isoformat()]["returning_users"]
                   for c in cutoffs)
        users = sum(results[c.isoformat()]["returning_users"] for c in cutoffs)
        rec = sum(results[c.isoformat()]["rows"][name][f"recall@{k}"] * results[c.isoformat()]["returning_users"]
                  for c in cutoffs) / users
        return round(hits), users, rec

    names = list(results[choose[0].isoformat()]["rows"])
    tables = [x for x in names if results[choose[0].isoformat()]["rows"][x]["kind"] == "table"]
    order = {x: i for i, x in enumerate(tables)}  # candidates() lists simpler ones first
    ranked = sorted(tables, key=lambda x: (-pooled(choose, x)[0], -pooled(choose, x)[2], order[x]))
    best = ranked[0]
    print(f"# backtest over {len(choose)} earlier cutoffs ({pooled(choose, best)[1]} returning users): "
          f"first-item hits@{k} pooled, Recall@{k} over the next 10 (user-weighted)")
    print(f"{'candidate':<34} {'hits':>5} {'recall':>7}   per cutoff HR@{k}")
    rules = [x for x in names if x not in tables]
    for x in ranked[:12] + [r for r in ["model"] if r not in ranked[:12]] + rules:
        h, _, rec = pooled(choose, x)
        print(f"{x:<34} {h:>5} {rec:>7.3f}   " + " ".join(f"{results[c.isoformat()]['rows'][x][f'hr@{k}']:.3f}"
                                                          for c in choose))
    src, fields = {label(s_, f_): (s_, f_) for s_, f_ in cands}[best]
    print(f"# chosen: {best}: recent_prior={src} (train config), blend={json.dumps(fields)} (scoring config)")
    if report:
        print("# the chosen blend on the later cutoffs (not chosen on), against the best rule at each")
        for c in report:
            r = results[c.isoformat()]
            b = r["best_rule"]
            got, want = r["rows"][best][f"hr@{k}"], r["rows"][b][f"hr@{k}"]
            print(f"{c.isoformat()} users {r['returning_users']:>3} unseen first items "
                  f"{r['first_item_unseen_before_cutoff']:>2}  chosen HR@{k} {got:.3f}  best rule {b} {want:.3f}  "
                  f"ratio {got / want if want else float('inf'):.2f}  recall {r['rows'][best][f'recall@{k}']:.3f} "
                  f"vs {r['rows'][b][f'recall@{k}']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"chosen": best, "ranked": ranked, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
